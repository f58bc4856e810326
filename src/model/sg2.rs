//! The StyleGAN2 generator (networks_stylegan2.py, `--cfg stylegan2`): skip architecture,
//! modulated convolutions with up-sampling through upfirdn2d, per-layer noise.
//!
//! "Analyzing and Improving the Image Quality of StyleGAN", Karras et al. 2020. Names follow the
//! official state_dict: `synthesis.b{res}.{const,conv0,conv1,torgb}.*`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor};

use crate::error::LoadError;
use crate::kernels::cpu::Taps;
use crate::kernels::reference::Activation;
use crate::kernels::{bias_act, bias_act_tangent, conv2d_resample, scale_channels, scaled_conv2d_cpu, upsample2d, use_fast_cpu, HostValues, KernelChoice, ResampleFilter, WinogradCache};
use crate::model::config::{Sg2BlockSpec, Sg2Config};
use crate::model::layers::{demodulation, rec2, rec4, weight_energy, FullyConnectedLayer, NamedParams, ParamRef, Trace};
use crate::weights::{Init, WeightSource};
use crate::model::layers::load_resample_filter;

/// How StyleGAN2's noise inputs are fed (`--noise-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
pub enum NoiseMode {
    /// The stored `noise_const` buffers (deterministic).
    #[default]
    Const,
    /// Fresh Gaussian noise every call.
    Random,
    /// No noise.
    None,
}

/// Modulated 3x3 (or 1x1) convolution + noise + bias/lrelu.
#[derive(Module, Debug)]
pub struct SynthesisLayer {
    pub affine: FullyConnectedLayer,
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    pub noise_const: Tensor<2>,
    pub noise_strength: Param<Tensor<1>>,
    pub resample_filter: Tensor<2>,
    /// Host taps of `resample_filter` for the kernels.
    #[module(skip)]
    pub resample_host: Taps,
    #[module(skip)]
    pub up: usize,
    #[module(skip)]
    pub resolution: usize,
    #[module(skip)]
    pub conv_clamp: Option<f64>,
    /// The weights' Winograd transform for the CPU inference kernels, kept between images.
    #[module(skip)]
    pub winograd: WinogradCache,
}

impl SynthesisLayer {
    #[allow(clippy::too_many_arguments)]
    fn load(src: &mut dyn WeightSource, prefix: &str, in_ch: usize, out_ch: usize, w_dim: usize, res: usize, up: usize, cfg: &Sg2Config, device: &Device) -> Result<Self, LoadError> {
        let (resample_filter, resample_host) = load_resample_filter(src, &format!("{prefix}.resample_filter"), device)?;
        Ok(Self {
            affine: FullyConnectedLayer::load(src, &format!("{prefix}.affine"), w_dim, in_ch, false, 1.0, Init::Randn(1.0), Init::Const(1.0), device)?,
            weight: src.param([out_ch, in_ch, 3, 3], &format!("{prefix}.weight"), Init::Randn(1.0), device)?,
            bias: src.param([out_ch], &format!("{prefix}.bias"), Init::Zeros, device)?,
            noise_const: src.tensor([res, res], &format!("{prefix}.noise_const"), Init::Randn(1.0), device)?,
            noise_strength: src.param([1], &format!("{prefix}.noise_strength"), Init::Zeros, device)?,
            resample_filter,
            resample_host,
            up,
            resolution: res,
            conv_clamp: cfg.conv_clamp,
            winograd: WinogradCache::default(),
        })
    }

