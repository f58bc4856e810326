//! The CPU kernels under burn's Autodiff on the flex backend, so training on the CPU runs
//! `upfirdn2d` and `filtered_lrelu` on the polyphase kernels instead of the reference's
//! depthwise convolutions (whose backward, a grouped transposed convolution, dominated a CPU
//! training step). The backward mirrors `kernels::wgpu::backward`:
//!
//! - `upfirdn2d`'s gradient is `upfirdn2d` of the output gradient with up and down swapped, the
//!   filter reversed and the padding transposed (the official `Upfirdn2dCuda.backward`).
//! - `filtered_lrelu`'s gradient runs its stages backwards: the transposed down-sampling, the
//!   activation's derivative (`gain · (v > 0 ? 1 : slope)`, zero where the clamp bit) on the
//!   pre-activation `v` recomputed with the kernel's up-sampling pass, the transposed
//!   up-sampling; the bias gradient is the input gradient summed over batch and space.
//!
//! - `bias_act` (D's and StyleGAN2's layers, the fully-connected layers): one pass each way, the
//!   slope and the clamp read off the output ([`bias_act_tracked`]).
//! - The stride-2 convolution of D's down-sampling blocks: the stride-1 one on the input's pixel
//!   phases ([`conv2d_stride2_tracked`]); StyleGAN2's stride-2 transposed convolution (its
//!   up-sampling layers) as that one's adjoint, its output phases merged
//!   ([`conv_transpose2d_stride2_tracked`]).
//! - The stride-1 convolution (every 3x3 and 1x1 convolution of the modulated layers, of D's
//!   blocks and epilogue, and of R1's and path length's tangent passes): 3x3 kernels (with
//!   channels enough) through Winograd F(2x2, 3x3) (`kernels::winograd_train`: forward, input
//!   gradient and weight gradient; not the inference path's F(6x6, 3x3), whose rounding moved
//!   the fixtures' path-length gradients by 8e-4), and the weight gradient of large 2x2 ones
//!   (D's stride-2 convolutions) through F(3x3, 2x2); the rest forward on the register tiles
//!   over shifted views (`cpu::conv2d_direct` where they do not run), the input gradient the same
//!   kernel on the output gradient with the weights transposed and flipped and padding
//!   `k − 1 − p`, the weight gradient one GEMM per tap and block of output channels,
//!   `∂W[:, :, ky, kx] = Σₙ dy · shift(x)ᵀ`, over the padded-width layout of the forward.
//!
//! Shapes the kernels cannot take both ways (a 2-D filter where a transposed pass must
//! up-sample with it: stylegan3-r's radial down filters) return `None`, and the caller keeps
//! the reference. Judged against the reference under autodiff in tests/kernels.rs.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Device, Tensor, TensorData};

use super::cpu::{self, ChannelScales, FilteredLrelu, SharedMut, Taps};
use super::HostValues;

type AdFlex = Autodiff<Flex>;
type AdTensor = burn::backend::tensor::FloatTensor<AdFlex>;

/// The autodiff primitive of `x` when it lives on an autodiff flex device.
fn tracked_primitive<const D: usize>(x: &Tensor<D>) -> Option<AdTensor> {
    if !x.device().is_autodiff() {
        return None;
    }
    x.clone().try_into_primitive::<AdFlex>().ok()
}

/// The autodiff node and the host values of `x` when it lives on an autodiff flex device: what
/// every op here takes from each of its inputs.
fn tracked_input<const D: usize>(x: &Tensor<D>) -> Option<(NodeGuard, HostValues)> {
    let ad = tracked_primitive(x)?;
    let guard = ad.node();
    Some((guard, host::<D>(ad.into_primitive())))
}

/// A flex primitive's values on the host: a view of its buffer when contiguous (no copy; holding
/// it keeps burn from reusing the buffer in place), else the values read out.
fn host<const D: usize>(t: FlexTensor) -> HostValues {
    HostValues::new(Tensor::<D>::from_primitive::<Flex>(t))
}

/// Host values as a flex primitive of `shape`.
fn primitive<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Option<FlexTensor> {
    Tensor::<D>::from_data(TensorData::new(values, shape), &Device::flex()).try_into_primitive::<Flex>().ok()
}

fn taps_len(f: Option<&Taps>) -> usize {
    match f {
        None => 1,
        Some(Taps::Separable(t)) => t.len(),
        Some(Taps::Full { n, .. }) => *n,
    }
}

fn reversed(f: &Taps) -> Taps {
    match f {
        Taps::Separable(t) => Taps::Separable(t.iter().rev().copied().collect()),
        Taps::Full { n, k } => Taps::Full { n: *n, k: k.iter().rev().copied().collect() },
    }
}

/// The kernel that computes `upfirdn2d(f, up, down, padding, gain)`: pure up-sampling with a
/// separable filter, or pure down-sampling; `None` otherwise.
pub fn upfirdn_op(f: Option<&Taps>, up: usize, down: usize, padding: [i64; 4], gain: f64) -> Option<FilteredLrelu> {
    Some(match (up, down, f) {
        // The kernel's up-sampling filter carries gain up²; the rest is the linear "activation" gain.
        (_, 1, Some(Taps::Separable(t))) => FilteredLrelu { up, down: 1, padding, gain: (gain / (up * up) as f64) as f32, slope: 1.0, clamp: None, fu: Some(t.clone()), fd: None },
        (1, _, f) => FilteredLrelu { up: 1, down, padding, gain: gain as f32, slope: 1.0, clamp: None, fu: None, fd: f.cloned() },
        _ => return None,
    })
}

/// The op of `upfirdn2d`'s gradient for an input of `in_hw` and an output of `out_hw`.
fn transposed_op(f: Option<&Taps>, up: usize, down: usize, padding: [i64; 4], gain: f64, in_hw: (usize, usize), out_hw: (usize, usize)) -> Option<FilteredLrelu> {
    let t = taps_len(f) as i64;
    let (ih, iw, oh, ow) = (in_hw.0 as i64, in_hw.1 as i64, out_hw.0 as i64, out_hw.1 as i64);
    let (up_, down_) = (up as i64, down as i64);
    let [px0, _, py0, _] = padding;
    let p = [t - px0 - 1, iw * up_ - ow * down_ + px0 - up_ + 1, t - py0 - 1, ih * up_ - oh * down_ + py0 - up_ + 1];
    let f = f.map(reversed);
    upfirdn_op(f.as_ref(), down, up, p, gain)
}

