//! The official custom ops (`upfirdn2d`, `bias_act`, `filtered_lrelu`, `conv2d_resample`).
//! `reference` is the pure burn-tensor implementation every faster kernel is judged against;
//! the dispatchers here pick the fastest implementation the tensors' device allows: the CPU
//! kernels on burn's plain CPU backend, the WGSL kernels on wgpu (also under autodiff), else
//! the reference.

#[macro_use]
mod simd;
pub use simd::description as simd_description;
pub mod reference;
pub mod cpu;
pub mod cpu_autodiff;
pub mod wgpu;
pub mod winograd;
pub mod winograd_train;
pub mod tiles;
mod pool;

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::module::{conv2d, conv_transpose2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Tensor, TensorData};

use crate::kernels::cpu::Taps;
use crate::kernels::reference::Fir;

/// Which implementation of the custom ops to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KernelChoice {
    /// The fastest path for the device (the CPU kernels on burn's plain CPU backend).
    #[default]
    Auto,
    /// Always the pure-tensor reference.
    Reference,
}

/// Whether the fast CPU kernels apply: burn's CPU backend without autodiff (they are forward only).
pub fn use_fast_cpu(device: &Device, choice: KernelChoice) -> bool {
    choice == KernelChoice::Auto && !device.is_autodiff() && *device == Device::flex()
}

/// A stored 2-D resampling filter (StyleGAN2's and the discriminator's `resample_filter`): on the
/// device for the reference ops, and its taps on the host for the kernels, separable when the
/// buffer is an outer product (every official one is: `outer([1,3,3,1]) / 64`).
#[derive(Clone, Debug)]
pub struct ResampleFilter {
    pub fir: Fir,
    pub host: Taps,
}

impl ResampleFilter {
    /// From a square row-major `[n, n]` buffer.
    pub fn new(values: Vec<f32>, n: usize, device: &Device) -> Self {
        let host = separable_taps(&values, n).unwrap_or(Taps::Full { n, k: values.clone() });
        let fir = Fir::Full(Tensor::from_data(TensorData::new(values, [n, n]), device));
        Self { fir, host }
    }

    /// From a layer's stored buffer and the host taps loaded with it
    /// (`model::layers::load_resample_filter`).
    pub fn stored(t: &Tensor<2>, host: &Taps) -> Self {
        Self { fir: Fir::Full(t.clone()), host: host.clone() }
    }

    /// The device tensor (the module buffer under its official name).
    pub fn tensor(&self) -> Tensor<2> {
        match &self.fir {
            Fir::Full(t) => t.clone(),
            Fir::Separable(t) => {
                let n = t.dims()[0];
                t.clone().reshape([n, 1]).matmul(t.clone().reshape([1, n]))
            }
        }
    }

    /// `(fw, fh)`.
    pub fn size(&self) -> (usize, usize) {
        self.fir.size()
    }
}

/// `t` with `k = t ⊗ t` when the square kernel `k` is a symmetric outer product with a positive
/// sum (to float rounding), else `None`.
pub fn separable_taps(k: &[f32], n: usize) -> Option<Taps> {
    if n == 0 || k.len() != n * n {
        return None;
    }
    let total: f64 = k.iter().map(|&v| v as f64).sum();
    if total <= 0.0 {
        return None;
    }
    let rows: Vec<f64> = (0..n).map(|i| (0..n).map(|j| k[i * n + j] as f64).sum()).collect();
    let cols: Vec<f64> = (0..n).map(|j| (0..n).map(|i| k[i * n + j] as f64).sum()).collect();
    let scale = k.iter().fold(0f64, |m, &v| m.max((v as f64).abs()));
    for i in 0..n {
        if (rows[i] - cols[i]).abs() > 1e-6 * total.abs() {
            return None;
        }
        for j in 0..n {
            if (k[i * n + j] as f64 - rows[i] * cols[j] / total).abs() > 1e-6 * scale {
                return None;
            }
        }
    }
    Some(Taps::Separable(rows.iter().map(|r| (r / total.sqrt()) as f32).collect()))
}

