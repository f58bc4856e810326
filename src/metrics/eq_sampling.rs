//! Running the equivariance metrics on a generator: reproducible draws (z seed, class, the
//! translations and the angle of each sample, savable and readable so two networks can be compared
//! on the very same samples), the generator run under each kind's input transform, and the sums
//! over all samples that give the PSNR of `compute_equivariance_metrics`.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::equivariance::{psnr, sample_sums, transform_buffer, EqKind};
use crate::model::config::Family;
use crate::model::{one_hot, Generator, SynthesisOptions};

/// The official ranges: translations up to ±0.125 of the image, rotations ±180°.
pub const TRANSLATE_MAX: f64 = 0.125;
pub const ROTATE_MAX: f64 = 1.0;

/// What one sample uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Draw {
    /// z = `RandomState(z_seed).randn(z_dim)`, as `stylescope gen --seeds` draws it.
    pub z_seed: u32,
    /// The class of a conditional network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<usize>,
    /// EQ-T's translation (whole pixels of this resolution), as a fraction of the image.
    pub t_int: [f64; 2],
    /// EQ-T_frac's translation.
    pub t_frac: [f64; 2],
    /// EQ-R's angle in radians.
    pub angle: f64,
}

/// `num` draws from `seed`: z seeds `seed·1_000_003 + i` and, from one numpy `RandomState(seed)`
/// stream, each sample's class, translations and angle, drawn as the official code draws them
/// (`(rand·2 − 1)·max`, integer translations rounded to whole pixels of `resolution`).
pub fn draws(seed: u32, num: usize, c_dim: usize, resolution: usize) -> Vec<Draw> {
    let mut rs = crate::rng::RandomState::new(seed);
    let r = resolution as f64;
    (0..num)
        .map(|i| {
            let class = (c_dim > 0).then(|| rs.randint(c_dim as u32) as usize);
            let mut u = || (rs.next_f64() * 2.0 - 1.0) * TRANSLATE_MAX;
            let t_int = [(u() * r).round_ties_even() / r, (u() * r).round_ties_even() / r];
            let t_frac = [u(), u()];
            let angle = (rs.next_f64() * 2.0 - 1.0) * ROTATE_MAX * std::f64::consts::PI;
            Draw { z_seed: seed.wrapping_mul(1_000_003).wrapping_add(i as u32), class, t_int, t_frac, angle }
        })
        .collect()
}

/// Writes draws as JSON (one array), atomically.
pub fn save_draws(path: &Path, draws: &[Draw]) -> Result<(), crate::error::SaveError> {
    let json = serde_json::to_vec_pretty(draws).map_err(|e| crate::error::SaveError::Encode { path: path.into(), detail: e.to_string() })?;
    crate::weights::safetensors::write_atomic(path, &json)
}

/// Reads draws written by [`save_draws`]; the error names the file and what is wrong.
pub fn load_draws(path: &Path) -> Result<Vec<Draw>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not a draws file ({e})", path.display()))
}

/// Σ masked squared error and Σ mask per kind, over the samples added so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EqSums {
    pub sums: BTreeMap<EqKind, (f64, f64)>,
    pub samples: usize,
}

impl EqSums {
    pub fn add(&mut self, kind: EqKind, (err, mask): (f64, f64)) {
        let s = self.sums.entry(kind).or_insert((0.0, 0.0));
        s.0 += err;
        s.1 += mask;
    }

    /// The PSNR in dB of each kind over everything added.
    pub fn psnr(&self) -> BTreeMap<EqKind, f64> {
        self.sums.iter().map(|(k, (e, m))| (*k, psnr(*e, *m))).collect()
    }
}

/// The untransformed image and each kind's image for one draw, `[C, H, W]` on the host.
pub struct SampleImages {
    pub orig: Vec<f32>,
    pub transformed: Vec<(EqKind, Vec<f32>)>,
    pub channels: usize,
    pub resolution: usize,
}

/// Runs `g` for one draw: `ws = mapping(z, c)` (psi 1), `orig` with the identity transform, then
/// each kind under its transform buffer. StyleGAN3 only (others have no input transform).
pub fn sample_images(g: &Generator, draw: &Draw, kinds: &[EqKind], kernels: crate::kernels::KernelChoice) -> Result<SampleImages, crate::error::DeviceError> {
    let cfg = &g.config;
    let device = g.device();
    let z: Vec<f32> = crate::rng::z_from_seed(draw.z_seed, cfg.z_dim()).into_iter().map(|v| v as f32).collect();
    let z = Tensor::<2>::from_data(TensorData::new(z, [1, cfg.z_dim()]), &device);
    let c = one_hot(draw.class.unwrap_or(0), cfg.c_dim(), 1, &device);
    let ws = g.mapping(z, c, 1.0, None, None);
    let orig = synthesize(g, &ws, IDENTITY, kernels)?;
    let mut transformed = Vec::new();
    for &k in kinds {
        let t = if k == EqKind::TranslateInt { draw.t_int } else { draw.t_frac };
        transformed.push((k, synthesize(g, &ws, transform_buffer(k, t, draw.angle), kernels)?));
    }
    Ok(SampleImages { orig, transformed, channels: cfg.img_channels(), resolution: cfg.img_resolution() })
}

pub const IDENTITY: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// `synthesis(ws)` with `synthesis.input.transform = buffer` (const noise), `[C, H, W]` on the host.
pub fn synthesize(g: &Generator, ws: &Tensor<3>, buffer: [[f64; 3]; 3], kernels: crate::kernels::KernelChoice) -> Result<Vec<f32>, crate::error::DeviceError> {
    let opts = SynthesisOptions { transform: Some(buffer), kernels, ..Default::default() };
    crate::backend::read_f32(g.synthesis(ws.clone().narrow(0, 0, 1), &opts, None))
}

/// Adds one draw's masked errors to `sums`.
pub fn accumulate(sums: &mut EqSums, images: &SampleImages, draw: &Draw) {
    let (c, r) = (images.channels, images.resolution);
    for (k, img) in &images.transformed {
        let t = if *k == EqKind::TranslateInt { draw.t_int } else { draw.t_frac };
        sums.add(*k, sample_sums(*k, &images.orig, img, c, r, r, t, draw.angle));
    }
    sums.samples += 1;
}

/// Why a network cannot be measured.
pub fn check_network(g: &Generator) -> Result<(), String> {
    match g.family() {
        Family::StyleGan3 => Ok(()),
        Family::StyleGan2 => Err("the equivariance metrics need a StyleGAN3 network (its input transform); this is StyleGAN2".into()),
        Family::StyleGan1 => Err("the equivariance metrics need a StyleGAN3 network (its input transform); this is StyleGAN (v1)".into()),
    }
}