#[derive(Debug)]
struct Upfirdn2dBackward;

#[derive(Clone, Debug)]
struct Upfirdn2dState {
    shape: [usize; 4],
    out_hw: (usize, usize),
    op: FilteredLrelu,
}

impl Backward<Flex, 1> for Upfirdn2dBackward {
    type State = Upfirdn2dState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = host::<4>(grads.consume::<Flex>(&ops.node));
        let Some(parent) = parent else { return };
        let Upfirdn2dState { shape: [n, c, h, w], out_hw, op } = ops.state;
        let dx = op.run(dy.values(), n * c, out_hw.0, out_hw.1, &[]);
        if let Some(dx) = primitive(dx, [n, c, h, w]) {
            grads.register::<Flex>(parent.id, dx);
        }
    }
}

/// `upfirdn2d` on an autodiff flex device through the CPU kernel, forward and backward; `None`
/// on other devices or for shapes the kernel cannot take both ways.
pub fn upfirdn2d_tracked(x: Tensor<4>, f: Option<&Taps>, up: usize, down: usize, padding: [i64; 4], gain: f64) -> Option<Tensor<4>> {
    let op = upfirdn_op(f, up, down, padding, gain)?;
    let [n, c, h, w] = x.dims();
    let (oh, ow) = op.output_size(h, w);
    let back = transposed_op(f, up, down, padding, gain, (h, w), (oh, ow))?;
    if back.output_size(oh, ow) != (h, w) {
        return None;
    }
    let (guard, xs) = tracked_input(&x)?;
    let out = primitive(op.run(xs.values(), n * c, h, w, &[]), [n, c, oh, ow])?;
    let state = Upfirdn2dState { shape: [n, c, h, w], out_hw: (oh, ow), op: back };
    let out = match Upfirdn2dBackward.prepare::<NoCheckpointing>([guard]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AdFlex>(out))
}

#[derive(Debug)]
struct FilteredLreluBackward;

#[derive(Clone, Debug)]
struct FilteredLreluState {
    op: FilteredLrelu,
    /// The gradient's three passes ([`backward_passes`]), made when the forward checked them.
    passes: [FilteredLrelu; 3],
    shape: [usize; 4],
    x: HostValues,
    bias: HostValues,
}

/// The size of `filtered_lrelu`'s up-sampled (pre-activation) plane for an input of `h x w`.
fn mid_size(op: &FilteredLrelu, h: usize, w: usize) -> (usize, usize) {
    let tu = op.fu.as_ref().map_or(1, Vec::len) as i64;
    let [x0, x1, y0, y1] = op.padding;
    let len = |l: usize, p0: i64, p1: i64| ((l * op.up) as i64 + p0 + p1 - (tu - 1)).max(0) as usize;
    (len(h, y0, y1), len(w, x0, x1))
}

/// The three passes of `filtered_lrelu`'s gradient for an `h x w` input: the down-sampling
/// transposed, the up-sampling alone (the pre-activation), the up-sampling transposed; `None`
/// where a plane is empty or the sizes do not chain (the reference ops take those).
fn backward_passes(op: &FilteredLrelu, h: usize, w: usize) -> Option<[FilteredLrelu; 3]> {
    let ((mh, mw), (oh, ow)) = (mid_size(op, h, w), op.output_size(h, w));
    let down_t = transposed_op(op.fd.as_ref(), 1, op.down, [0; 4], 1.0, (mh, mw), (oh, ow))?;
    let up_pass = FilteredLrelu { down: 1, gain: 1.0, slope: 1.0, clamp: None, fd: None, ..op.clone() };
    let fu = op.fu.clone().map(Taps::Separable);
    let up_t = transposed_op(fu.as_ref(), op.up, 1, op.padding, (op.up * op.up) as f64, (h, w), (mh, mw))?;
    let chained = down_t.output_size(oh, ow) == (mh, mw) && up_pass.output_size(h, w) == (mh, mw) && up_t.output_size(mh, mw) == (h, w);
    (chained && h * w * oh * ow * mh * mw > 0).then_some([down_t, up_pass, up_t])
}

impl Backward<Flex, 2> for FilteredLreluBackward {
    type State = FilteredLreluState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent_x, parent_b] = ops.parents;
        let dy = host::<4>(grads.consume::<Flex>(&ops.node));
        if parent_x.is_none() && parent_b.is_none() {
            return;
        }
        let FilteredLreluState { op, passes: [down_t, up_pass, up_t], shape: [n, c, h, w], x, bias } = ops.state;
        let planes = n * c;
        let ((mh, mw), (oh, ow)) = (mid_size(&op, h, w), op.output_size(h, w));
        // Down-sampling, transposed: the gradient at the activation's output; the pre-activation
        // v (bias + up-sampling) recomputed and the activation's derivative applied to it; then
        // up-sampling, transposed: the gradient at x + bias. Plane by plane on the threads, the
        // two up-sampled planes in each worker's buffers (in cache), not three batch-sized
        // tensors 4x the input through memory.
        // (No clamp is an infinite one: branch-free, so the loop compiles to vector selects.)
        let (slope, gain, limit) = (op.slope, op.gain, op.clamp.unwrap_or(f32::INFINITY));
        let (dy, x, bias) = (dy.values(), x.values(), bias.values());
        let mut dx = vec![0f32; planes * h * w];
        let init = || (cpu::Scratch::default(), Vec::new(), Vec::new());
        cpu::par_planes(&mut dx, h * w, cpu::threads(), init, |(scratch, g, v), p, dst| {
            cpu::grow(g, mh * mw);
            cpu::grow(v, mh * mw);
            let (g, v) = (&mut g[..mh * mw], &mut v[..mh * mw]);
            down_t.plane(&dy[p * oh * ow..(p + 1) * oh * ow], oh, ow, 0.0, g, scratch);
            let b = if bias.is_empty() { 0.0 } else { bias[p % bias.len()] };
            up_pass.plane(&x[p * h * w..(p + 1) * h * w], h, w, b, v, scratch);
            for (gi, &vi) in g.iter_mut().zip(v.iter()) {
                let s = if vi > 0.0 { 1.0 } else { slope };
                *gi = if (vi * s * gain).abs() > limit { 0.0 } else { *gi * s * gain };
            }
            up_t.plane(g, mh, mw, 0.0, dst, scratch);
        });
        if let Some(p) = parent_b {
            let mut db = vec![0f32; c];
            for (plane, values) in dx.chunks(h * w).enumerate() {
                db[plane % c] += values.iter().sum::<f32>();
            }
            if let Some(db) = primitive(db, [c]) {
                grads.register::<Flex>(p.id, db);
            }
        }
        if let Some(p) = parent_x {
            if let Some(dx) = primitive(dx, [n, c, h, w]) {
                grads.register::<Flex>(p.id, dx);
            }
        }
    }
}