/// `bias_act(x, b, act, gain, clamp)`: under autodiff on the CPU (training) the fused CPU op
/// when there is a bias, otherwise the reference.
pub fn bias_act<const D: usize>(x: Tensor<D>, b: Option<Tensor<1>>, act: reference::Activation, gain: f64, clamp: Option<f64>, choice: KernelChoice) -> Tensor<D> {
    if let (Some(bias), KernelChoice::Auto) = (&b, choice) {
        if let Some(y) = cpu_autodiff::bias_act_tracked(x.clone(), bias.clone(), act.slope(), gain, clamp) {
            return y;
        }
    }
    reference::bias_act(x, b, act, gain, clamp)
}

/// [`reference::bias_act_tangent`]: `(y, ẏ)` for the input `x` and its tangent `xt`, through the
/// fused CPU op under autodiff on the CPU when there is a bias, otherwise the reference.
pub fn bias_act_tangent<const D: usize>(x: Tensor<D>, xt: Tensor<D>, b: Option<Tensor<1>>, act: reference::Activation, gain: f64, clamp: Option<f64>) -> (Tensor<D>, Tensor<D>) {
    if let Some(bias) = &b {
        if let Some(pair) = cpu_autodiff::bias_act_tangent_tracked(x.clone(), xt.clone(), bias.clone(), act.slope(), gain, clamp) {
            return pair;
        }
    }
    reference::bias_act_tangent(x, xt, b, act, gain, clamp)
}

/// `x · s` for `x` `[n, c, h, w]` and `s` `[n, c]` (per sample and channel): the fused CPU op under
/// autodiff on the CPU, otherwise a broadcast product.
pub fn scale_channels(x: Tensor<4>, s: Tensor<2>) -> Tensor<4> {
    if let Some(y) = cpu_autodiff::scale_channels_tracked(x.clone(), s.clone()) {
        return y;
    }
    let [n, c] = s.dims();
    x * s.reshape([n, c, 1, 1])
}

/// `upfirdn2d(x, f, up, down, padding, flip_filter = false, gain)`: the WGSL kernel on a plain
/// wgpu device, otherwise the reference (which autodiff differentiates).
pub fn upfirdn2d(x: Tensor<4>, f: Option<&ResampleFilter>, up: usize, down: usize, padding: [i64; 4], gain: f64, choice: KernelChoice) -> Tensor<4> {
    if use_fast_cpu(&x.device(), choice) {
        if let Some(y) = upfirdn2d_cpu(&x, f.map(|f| &f.host), up, down, padding, gain) {
            return y;
        }
    }
    if choice == KernelChoice::Auto {
        if let Some(y) = cpu_autodiff::upfirdn2d_tracked(x.clone(), f.map(|f| &f.host), up, down, padding, gain) {
            return y;
        }
        if let Some(y) = wgpu::upfirdn2d_wgpu(x.clone(), f.map(|f| &f.host), up, down, padding, gain as f32) {
            return y;
        }
    }
    reference::upfirdn2d(x, f.map(|f| &f.fir), up, down, padding, false, gain)
}

/// `upfirdn2d` through the CPU kernel (`cpu::FilteredLrelu` with a linear activation: its
/// polyphase passes are upfirdn2d's), for pure up-sampling (separable filter) or pure
/// down-sampling; `None` for other combinations.
fn upfirdn2d_cpu(x: &Tensor<4>, f: Option<&Taps>, up: usize, down: usize, padding: [i64; 4], gain: f64) -> Option<Tensor<4>> {
    let [n, c, h, w] = x.dims();
    let op = cpu_autodiff::upfirdn_op(f, up, down, padding, gain)?;
    let (oh, ow) = op.output_size(h, w);
    let y = op.run(HostValues::new(x.clone()).values(), n * c, h, w, &[]);
    Some(Tensor::from_data(TensorData::new(y, [n, c, oh, ow]), &x.device()))
}

