//! The WGSL kernels under burn's Autodiff: forward on the kernel, backward as a proven
//! composition of the same kernels (training runs on them).
//!
//! - `upfirdn2d`'s gradient is `upfirdn2d` of the output gradient with up and down swapped, the
//!   filter flipped and the padding transposed (as the official `Upfirdn2dCuda.backward`).
//! - `filtered_lrelu`'s gradient runs its three stages backwards: the transposed down-sampling
//!   (`upfirdn2d.wgsl`), the activation's derivative (`gain · (v > 0 ? 1 : slope)`, zero where the
//!   clamp bit) on the pre-activation `v`, recomputed with the kernel's first pass instead of
//!   stored (the official op stores sign bits; recomputing costs one pass and no memory between
//!   forward and backward), and the transposed up-sampling. The bias gradient is the input
//!   gradient summed over batch and space.
//! - Both the backward and the two-pass forward walk the batch in blocks of samples (or of one
//!   sample's channels) whose up-sampled intermediates fit one buffer of the device
//!   ([`super::Blocks`]); the results are the same as in one piece.
//!
//! Judged against the reference under autodiff in tests/wgsl_kernels.rs.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::{DType, Tensor};
use cubecl::RuntimeId;

use super::{bias_block, block, cube, dims4, into_contiguous, max_buffer_bytes, upfirdn2d_cube, CubeBackend, CubeTensor, FilteredLreluOp, FirHost, Strategy};

/// burn's autodiff over the cube (wgpu) backend, as `Device::wgpu(..).autodiff()` builds it.
type AdCube = Autodiff<CubeBackend>;
type AdTensor = burn::backend::tensor::FloatTensor<AdCube>;

/// The autodiff primitive of `x` when it is an f32 tensor on an autodiff wgpu device.
fn tracked_primitive<const D: usize>(x: &Tensor<D>) -> Option<AdTensor> {
    let t = x.clone().try_into_primitive::<AdCube>().ok()?;
    let p = t.primitive();
    (p.device.runtime() == RuntimeId::Wgpu && p.dtype == DType::F32).then_some(t)
}

/// The taps reversed (flip_filter toggled: the kernels take raw taps and flip them).
fn reversed(f: &FirHost) -> FirHost {
    match f {
        FirHost::Separable(t) => FirHost::Separable(t.iter().rev().copied().collect()),
        FirHost::Full { n, k } => FirHost::Full { n: *n, k: k.iter().rev().copied().collect() },
    }
}

fn taps_size(f: Option<&FirHost>) -> i64 {
    match f {
        None => 1,
        Some(FirHost::Separable(t)) => t.len() as i64,
        Some(FirHost::Full { n, .. }) => *n as i64,
    }
}

/// The gradient of `upfirdn2d(x [.., ih, iw], f, up, down, padding, gain)` w.r.t. `x`, given the
/// output gradient `dy`: the transposed op.
fn upfirdn2d_transposed(dy: &CubeTensor, in_hw: (usize, usize), f: Option<&FirHost>, up: usize, down: usize, padding: [i64; 4], gain: f32) -> CubeTensor {
    let [_, _, oh, ow] = dims4(dy);
    let (ih, iw) = (in_hw.0 as i64, in_hw.1 as i64);
    let (up_, down_) = (up as i64, down as i64);
    let t = taps_size(f);
    let [px0, _, py0, _] = padding;
    let p = [
        t - px0 - 1,
        iw * up_ - ow as i64 * down_ + px0 - up_ + 1,
        t - py0 - 1,
        ih * up_ - oh as i64 * down_ + py0 - up_ + 1,
    ];
    let f = f.map(reversed);
    let dx = upfirdn2d_cube(dy, f.as_ref(), down, up, p, gain);
    debug_assert_eq!([dims4(&dx)[2], dims4(&dx)[3]], [in_hw.0, in_hw.1], "upfirdn2d transposed size");
    dx
}

#[derive(Debug)]
struct Upfirdn2dBackward;

#[derive(Clone, Debug)]
struct Upfirdn2dState {
    in_hw: (usize, usize),
    f: Option<FirHost>,
    up: usize,
    down: usize,
    padding: [i64; 4],
    gain: f32,
}

