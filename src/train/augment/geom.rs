//! The geometric half of the pipe: the padding and `affine_grid` matrix derived from `G_inv`
//! (float32, in the official operation order), and its execution on a tensor — reflect pad,
//! 2× upsampling with the sym6 filter, bilinear `grid_sample` (zeros padding,
//! `align_corners=False`), 2× downsampling with the flipped filter and crop.
//!
//! Everything after the matrices is linear in the image and built from burn tensor operations
//! (index `select`/`gather`, products, sums and the `upfirdn2d` dispatcher), so burn's autodiff carries
//! the image gradient on every backend; the sampling grid is a host constant, as the official
//! `grid_sample_gradfix` never differentiates it either.

use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::{matmul, scale2d, translate2d, Mat3};
use crate::kernels::cpu::Taps;
use crate::kernels::reference::Fir;
use crate::kernels::{self, KernelChoice, ResampleFilter};

/// `wavelets['sym6']` of `training/augment.py`: the Symlet-6 decomposition low-pass filter (the
/// coefficients PyWavelets lists), in the official order. `Hz_geom` is this normalised to sum 1.
const SYM6: [f64; 12] = [
    0.015404109327027373,
    0.0034907120842174702,
    -0.11799011114819057,
    -0.048311742585633,
    0.4910559419267466,
    0.787641141030194,
    0.3379294217276218,
    -0.07263752278646252,
    -0.021060292512300564,
    0.04472490177066578,
    0.0017677118642428036,
    -0.007800708325034148,
];

/// `Hz_pad = Hz_geom.shape[0] // 4`.
pub(super) const HZ_PAD: usize = SYM6.len() / 4;

/// `upfirdn2d.setup_filter(wavelets['sym6'])`: float32 taps divided by their float32 sum.
pub(super) fn hz_geom() -> Vec<f32> {
    let taps: Vec<f32> = SYM6.iter().map(|&v| v as f32).collect();
    let sum = taps.iter().map(|&v| v as f64).sum::<f64>() as f32;
    taps.iter().map(|&v| v / sum).collect()
}

/// Sampling positions and bilinear weights of one `grid_sample` call. The input is padded with
/// one zero pixel on every side and read through four shifted `(h+1) × (w+1)` views, one per tap
/// (NW, NE, SW, SE), so one index per output pixel (into its batch's view) serves all four taps;
/// a tap outside the input gets weight 0.
#[derive(Clone, Debug)]
pub(super) struct Grid {
    pub idx: Vec<i64>,
    pub weight: [Vec<f32>; 4],
    pub out_h: usize,
    pub out_w: usize,
}

/// Everything the geometric execution needs, derived on the host from the per-sample `G_inv`.
#[derive(Clone, Debug)]
pub(super) struct Geometry {
    /// `G_inv` after all geometric parameters (pixel units, origin at the image centre).
    pub g_inv: Vec<Mat3>,
    /// Reflect-padding margins `[left, right, top, bottom]` (one for the whole batch).
    pub pad: [usize; 4],
    /// The final matrix; its first two rows are the `affine_grid` theta.
    pub g_inv_grid: Vec<Mat3>,
    pub grid: Grid,
}