/// Whether [`conv2d_cpu`] takes these shapes: square kernels, groups that divide the channels.
pub fn conv2d_cpu_fits(x: &Tensor<4>, w: &Tensor<4>, groups: usize) -> bool {
    let [_, in_ch, _, _] = x.dims();
    let [out_ch, in_g, k, k2] = w.dims();
    k == k2 && groups > 0 && in_g * groups == in_ch && out_ch % groups == 0
}

/// A grouped correlation with symmetric padding (`groups` blocks of `[out/groups, in/groups]`)
/// through the CPU convolution kernel (Winograd for 3x3), one sample and group at a time, for
/// shapes [`conv2d_cpu_fits`] accepts. The tensors' buffers are read in place (no copy when
/// they own them).
pub fn conv2d_cpu(x: Tensor<4>, w: Tensor<4>, pad: usize, groups: usize) -> Tensor<4> {
    let device = x.device();
    let [n, in_ch, h, wd] = x.dims();
    let [out_ch, in_g, k, _] = w.dims();
    let out_g = out_ch / groups;
    let (xs, ws) = (HostValues::new(x), HostValues::new(w));
    let (xs, ws) = (xs.values(), ws.values());
    let mut parts = Vec::with_capacity(n * groups);
    for s in 0..n {
        for g in 0..groups {
            let xg = &xs[(s * in_ch + g * in_g) * h * wd..(s * in_ch + (g + 1) * in_g) * h * wd];
            let wg = &ws[g * out_g * in_g * k * k..(g + 1) * out_g * in_g * k * k];
            parts.push(cpu::conv2d(xg, in_g, h, wd, wg, out_g, k, pad, cpu::ChannelScales::default()));
        }
    }
    join_planes(parts, [n, out_ch], &device)
}

/// The stride-2 transposed convolution (no padding) of `x` (`[n, in, h, w]`) with `w`
/// (`[in, out / groups, k, k]`, burn's layout) through the CPU kernels
/// ([`cpu_autodiff::conv_transpose2d_stride2`]): StyleGAN2's up-sampling layers at inference.
pub fn conv_transpose2d_cpu(x: Tensor<4>, w: Tensor<4>, groups: usize) -> Tensor<4> {
    let device = x.device();
    let [n, in_ch, h, wd] = x.dims();
    let [_, out_g, k, _] = w.dims();
    let (xs, ws) = (HostValues::new(x), HostValues::new(w));
    let y = cpu_autodiff::conv_transpose2d_stride2(xs.values(), n, in_ch, h, wd, ws.values(), out_g, k, groups);
    Tensor::from_data(TensorData::new(y, [n, groups * out_g, 2 * (h - 1) + k, 2 * (wd - 1) + k]), &device)
}

/// StyleGAN's modulated convolution through the CPU kernels: every sample `s` of `x`
/// (`[n, in, h, w]`) correlated with the one stored `weight` (`[out, in, k, k]`) with zero padding
/// `pad`, its input channels scaled by `in_scale[s·in..]` and its output channels by
/// `out_scale[s·out..]` ([`cpu::ChannelScales`]): the convolution with the modulated and
/// demodulated weights, without building them. The Winograd transform of the weights is taken
/// from `cache` when it holds this buffer's, else computed (and kept there, within
/// [`WINOGRAD_CACHE_BYTES`]); it is shared by the samples of a batch, whose tiles go through
/// the products together ([`winograd::conv3x3_batch`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn scaled_conv2d_cpu(x: Tensor<4>, weight: &HostValues, out_ch: usize, k: usize, pad: usize, in_scale: &[f32], out_scale: &[f32], cache: &WinogradCache) -> Tensor<4> {
    let device = x.device();
    let [n, in_ch, h, w] = x.dims();
    let xs = HostValues::new(x);
    let xs = xs.values();
    if cpu::uses_winograd(k, in_ch, out_ch) {
        let u = cache.get(weight, out_ch, in_ch);
        let (y, oh, ow) = winograd::conv3x3_batch(xs, n, in_ch, h, w, &u, out_ch, pad, &in_scale[..n * in_ch], &out_scale[..n * out_ch]);
        return Tensor::from_data(TensorData::new(y, [n, out_ch, oh, ow]), &device);
    }
    let parts = (0..n)
        .map(|s| {
            let x = &xs[s * in_ch * h * w..(s + 1) * in_ch * h * w];
            let scales = cpu::ChannelScales { input: &in_scale[s * in_ch..(s + 1) * in_ch], output: &out_scale[s * out_ch..(s + 1) * out_ch] };
            cpu::conv2d_direct(x, in_ch, h, w, weight.values(), out_ch, k, pad, scales)
        })
        .collect();
    join_planes(parts, [n, out_ch], &device)
}

