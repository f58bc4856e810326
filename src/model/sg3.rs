//! The StyleGAN3 generator (networks_stylegan3.py): configs T and R.
//!
//! "Alias-Free Generative Adversarial Networks", Karras et al. 2021. Module and field names are the
//! official ones so the state_dict keys map without a table: `synthesis.input.*`,
//! `synthesis.L{i}_{size}_{channels}.*`. The schedule comes from [`Sg3Config::layers`].

use burn::module::{Module, Param};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::LoadError;
use crate::kernels::cpu::{par_planes, FilteredLrelu, Taps};
use crate::kernels::reference::{filtered_lrelu, Fir};
use crate::kernels::{scaled_conv2d_cpu, use_fast_cpu, HostValues, KernelChoice, WinogradCache};
use crate::model::config::{Sg3Config, Sg3InputSpec, Sg3LayerSpec};
use crate::model::filters::design_lowpass_filter;
use crate::model::layers::{demodulation, rec2, rec4, weight_energy, FullyConnectedLayer, NamedParams, ParamRef, Trace};
use crate::weights::{Init, WeightSource};

/// Fourier-feature input: a grid of sinusoids whose frequencies and phases follow `w` (and the
/// user's transform).
#[derive(Module, Debug)]
pub struct SynthesisInput {
    pub weight: Param<Tensor<2>>,
    pub affine: FullyConnectedLayer,
    /// The user-specified *inverse* transform, `[3, 3]`.
    pub transform: Tensor<2>,
    pub freqs: Tensor<2>,
    pub phases: Tensor<1>,
    #[module(skip)]
    pub channels: usize,
    #[module(skip)]
    pub size: usize,
    #[module(skip)]
    pub sampling_rate: f64,
    #[module(skip)]
    pub bandwidth: f64,
}

impl SynthesisInput {
    pub fn load(src: &mut dyn WeightSource, prefix: &str, w_dim: usize, spec: &Sg3InputSpec, device: &Device) -> Result<Self, LoadError> {
        let c = spec.channels;
        let weight = src.param([c, c], &format!("{prefix}.weight"), Init::Randn(1.0), device)?;
        let affine = FullyConnectedLayer::load(
            src,
            &format!("{prefix}.affine"),
            w_dim,
            4,
            false,
            1.0,
            Init::Zeros,
            Init::Values(vec![1.0, 0.0, 0.0, 0.0]),
            device,
        )?;
        let identity = Init::Values(vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let transform = src.tensor([3, 3], &format!("{prefix}.transform"), identity, device)?;
        let freqs = src.tensor([c, 2], &format!("{prefix}.freqs"), Init::FourierFreqs(spec.bandwidth), device)?;
        let phases = src.tensor([c], &format!("{prefix}.phases"), Init::FourierPhases, device)?;
        Ok(Self {
            weight,
            affine,
            transform,
            freqs,
            phases,
            channels: c,
            size: spec.size,
            sampling_rate: spec.sampling_rate,
            bandwidth: spec.bandwidth,
        })
    }

    pub fn named_params<'a>(&'a self, prefix: &str, out: &mut NamedParams<'a>) {
        out.push((format!("{prefix}.weight"), ParamRef::P2(&self.weight)));
        self.affine.named_params(&format!("{prefix}.affine"), out);
    }