impl Backward<CubeBackend, 1> for Upfirdn2dBackward {
    type State = Upfirdn2dState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = into_contiguous(grads.consume::<CubeBackend>(&ops.node));
        let Some(parent) = parent else { return };
        let s = ops.state;
        let dx = upfirdn2d_transposed(&dy, s.in_hw, s.f.as_ref(), s.up, s.down, s.padding, s.gain);
        grads.register::<CubeBackend>(parent.id, dx);
    }
}

/// `upfirdn2d_wgpu` on an autodiff wgpu device; `None` on any other device.
pub(super) fn upfirdn2d_tracked(x: Tensor<4>, f: Option<&FirHost>, up: usize, down: usize, padding: [i64; 4], gain: f32) -> Option<Tensor<4>> {
    let ad = tracked_primitive(&x)?;
    let [_, _, h, w] = x.dims();
    let guard = ad.node();
    let xt = into_contiguous(ad.into_primitive());
    let out = upfirdn2d_cube(&xt, f, up, down, padding, gain);
    let state = Upfirdn2dState { in_hw: (h, w), f: f.cloned(), up, down, padding, gain };
    let out = match Upfirdn2dBackward.prepare::<NoCheckpointing>([guard]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AdCube>(out))
}

#[derive(Debug)]
struct FilteredLreluBackward;

#[derive(Clone, Debug)]
struct FilteredLreluState {
    op: FilteredLreluOp,
    x: CubeTensor,
    bias: CubeTensor,
}

impl Backward<CubeBackend, 2> for FilteredLreluBackward {
    type State = FilteredLreluState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent_x, parent_b] = ops.parents;
        let dy = into_contiguous(grads.consume::<CubeBackend>(&ops.node));
        if parent_x.is_none() && parent_b.is_none() {
            return;
        }
        let FilteredLreluState { op, x, bias } = ops.state;
        let [n, c, h, w] = dims4(&x);
        let dx = op.input_gradient(&dy, &x, &bias, max_buffer_bytes(&x));
        if let Some(p) = parent_b {
            let db: Tensor<1> = Tensor::<4>::from_primitive::<CubeBackend>(dx.clone()).sum_dim(0).sum_dim(2).sum_dim(3).reshape([c]);
            grads.register::<CubeBackend>(p.id, cube(db));
        }
        if let Some(p) = parent_x {
            debug_assert_eq!(dims4(&dx), [n, c, h, w]);
            grads.register::<CubeBackend>(p.id, dx);
        }
    }
}

impl FilteredLreluOp {
    /// The gradient w.r.t. `x + bias` (so also w.r.t. `x`) given the output gradient `dy`, in
    /// blocks of samples or channels whose up-sampled intermediates fit `limit` bytes each.
    fn input_gradient(&self, dy: &CubeTensor, x: &CubeTensor, bias: &CubeTensor, limit: u64) -> CubeTensor {
        self.mid_blocks(x, limit).assemble(|ns, cs| self.block_input_gradient(&block(dy, ns.clone(), cs.clone()), &block(x, ns, cs.clone()), &bias_block(bias, cs)))
    }

    /// [`Self::input_gradient`] of one block.
    fn block_input_gradient(&self, dy: &CubeTensor, x: &CubeTensor, bias: &CubeTensor) -> CubeTensor {
        let [_, _, h, w] = dims4(x);
        let (mh, mw) = self.mid_size(h, w);
        // Down-sampling, transposed: the gradient at the activation's output.
        let g_act = upfirdn2d_transposed(dy, (mh, mw), self.fd.as_ref(), 1, self.down, [0, 0, 0, 0], 1.0);
        // The pre-activation v (bias + up-sampling), and the activation's derivative on it.
        let v = Tensor::<4>::from_primitive::<CubeBackend>(self.up_pass(x, Some(bias), false));
        let g = Tensor::<4>::from_primitive::<CubeBackend>(g_act);
        let positive = v.clone().greater_elem(0.0);
        let slope = v.ones_like().mul_scalar(self.slope as f64).mask_fill(positive, 1.0);
        let slope = match self.clamp {
            // Where |gain · lrelu(v)| exceeds the clamp the output is constant.
            Some(limit) => {
                let clipped = (v * slope.clone()).mul_scalar(self.gain as f64).abs().greater_elem(limit as f64);
                slope.mask_fill(clipped, 0.0)
            }
            None => slope,
        };
        let g_mid = cube((g * slope).mul_scalar(self.gain as f64));
        // Up-sampling, transposed: the gradient at x + bias.
        upfirdn2d_transposed(&g_mid, (h, w), self.fu.as_ref(), self.up, 1, self.padding, (self.up * self.up) as f32)
    }
}

