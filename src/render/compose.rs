//! Latent composition exactly as the official visualizer's renderer does it: fractional seeds
//! blend the `w` of the four neighbouring integer seeds, style mixing copies chosen w indices from
//! another seed, truncation happens per seed, and the user's translate/rotate is written into
//! StyleGAN3's input transform as its inverse.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::model::NoiseMode;
use crate::model::layers::Trace;
use crate::model::{invert3, one_hot, Generator, SynthesisOptions};
use crate::rng::RandomState;

/// Noise settings (StyleGAN2 only; StyleGAN3 has no noise inputs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NoiseParams {
    pub mode: NoiseMode,
    /// Seed of the device RNG for `Random` (`torch.manual_seed`).
    pub seed: u64,
    /// Multiplies every layer's learned noise strength.
    pub gain: f64,
}

impl Default for NoiseParams {
    fn default() -> Self {
        Self { mode: NoiseMode::Const, seed: 0, gain: 1.0 }
    }
}

/// The latent-side controls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatentParams {
    /// Latent position: integer points are seeds, `seed = x + 100·y`.
    pub x: f64,
    pub y: f64,
    /// Fixed class for conditional networks; `None` draws it per seed like the official visualizer.
    pub class: Option<usize>,
    pub psi: f64,
    /// Truncate only the first N ws (`None` = all).
    pub cutoff: Option<usize>,
    pub stylemix_seed: u32,
    /// w indices taken from `stylemix_seed`.
    pub stylemix: Vec<usize>,
    pub noise: NoiseParams,
    /// Translation of the input features, in image widths.
    pub translate: (f64, f64),
    /// Rotation of the input features, in turns.
    pub rotate_turns: f64,
}

impl Default for LatentParams {
    fn default() -> Self {
        Self {
            x: 0.0,
            y: 0.0,
            class: None,
            psi: 1.0,
            cutoff: None,
            stylemix_seed: 1000,
            stylemix: Vec::new(),
            noise: NoiseParams::default(),
            translate: (0.0, 0.0),
            rotate_turns: 0.0,
        }
    }
}

impl LatentParams {
    /// The integer seed nearest to the latent position.
    pub fn seed(&self) -> u32 {
        ((self.x.round() as i64) + (self.y.round() as i64) * 100).rem_euclid(1 << 32) as u32
    }
}

/// The visualizer's bilinear blend: up to four `(seed, weight)` pairs around `(x, y)`.
pub fn w0_seeds(x: f64, y: f64) -> Vec<(u32, f64)> {
    let mut out = Vec::new();
    for (ox, oy) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
        let sx = x.floor() + ox;
        let sy = y.floor() + oy;
        let seed = ((sx as i64) + (sy as i64) * 100).rem_euclid(1 << 32) as u32;
        let weight = (1.0 - (x - sx).abs()) * (1.0 - (y - sy).abs());
        if weight > 0.0 {
            out.push((seed, weight));
        }
    }
    out
}

/// `[[cos a, sin a, x], [-sin a, cos a, y], [0, 0, 1]]` with `a = 2π·turns` (the forward
/// transform), computed as `gen --rotate` computes it from degrees (`turns · 360`), so that the
/// command "copy as command" prints renders the same bits.
pub fn input_transform(translate: (f64, f64), turns: f64) -> [[f64; 3]; 3] {
    crate::model::make_transform(translate, turns * 360.0)
}

/// Renders the controls' image (and traces layers when asked).
pub fn render(g: &Generator, device: &Device, p: &LatentParams, trace: Option<&mut Trace>) -> Result<Tensor<4>, String> {
    render_with(g, device, &w0_seeds(p.x, p.y), p, input_transform(p.translate, p.rotate_turns), trace)
}

/// The renderer's `w`: per-seed truncated `w` minus `w_avg`, blended by weight, style-mixed, plus
/// `w_avg` again (`_render_impl` of the official visualizer).
pub fn compose_w(g: &Generator, device: &Device, w0: &[(u32, f64)], p: &LatentParams) -> Result<Tensor<3>, String> {
    let cfg = &g.config;
    let (z_dim, c_dim, num_ws, w_dim) = (cfg.z_dim(), cfg.c_dim(), cfg.num_ws(), cfg.w_dim());
    let w_avg: Tensor<3> = g.w_avg().ok_or("the network has no w_avg (mapping.w_avg is missing)")?.reshape([1, 1, w_dim]);
    let mapped = |seed: u32| -> Tensor<3> {
        let mut rng = RandomState::new(seed);
        // z is drawn in float64 and cast to float32, as the visualizer does.
        let z: Vec<f32> = rng.randn(z_dim).into_iter().map(|v| v as f32).collect();
        // The per-seed class is drawn after z from the same stream.
        let class = match p.class {
            Some(c) => c,
            None if c_dim > 0 => rng.randint(c_dim as u32) as usize,
            None => 0,
        };
        let z = Tensor::<2>::from_data(TensorData::new(z, [1, z_dim]), device);
        g.mapping(z, one_hot(class, c_dim, 1, device), p.psi, p.cutoff, None)
    };
    let all_ws = |seed: u32| mapped(seed) - w_avg.clone();
    let mix: Vec<usize> = p.stylemix.iter().copied().filter(|&i| i < num_ws).collect();
    if let ([(seed, weight)], true) = (w0, mix.is_empty()) {
        if *weight == 1.0 {
            // One seed, unmixed: `w` itself. (w − w_avg)·1 + w_avg is the same up to rounding; this
            // way the image is bit for bit the one `stylescope gen` writes for the seed.
            return Ok(mapped(*seed));
        }
    }
    let mut w: Option<Tensor<3>> = None;
    for &(seed, weight) in w0 {
        let term = all_ws(seed).mul_scalar(weight);
        w = Some(match w {
            Some(acc) => acc + term,
            None => term,
        });
    }
    let mut w = w.ok_or("no seeds to render")?;
    if !mix.is_empty() {
        let other = all_ws(p.stylemix_seed);
        let parts: Vec<Tensor<3>> = (0..num_ws)
            .map(|i| if mix.contains(&i) { other.clone().narrow(1, i, 1) } else { w.clone().narrow(1, i, 1) })
            .collect();
        w = Tensor::cat(parts, 1);
    }
    Ok(w + w_avg)
}

/// [`render`] with explicit blend seeds and forward input transform.
pub fn render_with(
    g: &Generator,
    device: &Device,
    w0: &[(u32, f64)],
    p: &LatentParams,
    input_transform: [[f64; 3]; 3],
    trace: Option<&mut Trace>,
) -> Result<Tensor<4>, String> {
    let w = compose_w(g, device, w0, p)?;
    // The renderer stores the inverse of the user's forward transform in `synthesis.input.transform`.
    let transform = invert3(input_transform).ok_or("the input transform is singular")?;
    if p.noise.mode == NoiseMode::Random {
        // `torch.manual_seed(noise_seed)` before synthesis.
        device.seed(p.noise.seed);
    }
    let opts = SynthesisOptions { noise_mode: p.noise.mode, noise_gain: p.noise.gain, transform: Some(transform), ..Default::default() };
    Ok(g.synthesis(w, &opts, trace))
}