/// `filtered_lrelu` (`op`, bias required) on an autodiff flex device through the CPU kernel,
/// forward and backward; `None` on other devices or for a 2-D down filter (its transposed pass
/// would up-sample with a 2-D filter, which the kernel does not do).
pub fn filtered_lrelu_tracked(op: &FilteredLrelu, x: Tensor<4>, bias: Tensor<1>) -> Option<Tensor<4>> {
    let [n, c, h, w] = x.dims();
    if matches!(op.fd, Some(Taps::Full { .. })) || n * c == 0 {
        return None;
    }
    let passes = backward_passes(op, h, w)?;
    let (gx, xs) = tracked_input(&x)?;
    let (gb, bs) = tracked_input(&bias)?;
    let (oh, ow) = op.output_size(h, w);
    let out = primitive(op.run(xs.values(), n * c, h, w, bs.values()), [n, c, oh, ow])?;
    let out = match FilteredLreluBackward.prepare::<NoCheckpointing>([gx, gb]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(FilteredLreluState { op: op.clone(), passes, shape: [n, c, h, w], x: xs, bias: bs }, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AdFlex>(out))
}

#[derive(Debug)]
struct Conv2dBackward;

#[derive(Clone, Debug)]
struct Conv2dState {
    /// The input `[n, in, h, w]` and the weights `[out, in, k, k]`, as the forward read them.
    x: HostValues,
    w: HostValues,
    shape: [usize; 4],
    out_ch: usize,
    k: usize,
    pad: usize,
}

thread_local! {
    /// The padded stacked input and the padded-width output of [`conv_samples_tiled`], and
    /// the output gradient and transposed input of [`conv2d_weight_grad`], kept between calls
    /// (only grown): fresh buffers of this size cost a page fault and a zeroed page per 4 KiB.
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 2]> = const { std::cell::RefCell::new([Vec::new(), Vec::new()]) };
}

/// The layout of a batch stacked for one convolution (each sample padded to `hp x wp`, planes of
/// `n·hp·wp`), its `oh x ow` outputs, the `npix` padded-width output positions the product runs
/// over and each tap's shift; and the thread count.
struct Stacked {
    hp: usize,
    wp: usize,
    oh: usize,
    ow: usize,
    plane: usize,
    npix: usize,
    offsets: Vec<usize>,
    threads: usize,
}

impl Stacked {
    fn new(n: usize, h: usize, w: usize, k: usize, pad: usize) -> Self {
        let (hp, wp) = (h + 2 * pad, w + 2 * pad);
        Self {
            hp,
            wp,
            oh: hp + 1 - k,
            ow: wp + 1 - k,
            plane: n * hp * wp,
            npix: (n * hp + 1 - k) * wp,
            offsets: cpu::tap_offsets(k, wp),
            threads: cpu::threads(),
        }
    }
}

/// [`conv_samples`] on the register tiles (`kernels::tiles`): the samples padded and stacked straight into one
/// scratch (`[in, n·hp, wp]`, each sample `hp = h + 2·pad` rows), one `tiles::conv_wide_into`
/// over the whole batch into another, and each sample's `oh x ow` window read out of it. `None`
/// where the tiles do not run.
#[allow(clippy::too_many_arguments)]
fn conv_samples_tiled(x: &[f32], n: usize, in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, k: usize, pad: usize) -> Option<Vec<f32>> {
    if !super::tiles::available() || n == 0 || in_ch == 0 || out_ch == 0 {
        return None;
    }
    let Stacked { hp, wp, oh, ow, plane, npix, offsets, threads } = Stacked::new(n, h, w, k, pad);
    // Channel planes an odd number of cache lines apart: the tiles read every channel's row
    // in turn, and planes a power of two apart (1x1 layers: n·h·w) all fell into the same
    // cache sets (a 1x1 layer ran at a quarter of the 3x3 layers' rate).
    let stride = plane.next_multiple_of(32) + 16;
    SCRATCH.with(|cell| {
        let [xp, wide] = &mut *cell.borrow_mut();
        let len = in_ch * stride;
        cpu::grow(xp, len + k);
        xp[len..len + k].fill(0.0);
        // Channel c of the stacked input: every sample's plane padded, then the gap zeroed.
        cpu::par_planes(&mut xp[..len], stride, threads, || (), |_, c, dst| {
            let (planes, gap) = dst.split_at_mut(plane);
            for (s, sub) in planes.chunks_mut(hp * wp).enumerate() {
                cpu::pad_plane(&x[(s * in_ch + c) * h * w..(s * in_ch + c + 1) * h * w], w, pad, wp, 1.0, sub);
            }
            gap.fill(0.0);
        });
        cpu::grow(wide, out_ch * npix);
        let wide = &mut wide[..out_ch * npix];
        if !super::tiles::conv_wide_into(&xp[..len + k], stride, in_ch, &offsets, weight, out_ch, npix, &[], threads, wide) {
            return None;
        }
        let wide = &*wide;
        let mut out = vec![0f32; n * out_ch * oh * ow];
        // Output plane j = s·out + o: rows s·hp .. s·hp + oh of the wide output's row o.
        cpu::par_planes(&mut out, oh * ow, threads, || (), |_, j, dst| {
            let (s, o) = (j / out_ch, j % out_ch);
            for (r, row) in dst.chunks_mut(ow).enumerate() {
                let at = o * npix + (s * hp + r) * wp;
                row.copy_from_slice(&wide[at..at + ow]);
            }
        });
        Some(out)
    })
}

