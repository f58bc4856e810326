//! StyleGAN2Loss (training/loss.py): the phases of one training iteration and their gradients,
//! with burn's first-order autodiff only.
//!
//! R1 needs the gradient of a gradient, which burn cannot take. It is exact anyway: with
//! `v = ∇ₓΣD(x)` held fixed, `∇θ ½‖∇ₓΣD(x)‖² = ∇θ ⟨v, ∇ₓΣD(x)⟩ = ∇θ (J_D(x)·v)`, and `J_D(x)·v` is a
//! forward-mode derivative that [`Discriminator::forward_tangent`] computes with ordinary
//! differentiable ops. One backward pass for `v`, one tangent pass and one backward pass for the
//! weights: the same numbers as torch's double backward, no approximation.

use std::collections::BTreeMap;

use burn::tensor::activation::softplus;
use burn::tensor::{Device, Gradients, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::backend::read_f32;
use crate::error::DeviceError;
use crate::model::config::GeneratorConfig;
use crate::train::TrainError;
use crate::kernels::reference::{filter2d, Fir};
use crate::kernels::KernelChoice;
use crate::model::discriminator::Discriminator;
use crate::model::layers::NamedParams;
use crate::model::{Generator, Synthesis};
use crate::train::adam::Grads;

/// The loss's constructor arguments as train.py sets them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LossOptions {
    pub r1_gamma: f64,
    pub style_mixing_prob: f64,
    pub pl_weight: f64,
    pub pl_batch_shrink: usize,
    pub pl_decay: f64,
    pub pl_no_weight_grad: bool,
    pub blur_init_sigma: f64,
    pub blur_fade_kimg: f64,
}

impl LossOptions {
    /// `σ = max(1 − cur_nimg / (blur_fade_kimg·1000), 0)·blur_init_sigma` (0 without a fade).
    pub fn blur_sigma(&self, cur_nimg: u64) -> f64 {
        if self.blur_fade_kimg > 0.0 {
            (1.0 - cur_nimg as f64 / (self.blur_fade_kimg * 1e3)).max(0.0) * self.blur_init_sigma
        } else {
            0.0
        }
    }
}

/// The discriminator's input blur of stylegan3-r: taps `2^(−(k/σ)²)` for `k = −⌊3σ⌋..⌊3σ⌋`,
/// normalised, applied separably at the same size; `None` when `⌊3σ⌋ = 0`.
pub fn blur_taps(sigma: f64) -> Option<Vec<f32>> {
    let size = (sigma * 3.0).floor();
    if !(size > 0.0) {
        return None;
    }
    let size = size as i64;
    let s = sigma as f32;
    let f: Vec<f32> = (-size..=size).map(|k| (-(k as f32 / s).powi(2)).exp2()).collect();
    let total: f32 = f.iter().sum();
    Some(f.iter().map(|v| v / total).collect())
}

/// What run_D does to a batch after the blur: one draw of the augment pipe, as a map that is
/// affine in the image (its linear part carries tangents).
pub trait ImageMap {
    fn apply(&self, x: Tensor<4>) -> Tensor<4>;
    fn apply_linear(&self, x: Tensor<4>) -> Tensor<4>;
}

/// Draws one [`ImageMap`] per run_D call: `[batch, channels, height, width]`.
pub type Augmenter<'a> = Option<&'a mut dyn FnMut([usize; 4]) -> Box<dyn ImageMap>>;

/// The random numbers the loss draws for StyleGAN2 (style mixing, noise inputs, PL noise), so
/// tests can replay the official draws and training can resume bit for bit.
pub trait LossRng {
    /// Uniform integer in `[low, high)`.
    fn randint(&mut self, low: i64, high: i64) -> i64;
    /// Uniform in `[0, 1)`.
    fn rand(&mut self) -> f32;
    /// Standard normal values for a tensor of this shape.
    fn randn(&mut self, shape: &[usize]) -> Vec<f32>;
}

/// A phase's named intermediates (the fixtures' names: `gen_img`, `gen_logits`, `loss_Gmain`,
/// `real_logits`, `r1_penalty`, ...) and its gradients per parameter.
#[derive(Default)]
pub struct PhaseOut {
    pub values: BTreeMap<String, Vec<f32>>,
    pub grads: Grads,
}