    fn named_params<'a>(&'a self, prefix: &str, out: &mut NamedParams<'a>) {
        out.push((format!("{prefix}.weight"), ParamRef::P4(&self.weight)));
        out.push((format!("{prefix}.noise_strength"), ParamRef::P1(&self.noise_strength)));
        out.push((format!("{prefix}.bias"), ParamRef::P1(&self.bias)));
        self.affine.named_params(&format!("{prefix}.affine"), out);
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(&self, x: Tensor<4>, w: Tensor<2>, noise: NoiseMode, noise_gain: f64, given: Option<&Tensor<4>>, kernels: KernelChoice, trace: &mut Option<&mut Trace>, name: &str) -> Tensor<4> {
        let styles = self.affine.forward(w);
        rec2(trace, || format!("{name}.affine"), &styles);
        let n = x.dims()[0];
        let f = ResampleFilter::stored(&self.resample_filter, &self.resample_host);
        let x = modulated_conv2d(x, self.weight.val(), styles, true, self.up, 1, Some(&f), kernels, &self.winograd);
        let r = self.resolution;
        let strength = || {
            let s = self.noise_strength.val();
            if noise_gain == 1.0 { s } else { s.mul_scalar(noise_gain) }
        };
        let x = match (given, noise) {
            // Training's 'random' noise, drawn by the caller: `draw · noise_strength`.
            (Some(z), _) => x + z.clone() * strength().reshape([1, 1, 1, 1]),
            (None, NoiseMode::Const) => x + (self.noise_const.clone() * strength().reshape([1, 1])).reshape([1, 1, r, r]),
            (None, NoiseMode::Random) => {
                let z = Tensor::<4>::random([n, 1, r, r], Distribution::Normal(0.0, 1.0), &x.device());
                x + z * strength().reshape([1, 1, 1, 1])
            }
            (None, NoiseMode::None) => x,
        };
        let x = bias_act(x, Some(self.bias.val()), Activation::LeakyRelu(0.2), std::f64::consts::SQRT_2, self.conv_clamp, kernels);
        rec4(trace, || name.to_string(), &x);
        x
    }
}

impl SynthesisLayer {
    /// `(y, ẏ)`: the training forward (non-fused modulated convolution, the caller's noise) and
    /// its derivative along the input tangent `xt` (`None`: zero) and the w tangent `wt`.
    /// Demodulation's derivative is `ḋ = −d³·Σᵢ (Σₖ W²)ₒᵢ sᵢ ṡᵢ`.
    fn forward_tangent(&self, x: Tensor<4>, xt: Option<Tensor<4>>, w: Tensor<2>, wt: Tensor<2>, noise: &Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let (s, st) = self.affine.forward_tangent(w, wt);
        let n = x.dims()[0];
        let weight = self.weight.val();
        let [out_ch, in_ch, _, _] = weight.dims();
        let wsq = weight_energy(weight.clone());
        let d = demodulation(s.clone(), wsq.clone()); // [n, out]
        let dt = (s.clone() * st.clone()).matmul(wsq.transpose()) * d.clone().powi_scalar(3).neg();
        let s4 = s.reshape([n, in_ch, 1, 1]);
        let xs = x.clone() * s4.clone();
        let xst = x * st.reshape([n, in_ch, 1, 1]);
        let xst = match xt {
            Some(xt) => xst + xt * s4,
            None => xst,
        };
        let f = ResampleFilter::stored(&self.resample_filter, &self.resample_host);
        let both = conv2d_resample(Tensor::cat(vec![xs, xst], 0), weight, Some(&f), self.up, 1, 1, 1, KernelChoice::Auto);
        let (c, ct) = (both.clone().narrow(0, 0, n), both.narrow(0, n, n));
        let d4 = d.reshape([n, out_ch, 1, 1]);
        let y = c.clone() * d4.clone() + noise.clone() * self.noise_strength.val().reshape([1, 1, 1, 1]);
        let yt = ct * d4 + c * dt.reshape([n, out_ch, 1, 1]);
        bias_act_tangent(y, yt, Some(self.bias.val()), Activation::LeakyRelu(0.2), std::f64::consts::SQRT_2, self.conv_clamp)
    }
}

