//! The discriminator (networks_stylegan2.Discriminator, resnet architecture) used by all three
//! official configs: residual down-sampling blocks, minibatch standard deviation, and the
//! conditional projection through its own mapping network.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use crate::error::LoadError;
use crate::kernels::cpu::Taps;
use crate::kernels::reference::Activation;
use crate::kernels::{bias_act, bias_act_tangent, conv2d_resample, KernelChoice, ResampleFilter};
use crate::model::config::{DBlockSpec, DiscriminatorConfig, MappingConfig};
use crate::model::layers::{FullyConnectedLayer, MappingNetwork, NamedParams, ParamRef};
use crate::weights::{Init, WeightSource};
use crate::model::layers::{load_resample_filter, resample_filter_init};

/// Conv2dLayer: equalised-lr convolution with optional down-sampling, bias and activation.
#[derive(Module, Debug)]
pub struct Conv2dLayer {
    pub weight: Param<Tensor<4>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub resample_filter: Tensor<2>,
    /// Host taps of `resample_filter` for the kernels.
    #[module(skip)]
    pub resample_host: Taps,
    #[module(skip)]
    pub down: usize,
    #[module(skip)]
    pub lrelu: bool,
    #[module(skip)]
    pub conv_clamp: Option<f64>,
}

impl Conv2dLayer {
    #[allow(clippy::too_many_arguments)]
    fn load(
        src: &mut dyn WeightSource,
        prefix: &str,
        in_ch: usize,
        out_ch: usize,
        k: usize,
        bias: bool,
        lrelu: bool,
        down: usize,
        conv_clamp: Option<f64>,
        device: &Device,
    ) -> Result<Self, LoadError> {
        let (resample_filter, resample_host) = load_resample_filter(src, &format!("{prefix}.resample_filter"), device)?;
        Ok(Self {
            weight: src.param([out_ch, in_ch, k, k], &format!("{prefix}.weight"), Init::Randn(1.0), device)?,
            bias: if bias { Some(src.param([out_ch], &format!("{prefix}.bias"), Init::Zeros, device)?) } else { None },
            resample_filter,
            resample_host,
            down,
            lrelu,
            conv_clamp,
        })
    }

    fn named_params<'a>(&'a self, prefix: &str, out: &mut NamedParams<'a>) {
        out.push((format!("{prefix}.weight"), ParamRef::P4(&self.weight)));
        if let Some(b) = &self.bias {
            out.push((format!("{prefix}.bias"), ParamRef::P1(b)));
        }
    }

    /// The convolution (with down-sampling), before bias and activation.
    fn conv(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, in_ch, k, _] = self.weight.dims();
        let w = self.weight.val().div_scalar(((in_ch * k * k) as f64).sqrt());
        let f = ResampleFilter::stored(&self.resample_filter, &self.resample_host);
        conv2d_resample(x, w, Some(&f), 1, self.down, k / 2, 1, KernelChoice::Auto)
    }

    /// Activation, its total gain and clamp for a layer output gain `gain`.
    fn act(&self, gain: f64) -> (Activation, f64, Option<f64>) {
        let act = if self.lrelu { Activation::LeakyRelu(0.2) } else { Activation::Linear };
        let act_gain = if self.lrelu { std::f64::consts::SQRT_2 } else { 1.0 };
        (act, act_gain * gain, self.conv_clamp.map(|c| c * gain))
    }

    fn forward(&self, x: Tensor<4>, gain: f64) -> Tensor<4> {
        let (act, gain, clamp) = self.act(gain);
        bias_act(self.conv(x), self.bias.as_ref().map(|b| b.val()), act, gain, clamp, KernelChoice::Auto)
    }

    /// `(y, ẏ)` for the input `x` and its tangent `xt` (one convolution over both).
    fn forward_tangent(&self, x: Tensor<4>, xt: Tensor<4>, gain: f64) -> (Tensor<4>, Tensor<4>) {
        let n = x.dims()[0];
        let both = self.conv(Tensor::cat(vec![x, xt], 0));
        let (z, zt) = (both.clone().narrow(0, 0, n), both.narrow(0, n, n));
        let (act, gain, clamp) = self.act(gain);
        bias_act_tangent(z, zt, self.bias.as_ref().map(|b| b.val()), act, gain, clamp)
    }
}