/// The samples of `x` (`[n, c, h, w]`) stacked into one tall image per channel
/// (`[c, n·h + (n−1)·gap, w]`), `gap` zero rows between consecutive samples.
fn stack_samples(x: &[f32], n: usize, c: usize, h: usize, w: usize, gap: usize) -> Vec<f32> {
    let rows = n * h + n.saturating_sub(1) * gap;
    let mut out = vec![0f32; c * rows * w];
    for s in 0..n {
        for ch in 0..c {
            let src = &x[(s * c + ch) * h * w..(s * c + ch + 1) * h * w];
            let at = (ch * rows + s * (h + gap)) * w;
            out[at..at + h * w].copy_from_slice(src);
        }
    }
    out
}

/// The correlation of every sample of `x` (`[n, in, h, w]`) with `w` (`[out, in, k, k]`), zero
/// padding `pad`, on the CPU GEMM kernel → (values, oh, ow). The batch is one convolution over
/// the samples stacked with `2·pad` zero rows between them (each sample then sees exactly its own
/// padding; the `k − 1` output rows between samples are dropped): large GEMMs for every sample
/// count and image size, the threads busy even on 4x4 and 8x8 layers.
#[allow(clippy::too_many_arguments)]
fn conv_samples(x: &[f32], n: usize, in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, k: usize, pad: usize) -> (Vec<f32>, usize, usize) {
    let (oh, ow) = (h + 2 * pad + 1 - k, w + 2 * pad + 1 - k);
    if super::winograd_train::conv_applies(k, pad, in_ch, out_ch) {
        return super::winograd_train::conv(x, n, in_ch, h, w, weight, out_ch, k, pad);
    }
    if let Some(y) = conv_samples_tiled(x, n, in_ch, h, w, weight, out_ch, k, pad) {
        return (y, oh, ow);
    }
    if n <= 1 {
        return cpu::conv2d_direct(x, in_ch, h, w, weight, out_ch, k, pad, ChannelScales::default());
    }
    let stacked = stack_samples(x, n, in_ch, h, w, 2 * pad);
    let rows = n * h + (n - 1) * 2 * pad;
    let (y, rows_out, _) = cpu::conv2d_direct(&stacked, in_ch, rows, w, weight, out_ch, k, pad, ChannelScales::default());
    let mut out = vec![0f32; n * out_ch * oh * ow];
    for s in 0..n {
        for o in 0..out_ch {
            let at = (o * rows_out + s * (h + 2 * pad)) * ow;
            out[(s * out_ch + o) * oh * ow..(s * out_ch + o + 1) * oh * ow].copy_from_slice(&y[at..at + oh * ow]);
        }
    }
    (out, oh, ow)
}

/// `w[o, i, ky, kx]` → `w'[i, o, k−1−ky, k−1−kx]`: the weights of the input gradient's
/// convolution.
fn transposed_flipped(w: &[f32], out_ch: usize, in_ch: usize, k: usize) -> Vec<f32> {
    let kk = k * k;
    let mut t = vec![0f32; w.len()];
    for o in 0..out_ch {
        for i in 0..in_ch {
            for tap in 0..kk {
                t[(i * out_ch + o) * kk + (kk - 1 - tap)] = w[(o * in_ch + i) * kk + tap];
            }
        }
    }
    t
}

/// `∂W[o, i, ky, kx] = Σₙ Σₚ dy[n, o, p] · x_pad[n, i, p + ky·wp + kx]` over the output positions
/// `p` laid out on the padded width `wp` (`dy` is zero in the extra columns), with the samples'
/// padded planes stacked (so `p` runs over the whole batch, `dy` zero in the rows between
/// samples): one GEMM per tap and block of output channels, on the threads.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_weight_grad(x: &[f32], dy: &[f32], n: usize, in_ch: usize, h: usize, w: usize, out_ch: usize, k: usize, pad: usize) -> Vec<f32> {
    let (hp, wp) = (h + 2 * pad, w + 2 * pad);
    let (ho, wo) = (hp + 1 - k, wp + 1 - k);
    let kk = k * k;
    // Stacked padded planes (n·hp rows each), k values of slack; the product runs over the
    // output rows up to the last sample's last one.
    let plane = n * hp * wp;
    let npix = (n * hp + 1 - k) * wp;
    if n == 0 || npix == 0 {
        return vec![0f32; out_ch * in_ch * kk];
    }
    if super::winograd_train::weight_grad_applies(k, pad, in_ch, out_ch, (n, h, w)) {
        return super::winograd_train::weight_grad(x, dy, n, in_ch, h, w, out_ch, k, pad);
    }
    if let Some(dw) = weight_grad_tiled(x, dy, n, in_ch, h, w, out_ch, k, pad) {
        return dw;
    }
    let mut dw = vec![0f32; out_ch * in_ch * kk];
    let threads = cpu::threads();
    let mut dyw = vec![0f32; out_ch * plane];
    for s in 0..n {
        for o in 0..out_ch {
            let src = &dy[(s * out_ch + o) * ho * wo..(s * out_ch + o + 1) * ho * wo];
            for r in 0..ho {
                let at = o * plane + (s * hp + r) * wp;
                dyw[at..at + wo].copy_from_slice(&src[r * wo..(r + 1) * wo]);
            }
        }
    }
    let blocks = (4 * threads).div_ceil(kk).clamp(1, out_ch.max(1));
    let rows = out_ch.div_ceil(blocks);
    let mut xp = vec![0f32; in_ch * plane + k];
    for s in 0..n {
        for c in 0..in_ch {
            let at = c * plane + s * hp * wp;
            cpu::pad_plane(&x[(s * in_ch + c) * h * w..(s * in_ch + c + 1) * h * w], w, pad, wp, 1.0, &mut xp[at..at + hp * wp]);
        }
    }
    let dst = SharedMut(dw.as_mut_ptr());
    let (xp, dyw) = (&xp, &dyw);
    cpu::par_jobs(kk * blocks, threads, |j| {
        let dst = &dst;
        let (tap, b) = (j % kk, j / kk);
        let (o0, o1) = (b * rows, ((b + 1) * rows).min(out_ch));
        if o0 >= o1 {
            return;
        }
        let (ky, kx) = (tap / k, tap % k);
        // SAFETY: dst addresses rows o0..o1 (stride in·kk) and columns 0..in (stride kk) of tap
        // `tap` in `dw`: only this job writes them. lhs is rows o0..o1, columns 0..npix of `dyw`
        // ([out, plane], npix ≤ plane); rhs element (p, i) is xp[i·plane + ky·wp + kx + p], whose
        // largest index (in−1)·plane + (k−1)·wp + (k−1) + npix − 1 = in·plane + k − 2 < xp.len().
        unsafe {
            cpu::gemm_strided(
                (o1 - o0, in_ch, npix),
                dst.0.add(o0 * in_ch * kk + tap),
                ((in_ch * kk) as isize, kk as isize),
                false,
                (dyw.as_ptr().add(o0 * plane), plane as isize, 1),
                (xp.as_ptr().add(ky * wp + kx), 1, plane as isize),
            );
        }
    });
    dw
}

