//! `stylescope spectrum`: avg_spectra.py's average power spectrum of a network's images or of a
//! dataset, saved as its `.npz` and/or drawn as its heatmap and slices (`.png`), with a progress
//! bar. The dataset mean and std are measured in the same pass unless given (`--mean`, `--std`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use burn::tensor::{Tensor, TensorData};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::BackendChoice;
use crate::data::{DatasetOptions, ImageFolderDataset};
use crate::export::quantize_chw;
use crate::metrics::spectrum::{read_npz, render_png, write_npz, SpectrumAccumulator};
use crate::model::{one_hot, NoiseMode, SynthesisOptions};
use crate::source::open_generator;
use crate::weights::Which;

#[derive(Args, Debug)]
pub struct SpectrumArgs {
    /// Network pkl / safetensors / preset:NAME whose images are measured (needs --num).
    #[arg(long, conflicts_with_all = ["data", "npz"])]
    pub network: Option<String>,
    /// Dataset folder or zip whose images are measured.
    #[arg(long, conflicts_with = "npz")]
    pub data: Option<PathBuf>,
    /// Spectra already computed (.npz): draw them (several: their slices together).
    #[arg(long, num_args = 1..)]
    pub npz: Vec<PathBuf>,
    /// Where to write: .npz (the spectrum) and/or .png (heatmap and slices); repeatable.
    #[arg(long, required = true)]
    pub output: Vec<PathBuf>,
    /// Number of images to process [default: all for a dataset].
    #[arg(long)]
    pub num: Option<usize>,
    /// Random seed (network: images of seeds seed..seed+num; dataset: the subset chosen).
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Dataset mean for whitening [default: measured in the same pass].
    #[arg(long)]
    pub mean: Option<f64>,
    /// Dataset standard deviation for whitening [default: measured].
    #[arg(long)]
    pub std: Option<f64>,
    /// Shape parameter for the Kaiser window.
    #[arg(long, default_value_t = 8.0)]
    pub beta: f64,
    /// Frequency-domain interpolation factor.
    #[arg(long, default_value_t = 4)]
    pub interp: usize,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    pub backend: BackendChoice,
}

fn bar(n: usize) -> anyhow::Result<ProgressBar> {
    let b = ProgressBar::new(n as u64);
    b.set_style(ProgressStyle::with_template("spectrum {bar:30} {pos}/{len} images  {per_sec}  ETA {eta}").context("progress bar template")?);
    Ok(b)
}

pub fn run(args: &SpectrumArgs) -> anyhow::Result<()> {
    for o in &args.output {
        match o.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("npz" | "png") => {}
            _ => bail!("{}: --output must end in .npz or .png", o.display()),
        }
    }
    if args.interp == 0 {
        bail!("--interp must be at least 1");
    }
    if args.std.is_some_and(|s| s.is_nan() || s <= 0.0) {
        bail!("--std must be positive");
    }
    let cases: Vec<(String, Vec<f64>, usize, usize)> = if !args.npz.is_empty() {
        if args.output.iter().any(|o| o.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz"))) {
            bail!("with --npz, --output draws them: give a .png");
        }
        args.npz
            .iter()
            .map(|p| {
                let (s, size, image_size) = read_npz(p).map_err(anyhow::Error::msg)?;
                Ok((label_of(p), s, size, image_size))
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        let (acc, label) = match (&args.network, &args.data) {
            (Some(net), None) => (from_network(args, net)?, label_of(std::path::Path::new(net))),
            (None, Some(data)) => (from_data(args, data)?, label_of(data)),
            _ => bail!("give --network, --data or --npz"),
        };
        let (mean, std) = acc.mean_std();
        let (mean, std) = (args.mean.unwrap_or(mean), args.std.unwrap_or(std));
        if std.is_nan() || std <= 0.0 {
            bail!("the images are constant (std 0): nothing to whiten");
        }
        eprintln!("{} images, whitened with --mean={mean:.4} --std={std:.4}", acc.images());
        vec![(label, acc.spectrum(mean, std), acc.size, acc.image_size)]
    };
    for o in &args.output {
        if o.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz")) {
            let (_, s, size, image_size) = &cases[0];
            write_npz(o, s, *size, *image_size)?;
        } else {
            render_png(o, &cases).map_err(anyhow::Error::msg)?;
        }
        eprintln!("wrote {}", o.display());
    }
    Ok(())
}

fn label_of(p: &std::path::Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

/// Images of seeds `seed..seed+num` (z and the class from `RandomState(seed)`, random noise), as
/// avg_spectra.py draws them, quantised to uint8.
fn from_network(args: &SpectrumArgs, network: &str) -> anyhow::Result<SpectrumAccumulator> {
    let Some(num) = args.num.filter(|&n| n > 0) else { bail!("--num is required (at least 1) when measuring a network") };
    let device = args.backend.device();
    eprintln!("Loading network from \"{network}\"...");
    let g = open_generator(network, Which::GEma, &device)?.generator;
    let cfg = &g.config;
    let (res, ch) = (cfg.img_resolution(), cfg.img_channels());
    let mut acc = SpectrumAccumulator::new(res, args.beta, args.interp);
    let opts = SynthesisOptions { noise_mode: NoiseMode::Random, ..Default::default() };
    let b = bar(num)?;
    for i in 0..num {
        let mut rs = crate::rng::RandomState::new(args.seed.wrapping_add(i as u32));
        let z: Vec<f32> = rs.randn(cfg.z_dim()).into_iter().map(|v| v as f32).collect();
        let class = if cfg.c_dim() > 0 { rs.randint(cfg.c_dim() as u32) as usize } else { 0 };
        let z = Tensor::<2>::from_data(TensorData::new(z, [1, cfg.z_dim()]), &device);
        let ws = g.mapping(z, one_hot(class, cfg.c_dim(), 1, &device), 1.0, None, None);
        let img = crate::backend::read_f32(g.synthesis(ws, &opts, None))?;
        acc.add(&quantize_chw(&img, ch, res, res), ch);
        b.inc(1);
    }
    b.finish_and_clear();
    Ok(acc)
}

fn from_data(args: &SpectrumArgs, data: &std::path::Path) -> anyhow::Result<SpectrumAccumulator> {
    let ds = ImageFolderDataset::open(data, &DatasetOptions { resolution: None, use_labels: false, max_size: args.num, xflip: false, random_seed: args.seed })?;
    if let Some(n) = args.num {
        if ds.len() < n {
            bail!("{}: contains fewer than {n} images ({})", data.display(), ds.len());
        }
    }
    let (res, ch) = (ds.resolution() as usize, ds.num_channels() as usize);
    let mut acc = SpectrumAccumulator::new(res, args.beta, args.interp);
    let b = bar(ds.len())?;
    for i in 0..ds.len() {
        acc.add(&ds.image(i)?, ch);
        b.inc(1);
    }
    b.finish_and_clear();
    Ok(acc)
}
