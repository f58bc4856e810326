//! Building blocks shared by both generator families and the discriminator:
//! `FullyConnectedLayer`, `MappingNetwork`, and the `Trace` that records intermediate outputs.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use crate::error::LoadError;
use crate::kernels::cpu::Taps;
use crate::kernels::reference::{default_gain, Activation};
use crate::kernels::{bias_act, bias_act_tangent, KernelChoice, ResampleFilter};
use crate::model::config::MappingConfig;
use crate::weights::{Init, WeightSource};

/// Records named intermediate outputs of a forward pass (the visualizer's layer list, and the
/// fixtures' `synth/...` keys). 2-D outputs are stored as `[N, C, 1, 1]`.
#[derive(Default)]
pub struct Trace {
    pub entries: Vec<(String, Tensor<4>)>,
}

impl Trace {
    pub fn record(&mut self, name: impl Into<String>, t: &Tensor<4>) {
        self.entries.push((name.into(), t.clone()));
    }

    pub fn record2(&mut self, name: impl Into<String>, t: &Tensor<2>) {
        let [n, c] = t.dims();
        self.entries.push((name.into(), t.clone().reshape([n, c, 1, 1])));
    }

    pub fn get(&self, name: &str) -> Option<&Tensor<4>> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// Records into an optional trace.
pub(crate) fn rec4(trace: &mut Option<&mut Trace>, name: impl FnOnce() -> String, t: &Tensor<4>) {
    if let Some(tr) = trace.as_deref_mut() {
        tr.record(name(), t);
    }
}

pub(crate) fn rec2(trace: &mut Option<&mut Trace>, name: impl FnOnce() -> String, t: &Tensor<2>) {
    if let Some(tr) = trace.as_deref_mut() {
        tr.record2(name(), t);
    }
}

/// A parameter under its official state_dict name (for gradients, optimisers and saving).
#[derive(Clone, Copy)]
pub enum ParamRef<'a> {
    P1(&'a Param<Tensor<1>>),
    P2(&'a Param<Tensor<2>>),
    P3(&'a Param<Tensor<3>>),
    P4(&'a Param<Tensor<4>>),
}

impl ParamRef<'_> {
    /// The parameter's value, flattened.
    pub fn flat(&self) -> Tensor<1> {
        match self {
            Self::P1(p) => p.val(),
            Self::P2(p) => p.val().flatten(0, 1),
            Self::P3(p) => p.val().flatten(0, 2),
            Self::P4(p) => p.val().flatten(0, 3),
        }
    }

    /// Its gradient in `grads`, flattened (`None` when it received none).
    pub fn grad_flat(&self, grads: &burn::tensor::Gradients) -> Option<Tensor<1>> {
        match self {
            Self::P1(p) => p.val().grad(grads),
            Self::P2(p) => p.val().grad(grads).map(|g| g.flatten(0, 1)),
            Self::P3(p) => p.val().grad(grads).map(|g| g.flatten(0, 2)),
            Self::P4(p) => p.val().grad(grads).map(|g| g.flatten(0, 3)),
        }
    }
}

/// Collects `(official name, parameter)` pairs.
pub type NamedParams<'a> = Vec<(String, ParamRef<'a>)>;

/// `torch.lerp(start, end, weight)` for f32 (its two formulas, chosen by |weight| < 0.5), the
/// update of every moving average of the official code.
#[inline]
pub fn lerp(start: f32, end: f32, weight: f32) -> f32 {
    if weight.abs() < 0.5 {
        start + weight * (end - start)
    } else {
        end - (end - start) * (1.0 - weight)
    }
}

/// `outer([1,3,3,1]) / 64`: the 2-D resample filter of StyleGAN2's layers and the discriminator.
pub fn resample_filter_init() -> Init {
    let k = [1.0f32, 3.0, 3.0, 1.0];
    Init::Values(k.iter().flat_map(|a| k.iter().map(move |b| a * b / 64.0)).collect())
}

/// Loads a 4x4 `resample_filter` buffer: the device tensor and its host taps (for the kernels).
pub fn load_resample_filter(src: &mut dyn WeightSource, key: &str, device: &Device) -> Result<(Tensor<2>, Taps), LoadError> {
    let host = src.host(key, &[4, 4], &resample_filter_init())?;
    let f = ResampleFilter::new(host.data, 4, device);
    Ok((f.tensor(), f.host))
}

/// `Σ_k W[o, i, k]²` of a convolution weight `[out, in, kh, kw]`, as `[out, in]`: what the
/// non-fused modulated convolution demodulates with.
pub fn weight_energy(weight: Tensor<4>) -> Tensor<2> {
    let [out_ch, in_ch, _, _] = weight.dims();
    weight.square().sum_dim(2).sum_dim(3).reshape([out_ch, in_ch])
}

/// The demodulation coefficients `d[n, o] = rsqrt(Σ_i s[n, i]² · energy[o, i] + 1e-8)` of the
/// styles `s` `[n, in]` and a [`weight_energy`]: the official `dcoefs` of the modulated weights.
pub fn demodulation(styles: Tensor<2>, energy: Tensor<2>) -> Tensor<2> {
    styles.square().matmul(energy.transpose()).add_scalar(1e-8).sqrt().recip()
}

/// `x · rsqrt(mean(x², dim 1) + 1e-8)` per sample.
pub fn normalize_2nd_moment(x: Tensor<2>) -> Tensor<2> {
    let ms = x.clone().square().mean_dim(1).add_scalar(1e-8);
    x * ms.sqrt().recip()
}

/// FullyConnectedLayer: `y = act(x · (W·lr/√in)ᵀ + b·lr)`; identical maths in both official modules.
#[derive(Module, Debug)]
pub struct FullyConnectedLayer {
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
    #[module(skip)]
    pub lr_multiplier: f64,
    #[module(skip)]
    pub lrelu: bool,
}

impl FullyConnectedLayer {
    /// Loads `{prefix}.weight [out, in]` and `{prefix}.bias [out]`. The inits (used only for
    /// randomly initialised presets) are the *effective* values; stored values are divided by
    /// the lr multiplier as the official constructors do.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        src: &mut dyn WeightSource,
        prefix: &str,
        in_features: usize,
        out_features: usize,
        lrelu: bool,
        lr_multiplier: f64,
        weight_init: Init,
        bias_init: Init,
        device: &Device,
    ) -> Result<Self, LoadError> {
        let weight = src.param([out_features, in_features], &format!("{prefix}.weight"), weight_init.scaled(1.0 / lr_multiplier), device)?;
        let bias = src.param([out_features], &format!("{prefix}.bias"), bias_init.scaled(1.0 / lr_multiplier), device)?;
        Ok(Self { weight, bias: Some(bias), lr_multiplier, lrelu })
    }

    pub fn named_params<'a>(&'a self, prefix: &str, out: &mut NamedParams<'a>) {
        out.push((format!("{prefix}.weight"), ParamRef::P2(&self.weight)));
        if let Some(b) = &self.bias {
            out.push((format!("{prefix}.bias"), ParamRef::P1(b)));
        }
    }

    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// The effective weight `W·lr/√in`, bias `b·lr` and activation.
    fn effective(&self) -> (Tensor<2>, Option<Tensor<1>>, Activation) {
        let in_features = self.in_features() as f64;
        let w = self.weight.val().mul_scalar(self.lr_multiplier / in_features.sqrt());
        let b = self.bias.as_ref().map(|b| b.val().mul_scalar(self.lr_multiplier));
        let act = if self.lrelu { Activation::LeakyRelu(0.2) } else { Activation::Linear };
        (w, b, act)
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let (w, b, act) = self.effective();
        bias_act(x.matmul(w.transpose()), b, act, default_gain(act), None, KernelChoice::Auto)
    }