/// The most memory [`WinogradCache`]s hold together (1 GiB: every 3x3 layer of one SG3-T network
/// of any size, 0.5–0.65 GiB). Past it, transforms are recomputed per call instead of kept.
pub const WINOGRAD_CACHE_BYTES: usize = 1 << 30;

static WINOGRAD_CACHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One convolution's Winograd-transformed weights ([`winograd::transform_filters`]), kept between
/// images: the transform depends on the stored weights only, and recomputing it was 7% of a 256²
/// SG3-T image (writing 64/9 of the weights, 67 MB per 512-channel layer). A layer owns one; its
/// clones share it.
///
/// The entry is keyed by the weights' buffer itself: it holds a reference to the backend's
/// storage, so that buffer can neither be freed (and its address reused) nor changed in place
/// (burn-flex writes in place only into buffers nobody else references) while the entry lives.
/// New weights (a loaded snapshot, an optimiser step) are a new buffer, so a stale transform is
/// never used. Weights not in a flex buffer are transformed per call.
#[derive(Clone, Default)]
pub struct WinogradCache(std::sync::Arc<std::sync::Mutex<Option<Transformed>>>);

struct Transformed {
    source: FlexTensor,
    /// `(out, in)`: the same buffer read as another shape would need another transform.
    shape: (usize, usize),
    u: std::sync::Arc<Vec<f32>>,
}