impl PhaseOut {
    fn record<const D: usize>(&mut self, key: &str, t: &Tensor<D>) -> Result<(), DeviceError> {
        self.values.insert(key.to_string(), read_f32(t.clone())?);
        Ok(())
    }

    /// The mean of a recorded value (for the statistics).
    pub fn mean(&self, key: &str) -> Option<f64> {
        let v = self.values.get(key)?;
        (!v.is_empty()).then(|| v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64)
    }
}

/// A float tensor from host values.
pub fn tensor<const D: usize>(values: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

/// `[n, c_dim]` labels, `None` when unconditional.
pub fn labels(c: &[f32], n: usize, device: &Device) -> Option<Tensor<2>> {
    (n > 0 && !c.is_empty()).then(|| tensor(c, [n, c.len() / n], device))
}

/// Every parameter's gradient on the host. A parameter the backward pass did not reach gets
/// zeros (torch hands Adam a zero gradient for it) unless it is named in `without_grad`, the
/// parameters the official graph never contains (Adam skips those).
pub fn collect_grads(params: NamedParams<'_>, grads: &Gradients, without_grad: &[String]) -> Result<Grads, DeviceError> {
    let mut out = BTreeMap::new();
    for (name, p) in params {
        if without_grad.iter().any(|n| *n == name) {
            continue;
        }
        let g = match p.grad_flat(grads) {
            Some(g) => read_f32(g)?,
            None => vec![0.0; p.flat().dims()[0]],
        };
        out.insert(name, g);
    }
    Ok(out)
}

/// run_D's pre-processing: blur (stylegan3-r's fading σ), then the augment pipe.
struct DInput {
    blur: Option<Fir>,
    map: Option<Box<dyn ImageMap>>,
}

impl DInput {
    fn new(sigma: f64, x: &Tensor<4>, augment: &mut Augmenter<'_>) -> Self {
        let blur = blur_taps(sigma).map(|f| {
            let len = f.len();
            Fir::Separable(tensor(&f, [len], &x.device()))
        });
        let map = augment.as_mut().map(|draw| draw(x.dims()));
        Self { blur, map }
    }

    fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match &self.blur {
            Some(f) => filter2d(x, f, [0; 4], 1.0),
            None => x,
        };
        match &self.map {
            Some(m) => m.apply(x),
            None => x,
        }
    }

    fn apply_linear(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match &self.blur {
            Some(f) => filter2d(x, f, [0; 4], 1.0),
            None => x,
        };
        match &self.map {
            Some(m) => m.apply_linear(x),
            None => x,
        }
    }
}

/// `run_D(img, c, blur_sigma)`.
fn run_d(d: &Discriminator, img: Tensor<4>, c: Option<Tensor<2>>, sigma: f64, augment: &mut Augmenter<'_>) -> Tensor<2> {
    let pre = DInput::new(sigma, &img, augment);
    d.forward(pre.apply(img), c)
}

/// run_G's first half: mapping (updating `w_avg` when `update_emas`) and, for StyleGAN2, style
/// mixing with a second z from `rng` → `ws [N, num_ws, w_dim]`.
pub fn map_ws(g: &mut Generator, z: Tensor<2>, c: Option<Tensor<2>>, opts: &LossOptions, update_emas: bool, rng: &mut dyn LossRng) -> Result<Tensor<3>, TrainError> {
    let num_ws = g.config.num_ws();
    let w = g.mapping.forward_w(Some(z.clone()), c.clone(), None);
    if update_emas {
        let beta = g.config.mapping().w_avg_beta;
        g.mapping.update_w_avg(&w, beta)?;
    }
    let mut ws = g.mapping.broadcast_truncate(w, num_ws, 1.0, None);
    if opts.style_mixing_prob > 0.0 {
        let cutoff = rng.randint(1, num_ws as i64);
        let u = rng.rand();
        let cutoff = if (u as f64) < opts.style_mixing_prob { cutoff as usize } else { num_ws };
        let [n, z_dim] = z.dims();
        let z2 = tensor(&rng.randn(&[n, z_dim]), [n, z_dim], &z.device());
        // Evaluated even when mixing is off, as the official code does.
        let w2 = g.mapping.forward_w(Some(z2), c, None);
        if cutoff < num_ws {
            let ws2 = g.mapping.broadcast_truncate(w2, num_ws, 1.0, None);
            ws = Tensor::cat(vec![ws.narrow(1, 0, cutoff), ws2.narrow(1, cutoff, num_ws - cutoff)], 1);
        }
    }
    Ok(ws)
}