/// [`conv2d_weight_grad`] on the register tiles (`tiles::weight_grad`): the output gradient on
/// the padded width in whole 6-channel blocks of rows (the extra rows zero) and the padded input
/// in pixel-major order `[n·hp·wp + k][in]` (a tap is a shift by `ky·wp + kx` pixels of it), both
/// in scratch. `None` where the tiles do not run.
#[allow(clippy::too_many_arguments)]
fn weight_grad_tiled(x: &[f32], dy: &[f32], n: usize, in_ch: usize, h: usize, w: usize, out_ch: usize, k: usize, pad: usize) -> Option<Vec<f32>> {
    if !super::tiles::available() {
        return None;
    }
    let Stacked { hp, wp, oh: ho, ow: wo, plane, npix, offsets, threads } = Stacked::new(n, h, w, k, pad);
    SCRATCH.with(|cell| {
        let [dyw, xt] = &mut *cell.borrow_mut();
        let rows = out_ch.div_ceil(super::tiles::ROWS) * super::tiles::ROWS;
        cpu::grow(dyw, rows * plane);
        let dyw = &mut dyw[..rows * plane];
        // Row o of the wide gradient: sample s's rows at s·hp.., zeros in the other rows and
        // columns (they multiply the padding and the rows between samples).
        cpu::par_planes(dyw, plane, threads, || (), |_, o, row| {
            row.fill(0.0);
            if o >= out_ch {
                return;
            }
            for s in 0..n {
                let src = &dy[(s * out_ch + o) * ho * wo..(s * out_ch + o + 1) * ho * wo];
                for r in 0..ho {
                    let at = (s * hp + r) * wp;
                    row[at..at + wo].copy_from_slice(&src[r * wo..(r + 1) * wo]);
                }
            }
        });
        cpu::grow(xt, (plane + k) * in_ch);
        let xt = &mut xt[..(plane + k) * in_ch];
        cpu::pixel_major(x, (n, in_ch, h, w), pad, (hp, wp), in_ch, threads, &mut xt[..plane * in_ch]);
        xt[plane * in_ch..].fill(0.0);
        super::tiles::weight_grad(dyw, plane, out_ch, xt, in_ch, &offsets, npix, threads)
    })
}

impl Backward<Flex, 2> for Conv2dBackward {
    type State = Conv2dState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent_x, parent_w] = ops.parents;
        let dy = host::<4>(grads.consume::<Flex>(&ops.node));
        let Conv2dState { x, w, shape: [n, c, h, wd], out_ch, k, pad } = ops.state;
        let (oh, ow) = (h + 2 * pad + 1 - k, wd + 2 * pad + 1 - k);
        if let Some(p) = parent_x {
            let wt = transposed_flipped(w.values(), out_ch, c, k);
            let (dx, _, _) = conv_samples(dy.values(), n, out_ch, oh, ow, &wt, c, k, k - 1 - pad);
            if let Some(dx) = primitive(dx, [n, c, h, wd]) {
                grads.register::<Flex>(p.id, dx);
            }
        }
        if let Some(p) = parent_w {
            let dw = conv2d_weight_grad(x.values(), dy.values(), n, c, h, wd, out_ch, k, pad);
            if let Some(dw) = primitive(dw, [out_ch, c, k, k]) {
                grads.register::<Flex>(p.id, dw);
            }
        }
    }
}

/// The stride-2 correlation of `x` (`[n, in, h, w]`) with `w` (`[out, in, k, k]`), no padding
/// (`conv2d_resample`'s down-sampling convolution, after its filter), on an autodiff flex
/// device; `None` on other devices or shapes. The same sums as a stride-1 correlation of the
/// input's four pixel phases (space-to-depth: `4·in` channels of `⌈h/2⌉ x ⌈w/2⌉`) with the
/// kernel split by phase (`⌈k/2⌉²` taps each, zeros where the kernel has no tap there), which
/// runs on [`conv2d_tracked`]; both splits are [`phase_split_tracked`] (its gradient the
/// adjoint gather). The kernel's zero taps (7 in 16 for a 3x3 kernel) are skipped by the
/// register tiles in the forward and the input gradient; the weight gradient computes them too.
pub fn conv2d_stride2_tracked(x: Tensor<4>, w: Tensor<4>) -> Option<Tensor<4>> {
    let [_, c, h, wd] = x.dims();
    let [_, in_ch, k, k2] = w.dims();
    if !x.device().is_autodiff() || in_ch != c || k != k2 || k < 2 || h < k || wd < k {
        return None;
    }
    conv2d_tracked(phase_split_tracked(x)?, phase_split_tracked(w)?, 0)
}

/// The stride-2 transposed convolution of `x` (`[n, in, h, w]`) with `w` (`[in, out, k, k]`, burn's
/// `conv_transpose2d` layout), no padding: StyleGAN2's up-sampling convolution (`conv2d_resample`
/// with `up = 2`, before its filter), on an autodiff flex device; `None` on other devices or
/// shapes. It is the adjoint of [`conv2d_stride2_tracked`] with the same weights read as
/// `[out = in, in = out, k, k]`, so the same sums run as that split's adjoint: a stride-1
/// correlation of `x` with the phase-split weights transposed and flipped (padding `⌈k/2⌉ − 1`),
/// its `4·out` channels the output's four pixel phases, merged into `2(h − 1) + k` rows
/// ([`phase_merge_tracked`]), on [`conv2d_tracked`]'s kernels and their backward instead of
/// burn's single-threaded transposed convolution (the split's zero taps skipped as above).
pub fn conv_transpose2d_stride2_tracked(x: Tensor<4>, w: Tensor<4>) -> Option<Tensor<4>> {
    let [_, c, h, wd] = x.dims();
    let [in_ch, out_ch, k, k2] = w.dims();
    if !x.device().is_autodiff() || in_ch != c || k != k2 || k < 2 || h == 0 || wd == 0 || out_ch == 0 {
        return None;
    }
    let half = k.div_ceil(2);
    let split = phase_split_tracked(w)?.swap_dims(0, 1).flip([2, 3]);
    let phases = conv2d_tracked(x, split, half - 1)?;
    phase_merge_tracked(phases, out_ch, 2 * (h - 1) + k, 2 * (wd - 1) + k)
}

