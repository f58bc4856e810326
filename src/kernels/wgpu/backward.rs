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
//!
//! Judged against the reference under autodiff in tests/wgsl_kernels.rs.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::{DType, Tensor};
use cubecl::RuntimeId;

use super::{dims4, into_contiguous, upfirdn2d_cube, CubeBackend, CubeTensor, FilteredLreluOp, FirHost, Strategy};

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
        let (mh, mw) = op.mid_size(h, w);
        // Down-sampling, transposed: the gradient at the activation's output.
        let g_act = upfirdn2d_transposed(&dy, (mh, mw), op.fd.as_ref(), 1, op.down, [0, 0, 0, 0], 1.0);
        // The pre-activation v (bias + up-sampling), and the activation's derivative on it.
        let v = Tensor::<4>::from_primitive::<CubeBackend>(op.up_pass(&x, Some(&bias), false));
        let g = Tensor::<4>::from_primitive::<CubeBackend>(g_act);
        let positive = v.clone().greater_elem(0.0);
        let slope = v.ones_like().mul_scalar(op.slope as f64).mask_fill(positive, 1.0);
        let slope = match op.clamp {
            // Where |gain · lrelu(v)| exceeds the clamp the output is constant.
            Some(limit) => {
                let clipped = (v * slope.clone()).mul_scalar(op.gain as f64).abs().greater_elem(limit as f64);
                slope.mask_fill(clipped, 0.0)
            }
            None => slope,
        };
        let g_mid = (g * slope).mul_scalar(op.gain as f64);
        let g_mid = into_contiguous(g_mid.try_into_primitive::<CubeBackend>().expect("a cube tensor stays one"));
        // Up-sampling, transposed: the gradient at x + bias.
        let dx = upfirdn2d_transposed(&g_mid, (h, w), op.fu.as_ref(), op.up, 1, op.padding, (op.up * op.up) as f32);
        if let Some(p) = parent_b {
            let dxt = Tensor::<4>::from_primitive::<CubeBackend>(dx.clone());
            let db: Tensor<1> = dxt.sum_dim(0).sum_dim(2).sum_dim(3).reshape([c]);
            grads.register::<CubeBackend>(p.id, db.try_into_primitive::<CubeBackend>().expect("a cube tensor stays one"));
        }
        if let Some(p) = parent_x {
            debug_assert_eq!(dims4(&dx), [n, c, h, w]);
            grads.register::<CubeBackend>(p.id, dx);
        }
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