    /// `[N, C, size, size]` features for `w = ws[:, 0]`. `transform` overrides the buffer.
    pub fn forward(&self, w: Tensor<2>, transform: Option<Tensor<2>>, trace: &mut Option<&mut Trace>, prefix: &str) -> Tensor<4> {
        let device = w.device();
        let n = w.dims()[0];
        let c = self.channels;
        let s = self.size;

        // Rotation/translation from w, normalised by the rotation part.
        let t = self.affine.forward(w);
        rec2(trace, || format!("{prefix}.affine"), &t);
        let norm = t.clone().narrow(1, 0, 2).square().sum_dim(1).sqrt();
        let t = t / norm;
        let col = |i: usize| t.clone().narrow(1, i, 1); // [N, 1]
        let (t0, t1, t2, t3) = (col(0), col(1), col(2), col(3));
        let zeros = Tensor::<2>::zeros([n, 1], &device);
        let ones = Tensor::<2>::ones([n, 1], &device);
        let row = |parts: Vec<Tensor<2>>| Tensor::cat(parts, 1); // [N, 3]
        let m_r: Tensor<3> = Tensor::stack(
            vec![
                row(vec![t0.clone(), t1.clone().neg(), zeros.clone()]),
                row(vec![t1, t0, zeros.clone()]),
                row(vec![zeros.clone(), zeros.clone(), ones.clone()]),
            ],
            1,
        );
        let m_t: Tensor<3> = Tensor::stack(
            vec![
                row(vec![ones.clone(), zeros.clone(), t2.neg()]),
                row(vec![zeros.clone(), ones.clone(), t3.neg()]),
                row(vec![zeros.clone(), zeros, ones]),
            ],
            1,
        );
        let user = transform.unwrap_or_else(|| self.transform.clone());
        let user: Tensor<3> = user.unsqueeze_dim::<3>(0).repeat_dim(0, n);
        let tr = m_r.matmul(m_t).matmul(user); // [N, 3, 3]

        // Transform frequencies and phases.
        let freqs: Tensor<3> = self.freqs.clone().unsqueeze_dim::<3>(0).repeat_dim(0, n); // [N, C, 2]
        let shift = tr.clone().narrow(1, 0, 2).narrow(2, 2, 1); // [N, 2, 1]
        let phases = self.phases.clone().reshape([1, c]) + freqs.clone().matmul(shift).reshape([n, c]);
        let freqs = freqs.matmul(tr.narrow(1, 0, 2).narrow(2, 0, 2)); // [N, C, 2]

        // Dampen frequencies the transform pushed above the band limit.
        let fnorm = freqs.clone().square().sum_dim(2).sqrt().reshape([n, c]);
        let amp = fnorm
            .sub_scalar(self.bandwidth)
            .div_scalar(self.sampling_rate / 2.0 - self.bandwidth)
            .neg()
            .add_scalar(1.0)
            .clamp(0.0, 1.0);

        // Sampling grid: pixel centres in units where the final image spans [-0.5, 0.5].
        let mut grid = Vec::with_capacity(s * s * 2);
        for j in 0..s {
            for i in 0..s {
                grid.push(((i as f64 + 0.5 - s as f64 / 2.0) / self.sampling_rate) as f32);
                grid.push(((j as f64 + 0.5 - s as f64 / 2.0) / self.sampling_rate) as f32);
            }
        }
        let grid: Tensor<3> = Tensor::<2>::from_data(TensorData::new(grid, [s * s, 2]), &device).unsqueeze_dim::<3>(0);
        let grid = grid.repeat_dim(0, n); // [N, HW, 2]
        let x = grid.matmul(freqs.swap_dims(1, 2)); // [N, HW, C]
        let x = x + phases.unsqueeze_dim::<3>(1);
        let x = x.mul_scalar(2.0 * std::f64::consts::PI).sin();
        let x = x * amp.unsqueeze_dim::<3>(1);

        // Channel mixing.
        let weight = self.weight.val().div_scalar((c as f64).sqrt());
        let x = x.matmul(weight.transpose().unsqueeze_dim::<3>(0).repeat_dim(0, n)); // [N, HW, C]
        x.reshape([n, s, s, c]).permute([0, 3, 1, 2])
    }
}

/// One synthesis layer: modulated convolution followed by filtered leaky ReLU.
#[derive(Module, Debug)]
pub struct SynthesisLayer {
    pub affine: FullyConnectedLayer,
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    pub magnitude_ema: Tensor<1>,
    pub up_filter: Option<Tensor<2>>,
    pub down_filter: Option<Tensor<2>>,
    #[module(skip)]
    pub spec: Sg3LayerSpec,
    #[module(skip)]
    pub conv_clamp: Option<f64>,
    /// Host copies of the filters for the CPU kernel.
    #[module(skip)]
    pub host_filters: (Option<Vec<f32>>, Option<Vec<f32>>),
    /// The CPU convolution's transformed weights, kept between images.
    #[module(skip)]
    pub winograd: WinogradCache,
}