impl Geometry {
    /// The official "execute geometric transformations" block up to the grid, for images of
    /// `height × width`: padding from the transformed corners, then the origin, upsampling and
    /// normalisation adjustments, each a float32 matrix product as torch evaluates it.
    pub fn new(g_inv: Vec<Mat3>, height: usize, width: usize) -> Self {
        let (w, h) = (width as f64, height as f64);
        let cx = ((w - 1.0) / 2.0) as f32;
        let cy = ((h - 1.0) / 2.0) as f32;
        let corners = [[-cx, -cy, 1.0], [cx, -cy, 1.0], [cx, cy, 1.0], [-cx, cy, 1.0f32]];
        // margin = max over samples and corners of [-x, -y, x, y].
        let mut margin = [f32::NEG_INFINITY; 4];
        for g in &g_inv {
            for p in &corners {
                for r in 0..2 {
                    let mut acc = 0f32;
                    for (j, pj) in p.iter().enumerate() {
                        acc += g[r][j] * pj;
                    }
                    margin[r] = margin[r].max(-acc);
                    margin[r + 2] = margin[r + 2].max(acc);
                }
            }
        }
        let offset = [(HZ_PAD * 2) as f64 - (w - 1.0) / 2.0, (HZ_PAD * 2) as f64 - (h - 1.0) / 2.0];
        let limit = [(width - 1) as f32, (height - 1) as f32];
        let mut m = [0usize; 4];
        for (i, mi) in m.iter_mut().enumerate() {
            // (f32::max ignores NaN: a non-finite draw gives no margin instead of a panic.)
            let v = (margin[i] + offset[i % 2] as f32).max(0.0).min(limit[i % 2]).ceil();
            *mi = if v.is_finite() { v as usize } else { 0 };
        }
        let [mx0, my0, mx1, my1] = m;

        // Pad image and adjust origin.
        let t = translate2d((mx0 as f32 - mx1 as f32) / 2.0, (my0 as f32 - my1 as f32) / 2.0);
        // Upsample.
        let (s2, s2_inv) = (scale2d(2.0, 2.0), scale2d(0.5, 0.5));
        let (tm, tm_inv) = (translate2d(-0.5, -0.5), translate2d(0.5, 0.5));
        // Normalise to affine_grid's [-1, 1] for the upsampled input and the output grid.
        let up_w = (width + mx0 + mx1) * 2;
        let up_h = (height + my0 + my1) * 2;
        let out_w = (width + HZ_PAD * 2) * 2;
        let out_h = (height + HZ_PAD * 2) * 2;
        let sn = scale2d((2.0 / up_w as f64) as f32, (2.0 / up_h as f64) as f32);
        let sn_inv = scale2d((1.0 / (2.0 / out_w as f64)) as f32, (1.0 / (2.0 / out_h as f64)) as f32);
        let g_inv_grid: Vec<Mat3> = g_inv
            .iter()
            .map(|g| {
                let g = matmul(&t, g);
                let g = matmul(&matmul(&s2, &g), &s2_inv);
                let g = matmul(&matmul(&tm, &g), &tm_inv);
                matmul(&matmul(&sn, &g), &sn_inv)
            })
            .collect();
        let grid = build_grid(&g_inv_grid, up_h, up_w, out_h, out_w);
        Self { g_inv, pad: [mx0, mx1, my0, my1], g_inv_grid, grid }
    }
}