/// `x[n, c, 2y + a, 2x + b] → out[n, (2a + b)·c + c, y, x]` for `x` `[n, c, h, w]`, zeros where
/// the input has no row `2y + a` or column `2x + b` (odd sizes; a kernel's missing taps).
fn phase_split(x: &[f32], n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
    let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
    let mut out = vec![0f32; n * 4 * c * h2 * w2];
    let threads = elementwise_threads(out.len());
    // One job per sample (the weights' split has 4 values a plane: a job per plane spent its
    // time on the lock that hands them out).
    cpu::par_planes(&mut out, 4 * c * h2 * w2, threads, || (), |_, s, sample| {
        for (j, dst) in sample.chunks_mut(h2 * w2).enumerate() {
            let (a, b, ch) = (j / c / 2, j / c % 2, j % c);
            let src = &x[(s * c + ch) * h * w..(s * c + ch + 1) * h * w];
            for (y, row) in dst.chunks_mut(w2).enumerate().take((h - a).div_ceil(2)) {
                let line = &src[(2 * y + a) * w..(2 * y + a + 1) * w];
                for (v, &p) in row.iter_mut().zip(line.iter().skip(b).step_by(2)) {
                    *v = p;
                }
            }
        }
    });
    out
}

/// [`phase_split`]'s adjoint: every input position gathers its one output value.
fn phase_merge(g: &[f32], n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
    let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
    let mut out = vec![0f32; n * c * h * w];
    let threads = elementwise_threads(out.len());
    cpu::par_planes(&mut out, c * h * w, threads, || (), |_, s, sample| {
        for (ch, dst) in sample.chunks_mut(h * w).enumerate() {
            let plane = |phase: usize| &g[((s * 4 + phase) * c + ch) * h2 * w2..((s * 4 + phase) * c + ch + 1) * h2 * w2];
            for (yy, row) in dst.chunks_mut(w).enumerate() {
                let (a, y) = (yy % 2, yy / 2);
                let (even, odd) = (&plane(2 * a)[y * w2..(y + 1) * w2], &plane(2 * a + 1)[y * w2..(y + 1) * w2]);
                for (pair, (&e, &o)) in row.chunks_mut(2).zip(even.iter().zip(odd)) {
                    pair[0] = e;
                    if let Some(v) = pair.get_mut(1) {
                        *v = o;
                    }
                }
            }
        }
    });
    out
}

/// Which way [`phases_tracked`] reshuffles a tensor; its gradient goes the other way.
#[derive(Clone, Copy, Debug)]
enum Phases {
    /// `[n, c, h, w]` → `[n, 4·c, ⌈h/2⌉, ⌈w/2⌉]` ([`phase_split`]).
    Split,
    /// The adjoint gather back ([`phase_merge`]).
    Merge,
}

impl Phases {
    /// `x` reshuffled this way, `full` the `[n, c, h, w]` side's shape.
    fn apply(self, x: &[f32], [n, c, h, w]: [usize; 4]) -> Option<FlexTensor> {
        match self {
            Phases::Split => primitive(phase_split(x, n, c, h, w), [n, 4 * c, h.div_ceil(2), w.div_ceil(2)]),
            Phases::Merge => primitive(phase_merge(x, n, c, h, w), [n, c, h, w]),
        }
    }

    fn inverse(self) -> Self {
        match self {
            Phases::Split => Phases::Merge,
            Phases::Merge => Phases::Split,
        }
    }
}

#[derive(Debug)]
struct PhasesBackward;

impl Backward<Flex, 1> for PhasesBackward {
    type State = (Phases, [usize; 4]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = host::<4>(grads.consume::<Flex>(&ops.node));
        let Some(parent) = parent else { return };
        let (way, full) = ops.state;
        if let Some(dx) = way.inverse().apply(dy.values(), full) {
            grads.register::<Flex>(parent.id, dx);
        }
    }
}