impl ToRGBLayer {
    /// `(y, ẏ)` for the input tangent `xt` and the w tangent `wt`.
    fn forward_tangent(&self, x: Tensor<4>, xt: Tensor<4>, w: Tensor<2>, wt: Tensor<2>) -> (Tensor<4>, Tensor<4>) {
        let [_, in_ch, _, _] = self.weight.dims();
        let n = x.dims()[0];
        let (s, st) = self.affine.forward_tangent(w, wt);
        let g = (in_ch as f64).sqrt().recip();
        let (s, st) = (s.mul_scalar(g).reshape([n, in_ch, 1, 1]), st.mul_scalar(g).reshape([n, in_ch, 1, 1]));
        let xs = x.clone() * s.clone();
        let xst = xt * s + x * st;
        let both = conv2d_resample(Tensor::cat(vec![xs, xst], 0), self.weight.val(), None, 1, 1, 0, 1, KernelChoice::Auto);
        let (y, yt) = (both.clone().narrow(0, 0, n), both.narrow(0, n, n));
        bias_act_tangent(y, yt, Some(self.bias.val()), Activation::Linear, 1.0, self.conv_clamp)
    }
}

/// 1x1 modulated convolution without demodulation.
#[derive(Module, Debug)]
pub struct ToRGBLayer {
    pub affine: FullyConnectedLayer,
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub conv_clamp: Option<f64>,
    #[module(skip)]
    pub winograd: WinogradCache,
}

impl ToRGBLayer {
    fn named_params<'a>(&'a self, prefix: &str, out: &mut NamedParams<'a>) {
        out.push((format!("{prefix}.weight"), ParamRef::P4(&self.weight)));
        out.push((format!("{prefix}.bias"), ParamRef::P1(&self.bias)));
        self.affine.named_params(&format!("{prefix}.affine"), out);
    }

    fn forward(&self, x: Tensor<4>, w: Tensor<2>, kernels: KernelChoice, trace: &mut Option<&mut Trace>, name: &str) -> Tensor<4> {
        let in_ch = self.weight.dims()[1];
        let styles = self.affine.forward(w);
        rec2(trace, || format!("{name}.affine"), &styles);
        let styles = styles.div_scalar((in_ch as f64).sqrt());
        let x = modulated_conv2d(x, self.weight.val(), styles, false, 1, 0, None, kernels, &self.winograd);
        let x = bias_act(x, Some(self.bias.val()), Activation::Linear, 1.0, self.conv_clamp, kernels);
        rec4(trace, || name.to_string(), &x);
        x
    }
}

/// StyleGAN2's modulated convolution through `conv2d_resample`: grouped over the batch for
/// inference, the non-fused form for training (as the official code switches). On the CPU
/// kernels inference takes the non-fused form's sums too (the same convolution: the styles scale
/// the input channels, the demodulation the output channels), so the batch shares one stored
/// weight and its Winograd transform (kept in `cache`) instead of a modulated copy per sample.
#[allow(clippy::too_many_arguments)]
pub fn modulated_conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    styles: Tensor<2>,
    demodulate: bool,
    up: usize,
    padding: usize,
    f: Option<&ResampleFilter>,
    kernels: KernelChoice,
    cache: &WinogradCache,
) -> Tensor<4> {
    let [n, in_ch, h, w_] = x.dims();
    let [out_ch, _, kh, kw] = weight.dims();
    let fast_cpu = use_fast_cpu(&x.device(), kernels) && kh == kw;
    if fast_cpu && up == 1 {
        let out_scale = if demodulate { HostValues::new(demodulation(styles.clone(), weight_energy(weight.clone()))).values().to_vec() } else { vec![1.0; n * out_ch] };
        let in_scale = HostValues::new(styles).values().to_vec();
        return scaled_conv2d_cpu(x, &HostValues::new(weight), out_ch, kh, padding, &in_scale, &out_scale, cache);
    }
    if x.device().is_autodiff() || fast_cpu {
        // Training: the official non-fused form (`fused_modconv = not training`): the styles
        // scale the activations, one convolution with the shared weights (the CPU kernel with
        // its backward), then the demodulation coefficients scale the output.
        let xs = scale_channels(x, styles.clone());
        let y = conv2d_resample(xs, weight.clone(), f, up, 1, padding, 1, kernels);
        if !demodulate {
            return y;
        }
        let d = demodulation(styles, weight_energy(weight));
        return scale_channels(y, d);
    }
    let wm: Tensor<5> = weight.unsqueeze_dim::<5>(0) * styles.reshape([n, 1, in_ch, 1, 1]);
    let wm = if demodulate {
        let d = wm.clone().square().sum_dim(2).sum_dim(3).sum_dim(4).add_scalar(1e-8).sqrt().recip();
        wm * d
    } else {
        wm
    };
    let x = x.reshape([1, n * in_ch, h, w_]);
    let y = conv2d_resample(x, wm.reshape([n * out_ch, in_ch, kh, kw]), f, up, 1, padding, n, kernels);
    let [_, _, oh, ow] = y.dims();
    y.reshape([n, out_ch, oh, ow])
}

