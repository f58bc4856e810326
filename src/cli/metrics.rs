//! `stylescope metrics`: calc_metrics.py's equivariance metrics (`eqt50k_int`, `eqt50k_frac`,
//! `eqr50k`) on a network, with a progress bar, calc_metrics-style result lines (or JSON for
//! scripts), and draws that can be saved and reused to compare networks on the same samples.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::BackendChoice;
use crate::metrics::eq_sampling::{accumulate, check_network, draws, load_draws, sample_images, save_draws, EqSums};
use crate::metrics::equivariance::EqKind;
use crate::source::open_generator;
use crate::train::training_loop::format_time;
use crate::weights::Which;

#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// Network: .pkl (PyTorch or TensorFlow era), .safetensors, an http(s) URL, or preset:NAME.
    #[arg(long)]
    pub network: String,
    /// Comma-separated metrics: eqt50k_int, eqt50k_frac, eqr50k.
    #[arg(long, default_value = "eqt50k_int,eqt50k_frac,eqr50k")]
    pub metrics: String,
    /// Number of samples (the official metrics use 50000).
    #[arg(long, default_value_t = 50000)]
    pub num: usize,
    /// Seed of the draws (z seeds, classes, translations, angles).
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Use the samples in this file (written by --save-draws) instead of drawing them.
    #[arg(long)]
    pub draws: Option<PathBuf>,
    /// Write the samples used to this file (JSON).
    #[arg(long)]
    pub save_draws: Option<PathBuf>,
    /// Print one JSON object instead of text lines.
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    pub backend: BackendChoice,
    /// Which network of a snapshot.
    #[arg(long, value_enum, default_value_t = Which::GEma)]
    pub which: Which,
}

/// `eqt50k_int,eqr50k` → the kinds, in the order given; unknown names are an error listing the
/// known ones.
pub fn parse_metrics(s: &str) -> anyhow::Result<Vec<EqKind>> {
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match EqKind::from_metric_name(name) {
            Some(k) if !out.contains(&k) => out.push(k),
            Some(_) => {}
            None => bail!("--metrics: unknown metric '{name}' (StyleScope computes eqt50k_int, eqt50k_frac, eqr50k)"),
        }
    }
    if out.is_empty() {
        bail!("--metrics: name at least one of eqt50k_int, eqt50k_frac, eqr50k");
    }
    Ok(out)
}

pub fn run(args: &MetricsArgs) -> anyhow::Result<()> {
    let kinds = parse_metrics(&args.metrics)?;
    let device = args.backend.device();
    eprintln!("Loading network from \"{}\"...", args.network);
    let opened = open_generator(&args.network, args.which, &device)?;
    let g = &opened.generator;
    check_network(g).map_err(|e| anyhow::anyhow!("{}: {e}", args.network))?;
    let cfg = &g.config;
    let samples = match &args.draws {
        Some(path) => {
            let d = load_draws(path).map_err(anyhow::Error::msg)?;
            if d.is_empty() {
                bail!("{}: no samples in the file", path.display());
            }
            if let Some(bad) = d.iter().find(|s| s.class.is_some_and(|c| c >= cfg.c_dim()) || (cfg.c_dim() > 0 && s.class.is_none())) {
                bail!("{}: sample class {:?} does not fit this network ({} classes)", path.display(), bad.class, cfg.c_dim());
            }
            d
        }
        None => {
            if args.num == 0 {
                bail!("--num must be at least 1");
            }
            draws(args.seed, args.num, cfg.c_dim(), cfg.img_resolution())
        }
    };
    if let Some(path) = &args.save_draws {
        save_draws(path, &samples)?;
    }
    let bar = ProgressBar::new(samples.len() as u64);
    bar.set_style(ProgressStyle::with_template("eq sampling {bar:30} {pos}/{len} samples  {per_sec}  ETA {eta}").context("progress bar template")?);
    let start = Instant::now();
    let mut sums = EqSums::default();
    for draw in &samples {
        let images = sample_images(g, draw, &kinds, Default::default())?;
        accumulate(&mut sums, &images, draw);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let psnr = sums.psnr();
    if args.json {
        // One line per metric, as calc_metrics.py's report (plus the sample count and seed).
        let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        for k in &kinds {
            let line = serde_json::json!({
                "results": { k.metric_name(): psnr[k] },
                "metric": k.metric_name(),
                "total_time": secs,
                "total_time_str": format_time(secs),
                "num_gpus": 1,
                "snapshot_pkl": args.network,
                "timestamp": timestamp,
                "num_samples": samples.len(),
                "seed": args.seed,
            });
            println!("{line}");
        }
    } else {
        for k in &kinds {
            println!("{}: {:.4} dB  ({}, {} samples, {:.1} s)", k.metric_name(), psnr[k], k.label(), samples.len(), secs);
        }
    }
    Ok(())
}
