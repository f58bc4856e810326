//! The pure burn-tensor reference implementations of the official custom ops.
//!
//! `upfirdn2d`, `bias_act` and `filtered_lrelu` written with nothing but burn tensor operations
//! (zero insertion, padding, depthwise convolution, strided sampling), following the reference
//! semantics of `torch_utils/ops/*.py`. They run on every backend, are differentiable by burn's
//! autodiff, and are the judge every faster kernel is tested against.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

/// A FIR filter: separable 1-D taps (`[taps]`) or a full 2-D kernel (`[fh, fw]`).
#[derive(Clone, Debug)]
pub enum Fir {
    /// 1-D taps, applied along x then y.
    Separable(Tensor<1>),
    /// Non-separable 2-D kernel.
    Full(Tensor<2>),
}

impl Fir {
    /// Wraps a stored filter buffer: 1-D → separable, 2-D → full.
    pub fn from_buffer(t: Tensor<2>, separable: bool) -> Self {
        if separable {
            let n = t.dims()[1];
            Self::Separable(t.reshape([n]))
        } else {
            Self::Full(t)
        }
    }

    /// `(fw, fh)`.
    pub fn size(&self) -> (usize, usize) {
        match self {
            Self::Separable(t) => (t.dims()[0], t.dims()[0]),
            Self::Full(t) => (t.dims()[1], t.dims()[0]),
        }
    }
}

/// Activation of `bias_act`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Linear,
    /// Leaky ReLU with the given negative slope.
    LeakyRelu(f64),
}

impl Activation {
    /// The leaky ReLU's negative slope; `None` for a linear activation.
    pub fn slope(self) -> Option<f64> {
        match self {
            Self::LeakyRelu(slope) => Some(slope),
            Self::Linear => None,
        }
    }
}

/// Default gain of an activation (√2 for (leaky) ReLU, 1 for linear).
pub fn default_gain(act: Activation) -> f64 {
    match act {
        Activation::Linear => 1.0,
        Activation::LeakyRelu(_) => std::f64::consts::SQRT_2,
    }
}

/// `bias_act`: `clamp(gain · act(x + b), ±clamp)` with `b` broadcast along dim 1.
pub fn bias_act<const D: usize>(
    x: Tensor<D>,
    b: Option<Tensor<1>>,
    act: Activation,
    gain: f64,
    clamp: Option<f64>,
) -> Tensor<D> {
    let mut x = match b {
        Some(b) => {
            let c = b.dims()[0];
            let mut shape = [1usize; D];
            shape[1] = c;
            x + b.reshape(shape)
        }
        None => x,
    };
    if let Activation::LeakyRelu(slope) = act {
        x = burn::tensor::activation::leaky_relu(x, slope);
    }
    if gain != 1.0 {
        x = x.mul_scalar(gain);
    }
    if let Some(c) = clamp {
        x = x.clamp(-c, c);
    }
    x
}

/// The forward-mode derivative of [`bias_act`]: `(y, ẏ)` for the input `x` and its tangent `xt`
/// (the bias is constant along the tangent). The slopes follow torch's backward: leaky ReLU passes
/// `1` where `x + b > 0`, else the slope; the clamp passes where `−c ≤ y ≤ c`. Every factor is
/// an ordinary tensor op, so autodiff differentiates `ẏ` w.r.t. the weights: the first-order way
/// to R1's and path length's gradients.
pub fn bias_act_tangent<const D: usize>(
    x: Tensor<D>,
    xt: Tensor<D>,
    b: Option<Tensor<1>>,
    act: Activation,
    gain: f64,
    clamp: Option<f64>,
) -> (Tensor<D>, Tensor<D>) {
    let z = match b {
        Some(b) => {
            let mut shape = [1usize; D];
            shape[1] = b.dims()[0];
            x + b.reshape(shape)
        }
        None => x,
    };
    let mut yt = xt;
    if let Activation::LeakyRelu(slope) = act {
        let positive = z.clone().greater_elem(0.0).float();
        yt = yt * positive.mul_scalar(1.0 - slope).add_scalar(slope);
    }
    let y = bias_act(z, None, act, gain, None);
    if gain != 1.0 {
        yt = yt.mul_scalar(gain);
    }
    match clamp {
        Some(c) => {
            let inside = y.clone().greater_equal_elem(-c).float() * y.clone().lower_equal_elem(c).float();
            (y.clamp(-c, c), yt * inside)
        }
        None => (y, yt),
    }
}

/// Zero insertion: sample `i` goes to `i·up`, followed by `up − 1` zeros, along both axes.
fn zero_insert(x: Tensor<4>, up_x: usize, up_y: usize) -> Tensor<4> {
    if up_x == 1 && up_y == 1 {
        return x;
    }
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let mut y: Tensor<6> = x.reshape([n, c, h, 1, w, 1]);
    if up_y > 1 {
        let z = Tensor::<6>::zeros([n, c, h, up_y - 1, w, 1], &device);
        y = Tensor::cat(vec![y, z], 3);
    }
    if up_x > 1 {
        let z = Tensor::<6>::zeros([n, c, h, up_y, w, up_x - 1], &device);
        y = Tensor::cat(vec![y, z], 5);
    }
    y.reshape([n, c, h * up_y, w * up_x])
}

