//! `stylescope bench --train`: where a training step's time goes. Builds a run exactly as
//! `stylescope train --cfg … --cbase … --cmax … --batch …` would (fresh networks, Adam, the 'bgc'
//! AugmentPipe at a fixed p, as the official timing script does) on a scratch dataset of random
//! images, runs every phase in every timed iteration, and reports each phase's seconds, the
//! iteration as the official loop weights it (Gmain + Dmain + Greg / 4 + Dreg / 16: the lazy
//! regularisation intervals), seconds per kimg and peak memory.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;

use crate::backend::{peak_rss_bytes, BackendChoice};
use crate::train::options::{Cfg, TrainOptions};
use crate::train::training_loop::Trainer;

/// What `bench --train` measures.
pub struct TrainBench {
    pub cfg: Cfg,
    pub res: usize,
    pub cbase: usize,
    pub cmax: usize,
    pub batch: usize,
    pub aug_p: f64,
    pub backend: BackendChoice,
    pub warmup: usize,
    pub iters: usize,
}

/// A scratch folder removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `n` random RGB images of `res`² as PNGs in `dir`.
fn write_images(dir: &Path, n: usize, res: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rng = crate::rng::RandomState::new(1);
    for i in 0..n {
        let pixels: Vec<u8> = (0..res * res * 3).map(|_| rng.randint(256) as u8).collect();
        let path = dir.join(format!("img{i:04}.png"));
        image::save_buffer(&path, &pixels, res as u32, res as u32, image::ExtendedColorType::Rgb8).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Median of `v` (not empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(b: &TrainBench, json: bool) -> anyhow::Result<()> {
    if !b.res.is_power_of_two() || b.res < 16 {
        anyhow::bail!("--res {}: a power of two of at least 16", b.res);
    }
    let scratch = Scratch(std::env::temp_dir().join(format!("stylescope-bench-train-{}", std::process::id())));
    let data = scratch.0.join("data");
    write_images(&data, b.batch.max(4), b.res)?;
    let gamma = 0.0002 * (b.res * b.res) as f64 / b.batch as f64;
    let args: Vec<String> = [
        "train".to_string(),
        format!("--outdir={}", scratch.0.join("runs").display()),
        format!("--data={}", data.display()),
        format!("--cfg={}", b.cfg.name()),
        "--gpus=1".into(),
        format!("--batch={}", b.batch),
        format!("--gamma={gamma}"),
        format!("--cbase={}", b.cbase),
        format!("--cmax={}", b.cmax),
        "--aug=fixed".into(),
        format!("--p={}", b.aug_p),
        "--metrics=none".into(),
        format!("--backend={}", b.backend.name()),
    ]
    .into();
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        opts: TrainOptions,
    }
    let opts = Wrap::try_parse_from(&args).context("building the run's options")?.opts;
    let mut trainer = Trainer::new(opts)?;
    trainer.on_line = Box::new(|_| {});
    trainer.force_all_phases = true;
    let mut runs: Vec<(&'static str, u64, Vec<f64>)> = Vec::new();
    let total = b.warmup + b.iters.max(1);
    for i in 0..total {
        let started = std::time::Instant::now();
        trainer.iteration()?;
        eprintln!("{} {}/{}: {:.1} s", if i < b.warmup { "warm-up" } else { "iteration" }, if i < b.warmup { i + 1 } else { i + 1 - b.warmup }, if i < b.warmup { b.warmup } else { b.iters.max(1) }, started.elapsed().as_secs_f64());
        if i < b.warmup {
            continue;
        }
        for &(name, interval, s) in &trainer.last_phases {
            match runs.iter_mut().find(|r| r.0 == name) {
                Some(r) => r.2.push(s),
                None => runs.push((name, interval, vec![s])),
            }
        }
    }
    let phases: Vec<(&str, u64, f64)> = runs.into_iter().map(|(n, i, v)| (n, i, median(v))).collect();
    let per_iter: f64 = phases.iter().map(|(_, i, s)| s / *i as f64).sum();
    let per_kimg = per_iter * 1000.0 / b.batch as f64;
    let peak = peak_rss_bytes();
    let what = format!("{} {res}x{res}, cbase {} cmax {}, batch {}, aug 'bgc' p {}", b.cfg.name(), b.cbase, b.cmax, b.batch, b.aug_p, res = b.res);
    drop(trainer);
    if json {
        let v = serde_json::json!({
            "train": what,
            "cfg": b.cfg.name(),
            "res": b.res,
            "cbase": b.cbase,
            "cmax": b.cmax,
            "batch": b.batch,
            "backend": b.backend.name(),
            "iters": b.iters.max(1),
            "phases": phases.iter().map(|(n, i, s)| serde_json::json!({"name": n, "interval": i, "seconds": s, "seconds_per_iteration": s / *i as f64})).collect::<Vec<_>>(),
            "seconds_per_iteration": per_iter,
            "seconds_per_kimg": per_kimg,
            "peak_rss_bytes": peak,
        });
        println!("{v}");
        return Ok(());
    }
    println!("training     {what}");
    println!("backend      {}", b.backend.name());
    println!("{:<10} {:>9} {:>10} {:>9} {:>6}", "phase", "s / run", "runs/iter", "s / iter", "share");
    for (name, interval, s) in &phases {
        let share = s / *interval as f64 / per_iter * 100.0;
        let every = if *interval == 1 { "1".to_string() } else { format!("1/{interval}") };
        println!("{name:<10} {s:>9.2} {every:>10} {:>9.2} {share:>5.0}%", s / *interval as f64);
    }
    println!("iteration  {per_iter:.2} s ({} images; median of {} after {} warm-up)", b.batch, b.iters.max(1), b.warmup);
    println!("s/kimg     {per_kimg:.0}");
    if let Some(p) = peak {
        println!("peak memory  {:.0} MiB (process RSS)", p as f64 / 1048576.0);
    }
    Ok(())
}
