//! `stylescope gen`: gen_images.py, number for number.

use std::path::PathBuf;

use anyhow::{bail, Context};
use burn::tensor::{Tensor, TensorData};
use clap::Args;

use crate::backend::BackendChoice;
use crate::export::{npy, quantize_chw, save_png};
use crate::model::config::Family;
use crate::model::{invert3, make_transform, one_hot, NoiseMode, SynthesisOptions};
use crate::rng::z_from_seed;
use crate::source::open_generator;
use crate::weights::Which;

#[derive(Args, Debug)]
pub struct GenArgs {
    /// Network: .pkl (PyTorch or TensorFlow era), .safetensors, an http(s) URL, or preset:NAME.
    #[arg(long)]
    pub network: String,
    /// Seeds, e.g. 0-3,7.
    #[arg(long)]
    pub seeds: String,
    /// Truncation psi.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub trunc: f64,
    /// Truncate only the first N ws (default: all).
    #[arg(long)]
    pub trunc_cutoff: Option<usize>,
    /// Class label (required for conditional networks).
    #[arg(long = "class")]
    pub class_idx: Option<usize>,
    /// StyleGAN2 noise mode (StyleGAN3 has no noise inputs).
    #[arg(long, value_enum, default_value_t = NoiseMode::Const)]
    pub noise_mode: NoiseMode,
    /// Translate the input features, X,Y in image widths (StyleGAN3).
    #[arg(long, default_value = "0,0", allow_hyphen_values = true)]
    pub translate: String,
    /// Rotate the input features, degrees (StyleGAN3).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub rotate: f64,
    /// Output directory.
    #[arg(long)]
    pub outdir: PathBuf,
    /// Also write seedNNNN.npy: the unclipped float32 NCHW output.
    #[arg(long)]
    pub raw: bool,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    pub backend: BackendChoice,
    /// Which network of a snapshot.
    #[arg(long, value_enum, default_value_t = Which::GEma)]
    pub which: Which,
}

pub fn run(args: &GenArgs) -> anyhow::Result<()> {
    let seeds = super::parse_range(&args.seeds)?;
    let translate = super::parse_vec2(&args.translate)?;
    super::ensure_dir(&args.outdir)?;
    let device = args.backend.device();
    eprintln!("Loading network from \"{}\"...", args.network);
    let opened = open_generator(&args.network, args.which, &device)?;
    let g = &opened.generator;
    let cfg = &g.config;

    let c_dim = cfg.c_dim();
    let class = match (c_dim, args.class_idx) {
        (0, Some(c)) => {
            eprintln!("warning: --class={c} ignored when running on an unconditional network");
            0
        }
        (0, None) => 0,
        (_, None) => bail!("this network is conditional ({c_dim} classes): pass --class N (0..{})", c_dim - 1),
        (n, Some(c)) if c >= n => bail!("--class {c} is out of range: this network has {n} classes (0..{})", n - 1),
        (_, Some(c)) => c,
    };
    let mut opts = SynthesisOptions { noise_mode: args.noise_mode, ..Default::default() };
    if g.family() == Family::StyleGan3 {
        let m = make_transform(translate, args.rotate);
        opts.transform = Some(invert3(m).context("the transform is singular")?);
    } else if translate != (0.0, 0.0) || args.rotate != 0.0 {
        eprintln!("warning: --translate/--rotate only apply to StyleGAN3 networks; ignored");
    }

    for (i, seed) in seeds.iter().enumerate() {
        eprintln!("Generating image for seed {seed} ({}/{}) ...", i + 1, seeds.len());
        let z: Vec<f32> = z_from_seed(*seed, cfg.z_dim()).into_iter().map(|v| v as f32).collect();
        let z = Tensor::<2>::from_data(TensorData::new(z, [1, cfg.z_dim()]), &device);
        let c = one_hot(class, c_dim, 1, &device);
        let ws = g.mapping(z, c, args.trunc, args.trunc_cutoff, None);
        let img = g.synthesis(ws, &opts, None);
        let [_, ch, h, w] = img.dims();
        let data = crate::backend::read_f32(img)?;
        let png = args.outdir.join(format!("seed{seed:04}.png"));
        save_png(&png, &quantize_chw(&data, ch, h, w), ch, h, w).with_context(|| format!("writing {}", png.display()))?;
        if args.raw {
            let path = args.outdir.join(format!("seed{seed:04}.npy"));
            npy::write_f32(&path, &[1, ch, h, w], &data).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}
