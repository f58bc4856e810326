//! `stylescope video`: gen_video.py's interpolation video (seeds over a grid, not-a-knot cubic
//! spline of w, looping) or a keyframe timeline (`--timeline`), written as MP4, GIF or numbered PNG
//! frames, with a progress bar; Ctrl-C stops after the current frame and leaves a complete file of
//! the frames so far.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::BackendChoice;
use crate::export::video::sink::{Format, Sink};
use crate::export::video::timeline::{render_frame, Timeline};
use crate::export::video::InterpVideo;
use crate::source::open_generator;
use crate::weights::Which;

use super::{install_sigint, parse_range, STOP};

#[derive(Args, Debug)]
pub struct VideoArgs {
    /// Network pkl / safetensors / preset:NAME.
    #[arg(long)]
    pub network: String,
    /// List of random seeds, e.g. 0-3,7.
    #[arg(long, required_unless_present = "timeline", conflicts_with = "timeline")]
    pub seeds: Option<String>,
    /// A keyframe timeline (.ron or .json, as the window saves it) instead of --seeds.
    #[arg(long)]
    pub timeline: Option<PathBuf>,
    /// Random seed to use for shuffling seed order.
    #[arg(long)]
    pub shuffle_seed: Option<u32>,
    /// Grid width x height, e.g. 2x2.
    #[arg(long, default_value = "1x1")]
    pub grid: String,
    /// Number of seeds to interpolate through (default: as many as the seeds fill the grid).
    #[arg(long)]
    pub num_keyframes: Option<usize>,
    /// Number of frames to interpolate between latents.
    #[arg(long, default_value_t = 120)]
    pub w_frames: usize,
    /// Truncation psi.
    #[arg(long, default_value_t = 1.0)]
    pub trunc: f64,
    /// Output: out.gif, or a folder name for frame000000.png, frame000001.png, ...
    #[arg(long)]
    pub output: PathBuf,
    /// Frames per second (gen_video.py: 60).
    #[arg(long, default_value_t = 60.0)]
    pub fps: f64,
    /// Scale the frames to WxH (Lanczos), e.g. 512x512.
    #[arg(long)]
    pub size: Option<String>,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    pub backend: BackendChoice,
}

/// Lanczos scaling of an HWC frame to `(w, h)`.
fn scale(hwc: &[u8], w: usize, h: usize, ch: usize, (tw, th): (usize, usize)) -> Vec<u8> {
    use image::imageops::{resize, FilterType};
    if ch == 1 {
        let img = image::GrayImage::from_raw(w as u32, h as u32, hwc.to_vec()).unwrap_or_default();
        resize(&img, tw as u32, th as u32, FilterType::Lanczos3).into_raw()
    } else {
        let img = image::RgbImage::from_raw(w as u32, h as u32, hwc.to_vec()).unwrap_or_default();
        resize(&img, tw as u32, th as u32, FilterType::Lanczos3).into_raw()
    }
}

/// `2x3` → (2, 3).
fn parse_grid(s: &str) -> anyhow::Result<(usize, usize)> {
    let (w, h) = s.split_once(['x', 'X']).with_context(|| format!("--grid '{s}': expected WxH, e.g. 2x2"))?;
    let w: usize = w.trim().parse().with_context(|| format!("--grid '{s}': '{w}' is not a number"))?;
    let h: usize = h.trim().parse().with_context(|| format!("--grid '{s}': '{h}' is not a number"))?;
    if w == 0 || h == 0 {
        bail!("--grid '{s}': both sides must be at least 1");
    }
    Ok((w, h))
}

pub fn run(args: &VideoArgs) -> anyhow::Result<()> {
    let format = Format::of(&args.output).map_err(anyhow::Error::msg)?;
    if !(args.fps > 0.0 && args.fps.is_finite()) {
        bail!("--fps must be a positive number");
    }
    let timeline = args.timeline.as_deref().map(Timeline::load).transpose().map_err(anyhow::Error::msg)?;
    let grid = if timeline.is_some() { (1, 1) } else { parse_grid(&args.grid)? };
    let device = args.backend.device();
    eprintln!("Loading network from \"{}\"...", args.network);
    let g = open_generator(&args.network, Which::GEma, &device)?.generator;
    if let (Some(t), Some(path)) = (&timeline, &args.timeline) {
        t.check_family(g.family()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let video = match (&timeline, &args.seeds) {
        (Some(_), _) => None,
        (None, Some(seeds)) => Some(InterpVideo::new(&g, &parse_range(seeds)?, args.shuffle_seed, grid, args.num_keyframes, args.w_frames, args.trunc)?),
        (None, None) => bail!("give --seeds or --timeline"),
    };
    let res = g.config.img_resolution();
    let size = match &args.size {
        Some(s) => parse_grid(s).map_err(|_| anyhow::anyhow!("--size '{s}': expected WxH, e.g. 512x512"))?,
        None => (grid.0 * res, grid.1 * res),
    };
    let mut sink = Sink::create(&args.output, &format, size.0, size.1, args.fps)?;
    let total = match (&video, &timeline) {
        (Some(v), _) => v.num_frames(),
        (None, Some(t)) => t.num_frames(args.fps),
        (None, None) => 0,
    };
    let bar = ProgressBar::new(total as u64);
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} frames  {per_sec}  ETA {eta}").context("progress bar template")?);
    install_sigint();
    let mut done = 0;
    let (mut render_s, mut encode_s) = (0.0, 0.0);
    for idx in 0..total {
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        let started = std::time::Instant::now();
        let (hwc, h, w, ch) = match (&video, &timeline) {
            (Some(v), _) => v.frame(&g, idx)?,
            (None, Some(t)) => render_frame(&g, t, idx, args.fps).map_err(anyhow::Error::msg)?,
            (None, None) => break,
        };
        let rendered = std::time::Instant::now();
        render_s += (rendered - started).as_secs_f64();
        if (w, h) != size {
            let scaled = scale(&hwc, w, h, ch, size);
            sink.push(&scaled, size.1, size.0, ch)?;
        } else {
            sink.push(&hwc, h, w, ch)?;
        }
        encode_s += rendered.elapsed().as_secs_f64();
        done += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let written = sink.finish()?;
    if done < total {
        eprintln!("Stopped: {} holds the first {written} of {total} frames", args.output.display());
    } else {
        eprintln!(
            "wrote {} ({written} frames, {}x{} at {} fps; rendering {render_s:.1} s, writing {encode_s:.1} s = {:.1}% of rendering)",
            args.output.display(),
            size.0,
            size.1,
            args.fps,
            100.0 * encode_s / render_s.max(1e-9)
        );
    }
    Ok(())
}
