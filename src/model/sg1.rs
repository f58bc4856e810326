//! The original StyleGAN (NVlabs/stylegan, TensorFlow): `G_synthesis` of `G_style` and the
//! `D_basic` discriminator, at `lod = 0` (what released networks are), named after the TF layers
//! (`4x4/Const`, `4x4/Conv`, `{r}x{r}/Conv0_up`, `{r}x{r}/Conv1`, `ToRGB_lod0`, `FromRGB_lod0`,
//! `Conv1_down`, `Dense0/1`) so the variables of a TF pickle load by their own names
//! (`weights::tf::sg1`). The mapping is the common `MappingNetwork`.
//!
//! Every layer: convolution (up-scaling ones: nearest ×2, 3x3, then the [1,2,1] blur; the fused
//! variant's transposed convolution equals the same with the kernel flipped), then the epilogue
//! noise · per-channel weight, bias, leaky ReLU 0.2, instance norm, and the AdaIN style
//! `x·(s₀+1) + s₁` with `s = w·A + b`. Equalised learning rate everywhere (gain √2 in the weight
//! scale, 1 for the styles and ToRGB).

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor, TensorData};

use crate::error::LoadError;
use crate::kernels::cpu::Taps;
use crate::kernels::{conv2d_resample, upfirdn2d, KernelChoice, ResampleFilter};
use crate::model::config::{Sg1Config, Sg1DiscriminatorConfig};
use crate::model::layers::{rec4, Trace};
use crate::model::NoiseMode;
use crate::weights::tf::conv_weight;
use crate::weights::{Init, WeightSource};

const SQRT_2: f64 = std::f64::consts::SQRT_2;

/// The [1,2,1] ⊗ [1,2,1] / 16 blur (zero padding, same size).
fn blur_filter(device: &Device) -> ResampleFilter {
    let k = [1.0f32, 2.0, 1.0];
    ResampleFilter::new(k.iter().flat_map(|a| k.iter().map(move |b| a * b / 16.0)).collect(), 3, device)
}

fn blur(x: Tensor<4>, f: &ResampleFilter, kernels: KernelChoice) -> Tensor<4> {
    upfirdn2d(x, Some(f), 1, 1, [1, 1, 1, 1], 1.0, kernels)
}

/// Nearest-neighbour ×2 (TF `upscale2d`).
fn upscale2d(x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let x: Tensor<6> = x.reshape([n, c, h, 1, w, 1]);
    x.repeat_dim(3, 2).repeat_dim(5, 2).reshape([n, c, 2 * h, 2 * w])
}

/// 2x2 average pooling (TF `downscale2d`).
fn downscale2d(x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let x: Tensor<6> = x.reshape([n, c, h / 2, 2, w / 2, 2]);
    x.mean_dim(3).mean_dim(5).reshape([n, c, h / 2, w / 2])
}

fn add_bias(x: Tensor<4>, b: &Tensor<1>) -> Tensor<4> {
    let c = b.dims()[0];
    x + b.clone().reshape([1, c, 1, 1])
}

fn lrelu(x: Tensor<4>) -> Tensor<4> {
    burn::tensor::activation::leaky_relu(x, 0.2)
}

/// A TF conv weight `[kh, kw, in, out]` as `[out, in, kh, kw]` (flipped when `flip`), times the
/// equalised-lr scale `gain / sqrt(kh·kw·in)`.
fn load_conv(src: &mut dyn WeightSource, key: &str, shape: [usize; 4], gain: f64, flip: bool, device: &Device) -> Result<Tensor<4>, LoadError> {
    let [k, _, in_ch, _] = shape;
    let host = src.host(key, &shape, &Init::Randn(1.0))?;
    let host = conv_weight(&host);
    let t = Tensor::<4>::from_data(TensorData::new(host.data, host.shape), device);
    let t = if flip { t.flip([2, 3]) } else { t };
    Ok(t.mul_scalar(gain / ((k * k * in_ch) as f64).sqrt()))
}

fn load_vec(src: &mut dyn WeightSource, key: &str, n: usize, init: Init, device: &Device) -> Result<Tensor<1>, LoadError> {
    src.tensor([n], key, init, device)
}