/// A tracked tensor split into its pixel phases or merged back (`full` the `[n, c, h, w]` side),
/// forward and backward one copy each on the threads (burn's cat, 6-D permute and their
/// gradients were strided element-by-element copies on one thread).
fn phases_tracked(x: Tensor<4>, way: Phases, full: [usize; 4]) -> Option<Tensor<4>> {
    let (guard, xs) = tracked_input(&x)?;
    let out = way.apply(xs.values(), full)?;
    let out = match PhasesBackward.prepare::<NoCheckpointing>([guard]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((way, full), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AdFlex>(out))
}

/// [`phase_split`] of a tracked tensor (the input or the weights of [`conv2d_stride2_tracked`],
/// the weights of [`conv_transpose2d_stride2_tracked`]).
fn phase_split_tracked(x: Tensor<4>) -> Option<Tensor<4>> {
    let full = x.dims();
    phases_tracked(x, Phases::Split, full)
}

/// [`conv_transpose2d_stride2_tracked`]'s sums on host values, without a graph (inference:
/// StyleGAN2's up-sampling convolution): `x` `[n, groups·in, h, w]`, `w` `[groups·in, out, k,
/// k]` → `[n, groups·out, 2(h − 1) + k, 2(w − 1) + k]`, each group's phase-split weights
/// transposed and flipped, correlated with its input and the phases merged; one convolution over
/// the whole batch when there is one group, else one per sample and group (the fused form's
/// per-sample weights).
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_transpose2d_stride2(x: &[f32], n: usize, in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, k: usize, groups: usize) -> Vec<f32> {
    let (half, in_g) = (k.div_ceil(2), in_ch / groups.max(1));
    let (oh, ow) = (2 * (h - 1) + k, 2 * (w - 1) + k);
    let (calls, samples) = if groups == 1 { (1, n) } else { (n, 1) };
    let mut out = Vec::with_capacity(n * groups * out_ch * oh * ow);
    for s in 0..calls {
        for g in 0..groups {
            let wg = &weight[g * in_g * out_ch * k * k..(g + 1) * in_g * out_ch * k * k];
            let split = transposed_flipped(&phase_split(wg, in_g, out_ch, k, k), in_g, 4 * out_ch, half);
            let at = (s * in_ch + g * in_g) * h * w;
            let (phases, _, _) = conv_samples(&x[at..at + samples * in_g * h * w], samples, in_g, h, w, &split, 4 * out_ch, half, half - 1);
            out.extend_from_slice(&phase_merge(&phases, samples, out_ch, oh, ow));
        }
    }
    out
}

/// [`phase_merge`] of a tracked `[n, 4·c, ⌈h/2⌉, ⌈w/2⌉]` tensor into `[n, c, h, w]` (the output
/// of [`conv_transpose2d_stride2_tracked`]), its gradient the split; `None` where the shape does
/// not fit.
fn phase_merge_tracked(x: Tensor<4>, c: usize, h: usize, w: usize) -> Option<Tensor<4>> {
    let [n, c4, h2, w2] = x.dims();
    if c4 != 4 * c || h2 != h.div_ceil(2) || w2 != w.div_ceil(2) {
        return None;
    }
    phases_tracked(x, Phases::Merge, [n, c, h, w])
}

/// The stride-1 correlation of `x` (`[n, in, h, w]`) with `w` (`[out, in, k, k]`, square), zero
/// padding `pad ≤ k − 1`, on an autodiff flex device through the CPU kernels, forward and
/// backward; `None` on other devices or shapes.
pub fn conv2d_tracked(x: Tensor<4>, w: Tensor<4>, pad: usize) -> Option<Tensor<4>> {
    let [n, c, h, wd] = x.dims();
    let [out_ch, in_ch, k, k2] = w.dims();
    if in_ch != c || k != k2 || k == 0 || pad >= k || h + 2 * pad < k || wd + 2 * pad < k {
        return None;
    }
    let (gx, xs) = tracked_input(&x)?;
    let (gw, ws) = tracked_input(&w)?;
    let (y, oh, ow) = conv_samples(xs.values(), n, c, h, wd, ws.values(), out_ch, k, pad);
    let out = primitive(y, [n, out_ch, oh, ow])?;
    let out = match Conv2dBackward.prepare::<NoCheckpointing>([gx, gw]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(Conv2dState { x: xs, w: ws, shape: [n, c, h, wd], out_ch, k, pad }, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AdFlex>(out))
}

/// `bias_act`'s element-wise function as the reference computes it in f32: `x + b`, the leaky
/// ReLU's slope below zero, the gain, the clamp. A linear activation is slope 1 and no clamp an
/// infinite one (the same values: `z · 1 = z`), so the loops have no branches and vectorise.
#[derive(Clone, Copy, Debug)]
struct BiasAct {
    slope: f32,
    gain: f32,
    clamp: f32,
}

impl BiasAct {
    fn new(slope: Option<f64>, gain: f64, clamp: Option<f64>) -> Self {
        Self { slope: slope.map_or(1.0, |s| s as f32), gain: gain as f32, clamp: clamp.map_or(f32::INFINITY, |c| c as f32) }
    }

    #[inline(always)]
    fn forward(self, z: f32) -> f32 {
        let y = if z < 0.0 { z * self.slope } else { z };
        (y * self.gain).clamp(-self.clamp, self.clamp)
    }

    /// `∂y/∂z` read off the output `y`: zero where the clamp bit (`|y| = c`), else the gain times
    /// 1 above zero and the slope at or below it (as the reference's `z > 0` test: `y > 0` exactly
    /// when `z > 0`).
    #[inline(always)]
    fn derivative(self, y: f32) -> f32 {
        let d = if y > 0.0 { self.gain } else { self.slope * self.gain };
        if y.abs() >= self.clamp {
            0.0
        } else {
            d
        }
    }
}

#[derive(Debug)]
struct BiasActBackward<const D: usize>;

#[derive(Clone, Debug)]
struct BiasActState<const D: usize> {
    /// The output, a view of the buffer the forward returned.
    y: HostValues,
    shape: [usize; D],
    act: BiasAct,
}

/// Threads for an element-wise pass over `len` values (one below 32 Ki: spawning costs more).
fn elementwise_threads(len: usize) -> usize {
    if len < 1 << 15 {
        1
    } else {
        cpu::threads()
    }
}

impl<const D: usize> Backward<Flex, 2> for BiasActBackward<D> {
    type State = BiasActState<D>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent_x, parent_b] = ops.parents;
        let dy = host::<D>(grads.consume::<Flex>(&ops.node));
        if parent_x.is_none() && parent_b.is_none() {
            return;
        }
        let BiasActState { y, shape, act } = ops.state;
        let (c, inner) = (shape[1], shape[2..].iter().product::<usize>());
        let (dy, y) = (dy.values(), y.values());
        // dx = dy · ∂y/∂z, and each plane's sum for the bias gradient.
        let mut dx = vec![0f32; dy.len()];
        let mut sums = vec![0f32; dy.len() / inner.max(1)];
        let sp = SharedMut(sums.as_mut_ptr());
        cpu::par_planes(&mut dx, inner, elementwise_threads(dy.len()), || (), |_, p, plane| {
            let sp = sp;
            for ((d, &g), &v) in plane.iter_mut().zip(&dy[p * inner..]).zip(&y[p * inner..]) {
                *d = g * act.derivative(v);
            }
            // Eight running sums (a fixed order, so the same bits on every run), then their total.
            let mut lanes = [0f32; 8];
            for chunk in plane.chunks(8) {
                for (l, v) in lanes.iter_mut().zip(chunk) {
                    *l += v;
                }
            }
            // SAFETY: plane `p` is handed to one worker only, and `sums` has one slot per plane.
            unsafe { *sp.0.add(p) = lanes.iter().sum() };
        });
        if let Some(p) = parent_b {
            // Summed over the batch in order: the same bits whichever thread took which plane.
            let mut db = vec![0f32; c];
            for (plane, s) in sums.iter().enumerate() {
                db[plane % c] += s;
            }
            if let Some(db) = primitive(db, [c]) {
                grads.register::<Flex>(p.id, db);
            }
        }
        if let Some(p) = parent_x {
            if let Some(dx) = primitive(dx, shape) {
                grads.register::<Flex>(p.id, dx);
            }
        }
    }
}