/// One block `b{res}`: (const |) conv0 (up) → conv1 → torgb, skip-connected RGB.
#[derive(Module, Debug)]
pub struct SynthesisBlock {
    pub constant: Option<Param<Tensor<3>>>,
    pub conv0: Option<SynthesisLayer>,
    pub conv1: SynthesisLayer,
    pub torgb: ToRGBLayer,
    pub resample_filter: Tensor<2>,
    #[module(skip)]
    pub resample_host: Taps,
    #[module(skip)]
    pub spec: Sg2BlockSpec,
}

impl SynthesisBlock {
    fn load(src: &mut dyn WeightSource, spec: &Sg2BlockSpec, cfg: &Sg2Config, device: &Device) -> Result<Self, LoadError> {
        let p = format!("synthesis.{}", spec.name);
        let (c, r, w_dim) = (spec.out_channels, spec.resolution, cfg.w_dim);
        let constant = if spec.in_channels == 0 { Some(src.param([c, r, r], &format!("{p}.const"), Init::Randn(1.0), device)?) } else { None };
        let conv0 = if spec.in_channels > 0 {
            Some(SynthesisLayer::load(src, &format!("{p}.conv0"), spec.in_channels, c, w_dim, r, 2, cfg, device)?)
        } else {
            None
        };
        let conv1 = SynthesisLayer::load(src, &format!("{p}.conv1"), c, c, w_dim, r, 1, cfg, device)?;
        let torgb = ToRGBLayer {
            affine: FullyConnectedLayer::load(src, &format!("{p}.torgb.affine"), w_dim, c, false, 1.0, Init::Randn(1.0), Init::Const(1.0), device)?,
            weight: src.param([cfg.img_channels, c, 1, 1], &format!("{p}.torgb.weight"), Init::Randn(1.0), device)?,
            bias: src.param([cfg.img_channels], &format!("{p}.torgb.bias"), Init::Zeros, device)?,
            conv_clamp: cfg.conv_clamp,
            winograd: WinogradCache::default(),
        };
        let (resample_filter, resample_host) = load_resample_filter(src, &format!("{p}.resample_filter"), device)?;
        Ok(Self { constant, conv0, conv1, torgb, resample_filter, resample_host, spec: spec.clone() })
    }

    fn named_params<'a>(&'a self, out: &mut NamedParams<'a>) {
        let p = format!("synthesis.{}", self.spec.name);
        if let Some(c) = &self.constant {
            out.push((format!("{p}.const"), ParamRef::P3(c)));
        }
        if let Some(c) = &self.conv0 {
            c.named_params(&format!("{p}.conv0"), out);
        }
        self.conv1.named_params(&format!("{p}.conv1"), out);
        self.torgb.named_params(&format!("{p}.torgb"), out);
    }

    fn forward(
        &self,
        x: Option<Tensor<4>>,
        img: Option<Tensor<4>>,
        ws: &Tensor<3>,
        noise: NoiseMode,
        noise_gain: f64,
        given: Option<&[Tensor<4>]>,
        kernels: KernelChoice,
        trace: &mut Option<&mut Trace>,
    ) -> (Tensor<4>, Tensor<4>) {
        let [n, _, w_dim] = ws.dims();
        let w_at = |i: usize| ws.clone().narrow(1, self.spec.w_index + i, 1).reshape([n, w_dim]);
        let name = &self.spec.name;
        let mut idx = 0;
        let mut x = match (&self.constant, x) {
            (Some(c), _) => {
                let [ch, r, _] = c.dims();
                c.val().unsqueeze_dim::<4>(0).repeat_dim(0, n).reshape([n, ch, r, r])
            }
            (None, Some(x)) => x,
            (None, None) => unreachable_block_input(n, &self.spec, &ws.device()),
        };
        let mut given = given.map(|g| g.iter());
        let mut next_noise = || given.as_mut().and_then(|g| g.next());
        if let Some(conv0) = &self.conv0 {
            x = conv0.forward(x, w_at(idx), noise, noise_gain, next_noise(), kernels, trace, &format!("{name}.conv0"));
            idx += 1;
        }
        x = self.conv1.forward(x, w_at(idx), noise, noise_gain, next_noise(), kernels, trace, &format!("{name}.conv1"));
        idx += 1;
        let y = self.torgb.forward(x.clone(), w_at(idx), kernels, trace, &format!("{name}.torgb"));
        let img = match img {
            Some(img) => upsample2d(img, &ResampleFilter::stored(&self.resample_filter, &self.resample_host), 2, kernels) + y,
            None => y,
        };
        rec4(trace, || format!("{name}:0"), &x);
        rec4(trace, || format!("{name}:1"), &img);
        (x, img)
    }
}