/// One synthesis layer: its convolution (none for `4x4/Const`) and the layer epilogue.
#[derive(Module, Debug)]
pub struct Sg1Layer {
    /// Effective weight `[out, in, 3, 3]` (scale folded in; flipped for fused up-scaling).
    pub weight: Option<Tensor<4>>,
    /// `Noise/weight`, per channel.
    pub noise_weight: Tensor<1>,
    pub bias: Tensor<1>,
    /// `StyleMod/weight` `[w_dim, 2C]` times `1/sqrt(w_dim)`.
    pub style_weight: Tensor<2>,
    pub style_bias: Tensor<1>,
    /// The stored noise map `noise{w_index}`, `[1, 1, r, r]`.
    pub noise: Tensor<4>,
    /// TF scope, e.g. `8x8/Conv0_up`.
    #[module(skip)]
    pub name: String,
    #[module(skip)]
    pub w_index: usize,
    #[module(skip)]
    pub up: bool,
}

impl Sg1Layer {
    #[allow(clippy::too_many_arguments)]
    fn load(src: &mut dyn WeightSource, res: usize, scope: &str, w_index: usize, in_ch: usize, out_ch: usize, w_dim: usize, fused: bool, device: &Device) -> Result<Self, LoadError> {
        let p = format!("synthesis/{res}x{res}/{scope}");
        let up = scope == "Conv0_up";
        let weight = if scope == "Const" { None } else { Some(load_conv(src, &format!("{p}/weight"), [3, 3, in_ch, out_ch], SQRT_2, up && fused, device)?) };
        let style = src.host(&format!("{p}/StyleMod/weight"), &[w_dim, 2 * out_ch], &Init::Randn(1.0))?;
        let style_weight = Tensor::<2>::from_data(TensorData::new(style.data, style.shape), device).mul_scalar(1.0 / (w_dim as f64).sqrt());
        Ok(Self {
            weight,
            noise_weight: load_vec(src, &format!("{p}/Noise/weight"), out_ch, Init::Zeros, device)?,
            bias: load_vec(src, &format!("{p}/bias"), out_ch, Init::Zeros, device)?,
            style_weight,
            style_bias: load_vec(src, &format!("{p}/StyleMod/bias"), 2 * out_ch, Init::Zeros, device)?,
            noise: src.tensor([1, 1, res, res], &format!("synthesis/noise{w_index}"), Init::Randn(1.0), device)?,
            name: format!("{res}x{res}/{scope}"),
            w_index,
            up,
        })
    }

    /// Noise, bias, leaky ReLU, instance norm, style.
    fn epilogue(&self, x: Tensor<4>, w: Tensor<2>, noise_mode: NoiseMode, noise_gain: f64) -> Tensor<4> {
        let [n, c, h, wd] = x.dims();
        let strength = self.noise_weight.clone().mul_scalar(noise_gain).reshape([1, c, 1, 1]);
        let x = match noise_mode {
            NoiseMode::Const => x + self.noise.clone() * strength,
            NoiseMode::Random => x + Tensor::<4>::random([n, 1, h, wd], Distribution::Normal(0.0, 1.0), &self.bias.device()) * strength,
            NoiseMode::None => x,
        };
        let x = lrelu(add_bias(x, &self.bias));
        let x = x.clone() - x.mean_dim(2).mean_dim(3);
        let x = x.clone() * x.square().mean_dim(2).mean_dim(3).add_scalar(1e-8).sqrt().recip();
        let s = w.matmul(self.style_weight.clone()) + self.style_bias.clone().reshape([1, 2 * c]);
        let scale: Tensor<4> = s.clone().narrow(1, 0, c).reshape([n, c, 1, 1]).add_scalar(1.0);
        let shift: Tensor<4> = s.narrow(1, c, c).reshape([n, c, 1, 1]);
        x * scale + shift
    }
}

/// `G_synthesis` of StyleGAN v1.
#[derive(Module, Debug)]
pub struct SynthesisNetwork {
    /// `4x4/Const/const`, `[1, C, 4, 4]`.
    pub constant: Tensor<4>,
    pub layers: Vec<Sg1Layer>,
    /// `ToRGB_lod0` effective weight `[img_channels, C, 1, 1]` and bias.
    pub torgb_weight: Tensor<4>,
    pub torgb_bias: Tensor<1>,
    pub blur: Tensor<2>,
    #[module(skip)]
    pub blur_host: Taps,
    #[module(skip)]
    pub config: Sg1Config,
}