/// `bias_act(x, b, act, gain, clamp)` (`b` along dim 1; `slope` the leaky ReLU's, `None` for a
/// linear activation) on an autodiff flex device in one pass each way on the CPU threads, where
/// the reference chains a broadcast add, a mask, a scale and a clamp (each a full pass on one
/// thread, with its own backward pass). `None` on other devices or shapes.
pub fn bias_act_tracked<const D: usize>(x: Tensor<D>, b: Tensor<1>, slope: Option<f64>, gain: f64, clamp: Option<f64>) -> Option<Tensor<D>> {
    let shape = x.dims();
    if D < 2 || b.dims()[0] != shape[1] || shape[1] == 0 {
        return None;
    }
    let (gx, xs) = tracked_input(&x)?;
    let (gb, bs) = tracked_input(&b)?;
    let (xv, bv) = (xs.values(), bs.values());
    let act = BiasAct::new(slope, gain, clamp);
    let (c, inner) = (shape[1], shape[2..].iter().product::<usize>());
    let mut y = vec![0f32; xv.len()];
    if inner > 0 {
        cpu::par_planes(&mut y, inner, elementwise_threads(xv.len()), || (), |_, p, plane| {
            let bias = bv[p % c];
            for (v, &xi) in plane.iter_mut().zip(&xv[p * inner..]) {
                *v = act.forward(xi + bias);
            }
        });
    }
    let out = primitive(y, shape)?;
    let out = match BiasActBackward::<D>.prepare::<NoCheckpointing>([gx, gb]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(BiasActState { y: host::<D>(out.clone()), shape, act }, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AdFlex>(out))
}

/// [`bias_act_tracked`] with its forward-mode derivative along the tangent `xt` (R1's and path
/// length's tangent passes): `(y, ẏ = ẋ · ∂y/∂z)`. `∂y/∂z` is piecewise constant in `z`, so, as in
/// the reference, no gradient flows through it: it is read off `y` on the threads into a plain
/// tensor, and `ẏ` is one tracked product (the reference builds it from a chain of masks and
/// scales).
pub fn bias_act_tangent_tracked<const D: usize>(x: Tensor<D>, xt: Tensor<D>, b: Tensor<1>, slope: Option<f64>, gain: f64, clamp: Option<f64>) -> Option<(Tensor<D>, Tensor<D>)> {
    let shape = x.dims();
    if xt.dims() != shape {
        return None;
    }
    let y = bias_act_tracked(x, b, slope, gain, clamp)?;
    let (_, ys) = tracked_input(&y)?;
    let ys = ys.values();
    let act = BiasAct::new(slope, gain, clamp);
    let inner = shape[2..].iter().product::<usize>().max(1);
    let mut d = vec![0f32; ys.len()];
    let threads = elementwise_threads(d.len());
    cpu::par_planes(&mut d, inner, threads, || (), |_, p, plane| {
        for (v, &yi) in plane.iter_mut().zip(&ys[p * inner..]) {
            *v = act.derivative(yi);
        }
    });
    let d = Tensor::<D>::from_data(TensorData::new(d, shape), &xt.device());
    Some((y, xt * d))
}

#[derive(Debug)]
struct ScaleChannelsBackward;

#[derive(Clone, Debug)]
struct ScaleChannelsState {
    /// The input and the scales, as the forward read them.
    x: HostValues,
    s: HostValues,
    shape: [usize; 4],
}

impl Backward<Flex, 2> for ScaleChannelsBackward {
    type State = ScaleChannelsState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent_x, parent_s] = ops.parents;
        let dy = host::<4>(grads.consume::<Flex>(&ops.node));
        let ScaleChannelsState { x, s, shape: [n, c, h, w] } = ops.state;
        let (dy, x, s) = (dy.values(), x.values(), s.values());
        let plane = h * w;
        if let Some(p) = parent_s {
            // ∂s[n, c] = Σ_p dy·x over the plane, eight running sums in a fixed order.
            let mut ds = vec![0f32; n * c];
            cpu::par_planes(&mut ds, 1.max(n * c / 64), elementwise_threads(dy.len()), || (), |_, block, out| {
                let first = block * 1.max(n * c / 64);
                for (j, v) in out.iter_mut().enumerate() {
                    let at = (first + j) * plane;
                    let mut lanes = [0f32; 8];
                    for (g, xs) in dy[at..at + plane].chunks(8).zip(x[at..at + plane].chunks(8)) {
                        for ((l, a), b) in lanes.iter_mut().zip(g).zip(xs) {
                            *l += a * b;
                        }
                    }
                    *v = lanes.iter().sum();
                }
            });
            if let Some(ds) = primitive(ds, [n, c]) {
                grads.register::<Flex>(p.id, ds);
            }
        }
        if let Some(p) = parent_x {
            let mut dx = vec![0f32; dy.len()];
            cpu::par_planes(&mut dx, plane, elementwise_threads(dy.len()), || (), |_, j, out| {
                for (v, g) in out.iter_mut().zip(&dy[j * plane..(j + 1) * plane]) {
                    *v = g * s[j];
                }
            });
            if let Some(dx) = primitive(dx, [n, c, h, w]) {
                grads.register::<Flex>(p.id, dx);
            }
        }
    }
}

/// `x · s` with `x` `[n, c, h, w]` and one scale per sample and channel `s` `[n, c]` (the
/// modulation and demodulation of the training convolutions in their non-fused form), forward
/// and backward on the CPU threads (`∂x = dy · s`, `∂s = Σ dy · x` per plane), where burn's
/// broadcast product and its reduction run on one thread. `None` on other devices or shapes.
pub fn scale_channels_tracked(x: Tensor<4>, s: Tensor<2>) -> Option<Tensor<4>> {
    let shape = x.dims();
    let [n, c, h, w] = shape;
    if s.dims() != [n, c] {
        return None;
    }
    let (gx, xs) = tracked_input(&x)?;
    let (gs, ss) = tracked_input(&s)?;
    let plane = h * w;
    let mut y = vec![0f32; n * c * plane];
    {
        let (xv, sv) = (xs.values(), ss.values());
        cpu::par_planes(&mut y, plane, elementwise_threads(xv.len()), || (), |_, j, out| {
            for (v, a) in out.iter_mut().zip(&xv[j * plane..(j + 1) * plane]) {
                *v = a * sv[j];
            }
        });
    }
    let out = primitive(y, shape)?;
    let out = match ScaleChannelsBackward.prepare::<NoCheckpointing>([gx, gs]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(ScaleChannelsState { x: xs, s: ss, shape }, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AdFlex>(out))
}