impl Drop for Transformed {
    fn drop(&mut self) {
        WINOGRAD_CACHED.fetch_sub(self.u.len() * 4, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Debug for WinogradCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // try_lock: formatting must not wait for (or deadlock with) a transform in progress.
        match self.0.try_lock() {
            Ok(entry) => write!(f, "WinogradCache({} bytes)", entry.as_ref().map_or(0, |t| t.u.len() * 4)),
            Err(_) => write!(f, "WinogradCache(busy)"),
        }
    }
}

impl WinogradCache {
    /// The transform of `weight` (`[out, in, 3, 3]`).
    pub(crate) fn get(&self, weight: &HostValues, out_ch: usize, in_ch: usize) -> std::sync::Arc<Vec<f32>> {
        let HostValues::Flex(source) = weight else {
            return std::sync::Arc::new(winograd::transform_filters(weight.values(), out_ch, in_ch));
        };
        // A panic while the lock was held left at worst an entry that was complete or absent.
        let mut entry = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(t) = entry.as_ref() {
            if t.shape == (out_ch, in_ch) && same_buffer(&t.source, source) {
                return t.u.clone();
            }
        }
        *entry = None; // frees the old transform before the new one is made
        let u = std::sync::Arc::new(winograd::transform_filters(weight.values(), out_ch, in_ch));
        let bytes = u.len() * 4;
        let fits = WINOGRAD_CACHED
            .fetch_update(std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed, |held| (held + bytes <= WINOGRAD_CACHE_BYTES).then_some(held + bytes))
            .is_ok();
        if fits {
            *entry = Some(Transformed { source: source.clone(), shape: (out_ch, in_ch), u: u.clone() });
        }
        u
    }
}

/// Whether two flex tensors view the same values of the same storage.
fn same_buffer(a: &FlexTensor, b: &FlexTensor) -> bool {
    let (va, vb) = (a.as_slice::<f32>(), b.as_slice::<f32>());
    std::sync::Arc::ptr_eq(&a.data_arc(), &b.data_arc()) && va.map(|v| (v.as_ptr(), v.len())) == vb.map(|v| (v.as_ptr(), v.len()))
}

/// One tensor `[lead[0], lead[1], oh, ow]` from the kernels' outputs (in order, each `(values,
/// oh, ow)` of the same size).
fn join_planes(mut parts: Vec<(Vec<f32>, usize, usize)>, lead: [usize; 2], device: &Device) -> Tensor<4> {
    let (oh, ow) = parts.first().map_or((0, 0), |p| (p.1, p.2));
    let out = if parts.len() == 1 {
        parts.pop().map(|p| p.0).unwrap_or_default()
    } else {
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
        for p in &parts {
            out.extend_from_slice(&p.0);
        }
        out
    };
    Tensor::from_data(TensorData::new(out, [lead[0], lead[1], oh, ow]), device)
}

/// A float tensor's values on the host, for the CPU kernels: a view of the flex backend's own
/// buffer when the tensor lives there contiguously (no copy, even when the buffer is shared, as
/// a module's weights are), else the values read out.
#[derive(Clone, Debug)]
pub(crate) enum HostValues {
    Flex(FlexTensor),
    Read(Vec<f32>),
}

impl HostValues {
    pub(crate) fn new<const D: usize>(t: Tensor<D>) -> Self {
        if !t.device().is_autodiff() && t.device() == Device::flex() {
            let dims = t.dims();
            if let Ok(flex) = t.clone().try_into_primitive::<Flex>() {
                if flex.as_slice::<f32>().is_some() {
                    return Self::Flex(flex);
                }
                if flex.dtype() == burn::tensor::DType::F32 {
                    let layout = flex.layout();
                    return Self::Read(strided_values(flex.storage::<f32>(), &dims, layout.strides(), layout.start_offset()));
                }
            }
        }
        let data = t.into_data();
        match data.as_slice::<f32>() {
            // The dtype is f32 (checked), so the conversion takes the buffer as it is.
            Ok(_) => Self::Read(data.try_into_vec::<f32>().unwrap_or_default()),
            Err(_) => Self::Read(data.iter::<f32>().collect()),
        }
    }