impl SynthesisNetwork {
    pub fn load(src: &mut dyn WeightSource, cfg: &Sg1Config, device: &Device) -> Result<Self, LoadError> {
        let c4 = cfg.channels_at(4);
        let constant = src.tensor([1, c4, 4, 4], "synthesis/4x4/Const/const", Init::Const(1.0), device)?;
        let mut layers = vec![
            Sg1Layer::load(src, 4, "Const", 0, c4, c4, cfg.w_dim, false, device)?,
            Sg1Layer::load(src, 4, "Conv", 1, c4, c4, cfg.w_dim, false, device)?,
        ];
        let mut res = 8;
        while res <= cfg.img_resolution {
            let (cin, cout) = (cfg.channels_at(res / 2), cfg.channels_at(res));
            let r = res.trailing_zeros() as usize;
            layers.push(Sg1Layer::load(src, res, "Conv0_up", 2 * r - 4, cin, cout, cfg.w_dim, cfg.fused_at(res), device)?);
            layers.push(Sg1Layer::load(src, res, "Conv1", 2 * r - 3, cout, cout, cfg.w_dim, false, device)?);
            res *= 2;
        }
        let c = cfg.channels_at(cfg.img_resolution);
        let torgb_weight = load_conv(src, "synthesis/ToRGB_lod0/weight", [1, 1, c, cfg.img_channels], 1.0, false, device)?;
        let torgb_bias = load_vec(src, "synthesis/ToRGB_lod0/bias", cfg.img_channels, Init::Zeros, device)?;
        let blur = blur_filter(device);
        Ok(Self { constant, layers, torgb_weight, torgb_bias, blur: blur.tensor(), blur_host: blur.host, config: cfg.clone() })
    }

    /// `ws [N, num_ws, w_dim]` → image `[N, img_channels, res, res]`; `trace` gets every layer's
    /// output under its TF scope and `output`.
    pub fn forward(&self, ws: Tensor<3>, noise_mode: NoiseMode, noise_gain: f64, kernels: KernelChoice, mut trace: Option<&mut Trace>) -> Tensor<4> {
        let [n, _, w_dim] = ws.dims();
        let blur_f = ResampleFilter::stored(&self.blur, &self.blur_host);
        let mut x = self.constant.clone().repeat_dim(0, n);
        for layer in &self.layers {
            if let Some(weight) = &layer.weight {
                let input = if layer.up { upscale2d(x) } else { x };
                x = conv2d_resample(input, weight.clone(), None, 1, 1, 1, 1, kernels);
                if layer.up {
                    x = blur(x, &blur_f, kernels);
                }
            }
            let w: Tensor<2> = ws.clone().narrow(1, layer.w_index, 1).reshape([n, w_dim]);
            x = layer.epilogue(x, w, noise_mode, noise_gain);
            rec4(&mut trace, || layer.name.clone(), &x);
        }
        let img = add_bias(conv2d_resample(x, self.torgb_weight.clone(), None, 1, 1, 0, 1, kernels), &self.torgb_bias);
        rec4(&mut trace, || "output".into(), &img);
        img
    }

    /// Layer names in forward order (for the inspector).
    pub fn layer_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.layers.iter().map(|l| l.name.clone()).collect();
        v.push("output".into());
        v
    }
}

/// A `D_basic` convolution or dense layer: effective weight and bias.
#[derive(Module, Debug)]
pub struct Sg1DLayer {
    pub weight: Tensor<4>,
    pub bias: Tensor<1>,
}

impl Sg1DLayer {
    fn load(src: &mut dyn WeightSource, scope: &str, k: usize, in_ch: usize, out_ch: usize, device: &Device) -> Result<Self, LoadError> {
        Ok(Self {
            weight: load_conv(src, &format!("{scope}/weight"), [k, k, in_ch, out_ch], SQRT_2, false, device)?,
            bias: load_vec(src, &format!("{scope}/bias"), out_ch, Init::Zeros, device)?,
        })
    }

    fn conv(&self, x: Tensor<4>, kernels: KernelChoice) -> Tensor<4> {
        let k = self.weight.dims()[2];
        conv2d_resample(x, self.weight.clone(), None, 1, 1, k / 2, 1, kernels)
    }
}

/// A `D_basic` block `{r}x{r}`: `Conv0`, blur, `Conv1_down` (3x3 then 2x2 average pooling, which
/// the fused variant equals).
#[derive(Module, Debug)]
pub struct Sg1DBlock {
    pub conv0: Sg1DLayer,
    pub conv1_down: Sg1DLayer,
}