/// DiscriminatorBlock (resnet): `skip(x)·√½ + conv1(conv0(x))·√½`, halving the resolution.
#[derive(Module, Debug)]
pub struct DiscriminatorBlock {
    pub fromrgb: Option<Conv2dLayer>,
    pub conv0: Conv2dLayer,
    pub conv1: Conv2dLayer,
    pub skip: Conv2dLayer,
    /// The block's own copy of the resample filter (a buffer of the official module; its layers
    /// carry theirs).
    pub resample_filter: Tensor<2>,
    #[module(skip)]
    pub spec: DBlockSpec,
}

impl DiscriminatorBlock {
    fn load(src: &mut dyn WeightSource, spec: &DBlockSpec, cfg: &DiscriminatorConfig, device: &Device) -> Result<Self, LoadError> {
        let p = &spec.name;
        let clamp = cfg.conv_clamp;
        let fromrgb = if spec.in_channels == 0 {
            Some(Conv2dLayer::load(src, &format!("{p}.fromrgb"), cfg.img_channels, spec.tmp_channels, 1, true, true, 1, clamp, device)?)
        } else {
            None
        };
        Ok(Self {
            fromrgb,
            conv0: Conv2dLayer::load(src, &format!("{p}.conv0"), spec.tmp_channels, spec.tmp_channels, 3, true, true, 1, clamp, device)?,
            conv1: Conv2dLayer::load(src, &format!("{p}.conv1"), spec.tmp_channels, spec.out_channels, 3, true, true, 2, clamp, device)?,
            skip: Conv2dLayer::load(src, &format!("{p}.skip"), spec.tmp_channels, spec.out_channels, 1, false, false, 2, None, device)?,
            resample_filter: src.tensor([4, 4], &format!("{p}.resample_filter"), resample_filter_init(), device)?,
            spec: spec.clone(),
        })
    }

    fn forward(&self, x: Option<Tensor<4>>, img: &Tensor<4>) -> Tensor<4> {
        let x = match (&self.fromrgb, x) {
            (Some(fromrgb), x) => {
                let y = fromrgb.forward(img.clone(), 1.0);
                match x {
                    Some(x) => x + y,
                    None => y,
                }
            }
            (None, Some(x)) => x,
            (None, None) => img.clone(),
        };
        let g = std::f64::consts::FRAC_1_SQRT_2;
        let y = self.skip.forward(x.clone(), g);
        let x = self.conv0.forward(x, 1.0);
        let x = self.conv1.forward(x, g);
        y + x
    }

    /// `(x, ẋ)` out of the block for the incoming features (and tangent) and the image (and
    /// tangent).
    fn forward_tangent(&self, x: Option<(Tensor<4>, Tensor<4>)>, img: &Tensor<4>, img_t: &Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let (x, xt) = match (&self.fromrgb, x) {
            (Some(fromrgb), x) => {
                let (y, yt) = fromrgb.forward_tangent(img.clone(), img_t.clone(), 1.0);
                match x {
                    Some((x, xt)) => (x + y, xt + yt),
                    None => (y, yt),
                }
            }
            (None, Some(x)) => x,
            (None, None) => (img.clone(), img_t.clone()),
        };
        let g = std::f64::consts::FRAC_1_SQRT_2;
        let (y, yt) = self.skip.forward_tangent(x.clone(), xt.clone(), g);
        let (x, xt) = self.conv0.forward_tangent(x, xt, 1.0);
        let (x, xt) = self.conv1.forward_tangent(x, xt, g);
        (y + x, yt + xt)
    }
}

