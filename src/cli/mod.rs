//! The command line: flags follow the official scripts (gen_images.py and friends). Each
//! subcommand parses its raw flags, validates them into settings, and runs; errors travel up as
//! `anyhow` and are printed once by `main`.

pub mod bench;
pub mod bench_train;
pub mod convert;
pub mod dataset;
pub mod gen;
pub mod info;
pub mod metrics;
pub mod spectrum;
pub mod train;
pub mod video;

use std::path::PathBuf;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use crate::backend::BackendChoice;

#[derive(Parser, Debug)]
#[command(name = "stylescope", version, about = "Explore, render and train StyleGAN3 / StyleGAN2 networks on any GPU or CPU.", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Open the explorer on this model (.pkl, .safetensors or preset:NAME).
    #[arg(long, global = false)]
    pub network: Option<String>,
    /// Initial seed in the explorer.
    #[arg(long)]
    pub seed: Option<u32>,
    /// Initial truncation psi in the explorer.
    #[arg(long)]
    pub trunc: Option<f64>,
    /// Backend of the explorer's render thread.
    #[arg(long, value_enum)]
    pub backend: Option<BackendChoice>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Render images for seeds (gen_images.py).
    Gen(gen::GenArgs),
    /// Print a network's architecture and per-layer table.
    Info(info::InfoArgs),
    /// Convert a snapshot .pkl to .safetensors (+ a .json config beside it).
    Convert(convert::ConvertArgs),
    /// Time the generator: ms per image, peak memory, backend.
    Bench(bench::BenchArgs),
    /// Train or fine-tune a network (train.py's flags).
    Train(train::TrainArgs),
    /// Equivariance metrics EQ-T, EQ-T_frac, EQ-R in dB (calc_metrics.py).
    Metrics(metrics::MetricsArgs),
    /// Interpolation video over seeds (gen_video.py): a .gif or a folder of PNG frames.
    Video(video::VideoArgs),
    /// Average power spectrum of a network's images or a dataset (avg_spectra.py).
    Spectrum(spectrum::SpectrumArgs),
    /// Make a training dataset from a folder or zip of images (dataset_tool.py).
    #[command(after_help = dataset::AFTER_HELP)]
    Dataset(dataset::DatasetArgs),
}

/// `0-3,7` → [0, 1, 2, 3, 7] (ranges inclusive, as gen_images.py's parse_range).
pub fn parse_range(s: &str) -> anyhow::Result<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: u32 = a.trim().parse().with_context(|| format!("bad range start in '{part}'"))?;
            let b: u32 = b.trim().parse().with_context(|| format!("bad range end in '{part}'"))?;
            if b < a {
                bail!("range '{part}' is empty (end before start)");
            }
            if (b - a) > 1_000_000 {
                bail!("range '{part}' is too long");
            }
            out.extend(a..=b);
        } else {
            out.push(part.parse().with_context(|| format!("'{part}' is not a seed (expected e.g. 0-3,7)"))?);
        }
    }
    if out.is_empty() {
        bail!("no seeds given (expected e.g. --seeds 0-3,7)");
    }
    Ok(out)
}

/// `0.1,-0.2` → (0.1, -0.2).
pub fn parse_vec2(s: &str) -> anyhow::Result<(f64, f64)> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    if parts.len() != 2 {
        bail!("'{s}' is not a pair (expected X,Y such as 0.1,0)");
    }
    let x = parts[0].parse().with_context(|| format!("'{}' is not a number", parts[0]))?;
    let y = parts[1].parse().with_context(|| format!("'{}' is not a number", parts[1]))?;
    Ok((x, y))
}

/// Creates `dir` (and parents) with a message naming it.
pub fn ensure_dir(dir: &PathBuf) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create output directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_like_gen_images() {
        assert_eq!(parse_range("0-3,7").unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse_range("42").unwrap(), vec![42]);
        assert!(parse_range("3-1").is_err());
        assert!(parse_range("x").is_err());
        assert_eq!(parse_vec2("0.1,-0.2").unwrap(), (0.1, -0.2));
        assert!(parse_vec2("1").is_err());
    }
}

/// Set by the first Ctrl-C: long commands (train, video) finish cleanly and stop.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Ctrl-C asks for a clean stop (train: a snapshot; video: a complete file of the frames so far);
/// a second Ctrl-C ends the process at once (files are written atomically, so none is half-written).
pub fn install_sigint() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" fn on_sigint(_: libc::c_int) {
            if STOP.swap(true, Ordering::SeqCst) {
                // SAFETY: _exit is async-signal-safe.
                unsafe { libc::_exit(130) }
            }
        }
        // SAFETY: the handler only touches an atomic and calls _exit, both async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        }
    }
}