impl SynthesisBlock {
    /// `((x, ẋ), (img, img_t))` of the block along the ws tangent `wst`, with the given noise.
    #[allow(clippy::type_complexity)]
    fn forward_tangent(
        &self,
        x: Option<(Tensor<4>, Tensor<4>)>,
        img: Option<(Tensor<4>, Tensor<4>)>,
        ws: &Tensor<3>,
        wst: &Tensor<3>,
        noise: &[Tensor<4>],
    ) -> ((Tensor<4>, Tensor<4>), (Tensor<4>, Tensor<4>)) {
        let [n, _, w_dim] = ws.dims();
        let at = |t: &Tensor<3>, i: usize| t.clone().narrow(1, self.spec.w_index + i, 1).reshape([n, w_dim]);
        let mut idx = 0;
        let mut noise = noise.iter();
        let zero_noise = |r: usize| Tensor::<4>::zeros([n, 1, r, r], &ws.device());
        let (mut x, mut xt) = match (&self.constant, x) {
            (Some(c), _) => {
                let [ch, r, _] = c.dims();
                (c.val().unsqueeze_dim::<4>(0).repeat_dim(0, n).reshape([n, ch, r, r]), None)
            }
            (None, Some((x, xt))) => (x, Some(xt)),
            (None, None) => (unreachable_block_input(n, &self.spec, &ws.device()), None),
        };
        if let Some(conv0) = &self.conv0 {
            let z = noise.next().cloned().unwrap_or_else(|| zero_noise(conv0.resolution));
            let (y, yt) = conv0.forward_tangent(x, xt, at(ws, idx), at(wst, idx), &z);
            (x, xt) = (y, Some(yt));
            idx += 1;
        }
        let z = noise.next().cloned().unwrap_or_else(|| zero_noise(self.conv1.resolution));
        let (x, xt) = self.conv1.forward_tangent(x, xt, at(ws, idx), at(wst, idx), &z);
        idx += 1;
        let (y, yt) = self.torgb.forward_tangent(x.clone(), xt.clone(), at(ws, idx), at(wst, idx));
        let img = match img {
            Some((img, img_t)) => {
                let f = ResampleFilter::stored(&self.resample_filter, &self.resample_host);
                let up = |t| upsample2d(t, &f, 2, KernelChoice::Auto);
                (up(img) + y, up(img_t) + yt)
            }
            None => (y, yt),
        };
        ((x, xt), img)
    }
}

/// A block after b4 always receives the previous block's features; this only guards the type.
fn unreachable_block_input(n: usize, spec: &Sg2BlockSpec, device: &Device) -> Tensor<4> {
    let r = spec.resolution / 2;
    Tensor::zeros([n, spec.in_channels, r, r], device)
}

/// SynthesisNetwork: blocks b4 … b{res}.
#[derive(Module, Debug)]
pub struct SynthesisNetwork {
    pub blocks: Vec<SynthesisBlock>,
}