/// `filtered_lrelu_wgpu` on an autodiff wgpu device (bias required: every StyleGAN3 layer has
/// one); `None` on any other device.
pub(super) fn filtered_lrelu_tracked(strategy: Strategy, op: &FilteredLreluOp, x: Tensor<4>, bias: Option<Tensor<1>>) -> Option<Tensor<4>> {
    let xa = tracked_primitive(&x)?;
    let ba = tracked_primitive(&bias?)?;
    let (gx, gb) = (xa.node(), ba.node());
    let xt = into_contiguous(xa.into_primitive());
    let bt = into_contiguous(ba.into_primitive());
    let out = op.forward(strategy, &xt, Some(&bt))?;
    let out = match FilteredLreluBackward.prepare::<NoCheckpointing>([gx, gb]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(FilteredLreluState { op: op.clone(), x: xt, bias: bt }, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AdCube>(out))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, DeviceKind, Distribution, Tensor};

    use super::super::{cube, Blocks, FilteredLreluOp, FirHost};
    use super::CubeTensor;

    fn values(t: &CubeTensor) -> Vec<f32> {
        Tensor::<4>::from_primitive::<super::CubeBackend>(t.clone()).into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn blocks_fit_the_limit() {
        // Everything fits: one block.
        assert_eq!(Blocks::new(8, 256, 100, u64::MAX), Blocks { n: 8, c: 256, samples: 8, channels: 256 });
        // Three whole samples per buffer.
        assert_eq!(Blocks::new(8, 4, 100, 1_250), Blocks { n: 8, c: 4, samples: 3, channels: 4 });
        // Not one sample: channels of one sample; at least one plane even past the limit.
        assert_eq!(Blocks::new(8, 4, 100, 250), Blocks { n: 8, c: 4, samples: 1, channels: 2 });
        assert_eq!(Blocks::new(8, 4, 100, 50), Blocks { n: 8, c: 4, samples: 1, channels: 1 });
    }

    /// The two-pass forward and the backward give the same numbers in blocks as in one piece.
    #[test]
    fn blocked_filtered_lrelu_equals_whole() {
        let device = Device::wgpu(DeviceKind::DefaultDevice);
        device.seed(11);
        let (n, c) = (3, 5);
        let x = cube(Tensor::<4>::random([n, c, 13, 13], Distribution::Normal(0.0, 2.0), &device));
        let bias = cube(Tensor::<1>::random([c], Distribution::Normal(0.0, 0.5), &device));
        let taps = |k: usize| FirHost::Separable((0..k).map(|i| 1.0 + (i * (k - 1 - i)) as f32).collect());
        let op = FilteredLreluOp { fu: Some(taps(6)), fd: Some(taps(4)), up: 2, down: 2, padding: [4, 3, 4, 3], gain: 1.4, slope: 0.2, clamp: Some(2.5) };
        let whole = op.two_pass(&x, Some(&bias), u64::MAX);
        let dy = cube(Tensor::<4>::from_primitive::<super::CubeBackend>(whole.clone()).random_like(Distribution::Normal(0.0, 1.0)));
        let dx_whole = op.input_gradient(&dy, &x, &bias, u64::MAX);
        let (mh, mw) = op.mid_size(13, 13);
        let plane = (mh * mw * 4) as u64;
        // Two samples a block (the last block one), then two channels a block (the last one).
        for limit in [plane * c as u64 * 2, plane * 2] {
            assert_eq!(values(&op.two_pass(&x, Some(&bias), limit)), values(&whole), "forward, limit {limit}");
            assert_eq!(values(&op.input_gradient(&dy, &x, &bias, limit)), values(&dx_whole), "backward, limit {limit}");
        }
    }
}
