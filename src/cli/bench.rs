//! `stylescope bench`: milliseconds per image (median after warm-up), peak memory, backend;
//! with `--train`, a training iteration's phases ([`super::bench_train`]).

use std::time::Instant;

use anyhow::Context;
use burn::tensor::{Tensor, TensorData};
use clap::Args;

use crate::backend::{describe, peak_rss_bytes, BackendChoice};
use crate::kernels::KernelChoice;
use crate::model::{one_hot, SynthesisOptions};
use crate::rng::RandomState;
use crate::source::open_generator;
use crate::train::options::Cfg;
use crate::weights::Which;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Network: preset:NAME (e.g. preset:stylegan3-t-256), .pkl or .safetensors.
    #[arg(long, required_unless_present = "train")]
    pub network: Option<String>,
    /// Time a training iteration instead (phases, s/kimg): a fresh run of --cfg at --res.
    #[arg(long)]
    pub train: bool,
    /// --train: the configuration.
    #[arg(long, value_enum, default_value_t = Cfg::StyleGan2, requires = "train")]
    pub cfg: Cfg,
    /// --train: image resolution.
    #[arg(long, default_value_t = 64, requires = "train")]
    pub res: usize,
    /// --train: capacity multiplier (train.py's --cbase).
    #[arg(long, default_value_t = 8192, requires = "train")]
    pub cbase: usize,
    /// --train: max feature maps (train.py's --cmax).
    #[arg(long, default_value_t = 256, requires = "train")]
    pub cmax: usize,
    /// --train: the fixed augmentation probability ('bgc', as the official timing script).
    #[arg(long, default_value_t = 0.2, requires = "train")]
    pub aug_p: f64,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    pub backend: BackendChoice,
    /// Images per forward pass (--train: the total batch, default 8).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Timed repetitions (after the warm-up; --train: default 2).
    #[arg(long)]
    pub iters: Option<usize>,
    /// Warm-up repetitions.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Use the pure-tensor reference ops instead of the fast kernels.
    #[arg(long)]
    pub reference: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.train {
        let b = super::bench_train::TrainBench {
            cfg: args.cfg,
            res: args.res,
            cbase: args.cbase,
            cmax: args.cmax,
            batch: args.batch.unwrap_or(8).max(1),
            aug_p: args.aug_p,
            backend: args.backend,
            warmup: args.warmup,
            iters: args.iters.unwrap_or(2).max(1),
        };
        return super::bench_train::run(&b, args.json);
    }
    let network = args.network.as_deref().context("--network is required (or --train)")?;
    let device = args.backend.device();
    let opened = open_generator(network, Which::GEma, &device)?;
    let g = &opened.generator;
    let (n, z_dim, c_dim) = (args.batch.unwrap_or(1).max(1), g.config.z_dim(), g.config.c_dim());
    let kernels = if args.reference { KernelChoice::Reference } else { KernelChoice::Auto };
    let opts = SynthesisOptions { kernels, ..Default::default() };
    let kernel_name = if args.reference { "reference" } else { "fast" };
    let mut rng = RandomState::new(0);
    let mut one = |_: usize| -> anyhow::Result<f64> {
        let z: Vec<f32> = rng.randn(n * z_dim).into_iter().map(|v| v as f32).collect();
        let z = Tensor::<2>::from_data(TensorData::new(z, [n, z_dim]), &device);
        let start = Instant::now();
        let ws = g.mapping(z, one_hot(0, c_dim, n, &device), 1.0, None, None);
        let img = g.synthesis(ws, &opts, None);
        crate::backend::read_f32(img)?;
        Ok(start.elapsed().as_secs_f64() * 1000.0)
    };
    for i in 0..args.warmup {
        one(i).context("warm-up")?;
    }
    let mut times = (0..args.iters.unwrap_or(5).max(1)).map(&mut one).collect::<anyhow::Result<Vec<f64>>>()?;
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    let per_image = median / n as f64;
    let peak = peak_rss_bytes();
    let backend = describe(args.backend, &device);
    if args.json {
        let v = serde_json::json!({
            "network": opened.origin,
            "backend": args.backend.name(),
            "kernels": kernel_name,
            "device": backend,
            "batch": n,
            "iters": times.len(),
            "ms_per_image": per_image,
            "ms_per_batch_median": median,
            "ms_per_batch_all": times,
            "peak_rss_bytes": peak,
        });
        println!("{v}");
    } else {
        println!("network      {}", opened.origin);
        println!("device       {backend}");
        println!("kernels      {kernel_name}");
        println!("batch        {n}");
        println!("ms/image     {per_image:.1}  (median of {} after {} warm-up)", times.len(), args.warmup);
        if let Some(p) = peak {
            println!("peak memory  {:.0} MiB (process RSS)", p as f64 / 1048576.0);
        }
    }
    Ok(())
}