impl SynthesisLayer {
    pub fn load(src: &mut dyn WeightSource, prefix: &str, w_dim: usize, spec: &Sg3LayerSpec, cfg: &Sg3Config, device: &Device) -> Result<Self, LoadError> {
        let k = spec.conv_kernel;
        let affine = FullyConnectedLayer::load(
            src,
            &format!("{prefix}.affine"),
            w_dim,
            spec.in_channels,
            false,
            1.0,
            Init::Randn(1.0),
            Init::Const(1.0),
            device,
        )?;
        let weight = src.param([spec.out_channels, spec.in_channels, k, k], &format!("{prefix}.weight"), Init::Randn(1.0), device)?;
        let bias = src.param([spec.out_channels], &format!("{prefix}.bias"), Init::Zeros, device)?;
        let magnitude_ema = src.tensor([1], &format!("{prefix}.magnitude_ema"), Init::Const(1.0), device)?;
        let up = design_lowpass_filter(spec.up_taps, spec.in_cutoff, 2.0 * spec.in_half_width, spec.tmp_sampling_rate, false);
        let down = design_lowpass_filter(spec.down_taps, spec.out_cutoff, 2.0 * spec.out_half_width, spec.tmp_sampling_rate, spec.down_radial);
        let up_host = match up {
            Some(f) => Some(src.host(&format!("{prefix}.up_filter"), &[spec.up_taps], &Init::filter(&f))?.data),
            None => None,
        };
        let down_host = match down {
            Some(f) if spec.down_radial => Some(src.host(&format!("{prefix}.down_filter"), &[spec.down_taps, spec.down_taps], &Init::filter(&f))?.data),
            Some(f) => Some(src.host(&format!("{prefix}.down_filter"), &[spec.down_taps], &Init::filter(&f))?.data),
            None => None,
        };
        let to_tensor = |v: &Vec<f32>, rows: usize| Tensor::<2>::from_data(TensorData::new(v.clone(), [rows, v.len() / rows]), device);
        let up_filter = up_host.as_ref().map(|v| to_tensor(v, 1));
        let down_filter = down_host.as_ref().map(|v| to_tensor(v, if spec.down_radial { spec.down_taps } else { 1 }));
        Ok(Self {
            affine,
            weight,
            bias,
            magnitude_ema,
            up_filter,
            down_filter,
            spec: spec.clone(),
            conv_clamp: cfg.conv_clamp,
            host_filters: (up_host, down_host),
            winograd: WinogradCache::default(),
        })
    }

    pub fn named_params<'a>(&'a self, prefix: &str, out: &mut NamedParams<'a>) {
        out.push((format!("{prefix}.weight"), ParamRef::P4(&self.weight)));
        out.push((format!("{prefix}.bias"), ParamRef::P1(&self.bias)));
        self.affine.named_params(&format!("{prefix}.affine"), out);
    }

    pub fn forward(&self, x: Tensor<4>, w: Tensor<2>, kernels: KernelChoice, trace: &mut Option<&mut Trace>) -> Tensor<4> {
        let spec = &self.spec;
        let name = &spec.name;
        let input_gain = self.magnitude_ema.clone().sqrt().recip(); // [1]

        let styles = self.affine.forward(w);
        rec2(trace, || format!("{name}.affine"), &styles);
        let styles = if spec.is_torgb {
            styles.div_scalar(((spec.in_channels * spec.conv_kernel * spec.conv_kernel) as f64).sqrt())
        } else {
            styles
        };

        let fast = use_fast_cpu(&x.device(), kernels);
        let x = modulated_conv2d(x, self.weight.val(), styles, spec.conv_kernel - 1, !spec.is_torgb, Some(input_gain), fast.then_some(&self.winograd));
        rec4(trace, || format!("{name}.conv"), &x);

        let (gain, slope) = if spec.is_torgb { (1.0, 1.0) } else { (std::f64::consts::SQRT_2, 0.2) };
        if fast {
            let x = self.filtered_lrelu_cpu(x, gain, slope);
            rec4(trace, || name.clone(), &x);
            return x;
        }
        if kernels == KernelChoice::Auto {
            // Training on the CPU: the kernel with its backward.
            if let Some(x) = crate::kernels::cpu_autodiff::filtered_lrelu_tracked(&self.cpu_op(gain, slope), x.clone(), self.bias.val()) {
                rec4(trace, || name.clone(), &x);
                return x;
            }
            let fd = self.down_taps();
            let fused = crate::kernels::wgpu::filtered_lrelu_wgpu(
                x.clone(),
                self.host_filters.0.as_deref(),
                fd.as_ref(),
                Some(self.bias.val()),
                spec.up_factor,
                spec.down_factor,
                spec.padding,
                gain as f32,
                slope as f32,
                self.conv_clamp.map(|c| c as f32),
            );
            if let Some(x) = fused {
                rec4(trace, || name.clone(), &x);
                return x;
            }
        }
        let fu = self.up_filter.clone().map(|t| Fir::from_buffer(t, true));
        let fd = self.down_filter.clone().map(|t| Fir::from_buffer(t, !spec.down_radial));
        // The reference materialises the up-sampled tensor; keep every buffer under the binding
        // limits of GPU adapters by working on groups of channels.
        let [n, c, h, _] = x.dims();
        let mid = h * spec.up_factor + spec.up_taps + 32;
        let chunk = (MAX_BUFFER_ELEMS / (n * mid * mid).max(1)).clamp(1, c);
        let bias = self.bias.val();
        let parts: Vec<Tensor<4>> = (0..c)
            .step_by(chunk)
            .map(|c0| {
                let len = chunk.min(c - c0);
                filtered_lrelu(
                    x.clone().narrow(1, c0, len),
                    fu.as_ref(),
                    fd.as_ref(),
                    Some(bias.clone().narrow(0, c0, len)),
                    spec.up_factor,
                    spec.down_factor,
                    spec.padding,
                    gain,
                    slope,
                    self.conv_clamp,
                )
            })
            .collect();
        let x = if parts.len() == 1 { parts.into_iter().next().unwrap_or(x) } else { Tensor::cat(parts, 1) };
        rec4(trace, || name.clone(), &x);
        x
    }
}