/// `(y, ẏ)` of [`minibatch_std`] for the input `x` and its tangent `xt`: the centred tangent
/// through `d sqrt(m) = mean(y·ẏ) / sqrt(m)` of every group's standard deviation.
pub fn minibatch_std_tangent(x: Tensor<4>, xt: Tensor<4>, group_size: usize, num_channels: usize) -> (Tensor<4>, Tensor<4>) {
    let [n, c, h, w] = x.dims();
    let g = group_size.min(n).max(1);
    let g = if n % g == 0 { g } else { 1 };
    let f = num_channels.max(1);
    let y: Tensor<6> = x.clone().reshape([g, n / g, f, c / f, h, w]);
    let yt: Tensor<6> = xt.clone().reshape([g, n / g, f, c / f, h, w]);
    let y = y.clone() - y.mean_dim(0);
    let yt = yt.clone() - yt.mean_dim(0);
    let s = y.clone().square().mean_dim(0).add_scalar(1e-8).sqrt();
    let st = (y * yt).mean_dim(0) / s.clone();
    let spread = |t: Tensor<6>| -> Tensor<4> {
        let t: Tensor<4> = t.mean_dim(3).mean_dim(4).mean_dim(5).reshape([n / g, f, 1, 1]);
        t.repeat_dim(0, g).repeat_dim(2, h).repeat_dim(3, w)
    };
    (Tensor::cat(vec![x, spread(s)], 1), Tensor::cat(vec![xt, spread(st)], 1))
}

/// Minibatch standard deviation over groups of `min(group_size, N)` samples.
pub fn minibatch_std(x: Tensor<4>, group_size: usize, num_channels: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let g = group_size.min(n).max(1);
    let g = if n % g == 0 { g } else { 1 };
    let f = num_channels.max(1);
    let y: Tensor<6> = x.clone().reshape([g, n / g, f, c / f, h, w]);
    let y = y.clone() - y.mean_dim(0);
    let y = y.square().mean_dim(0).add_scalar(1e-8).sqrt(); // [1, n/g, f, c/f, h, w]
    let y = y.mean_dim(3).mean_dim(4).mean_dim(5); // [1, n/g, f, 1, 1, 1]
    let y: Tensor<4> = y.reshape([n / g, f, 1, 1]);
    let y = y.repeat_dim(0, g).repeat_dim(2, h).repeat_dim(3, w);
    Tensor::cat(vec![x, y], 1)
}

/// The whole discriminator.
#[derive(Module, Debug)]
pub struct Discriminator {
    pub blocks: Vec<DiscriminatorBlock>,
    pub mapping: Option<MappingNetwork>,
    pub conv: Conv2dLayer,
    pub fc: FullyConnectedLayer,
    pub out: FullyConnectedLayer,
    #[module(skip)]
    pub config: DiscriminatorConfig,
}

impl Discriminator {
    pub fn load(cfg: &DiscriminatorConfig, src: &mut dyn WeightSource, device: &Device) -> Result<Self, LoadError> {
        let blocks = cfg.blocks().iter().map(|b| DiscriminatorBlock::load(src, b, cfg, device)).collect::<Result<Vec<_>, _>>()?;
        let mapping = if cfg.c_dim > 0 {
            let mcfg = MappingConfig { num_layers: cfg.mapping_layers, lr_multiplier: cfg.mapping_lr_multiplier, w_avg_beta: 0.998, layer_features: None };
            Some(MappingNetwork::load(src, "mapping", 0, cfg.c_dim, cfg.cmap_dim, &mcfg, false, device)?)
        } else {
            None
        };
        let c4 = cfg.channels_at(4);
        let mb = cfg.mbstd_num_channels;
        let conv = Conv2dLayer::load(src, "b4.conv", c4 + mb, c4, 3, true, true, 1, cfg.conv_clamp, device)?;
        let fc = FullyConnectedLayer::load(src, "b4.fc", c4 * 16, c4, true, 1.0, Init::Randn(1.0), Init::Zeros, device)?;
        let out_dim = if cfg.cmap_dim == 0 { 1 } else { cfg.cmap_dim };
        let out = FullyConnectedLayer::load(src, "b4.out", c4, out_dim, false, 1.0, Init::Randn(1.0), Init::Zeros, device)?;
        Ok(Self { blocks, mapping, conv, fc, out, config: cfg.clone() })
    }