    pub(crate) fn values(&self) -> &[f32] {
        match self {
            Self::Flex(t) => t.as_slice::<f32>().unwrap_or_default(),
            Self::Read(v) => v,
        }
    }
}

/// The values of a strided view (`dims`, `strides` in elements, possibly negative, from
/// `offset`) of `storage` in row-major order: a loop over the last axis per index of the others.
/// (burn-flex's own copy steps a general strided iterator value by value: the phase-split
/// transposed convolutions' weights and gradients, 1–4 MiB each, cost ~1.5% of a StyleGAN2
/// training step there.)
fn strided_values(storage: &[f32], dims: &[usize], strides: &[isize], offset: usize) -> Vec<f32> {
    let count = dims.iter().product::<usize>();
    let mut out = Vec::with_capacity(count);
    let Some((&last, outer)) = dims.split_last() else {
        out.extend(storage.get(offset).copied());
        return out;
    };
    if count == 0 {
        return out;
    }
    let step = strides[dims.len() - 1];
    let mut index = vec![0usize; outer.len()];
    let mut base = offset as isize;
    loop {
        out.extend((0..last as isize).map(|j| storage[(base + j * step) as usize]));
        // The next index of the outer axes, the last fastest; done when the first wraps.
        let mut axis = outer.len();
        loop {
            if axis == 0 {
                return out;
            }
            axis -= 1;
            index[axis] += 1;
            base += strides[axis];
            if index[axis] < outer[axis] {
                break;
            }
            base -= strides[axis] * outer[axis] as isize;
            index[axis] = 0;
        }
    }
}

/// `upsample2d`: ×`up` with output size `H·up` (StyleGAN2's skip connection).
pub fn upsample2d(x: Tensor<4>, f: &ResampleFilter, up: usize, choice: KernelChoice) -> Tensor<4> {
    let (fw, fh) = f.size();
    let p = [((fw + up - 1) / 2) as i64, ((fw - up) / 2) as i64, ((fh + up - 1) / 2) as i64, ((fh - up) / 2) as i64];
    upfirdn2d(x, Some(f), up, 1, p, (up * up) as f64, choice)
}

/// `conv2d_resample` for the cases the official networks use (see the reference, §1.4), with
/// `flip_weight = (up == 1)` as every official caller passes it. Its filtering goes through
/// [`upfirdn2d`], so it runs the WGSL kernel where the device allows.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_resample(
    x: Tensor<4>,
    w: Tensor<4>,
    f: Option<&ResampleFilter>,
    up: usize,
    down: usize,
    padding: usize,
    groups: usize,
    choice: KernelChoice,
) -> Tensor<4> {
    let [out_ch, in_per_group, kh, kw] = w.dims();
    let (fw, fh) = f.map(|f| f.size()).unwrap_or((1, 1));
    let (mut px0, mut px1, mut py0, mut py1) = (padding as i64, padding as i64, padding as i64, padding as i64);
    if up > 1 {
        px0 += ((fw + up - 1) / 2) as i64;
        px1 += ((fw - up) / 2) as i64;
        py0 += ((fh + up - 1) / 2) as i64;
        py1 += ((fh - up) / 2) as i64;
    }
    if down > 1 {
        px0 += ((fw - down + 1) / 2) as i64;
        px1 += ((fw - down) / 2) as i64;
        py0 += ((fh - down + 1) / 2) as i64;
        py1 += ((fh - down) / 2) as i64;
    }
    let fir = |x, up, down, pad, gain| upfirdn2d(x, f, up, down, pad, gain, choice);
    if kw == 1 && kh == 1 && down > 1 && up == 1 {
        let x = fir(x, 1, down, [px0, px1, py0, py1], 1.0);
        return conv2d_plain(x, w, 0, groups, choice);
    }
    if kw == 1 && kh == 1 && up > 1 && down == 1 {
        let x = conv2d_plain(x, w, 0, groups, choice);
        return fir(x, up, 1, [px0, px1, py0, py1], (up * up) as f64);
    }
    if down > 1 && up == 1 {
        let x = fir(x, 1, 1, [px0, px1, py0, py1], 1.0);
        if down == 2 && choice == KernelChoice::Auto && groups == 1 {
            if let Some(y) = cpu_autodiff::conv2d_stride2_tracked(x.clone(), w.clone()) {
                return y;
            }
        }
        return conv2d(x, w, None, ConvOptions::new([down, down], [0, 0], [1, 1], groups));
    }
    if up > 1 {
        // Transposed convolution with the weight in [in, out/groups] layout, unflipped.
        let out_per_group = out_ch / groups;
        let w: Tensor<5> = w.reshape([groups, out_per_group, in_per_group, kh, kw]);
        let w: Tensor<4> = w.swap_dims(1, 2).reshape([groups * in_per_group, out_per_group, kh, kw]);
        px0 -= kw as i64 - 1;
        px1 -= kw as i64 - up as i64;
        py0 -= kh as i64 - 1;
        py1 -= kh as i64 - up as i64;
        let pxt = (-px0).min(-px1).max(0);
        let pyt = (-py0).min(-py1).max(0);
        let stride2 = up == 2 && pxt == 0 && pyt == 0 && kh == kw && kh >= 2;
        let x = if stride2 && use_fast_cpu(&x.device(), choice) {
            conv_transpose2d_cpu(x, w, groups)
        } else {
            let fast = (stride2 && groups == 1 && choice == KernelChoice::Auto)
                .then(|| cpu_autodiff::conv_transpose2d_stride2_tracked(x.clone(), w.clone()))
                .flatten();
            fast.unwrap_or_else(|| conv_transpose2d(x, w, None, ConvTransposeOptions::new([up, up], [pyt as usize, pxt as usize], [0, 0], [1, 1], groups)))
        };
        let x = fir(x, 1, 1, [px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], (up * up) as f64);
        return if down > 1 { fir(x, 1, down, [0, 0, 0, 0], 1.0) } else { x };
    }
    // No resampling: plain correlation with symmetric padding (negative padding crops).
    if use_fast_cpu(&x.device(), choice) && px0 >= 0 && [px1, py0, py1] == [px0; 3] && conv2d_cpu_fits(&x, &w, groups) {
        return conv2d_cpu(x, w, px0 as usize, groups);
    }
    if px0 >= 0 && [px1, py0, py1] == [px0; 3] {
        return conv2d_plain(x, w, px0 as usize, groups, choice);
    }
    let (x, pads) = reference::crop_negative(x, [px0, px1, py0, py1]);
    conv2d(x, w, None, ConvOptions::new_with_padding([1, 1], [(pads[2], pads[3]), (pads[0], pads[1])], [1, 1], groups))
}