/// Largest intermediate (in f32 elements) the reference path builds at once on a GPU: 64 MiB,
/// half the smallest storage-buffer binding limit of common adapters (lavapipe's is 128 MiB).
const MAX_BUFFER_ELEMS: usize = 1 << 24;

impl SynthesisLayer {
    /// The host copy of the down filter for the fast kernels: 2-D for radial, else separable.
    fn down_taps(&self) -> Option<Taps> {
        let spec = &self.spec;
        self.host_filters.1.clone().map(|k| if spec.down_radial { Taps::Full { n: spec.down_taps, k } } else { Taps::Separable(k) })
    }

    /// The layer's `filtered_lrelu` as a CPU kernel op.
    fn cpu_op(&self, gain: f64, slope: f64) -> FilteredLrelu {
        let spec = &self.spec;
        FilteredLrelu {
            up: spec.up_factor,
            down: spec.down_factor,
            padding: spec.padding,
            gain: gain as f32,
            slope: slope as f32,
            clamp: self.conv_clamp.map(|v| v as f32),
            fu: self.host_filters.0.clone(),
            fd: self.down_taps(),
        }
    }

    /// `filtered_lrelu` through the CPU kernel (forward only).
    fn filtered_lrelu_cpu(&self, x: Tensor<4>, gain: f64, slope: f64) -> Tensor<4> {
        let device = x.device();
        let [n, c, h, w] = x.dims();
        let op = self.cpu_op(gain, slope);
        let (data, bias) = (HostValues::new(x), HostValues::new(self.bias.val()));
        let (oh, ow) = op.output_size(h, w);
        let out = op.run(data.values(), n * c, h, w, bias.values());
        Tensor::from_data(TensorData::new(out, [n, c, oh, ow]), &device)
    }
}

/// StyleGAN3's modulated convolution (correlation, zero padding `padding` on every side).
/// `fast_cpu` runs the convolution itself through the CPU kernel (forward only), keeping the
/// transformed weights in the given cache.
pub fn modulated_conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    styles: Tensor<2>,
    padding: usize,
    demodulate: bool,
    input_gain: Option<Tensor<1>>,
    fast_cpu: Option<&WinogradCache>,
) -> Tensor<4> {
    let [n, in_ch, h, w_] = x.dims();
    let [out_ch, _, kh, kw] = weight.dims();
    if let Some(cache) = fast_cpu.filter(|_| kh == kw) {
        return modulated_conv2d_cpu(x, weight, styles, padding, demodulate, input_gain, cache);
    }
    if x.device().is_autodiff() && kh == kw {
        return modulated_conv2d_unfused(x, weight, styles, padding, demodulate, input_gain);
    }
    let (weight, styles) = if demodulate { normalized(weight, styles) } else { (weight, styles) };
    let wm: Tensor<5> = weight.unsqueeze_dim::<5>(0) * styles.reshape([n, 1, in_ch, 1, 1]);
    let wm = if demodulate {
        let d = wm.clone().square().sum_dim(2).sum_dim(3).sum_dim(4).add_scalar(1e-8).sqrt().recip();
        wm * d
    } else {
        wm
    };
    let wm = match input_gain {
        Some(g) => wm * g.reshape([1, 1, 1, 1, 1]),
        None => wm,
    };
    let (oh, ow) = (h + 2 * padding + 1 - kh, w_ + 2 * padding + 1 - kw);
    if n * out_ch * oh * ow <= MAX_BUFFER_ELEMS {
        let x = x.reshape([1, n * in_ch, h, w_]);
        let wm: Tensor<4> = wm.reshape([n * out_ch, in_ch, kh, kw]);
        let y = conv2d(x, wm, None, ConvOptions::new([1, 1], [padding, padding], [1, 1], n));
        return y.reshape([n, out_ch, oh, ow]);
    }
    // Large outputs: one sample and a group of output channels at a time.
    let chunk = (MAX_BUFFER_ELEMS / (oh * ow)).clamp(1, out_ch);
    let samples: Vec<Tensor<4>> = (0..n)
        .map(|s| {
            let xs = x.clone().narrow(0, s, 1);
            let ws: Tensor<4> = wm.clone().narrow(0, s, 1).reshape([out_ch, in_ch, kh, kw]);
            let parts: Vec<Tensor<4>> = (0..out_ch)
                .step_by(chunk)
                .map(|o0| {
                    let len = chunk.min(out_ch - o0);
                    conv2d(xs.clone(), ws.clone().narrow(0, o0, len), None, ConvOptions::new([1, 1], [padding, padding], [1, 1], 1))
                })
                .collect();
            Tensor::cat(parts, 1)
        })
        .collect();
    Tensor::cat(samples, 0)
}