/// StyleGAN2's noise inputs for a batch of `n`: drawn from `rng` (training's 'random' mode) in
/// synthesis order.
fn draw_noise(s: &crate::model::sg2::SynthesisNetwork, n: usize, device: &Device, rng: &mut dyn LossRng) -> Vec<Tensor<4>> {
    s.noise_shapes(n).iter().map(|shape| tensor(&rng.randn(shape), *shape, device)).collect()
}

/// `run_G(z, c)`: [`map_ws`], then synthesis in training mode (StyleGAN3 updates each layer's
/// `magnitude_ema` when `update_emas`; StyleGAN2 draws its noise inputs from `rng`). Returns
/// `(img, ws)`.
pub fn run_g(g: &mut Generator, z: Tensor<2>, c: Option<Tensor<2>>, opts: &LossOptions, update_emas: bool, rng: &mut dyn LossRng) -> Result<(Tensor<4>, Tensor<3>), TrainError> {
    let ws = map_ws(g, z, c, opts, update_emas, rng)?;
    let beta = match &g.config {
        GeneratorConfig::StyleGan3(c) => c.magnitude_ema_beta,
        GeneratorConfig::StyleGan2(_) | GeneratorConfig::StyleGan1(_) => 0.0,
    };
    let img = match &mut g.synthesis {
        Synthesis::StyleGan3(s) if update_emas => s.forward_update_emas(ws.clone(), beta, KernelChoice::Auto)?,
        Synthesis::StyleGan3(s) => s.forward(ws.clone(), None, KernelChoice::Auto, None),
        Synthesis::StyleGan2(s) => {
            let noise = draw_noise(s, ws.dims()[0], &ws.device(), rng);
            s.forward_with_noise(ws.clone(), &noise, KernelChoice::Auto)
        }
        Synthesis::StyleGan1(_) => return Err(TrainError::Options("StyleGAN v1 networks are not trained here (render them, or fine-tune a StyleGAN2/StyleGAN3 network)".into())),
    };
    Ok((img, ws))
}