    /// `(y, ẏ)`: the output and its derivative along the input tangent `xt`.
    pub fn forward_tangent(&self, x: Tensor<2>, xt: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let (w, b, act) = self.effective();
        let wt = w.transpose();
        bias_act_tangent(x.matmul(wt.clone()), xt.matmul(wt), b, act, default_gain(act), None)
    }
}

/// MappingNetwork: z (and class) → w, broadcast to `num_ws`, with truncation towards `w_avg`.
#[derive(Module, Debug)]
pub struct MappingNetwork {
    pub embed: Option<FullyConnectedLayer>,
    pub fc: Vec<FullyConnectedLayer>,
    pub w_avg: Option<Tensor<1>>,
    #[module(skip)]
    pub z_dim: usize,
    #[module(skip)]
    pub c_dim: usize,
    #[module(skip)]
    pub w_dim: usize,
}

impl MappingNetwork {
    /// Loads `{prefix}.embed`, `{prefix}.fc{i}` and (when `with_w_avg`) `{prefix}.w_avg`.
    /// `layer_features` is the width of the hidden layers (w_dim for the generators).
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        src: &mut dyn WeightSource,
        prefix: &str,
        z_dim: usize,
        c_dim: usize,
        w_dim: usize,
        cfg: &MappingConfig,
        with_w_avg: bool,
        device: &Device,
    ) -> Result<Self, LoadError> {
        let embed_features = if c_dim > 0 { w_dim } else { 0 };
        let embed = if c_dim > 0 {
            Some(FullyConnectedLayer::load(src, &format!("{prefix}.embed"), c_dim, w_dim, false, 1.0, Init::Randn(1.0), Init::Zeros, device)?)
        } else {
            None
        };
        let mut fc = Vec::with_capacity(cfg.num_layers);
        let mut in_features = z_dim + embed_features;
        for i in 0..cfg.num_layers {
            let out_features = if i + 1 == cfg.num_layers { w_dim } else { cfg.layer_features.unwrap_or(w_dim) };
            fc.push(FullyConnectedLayer::load(
                src,
                &format!("{prefix}.fc{i}"),
                in_features,
                out_features,
                true,
                cfg.lr_multiplier,
                Init::Randn(1.0),
                Init::Zeros,
                device,
            )?);
            in_features = out_features;
        }
        let w_avg = if with_w_avg { Some(src.tensor([w_dim], &format!("{prefix}.w_avg"), Init::Zeros, device)?) } else { None };
        Ok(Self { embed, fc, w_avg, z_dim, c_dim, w_dim })
    }

    pub fn named_params<'a>(&'a self, prefix: &str, out: &mut NamedParams<'a>) {
        if let Some(e) = &self.embed {
            e.named_params(&format!("{prefix}.embed"), out);
        }
        for (i, fc) in self.fc.iter().enumerate() {
            fc.named_params(&format!("{prefix}.fc{i}"), out);
        }
    }

    /// The un-broadcast mapping output `[N, w_dim]`; `trace` gets `map/embed`, `map/fc{i}`.
    pub fn forward_w(&self, z: Option<Tensor<2>>, c: Option<Tensor<2>>, mut trace: Option<&mut Trace>) -> Tensor<2> {
        let mut parts = Vec::new();
        if self.z_dim > 0 {
            if let Some(z) = z {
                parts.push(normalize_2nd_moment(z));
            }
        }
        if let (Some(embed), Some(c)) = (&self.embed, c) {
            let y = embed.forward(c);
            rec2(&mut trace, || "map/embed".into(), &y);
            parts.push(normalize_2nd_moment(y));
        }
        let mut x = if parts.len() == 1 { parts.remove(0) } else { Tensor::cat(parts, 1) };
        for (i, fc) in self.fc.iter().enumerate() {
            x = fc.forward(x);
            rec2(&mut trace, || format!("map/fc{i}"), &x);
        }
        x
    }

    /// `w_avg ← lerp(mean over the batch of w, w_avg, beta)` (the official `update_emas`), with
    /// `w` the un-broadcast mapping output; f32 on the host like torch.
    pub fn update_w_avg(&mut self, w: &Tensor<2>, beta: f64) -> Result<(), crate::error::DeviceError> {
        let Some(avg) = &self.w_avg else { return Ok(()) };
        let batch_mean = crate::backend::read_f32(w.clone().detach().mean_dim(0))?;
        let old = crate::backend::read_f32(avg.clone())?;
        let new: Vec<f32> = batch_mean.iter().zip(&old).map(|(&m, &a)| lerp(m, a, beta as f32)).collect();
        let n = new.len();
        self.w_avg = Some(Tensor::from_data(burn::tensor::TensorData::new(new, [n]), &w.device()));
        Ok(())
    }

    /// Broadcast to `[N, num_ws, w_dim]` and truncate the first `cutoff` ws (all when `None`)
    /// towards `w_avg` with `psi`.
    pub fn broadcast_truncate(&self, w: Tensor<2>, num_ws: usize, psi: f64, cutoff: Option<usize>) -> Tensor<3> {
        let [n, w_dim] = w.dims();
        let ws: Tensor<3> = w.unsqueeze_dim::<3>(1).repeat_dim(1, num_ws);
        if psi == 1.0 {
            return ws;
        }
        let Some(w_avg) = &self.w_avg else { return ws };
        let cutoff = cutoff.unwrap_or(num_ws).min(num_ws);
        if cutoff == 0 {
            return ws;
        }
        let avg: Tensor<3> = w_avg.clone().reshape([1, 1, w_dim]);
        let head = ws.clone().narrow(1, 0, cutoff);
        let head = avg.clone() + (head - avg).mul_scalar(psi);
        if cutoff == num_ws {
            head
        } else {
            let tail = ws.narrow(1, cutoff, num_ws - cutoff);
            let _ = n;
            Tensor::cat(vec![head, tail], 1)
        }
    }
}