/// [`modulated_conv2d`] through the CPU kernels: the same factors (weight and style
/// normalisation, modulation, demodulation, input gain) applied to the activations as per-channel
/// scales, `y[o] = out[o] · Σ_i w[o, i] ⋆ (in[i] · x[i])` with `in = s'` and
/// `out = g · wn[o] · d[o]`, where `d[o] = rsqrt(wn[o]² Σ_i s'[i]² Σ_k w[o, i, k]² + 1e-8)` is the
/// official demodulation of the weights `w · wn · s'`.
fn modulated_conv2d_cpu(x: Tensor<4>, weight: Tensor<4>, styles: Tensor<2>, padding: usize, demodulate: bool, input_gain: Option<Tensor<1>>, cache: &WinogradCache) -> Tensor<4> {
    let [n, in_ch, _, _] = x.dims();
    let [out_ch, _, k, _] = weight.dims();
    let (wdata, sdata) = (HostValues::new(weight), HostValues::new(styles));
    let (w, s) = (wdata.values(), sdata.values());
    let gain = input_gain.map_or(1.0, |g| HostValues::new(g).values().first().copied().unwrap_or(1.0));
    let mut in_scale = s.to_vec();
    let mut out_scale = vec![gain; n * out_ch];
    if demodulate && in_ch > 0 {
        // Σ_k w[o, i, k]², then wn[o] = rsqrt(mean_{i,k} w[o]²) and s' = s · rsqrt(mean s²).
        let mut sq = vec![0f32; out_ch * in_ch];
        let threads = crate::kernels::cpu::threads();
        par_planes(&mut sq, in_ch, threads, || (), |_, o, row| {
            for (q, taps) in row.iter_mut().zip(w[o * in_ch * k * k..].chunks(k * k)) {
                *q = taps.iter().map(|v| v * v).sum();
            }
        });
        let wn: Vec<f32> = sq.chunks(in_ch).map(|row| (row.iter().sum::<f32>() / (in_ch * k * k) as f32).sqrt().recip()).collect();
        let sn = (s.iter().map(|v| v * v).sum::<f32>() / s.len().max(1) as f32).sqrt().recip();
        in_scale.iter_mut().for_each(|v| *v *= sn);
        for (st, outs) in in_scale.chunks(in_ch).zip(out_scale.chunks_mut(out_ch)) {
            for ((o, row), out) in sq.chunks(in_ch).enumerate().zip(outs) {
                let energy: f32 = row.iter().zip(st).map(|(q, v)| q * v * v).sum();
                *out *= wn[o] * (wn[o] * wn[o] * energy + 1e-8).sqrt().recip();
            }
        }
    }
    scaled_conv2d_cpu(x, &wdata, out_ch, k, padding, &in_scale, &out_scale, cache)
}

/// Demodulation's pre-normalisation: each output channel's weights by their RMS, the styles by
/// theirs over the whole batch.
fn normalized(weight: Tensor<4>, styles: Tensor<2>) -> (Tensor<4>, Tensor<2>) {
    let wn = weight.clone().square().mean_dim(1).mean_dim(2).mean_dim(3).sqrt().recip();
    let sn = styles.clone().square().mean().sqrt().recip();
    (weight * wn, styles * sn.reshape([1, 1]))
}