/// Greg, path-length regularisation (StyleGAN2): on the first `N / pl_batch_shrink` latents,
/// `g = ∂Σ(img·n)/∂ws` with `n ~ N(0,1)/√(HW)`, `len = √mean_ws(Σ g²)`,
/// `pl_mean ← lerp(pl_mean, mean(len), pl_decay)` (not detached), loss `(len − pl_mean)²·w`.
/// Its weight gradient is exact with first-order autodiff: with the host coefficients
/// `u_b = (∂L/∂len_b) / (len_b·num_ws) · g_b`, `∇θ L = ∇θ ⟨u, J_img(ws)ᵀn⟩ = ∇θ Σ (J_img(ws)·u)·n`,
/// a tangent pass through the synthesis network (`sg2::SynthesisNetwork::forward_tangent`) with
/// ws still attached to the mapping. `const_noise` uses the stored noise buffers instead of
/// drawn ones (the fixtures' definition). Returns the phase and the new `pl_mean` state.
#[allow(clippy::too_many_arguments)]
pub fn greg(
    g: &mut Generator,
    z: Tensor<2>,
    c: Option<Tensor<2>>,
    opts: &LossOptions,
    pl_mean: f32,
    gain: f64,
    rng: &mut dyn LossRng,
    const_noise: bool,
) -> Result<(PhaseOut, f32), TrainError> {
    let mut out = PhaseOut::default();
    let n = z.dims()[0];
    let b = (n / opts.pl_batch_shrink.max(1)).max(1);
    let z = z.narrow(0, 0, b);
    let c = c.map(|c| c.narrow(0, 0, b));
    let ws = map_ws(g, z, c, opts, false, rng)?;
    let device = ws.device();
    let Synthesis::StyleGan2(s) = &g.synthesis else {
        return Err(TrainError::Options("path-length regularisation is defined for StyleGAN2 generators only".into()));
    };
    let noise = if const_noise { s.const_noise(b) } else { draw_noise(s, b, &device, rng) };

    // Pass 1: g = ∂Σ(img·n)/∂ws at the detached ws.
    let wsd = ws.clone().detach().require_grad();
    let img = s.forward_with_noise(wsd.clone(), &noise, KernelChoice::Auto);
    let [_, ch, h, w] = img.dims();
    let scale = ((h * w) as f64).sqrt() as f32;
    let pl_noise: Vec<f32> = rng.randn(&[b, ch, h, w]).into_iter().map(|v| v / scale).collect();
    let pl_noise = tensor(&pl_noise, [b, ch, h, w], &device);
    let grads = (img.clone() * pl_noise.clone()).sum().backward();
    let [_, num_ws, w_dim] = ws.dims();
    let pl_grads = match wsd.grad(&grads) {
        Some(t) => read_f32(t)?,
        None => vec![0.0; b * num_ws * w_dim],
    };

    // The lengths, the moving mean and the host coefficients of the tangent.
    let lengths: Vec<f32> = pl_grads
        .chunks(num_ws * w_dim)
        .map(|gb| (gb.chunks(w_dim).map(|row| row.iter().map(|v| v * v).sum::<f32>()).sum::<f32>() / num_ws as f32).sqrt())
        .collect();
    let mean_len = lengths.iter().sum::<f32>() / b as f32;
    let new_mean = crate::model::layers::lerp(pl_mean, mean_len, opts.pl_decay as f32);
    let penalty: Vec<f32> = lengths.iter().map(|l| (l - new_mean) * (l - new_mean)).collect();
    let k = gain * opts.pl_weight / b as f64;
    let dev: Vec<f64> = lengths.iter().map(|&l| 2.0 * (l as f64 - new_mean as f64)).collect();
    let through_mean = dev.iter().sum::<f64>() * opts.pl_decay / b as f64;
    let mut u = vec![0f32; pl_grads.len()];
    for (bi, l) in lengths.iter().enumerate() {
        if *l > 0.0 {
            let coef = k * (dev[bi] - through_mean) / (*l as f64 * num_ws as f64);
            for (ui, gi) in u[bi * num_ws * w_dim..(bi + 1) * num_ws * w_dim].iter_mut().zip(&pl_grads[bi * num_ws * w_dim..]) {
                *ui = (coef * *gi as f64) as f32;
            }
        }
    }

    // Pass 2: ∇θ Σ (J_img(ws)·u)·n, ws attached to the mapping.
    let (_, img_t) = s.forward_tangent(ws.clone(), tensor(&u, [b, num_ws, w_dim], &device), &noise);
    let grads = (img_t * pl_noise.clone()).sum().backward();

    out.record("gen_img", &img)?;
    out.record("gen_ws", &ws)?;
    out.record("pl_noise", &pl_noise)?;
    out.values.insert("pl_grads".into(), pl_grads);
    out.values.insert("pl_lengths".into(), lengths);
    out.values.insert("pl_mean".into(), vec![new_mean]);
    out.values.insert("loss_Gpl".into(), penalty.iter().map(|p| p * opts.pl_weight as f32).collect());
    out.values.insert("pl_penalty".into(), penalty);
    out.grads = collect_grads(g.named_params(), &grads, &pl_without_grad(g))?;
    Ok((out, new_mean))
}

/// The generator parameters path length's graph never reaches: the ToRGB biases (the image's
/// Jacobian w.r.t. ws does not depend on them).
pub fn pl_without_grad(g: &Generator) -> Vec<String> {
    match &g.synthesis {
        Synthesis::StyleGan2(s) => s.blocks.iter().map(|b| format!("synthesis.{}.torgb.bias", b.spec.name)).collect(),
        Synthesis::StyleGan3(_) | Synthesis::StyleGan1(_) => Vec::new(),
    }
}

/// Gmain: `mean(softplus(−D(G(z))))·gain`, gradients for G's parameters.
#[allow(clippy::too_many_arguments)]
pub fn gmain(
    g: &mut Generator,
    d: &Discriminator,
    z: Tensor<2>,
    c: Option<Tensor<2>>,
    opts: &LossOptions,
    sigma: f64,
    gain: f64,
    augment: &mut Augmenter<'_>,
    rng: &mut dyn LossRng,
) -> Result<PhaseOut, TrainError> {
    let mut out = PhaseOut::default();
    let (img, ws) = run_g(g, z, c.clone(), opts, false, rng)?;
    let logits = run_d(d, img.clone(), c, sigma, augment);
    let loss = softplus(logits.clone().neg(), 1.0);
    let grads = loss.clone().mean().mul_scalar(gain).backward();
    out.record("gen_img", &img)?;
    out.record("gen_ws", &ws)?;
    out.record("gen_logits", &logits)?;
    out.record("loss_Gmain", &loss)?;
    out.grads = collect_grads(g.named_params(), &grads, &[])?;
    Ok(out)
}