    /// Every parameter under its official name.
    pub fn named_params(&self) -> NamedParams<'_> {
        let mut out = Vec::new();
        for b in &self.blocks {
            let p = &b.spec.name;
            if let Some(f) = &b.fromrgb {
                f.named_params(&format!("{p}.fromrgb"), &mut out);
            }
            b.conv0.named_params(&format!("{p}.conv0"), &mut out);
            b.conv1.named_params(&format!("{p}.conv1"), &mut out);
            b.skip.named_params(&format!("{p}.skip"), &mut out);
        }
        if let Some(m) = &self.mapping {
            m.named_params("mapping", &mut out);
        }
        self.conv.named_params("b4.conv", &mut out);
        self.fc.named_params("b4.fc", &mut out);
        self.out.named_params("b4.out", &mut out);
        out
    }

    /// Logits `[N, 1]` for images `[N, C, res, res]` and one-hot classes `c [N, c_dim]`.
    pub fn forward(&self, img: Tensor<4>, c: Option<Tensor<2>>) -> Tensor<2> {
        let mut x = None;
        for block in &self.blocks {
            x = Some(block.forward(x, &img));
        }
        let x = x.unwrap_or(img);
        let n = x.dims()[0];
        let x = minibatch_std(x, self.config.mbstd_group_size, self.config.mbstd_num_channels);
        let x = self.conv.forward(x, 1.0);
        let x: Tensor<2> = x.reshape([n as i64, -1]);
        let x = self.fc.forward(x);
        let x = self.out.forward(x);
        match (&self.mapping, c) {
            (Some(mapping), Some(c)) => {
                let cmap = mapping.forward_w(None, Some(c), None);
                (x * cmap).sum_dim(1).div_scalar((self.config.cmap_dim as f64).sqrt())
            }
            _ => x,
        }
    }

    /// The logits and their derivative along an image tangent `img_t`: `(D(x), J_D(x)·ẋ)`, both
    /// `[N, 1]`, as ordinary differentiable tensors. Backpropagating `Σ J_D(x)·v` with
    /// `v = ∇ₓΣD(x)` gives ½·∇θ‖∇ₓΣD(x)‖², the gradient of R1, with first-order autodiff only.
    pub fn forward_tangent(&self, img: Tensor<4>, img_t: Tensor<4>, c: Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        let mut x = None;
        for block in &self.blocks {
            x = Some(block.forward_tangent(x, &img, &img_t));
        }
        let (x, xt) = x.unwrap_or((img, img_t));
        let n = x.dims()[0];
        let (x, xt) = minibatch_std_tangent(x, xt, self.config.mbstd_group_size, self.config.mbstd_num_channels);
        let (x, xt) = self.conv.forward_tangent(x, xt, 1.0);
        let (x, xt): (Tensor<2>, Tensor<2>) = (x.reshape([n as i64, -1]), xt.reshape([n as i64, -1]));
        let (x, xt) = self.fc.forward_tangent(x, xt);
        let (x, xt) = self.out.forward_tangent(x, xt);
        match (&self.mapping, c) {
            (Some(mapping), Some(c)) => {
                let cmap = mapping.forward_w(None, Some(c), None);
                let norm = (self.config.cmap_dim as f64).sqrt();
                ((x * cmap.clone()).sum_dim(1).div_scalar(norm), (xt * cmap).sum_dim(1).div_scalar(norm))
            }
            _ => (x, xt),
        }
    }
}