/// [`modulated_conv2d`] for training: the same factors as per-channel scales of the activations
/// (`kernels::scale_channels`: the styles scale the input channels, demodulation and the input
/// gain the output channels) around one convolution with the shared weights, which runs on the
/// CPU kernel with its backward (`kernels::conv2d_resample` → `cpu_autodiff::conv2d_tracked`)
/// instead of a grouped convolution with per-sample weights. Equal to the grouped form up to
/// rounding.
fn modulated_conv2d_unfused(x: Tensor<4>, weight: Tensor<4>, styles: Tensor<2>, padding: usize, demodulate: bool, input_gain: Option<Tensor<1>>) -> Tensor<4> {
    let (weight, styles) = if demodulate { normalized(weight, styles) } else { (weight, styles) };
    let xs = crate::kernels::scale_channels(x, styles.clone());
    let y = crate::kernels::conv2d_resample(xs, weight.clone(), None, 1, 1, padding, 1, KernelChoice::Auto);
    let d = demodulate.then(|| demodulation(styles, weight_energy(weight)));
    match (d, input_gain) {
        (Some(d), Some(g)) => crate::kernels::scale_channels(y, d * g.reshape([1, 1])),
        (Some(d), None) => crate::kernels::scale_channels(y, d),
        (None, Some(g)) => y * g.reshape([1, 1, 1, 1]),
        (None, None) => y,
    }
}

/// SynthesisNetwork: input, layers L0 … L{num_layers}, output scale.
#[derive(Module, Debug)]
pub struct SynthesisNetwork {
    pub input: SynthesisInput,
    pub layers: Vec<SynthesisLayer>,
    #[module(skip)]
    pub output_scale: f64,
}

impl SynthesisNetwork {
    pub fn load(src: &mut dyn WeightSource, cfg: &Sg3Config, device: &Device) -> Result<Self, LoadError> {
        let input = SynthesisInput::load(src, "synthesis.input", cfg.w_dim, &cfg.input_spec(), device)?;
        let layers = cfg
            .layers()
            .iter()
            .map(|spec| SynthesisLayer::load(src, &format!("synthesis.{}", spec.name), cfg.w_dim, spec, cfg, device))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { input, layers, output_scale: cfg.output_scale })
    }

    pub fn named_params<'a>(&'a self, out: &mut NamedParams<'a>) {
        self.input.named_params("synthesis.input", out);
        for l in &self.layers {
            l.named_params(&format!("synthesis.{}", l.spec.name), out);
        }
    }

    /// The training forward with `update_emas` (the official Dmain phase): before each layer
    /// uses it, its `magnitude_ema` moves to `lerp(mean(x²), magnitude_ema, beta)` of the layer's
    /// input, in f32 on the host like torch's in-place update. The buffers stay updated.
    pub fn forward_update_emas(&mut self, ws: Tensor<3>, beta: f64, kernels: KernelChoice) -> Result<Tensor<4>, crate::error::DeviceError> {
        let [n, _, w_dim] = ws.dims();
        let w_at = |i: usize| ws.clone().narrow(1, i, 1).reshape([n, w_dim]);
        let mut x = self.input.forward(w_at(0), None, &mut None, "input");
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let cur = crate::backend::read_f32(x.clone().detach().square().mean())?;
            let ema = crate::backend::read_f32(layer.magnitude_ema.clone())?;
            let (cur, ema) = (cur.first().copied().unwrap_or(0.0), ema.first().copied().unwrap_or(1.0));
            let updated = crate::model::layers::lerp(cur, ema, beta as f32);
            layer.magnitude_ema = Tensor::from_data(TensorData::new(vec![updated], [1]), &x.device());
            x = layer.forward(x, w_at(i + 1), kernels, &mut None);
        }
        Ok(x.mul_scalar(self.output_scale))
    }

    /// `ws [N, num_ws, w_dim]` → image `[N, C, res, res]`.
    pub fn forward(&self, ws: Tensor<3>, transform: Option<Tensor<2>>, kernels: KernelChoice, mut trace: Option<&mut Trace>) -> Tensor<4> {
        let [n, _, w_dim] = ws.dims();
        let w_at = |i: usize| ws.clone().narrow(1, i, 1).reshape([n, w_dim]);
        let mut x = self.input.forward(w_at(0), transform, &mut trace, "input");
        rec4(&mut trace, || "input".into(), &x);
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x, w_at(i + 1), kernels, &mut trace);
        }
        let x = x.mul_scalar(self.output_scale);
        rec4(&mut trace, || "output".into(), &x);
        x
    }
}