/// Dmain: `mean(softplus(D(G(z))))·gain + mean(softplus(−D(x)))·gain` for D, with G run with
/// `update_emas` (its `w_avg` / `magnitude_ema` buffers move, in `g`).
#[allow(clippy::too_many_arguments)]
pub fn dmain(
    g: &mut Generator,
    d: &Discriminator,
    gen_z: Tensor<2>,
    gen_c: Option<Tensor<2>>,
    reals: Tensor<4>,
    real_c: Option<Tensor<2>>,
    opts: &LossOptions,
    sigma: f64,
    gain: f64,
    augment: &mut Augmenter<'_>,
    rng: &mut dyn LossRng,
) -> Result<PhaseOut, TrainError> {
    let mut out = PhaseOut::default();
    // G may run on its own (gradient-free) device: its inputs go there, its image comes back.
    let (g_device, d_device) = (g.device(), reals.device());
    let (img, ws) = run_g(g, on_device(gen_z, &g_device), gen_c.clone().map(|c| on_device(c, &g_device)), opts, true, rng)?;
    let img = on_device(img.detach(), &d_device);
    let gen_logits = run_d(d, img.clone(), gen_c, sigma, augment);
    let loss_gen = softplus(gen_logits.clone(), 1.0);
    let real_logits = run_d(d, reals, real_c, sigma, augment);
    let loss_real = softplus(real_logits.clone().neg(), 1.0);
    let total = loss_gen.clone().mean().mul_scalar(gain) + loss_real.clone().mean().mul_scalar(gain);
    let grads = total.backward();
    out.record("gen_img", &img)?;
    out.record("gen_ws", &ws)?;
    out.record("gen_logits", &gen_logits)?;
    out.record("loss_Dgen", &loss_gen)?;
    out.record("real_logits", &real_logits)?;
    out.record("loss_Dreal", &loss_real)?;
    out.grads = collect_grads(d.named_params(), &grads, &[])?;
    Ok(out)
}

/// The device G runs on in the discriminator's phases (Dmain), where no gradient flows through
/// it: on the CPU the plain flex device (the fast inference kernels: Winograd convolutions,
/// fused `filtered_lrelu`), elsewhere the training device.
pub fn g_device_without_grad(device: &Device) -> Device {
    if device.is_autodiff() && *device == Device::flex() {
        Device::flex()
    } else {
        device.clone()
    }
}

/// `t` on `device` (a host copy when it lives elsewhere; burn's device equality ignores autodiff,
/// this does not).
pub fn on_device<const D: usize>(t: Tensor<D>, device: &Device) -> Tensor<D> {
    let here = t.device();
    if here == *device && here.is_autodiff() == device.is_autodiff() {
        t
    } else {
        Tensor::from_data(t.into_data(), device)
    }
}

/// The discriminator parameters R1's graph never reaches: the last bias (it shifts the logits
/// but not their gradient w.r.t. the image).
pub fn r1_without_grad() -> Vec<String> {
    vec!["b4.out.bias".to_string()]
}