impl SynthesisNetwork {
    pub fn load(src: &mut dyn WeightSource, cfg: &Sg2Config, device: &Device) -> Result<Self, LoadError> {
        let blocks = cfg.blocks().iter().map(|b| SynthesisBlock::load(src, b, cfg, device)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { blocks })
    }

    pub fn named_params<'a>(&'a self, out: &mut NamedParams<'a>) {
        for b in &self.blocks {
            b.named_params(out);
        }
    }

    pub fn forward(&self, ws: Tensor<3>, noise: NoiseMode, noise_gain: f64, kernels: KernelChoice, trace: Option<&mut Trace>) -> Tensor<4> {
        self.forward_inner(ws, noise, noise_gain, None, kernels, trace)
    }

    /// The shapes of the noise inputs a batch of `n` takes, in synthesis order (b4.conv1,
    /// b8.conv0, b8.conv1, ...; ToRGB has none).
    pub fn noise_shapes(&self, n: usize) -> Vec<[usize; 4]> {
        self.blocks
            .iter()
            .flat_map(|b| {
                let r = b.conv1.resolution;
                let count = if b.conv0.is_some() { 2 } else { 1 };
                std::iter::repeat_n([n, 1, r, r], count)
            })
            .collect()
    }

    /// The stored `noise_const` buffers as noise inputs for a batch of `n` (noise mode const, in
    /// [`Self::noise_shapes`] order).
    pub fn const_noise(&self, n: usize) -> Vec<Tensor<4>> {
        self.blocks
            .iter()
            .flat_map(|b| b.conv0.iter().chain(std::iter::once(&b.conv1)))
            .map(|l| {
                let r = l.resolution;
                l.noise_const.clone().reshape([1, 1, r, r]).repeat_dim(0, n)
            })
            .collect()
    }

    /// The training forward: 'random' noise mode with the caller's draws (`noise_shapes`
    /// order), each scaled by its layer's `noise_strength`.
    pub fn forward_with_noise(&self, ws: Tensor<3>, noise: &[Tensor<4>], kernels: KernelChoice) -> Tensor<4> {
        self.forward_inner(ws, NoiseMode::Random, 1.0, Some(noise), kernels, None)
    }

    /// `(img, J_img(ws)·wst)`: the training forward with the caller's noise and its derivative
    /// along the ws tangent `wst`, both as differentiable tensors (path-length regularisation's
    /// first-order form, see `train::loss::greg`).
    pub fn forward_tangent(&self, ws: Tensor<3>, wst: Tensor<3>, noise: &[Tensor<4>]) -> (Tensor<4>, Tensor<4>) {
        let mut x = None;
        let mut img = None;
        let mut used = 0;
        for block in &self.blocks {
            let count = if block.conv0.is_some() { 2 } else { 1 };
            let block_noise = &noise[used.min(noise.len())..(used + count).min(noise.len())];
            used += count;
            let (nx, nimg) = block.forward_tangent(x, img, &ws, &wst, block_noise);
            x = Some(nx);
            img = Some(nimg);
        }
        img.unwrap_or_else(|| (Tensor::zeros([1, 1, 1, 1], &ws.device()), Tensor::zeros([1, 1, 1, 1], &ws.device())))
    }

    fn forward_inner(&self, ws: Tensor<3>, noise: NoiseMode, noise_gain: f64, given: Option<&[Tensor<4>]>, kernels: KernelChoice, mut trace: Option<&mut Trace>) -> Tensor<4> {
        let mut x = None;
        let mut img = None;
        let mut used = 0;
        for block in &self.blocks {
            let count = if block.conv0.is_some() { 2 } else { 1 };
            let block_noise = given.map(|g| &g[used.min(g.len())..(used + count).min(g.len())]);
            used += count;
            let (nx, nimg) = block.forward(x, img, &ws, noise, noise_gain, block_noise, kernels, &mut trace);
            x = Some(nx);
            img = Some(nimg);
        }
        let img = img.unwrap_or_else(|| Tensor::zeros([1, 1, 1, 1], &ws.device()));
        rec4(&mut trace, || "output".into(), &img);
        img
    }
}