/// A stride-1 correlation with symmetric zero padding: under autodiff on the CPU the kernel with
/// its backward ([`cpu_autodiff::conv2d_tracked`]), else burn's `conv2d`.
fn conv2d_plain(x: Tensor<4>, w: Tensor<4>, pad: usize, groups: usize, choice: KernelChoice) -> Tensor<4> {
    if choice == KernelChoice::Auto && groups == 1 {
        if let Some(y) = cpu_autodiff::conv2d_tracked(x.clone(), w.clone(), pad) {
            return y;
        }
    }
    conv2d(x, w, None, ConvOptions::new([1, 1], [pad, pad], [1, 1], groups))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn weights(seed: u64) -> Tensor<4> {
        let device = Device::flex();
        device.seed(seed);
        Tensor::random([16, 24, 3, 3], Distribution::Normal(0.0, 1.0), &device)
    }

    #[test]
    fn strided_views_read_as_their_values_in_order() {
        let w = weights(3);
        let views: Vec<Tensor<4>> = vec![
            w.clone().swap_dims(0, 1),
            w.clone().permute([2, 0, 3, 1]),
            w.clone().slice([2..9, 1..20, 0..3, 1..3]),
            w.clone().flip([1, 3]),
            w.clone().swap_dims(2, 3).slice([0..16, 5..6, 0..3, 0..3]),
        ];
        for (i, v) in views.into_iter().enumerate() {
            let want: Vec<f32> = v.clone().into_data().iter::<f32>().collect();
            let got = HostValues::new(v);
            assert!(matches!(got, HostValues::Read(_)), "view {i} is contiguous: not a strided case");
            assert_eq!(got.values(), &want[..], "view {i}");
        }
    }

    #[test]
    fn winograd_cache_keeps_a_buffers_transform_and_redoes_it_for_new_weights() {
        let cache = WinogradCache::default();
        let w = weights(1);
        let first = cache.get(&HostValues::new(w.clone()), 16, 24);
        // The same buffer (another handle to it): the kept transform itself.
        let again = cache.get(&HostValues::new(w.clone()), 16, 24);
        assert!(std::sync::Arc::ptr_eq(&first, &again));
        assert_eq!(*first, winograd::transform_filters(HostValues::new(w.clone()).values(), 16, 24));
        // The same buffer read as another shape: transformed again.
        let other_shape = cache.get(&HostValues::new(w.clone()), 24, 16);
        assert!(!std::sync::Arc::ptr_eq(&first, &other_shape));
        // New weights: a new transform of the new values.
        let w2 = weights(2);
        let second = cache.get(&HostValues::new(w2.clone()), 16, 24);
        assert_eq!(*second, winograd::transform_filters(HostValues::new(w2).values(), 16, 24));
        assert_ne!(*second, *first);
    }
}