/// Dreg: R1 = `γ/2·Σ(∂ΣD(x)/∂x)²` per sample, `mean·gain`, w.r.t. the unblurred, unaugmented
/// reals; exact through the tangent pass (module docs).
#[allow(clippy::too_many_arguments)]
pub fn dreg(
    d: &Discriminator,
    reals: Tensor<4>,
    real_c: Option<Tensor<2>>,
    gamma: f64,
    sigma: f64,
    gain: f64,
    augment: &mut Augmenter<'_>,
) -> Result<PhaseOut, TrainError> {
    let mut out = PhaseOut::default();
    let [n, _, _, _] = reals.dims();
    let device = reals.device();
    let pre = DInput::new(sigma, &reals, augment);

    // v = ∂ΣD(pre(x))/∂x, held fixed.
    let x = reals.clone().detach().require_grad();
    let real_logits = d.forward(pre.apply(x.clone()), real_c.clone());
    let grads = real_logits.clone().sum().backward();
    let v_host = match x.grad(&grads) {
        Some(g) => read_f32(g)?,
        None => vec![0.0; reals.dims().iter().product()],
    };
    let v = tensor(&v_host, reals.dims(), &device);

    // ∇θ mean(γ/2·‖v‖²)·gain = ∇θ (gain·γ/n)·Σ J_D·v.
    let (_, tangent) = d.forward_tangent(pre.apply(reals.detach()), pre.apply_linear(v.clone()), real_c);
    let grads = tangent.sum().mul_scalar(gain * gamma / n as f64).backward();

    let penalty = v.clone().square().sum_dim(1).sum_dim(2).sum_dim(3).reshape([n]);
    out.record("real_logits", &real_logits)?;
    out.record("r1_grads", &v)?;
    out.record("r1_penalty", &penalty)?;
    out.record("loss_Dr1", &penalty.mul_scalar(gamma / 2.0))?;
    out.grads = collect_grads(d.named_params(), &grads, &r1_without_grad())?;
    Ok(out)
}

/// A [`LossRng`] that replays recorded draws in order (the fixtures' `draw{k}`); `None` once
/// they run out or a shape differs, which the caller treats as a failed replay.
pub struct ReplayRng {
    draws: std::collections::VecDeque<Vec<f32>>,
    pub mismatch: Option<String>,
}

impl ReplayRng {
    pub fn new(draws: Vec<Vec<f32>>) -> Self {
        Self { draws: draws.into(), mismatch: None }
    }

    pub fn remaining(&self) -> usize {
        self.draws.len()
    }

    fn next(&mut self, len: usize, what: &str) -> Vec<f32> {
        match self.draws.pop_front() {
            Some(v) if v.len() == len => v,
            Some(v) => {
                self.mismatch.get_or_insert(format!("{what}: recorded draw has {} values, wanted {len}", v.len()));
                vec![0.0; len]
            }
            None => {
                self.mismatch.get_or_insert(format!("{what}: no recorded draw left"));
                vec![0.0; len]
            }
        }
    }
}

impl LossRng for ReplayRng {
    fn randint(&mut self, _low: i64, _high: i64) -> i64 {
        self.next(1, "randint")[0] as i64
    }
    fn rand(&mut self) -> f32 {
        self.next(1, "rand")[0]
    }
    fn randn(&mut self, shape: &[usize]) -> Vec<f32> {
        self.next(shape.iter().product(), "randn")
    }
}

/// The training run's own [`LossRng`]: numpy's MT19937 (bit-exact `RandomState`), seeded per
/// iteration so a resumed run draws what an uninterrupted one would.
pub struct NumpyRng(pub crate::rng::RandomState);

impl NumpyRng {
    /// `n` standard normal values as f32.
    pub fn randn_f32(&mut self, n: usize) -> Vec<f32> {
        self.0.randn(n).into_iter().map(|v| v as f32).collect()
    }
}

impl LossRng for NumpyRng {
    fn randint(&mut self, low: i64, high: i64) -> i64 {
        low + self.0.randint((high - low).max(1) as u32) as i64
    }
    fn rand(&mut self) -> f32 {
        self.0.next_f64() as f32
    }
    fn randn(&mut self, shape: &[usize]) -> Vec<f32> {
        let n = shape.iter().product();
        self.0.randn(n).into_iter().map(|v| v as f32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_fades_and_has_the_official_size() {
        let opts = LossOptions {
            r1_gamma: 1.0,
            style_mixing_prob: 0.0,
            pl_weight: 0.0,
            pl_batch_shrink: 2,
            pl_decay: 0.01,
            pl_no_weight_grad: false,
            blur_init_sigma: 10.0,
            blur_fade_kimg: 4.0 * 200.0 / 32.0,
        };
        assert_eq!(opts.blur_sigma(0), 10.0);
        assert!((opts.blur_sigma(4) - 9.9984).abs() < 1e-9);
        assert_eq!(blur_taps(10.0).map(|f| f.len()), Some(61));
        assert_eq!(blur_taps(9.9984).map(|f| f.len()), Some(59));
        assert!(blur_taps(0.3).is_none());
        let f = blur_taps(2.0).unwrap_or_default();
        assert!((f.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