/// Crops the negative parts of `[x0, x1, y0, y1]` and returns the remaining (non-negative) pads.
pub(crate) fn crop_negative(x: Tensor<4>, padding: [i64; 4]) -> (Tensor<4>, [usize; 4]) {
    let [_, _, h, w] = x.dims();
    let [x0, x1, y0, y1] = padding;
    let cx0 = (-x0).max(0) as usize;
    let cx1 = (-x1).max(0) as usize;
    let cy0 = (-y0).max(0) as usize;
    let cy1 = (-y1).max(0) as usize;
    let mut x = x;
    if cx0 + cx1 > 0 {
        x = x.narrow(3, cx0, w.saturating_sub(cx0 + cx1));
    }
    if cy0 + cy1 > 0 {
        x = x.narrow(2, cy0, h.saturating_sub(cy0 + cy1));
    }
    (x, [x0.max(0) as usize, x1.max(0) as usize, y0.max(0) as usize, y1.max(0) as usize])
}

/// Output length of upfirdn2d along one axis.
pub fn upfirdn_len(len: usize, up: usize, pad0: i64, pad1: i64, taps: usize, down: usize) -> i64 {
    ((len * up) as i64 + pad0 + pad1 - (taps as i64 - 1) + (down as i64 - 1)).div_euclid(down as i64)
}

/// `upfirdn2d(x, f, up, down, padding, flip_filter, gain)` (reference semantics: zero-insert,
/// pad/crop, true convolution with `f` scaled by `gain^(ndim/2)`, keep every `down`-th sample).
pub fn upfirdn2d(
    x: Tensor<4>,
    f: Option<&Fir>,
    up: usize,
    down: usize,
    padding: [i64; 4],
    flip_filter: bool,
    gain: f64,
) -> Tensor<4> {
    let x = zero_insert(x, up, up);
    let (x, [px0, px1, py0, py1]) = crop_negative(x, padding);
    let c = x.dims()[1];
    match f {
        None => {
            // 1x1 identity filter: pad, scale, subsample.
            let x = x.pad((px0, px1, py0, py1), burn::tensor::ops::PadMode::Constant(0.0));
            let x = if gain != 1.0 { x.mul_scalar(gain) } else { x };
            subsample(x, down)
        }
        Some(Fir::Separable(taps)) => {
            let t = taps.dims()[0];
            let g = gain.sqrt();
            let k = if flip_filter { taps.clone() } else { taps.clone().flip([0]) };
            let k = if g != 1.0 { k.mul_scalar(g) } else { k };
            let kx: Tensor<4> = k.clone().reshape([1, 1, 1, t]).repeat_dim(0, c);
            let ky: Tensor<4> = k.reshape([1, 1, t, 1]).repeat_dim(0, c);
            let x = conv2d(x, kx, None, ConvOptions::new_with_padding([1, down], [(0, 0), (px0, px1)], [1, 1], c));
            conv2d(x, ky, None, ConvOptions::new_with_padding([down, 1], [(py0, py1), (0, 0)], [1, 1], c))
        }
        Some(Fir::Full(kernel)) => {
            let [fh, fw] = kernel.dims();
            let k = if flip_filter { kernel.clone() } else { kernel.clone().flip([0, 1]) };
            let k = if gain != 1.0 { k.mul_scalar(gain) } else { k };
            let k: Tensor<4> = k.reshape([1, 1, fh, fw]).repeat_dim(0, c);
            conv2d(x, k, None, ConvOptions::new_with_padding([down, down], [(py0, py1), (px0, px1)], [1, 1], c))
        }
    }
}

fn subsample(x: Tensor<4>, down: usize) -> Tensor<4> {
    if down == 1 {
        return x;
    }
    let [n, c, h, w] = x.dims();
    let (oh, ow) = (h.div_ceil(down), w.div_ceil(down));
    // Pad to a multiple of `down`, then keep phase 0 of each block.
    let x = x.pad((0, ow * down - w, 0, oh * down - h), burn::tensor::ops::PadMode::Constant(0.0));
    let x: Tensor<6> = x.reshape([n, c, oh, down, ow, down]);
    x.narrow(3, 0, 1).narrow(5, 0, 1).reshape([n, c, oh, ow])
}

/// `filter2d`: same-size filtering (padding centred on the filter).
pub fn filter2d(x: Tensor<4>, f: &Fir, padding: [i64; 4], gain: f64) -> Tensor<4> {
    let (fw, fh) = f.size();
    let p = [
        padding[0] + (fw / 2) as i64,
        padding[1] + ((fw - 1) / 2) as i64,
        padding[2] + (fh / 2) as i64,
        padding[3] + ((fh - 1) / 2) as i64,
    ];
    upfirdn2d(x, Some(f), 1, 1, p, false, gain)
}

/// `filtered_lrelu`: bias, upsample with `fu`, leaky ReLU with gain and clamp, downsample with `fd`.
#[allow(clippy::too_many_arguments)]
pub fn filtered_lrelu(
    x: Tensor<4>,
    fu: Option<&Fir>,
    fd: Option<&Fir>,
    b: Option<Tensor<1>>,
    up: usize,
    down: usize,
    padding: [i64; 4],
    gain: f64,
    slope: f64,
    clamp: Option<f64>,
) -> Tensor<4> {
    let x = bias_act(x, b, Activation::Linear, 1.0, None);
    let x = upfirdn2d(x, fu, up, 1, padding, false, (up * up) as f64);
    let act = if slope == 1.0 { Activation::Linear } else { Activation::LeakyRelu(slope) };
    let x = bias_act(x, None, act, gain, clamp);
    upfirdn2d(x, fd, 1, down, [0, 0, 0, 0], false, 1.0)
}