/// `affine_grid(theta, [B, C, out_h, out_w], align_corners=False)` followed by the sampling
/// positions of `grid_sample(.., bilinear, zeros, align_corners=False)` on an `in_h × in_w`
/// input, evaluated in float64 from the float32 theta.
fn build_grid(theta: &[Mat3], in_h: usize, in_w: usize, out_h: usize, out_w: usize) -> Grid {
    let n = theta.len() * out_h * out_w;
    let mut idx = Vec::with_capacity(n);
    let mut weight: [Vec<f32>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
    let (wi, hi) = (in_w as i64, in_h as i64);
    for th in theta {
        let t = th.map(|row| row.map(f64::from));
        for oy in 0..out_h {
            let yb = (2 * oy + 1) as f64 / out_h as f64 - 1.0;
            for ox in 0..out_w {
                let xb = (2 * ox + 1) as f64 / out_w as f64 - 1.0;
                let gx = t[0][0] * xb + t[0][1] * yb + t[0][2];
                let gy = t[1][0] * xb + t[1][1] * yb + t[1][2];
                let ix = ((gx + 1.0) * in_w as f64 - 1.0) / 2.0;
                let iy = ((gy + 1.0) * in_h as f64 - 1.0) / 2.0;
                if !(ix.is_finite() && iy.is_finite()) {
                    idx.push(0);
                    weight.iter_mut().for_each(|w| w.push(0.0));
                    continue;
                }
                let (x0, y0) = (ix.floor(), iy.floor());
                let (fx, fy) = (ix - x0, iy - y0);
                // Far outside, clamping moves the taps, but then every tap has weight 0.
                let (x0, y0) = (x0.clamp(-1.0, in_w as f64) as i64, y0.clamp(-1.0, in_h as f64) as i64);
                idx.push((y0 + 1) * (wi + 1) + (x0 + 1));
                let taps = [(0, 0, (1.0 - fx) * (1.0 - fy)), (1, 0, fx * (1.0 - fy)), (0, 1, (1.0 - fx) * fy), (1, 1, fx * fy)];
                for (w, (dx, dy, v)) in weight.iter_mut().zip(taps) {
                    let (x, y) = (x0 + dx, y0 + dy);
                    let inside = (0..wi).contains(&x) && (0..hi).contains(&y);
                    w.push(if inside { v as f32 } else { 0.0 });
                }
            }
        }
    }
    Grid { idx, weight, out_h, out_w }
}

/// Source index of each padded position for `torch.nn.functional.pad(mode='reflect')`.
fn reflect_indices(len: usize, before: usize, after: usize) -> Vec<i64> {
    let last = len as i64 - 1;
    (0..(before + len + after) as i64)
        .map(|j| {
            let t = j - before as i64;
            if t < 0 {
                -t
            } else if t > last {
                2 * last - t
            } else {
                t
            }
        })
        .collect()
}

fn int1(v: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

/// `Hz_geom` as a separable resampling filter on `device`, reversed for `flip_filter=True`.
fn filter(device: &Device, flip: bool) -> ResampleFilter {
    let mut taps = hz_geom();
    if flip {
        taps.reverse();
    }
    let n = taps.len();
    let fir = Fir::Separable(Tensor::from_data(TensorData::new(taps.clone(), [n]), device));
    ResampleFilter { fir, host: Taps::Separable(taps) }
}

/// Bilinear sampling of `x` (`[B, C, H, W]`) at the precomputed grid: `[B, C, out_h, out_w]`.
///
/// Built from `gather`s (whose gradient is a scatter-add, atomic where the GPU has float atomics)
/// rather than one large `select` (burn-cubecl 0.22's `select` gradient is wrong on wgpu from
/// 65536 indices on).
fn grid_sample(x: Tensor<4>, grid: &Grid) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let plane = grid.out_h * grid.out_w;
    let xp = x.pad((1, 1, 1, 1), PadMode::Constant(0.0));
    let idx: Tensor<3, Int> = Tensor::from_data(TensorData::new(grid.idx.clone(), [b, 1, plane]), &device);
    let idx = idx.repeat_dim(1, c);
    let taps = [(0, 0), (0, 1), (1, 0), (1, 1)];
    let mut out: Option<Tensor<3>> = None;
    for ((dy, dx), weight) in taps.into_iter().zip(&grid.weight) {
        let view: Tensor<3> = xp.clone().slice([0..b, 0..c, dy..dy + h + 1, dx..dx + w + 1]).reshape([b, c, (h + 1) * (w + 1)]);
        let wt: Tensor<3> = Tensor::from_data(TensorData::new(weight.clone(), [b, 1, plane]), &device);
        let tap = view.gather(2, idx.clone()) * wt;
        out = Some(match out {
            Some(o) => o + tap,
            None => tap,
        });
    }
    match out {
        Some(o) => o.reshape([b, c, grid.out_h, grid.out_w]),
        None => Tensor::zeros([b, c, grid.out_h, grid.out_w], &device),
    }
}

/// Pad, upsample, sample, downsample and crop: the image after the geometric transform.
pub(super) fn execute(x: Tensor<4>, g: &Geometry) -> Tensor<4> {
    let device = x.device();
    let [_, _, h, w] = x.dims();
    let [mx0, mx1, my0, my1] = g.pad;
    let x = x.select(3, int1(reflect_indices(w, mx0, mx1), &device));
    let x = x.select(2, int1(reflect_indices(h, my0, my1), &device));
    let x = kernels::upsample2d(x, &filter(&device, false), 2, KernelChoice::Auto);
    let x = grid_sample(x, &g.grid);
    // downsample2d(down=2, padding=-2·Hz_pad, flip_filter=True).
    let fw = SYM6.len() as i64;
    let p0 = -2 * HZ_PAD as i64 + (fw - 1) / 2;
    let p1 = -2 * HZ_PAD as i64 + (fw - 2) / 2;
    kernels::upfirdn2d(x, Some(&filter(&device, true)), 1, 2, [p0, p1, p0, p1], 1.0, KernelChoice::Auto)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_matches_torch() {
        // torch.nn.functional.pad(arange(4), [2, 3], mode='reflect') = [2, 1, 0, 1, 2, 3, 2, 1, 0]
        assert_eq!(reflect_indices(4, 2, 3), vec![2, 1, 0, 1, 2, 3, 2, 1, 0]);
    }

    #[test]
    fn hz_geom_sums_to_one() {
        let s: f64 = hz_geom().iter().map(|&v| v as f64).sum();
        assert!((s - 1.0).abs() < 1e-6);
        assert_eq!(HZ_PAD, 3);
    }
}