/// `D_basic` of StyleGAN v1 at `lod = 0`.
#[derive(Module, Debug)]
pub struct Sg1Discriminator {
    pub fromrgb: Sg1DLayer,
    /// `{r}x{r}/Conv0` and `{r}x{r}/Conv1_down` from the full resolution down to 8x8.
    pub blocks: Vec<Sg1DBlock>,
    pub conv: Sg1DLayer,
    /// `4x4/Dense0` effective weight `[in, out]` (TF layout) and bias.
    pub dense0_weight: Tensor<2>,
    pub dense0_bias: Tensor<1>,
    pub dense1_weight: Tensor<2>,
    pub dense1_bias: Tensor<1>,
    pub blur: Tensor<2>,
    #[module(skip)]
    pub blur_host: Taps,
    #[module(skip)]
    pub config: Sg1DiscriminatorConfig,
}

fn load_dense(src: &mut dyn WeightSource, scope: &str, in_f: usize, out_f: usize, gain: f64, device: &Device) -> Result<(Tensor<2>, Tensor<1>), LoadError> {
    let w = src.tensor([in_f, out_f], &format!("{scope}/weight"), Init::Randn(1.0), device)?.mul_scalar(gain / (in_f as f64).sqrt());
    Ok((w, load_vec(src, &format!("{scope}/bias"), out_f, Init::Zeros, device)?))
}

impl Sg1Discriminator {
    pub fn load(cfg: &Sg1DiscriminatorConfig, src: &mut dyn WeightSource, device: &Device) -> Result<Self, LoadError> {
        let res = cfg.img_resolution;
        let fromrgb = Sg1DLayer::load(src, "FromRGB_lod0", 1, cfg.img_channels, cfg.channels_at(res), device)?;
        let mut blocks = Vec::new();
        let mut r = res;
        while r >= 8 {
            let (c, c_next) = (cfg.channels_at(r), cfg.channels_at(r / 2));
            blocks.push(Sg1DBlock {
                conv0: Sg1DLayer::load(src, &format!("{r}x{r}/Conv0"), 3, c, c, device)?,
                conv1_down: Sg1DLayer::load(src, &format!("{r}x{r}/Conv1_down"), 3, c, c_next, device)?,
            });
            r /= 2;
        }
        let c4 = cfg.channels_at(4);
        let conv = Sg1DLayer::load(src, "4x4/Conv", 3, c4 + cfg.mbstd_num_features, c4, device)?;
        let (dense0_weight, dense0_bias) = load_dense(src, "4x4/Dense0", c4 * 16, cfg.dense_features, SQRT_2, device)?;
        let (dense1_weight, dense1_bias) = load_dense(src, "4x4/Dense1", cfg.dense_features, 1, 1.0, device)?;
        let blur = blur_filter(device);
        Ok(Self { fromrgb, blocks, conv, dense0_weight, dense0_bias, dense1_weight, dense1_bias, blur: blur.tensor(), blur_host: blur.host, config: cfg.clone() })
    }

    /// Images `[N, C, res, res]` → scores `[N, 1]`.
    pub fn forward(&self, img: Tensor<4>, kernels: KernelChoice) -> Tensor<2> {
        let blur_f = ResampleFilter::stored(&self.blur, &self.blur_host);
        let mut x = lrelu(add_bias(self.fromrgb.conv(img, kernels), &self.fromrgb.bias));
        for b in &self.blocks {
            x = lrelu(add_bias(b.conv0.conv(x, kernels), &b.conv0.bias));
            x = blur(x, &blur_f, kernels);
            x = lrelu(add_bias(downscale2d(b.conv1_down.conv(x, kernels)), &b.conv1_down.bias));
        }
        if self.config.mbstd_group_size > 1 {
            x = crate::model::discriminator::minibatch_std(x, self.config.mbstd_group_size, self.config.mbstd_num_features);
        }
        let x = lrelu(add_bias(self.conv.conv(x, kernels), &self.conv.bias));
        let [n, c, h, w] = x.dims();
        let x: Tensor<2> = x.reshape([n, c * h * w]);
        let d = self.dense0_bias.dims()[0];
        let x = burn::tensor::activation::leaky_relu(x.matmul(self.dense0_weight.clone()) + self.dense0_bias.clone().reshape([1, d]), 0.2);
        x.matmul(self.dense1_weight.clone()) + self.dense1_bias.clone().reshape([1, 1])
    }
}
