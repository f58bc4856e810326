//! The equivariance metrics of the StyleGAN3 paper (EQ-T, EQ-T_frac, EQ-R) as
//! `metrics/equivariance.py` computes them: the reference operators (integer and fractional
//! translation, fractional rotation and pseudo-rotation, each with its mask), the sums of the
//! masked squared error over every sample, and the PSNR they give. Images are `[C, H, W]` f32 in
//! [-1, 1]; masks `[H, W]` (the official masks repeat over channels, so channel sums count C
//! times — the ratio is the same).

use serde::{Deserialize, Serialize};

use super::resample::{apply_affine_masked, bandlimit_filter, sinc};

/// One of the three metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EqKind {
    /// EQ-T: integer-pixel translation.
    #[serde(rename = "eqt_int")]
    TranslateInt,
    /// EQ-T_frac: sub-pixel translation.
    #[serde(rename = "eqt_frac")]
    TranslateFrac,
    /// EQ-R: rotation.
    #[serde(rename = "eqr")]
    Rotate,
}

impl EqKind {
    /// calc_metrics.py's metric name (and its key in the results).
    pub fn metric_name(self) -> &'static str {
        match self {
            Self::TranslateInt => "eqt50k_int",
            Self::TranslateFrac => "eqt50k_frac",
            Self::Rotate => "eqr50k",
        }
    }

    pub fn from_metric_name(name: &str) -> Option<Self> {
        match name {
            "eqt50k_int" | "eqt_int" => Some(Self::TranslateInt),
            "eqt50k_frac" | "eqt_frac" => Some(Self::TranslateFrac),
            "eqr50k" | "eqr" => Some(Self::Rotate),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::TranslateInt => "EQ-T",
            Self::TranslateFrac => "EQ-T_frac",
            Self::Rotate => "EQ-R",
        }
    }
}

/// torch.round (half to even) of `t · size`, as the official code computes it in float32.
fn scaled_f32(t: f64, size: usize) -> f32 {
    t as f32 * size as f32
}

/// `apply_integer_translation(x, tx, ty)`: content moved by `round(t·size)` pixels (positive t:
/// right / down), zeros where nothing moved in; the mask is 1 on the moved block.
pub fn integer_translation(x: &[f32], c: usize, h: usize, w: usize, tx: f64, ty: f64) -> (Vec<f32>, Vec<f32>) {
    let ix = scaled_f32(tx, w).round_ties_even() as i64;
    let iy = scaled_f32(ty, h).round_ties_even() as i64;
    let mut z = vec![0f32; c * h * w];
    let mut m = vec![0f32; h * w];
    let (hi, wi) = (h as i64, w as i64);
    if ix.abs() < wi && iy.abs() < hi {
        for y in iy.max(0)..hi + iy.min(0) {
            for xx in ix.max(0)..wi + ix.min(0) {
                let (sy, sx) = ((y - iy) as usize, (xx - ix) as usize);
                for ch in 0..c {
                    z[(ch * h + y as usize) * w + xx as usize] = x[(ch * h + sy) * w + sx];
                }
                m[y as usize * w + xx as usize] = 1.0;
            }
        }
    }
    (z, m)
}

/// The normalised 6-tap Lanczos filter (a = 3) for a fraction `f`: taps k = −2..3.
fn lanczos_taps(f: f32) -> [f32; 6] {
    let a = 3.0f32;
    let mut taps = [0f32; 6];
    for (i, t) in taps.iter_mut().enumerate() {
        let k = i as f32 - 2.0 - f;
        *t = (sinc(k as f64) * sinc((k / a) as f64)) as f32;
    }
    let sum: f32 = taps.iter().sum();
    taps.map(|t| t / sum)
}

/// `apply_fractional_translation(x, tx, ty, a=3)`: `z[X] = Σ_k f(k)·x[X − ⌊t·W⌋ − k]` along x
/// then y, on the block the official crop keeps; the mask drops the filter's support at the
/// edges.
pub fn fractional_translation(x: &[f32], c: usize, h: usize, w: usize, tx: f64, ty: f64) -> (Vec<f32>, Vec<f32>) {
    let (a, b) = (3i64, 2i64);
    let (txs, tys) = (scaled_f32(tx, w), scaled_f32(ty, h));
    let (ix, iy) = (txs.floor() as i64, tys.floor() as i64);
    let (fx, fy) = (txs - ix as f32, tys - iy as f32);
    let (hi, wi) = (h as i64, w as i64);
    let mut z = vec![0f32; c * h * w];
    let (zx0, zy0, zx1, zy1) = ((ix - b).max(0), (iy - b).max(0), (ix + a).min(0) + wi, (iy + a).min(0) + hi);
    if zx0 < zx1 && zy0 < zy1 {
        let (fxs, fys) = (lanczos_taps(fx), lanczos_taps(fy));
        // Along x for every row (zero outside the image), then along y.
        let mut rows = vec![0f32; c * h * w];
        for ch in 0..c {
            for y in 0..h {
                let src = &x[(ch * h + y) * w..(ch * h + y + 1) * w];
                for xx in zx0..zx1 {
                    let mut s = 0f32;
                    for (i, f) in fxs.iter().enumerate() {
                        let sx = xx - ix - (i as i64 - b);
                        if (0..wi).contains(&sx) {
                            s += f * src[sx as usize];
                        }
                    }
                    rows[(ch * h + y) * w + xx as usize] = s;
                }
            }
            for y in zy0..zy1 {
                for xx in zx0..zx1 {
                    let mut s = 0f32;
                    for (i, f) in fys.iter().enumerate() {
                        let sy = y - iy - (i as i64 - b);
                        if (0..hi).contains(&sy) {
                            s += f * rows[(ch * h + sy as usize) * w + xx as usize];
                        }
                    }
                    z[(ch * h + y as usize) * w + xx as usize] = s;
                }
            }
        }
    }
    let mut m = vec![0f32; h * w];
    let (mx0, my0, mx1, my1) = ((ix + a).max(0), (iy + a).max(0), (ix - b).min(0) + wi, (iy - b).min(0) + hi);
    if mx0 < mx1 && my0 < my1 {
        for y in my0..my1 {
            for xx in mx0..mx1 {
                m[y as usize * w + xx as usize] = 1.0;
            }
        }
    }
    (z, m)
}

/// `rotation_matrix(angle)` of metrics/equivariance.py (the matrix of the input transform buffer
/// is `rotation_matrix(−angle)`).
pub fn rotation_matrix(angle: f64) -> [[f64; 3]; 3] {
    // float32 like torch.
    let a = angle as f32;
    let (s, c) = (a.sin() as f64, a.cos() as f64);
    [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]
}

/// `apply_fractional_rotation(x, angle)`: the band-limited rotation of `x` and its mask.
pub fn fractional_rotation(x: &[f32], c: usize, h: usize, w: usize, angle: f64) -> (Vec<f32>, Vec<f32>) {
    apply_affine_masked(x, c, h, w, rotation_matrix(angle)).unwrap_or_else(|| (vec![0.0; c * h * w], vec![0.0; h * w]))
}

/// `apply_fractional_pseudo_rotation(x, angle)`: `x` filtered with the 11x11 band limit of
/// `rotation_matrix(−angle)` (same size, zero padding) and the mask of its inner region.
pub fn fractional_pseudo_rotation(x: &[f32], c: usize, h: usize, w: usize, angle: f64) -> (Vec<f32>, Vec<f32>) {
    let f = bandlimit_filter(rotation_matrix(-angle), 3, 6, 1);
    let fs = (f.len() as f64).sqrt() as usize; // 11
    let r = (fs / 2) as i64;
    let (hi, wi) = (h as i64, w as i64);
    let mut y = vec![0f32; c * h * w];
    for ch in 0..c {
        for oy in 0..hi {
            for ox in 0..wi {
                // filter2d: a true convolution, `out[o] = Σ_k x[o + r − k]·f[k]`.
                let mut s = 0f64;
                for ky in 0..fs as i64 {
                    let sy = oy + r - ky;
                    if !(0..hi).contains(&sy) {
                        continue;
                    }
                    for kx in 0..fs as i64 {
                        let sx = ox + r - kx;
                        if (0..wi).contains(&sx) {
                            s += x[(ch * h + sy as usize) * w + sx as usize] as f64 * f[ky as usize * fs + kx as usize];
                        }
                    }
                }
                y[(ch * h + oy as usize) * w + ox as usize] = s as f32;
            }
        }
    }
    let mut m = vec![0f32; h * w];
    let r = r as usize;
    for yy in r..h.saturating_sub(r) {
        for xx in r..w.saturating_sub(r) {
            m[yy * w + xx] = 1.0;
        }
    }
    (y, m)
}

/// Σ(a − b)²·mask over channels and pixels and Σmask (counted per channel), in f64 after the
/// f32 products, like the official accumulation.
pub fn masked_sums(a: &[f32], b: &[f32], mask: &[f32], c: usize) -> (f64, f64) {
    let hw = mask.len();
    let mut err = 0f64;
    for ch in 0..c {
        for p in 0..hw {
            let d = a[ch * hw + p] - b[ch * hw + p];
            err += (d * d * mask[p]) as f64;
        }
    }
    let m: f64 = mask.iter().map(|&v| v as f64).sum::<f64>() * c as f64;
    (err, m)
}

/// `20·log10(2) − 10·log10(Σerr / Σmask)`: the PSNR for images of peak-to-peak 2.
pub fn psnr(err: f64, mask: f64) -> f64 {
    20.0 * 2f64.log10() - 10.0 * (err / mask).log10()
}

/// The masked error of one kind for one sample, given the untransformed image `orig` and the
/// network's output `img` under the kind's input transform (`t` for translations, angle in
/// radians for rotation).
pub fn sample_sums(kind: EqKind, orig: &[f32], img: &[f32], c: usize, h: usize, w: usize, t: [f64; 2], angle: f64) -> (f64, f64) {
    match kind {
        EqKind::TranslateInt => {
            let (r, m) = integer_translation(orig, c, h, w, t[0], t[1]);
            masked_sums(&r, img, &m, c)
        }
        EqKind::TranslateFrac => {
            let (r, m) = fractional_translation(orig, c, h, w, t[0], t[1]);
            masked_sums(&r, img, &m, c)
        }
        EqKind::Rotate => {
            let (r, rm) = fractional_rotation(orig, c, h, w, angle);
            let (p, pm) = fractional_pseudo_rotation(img, c, h, w, angle);
            let mask: Vec<f32> = rm.iter().zip(&pm).map(|(a, b)| a * b).collect();
            masked_sums(&r, &p, &mask, c)
        }
    }
}

/// The input transform buffer (`synthesis.input.transform`) the official code sets for a kind:
/// `M[:2, 2] = −t` for translations, `rotation_matrix(−angle)` for rotation.
pub fn transform_buffer(kind: EqKind, t: [f64; 2], angle: f64) -> [[f64; 3]; 3] {
    match kind {
        EqKind::TranslateInt | EqKind::TranslateFrac => [[1.0, 0.0, -t[0]], [0.0, 1.0, -t[1]], [0.0, 0.0, 1.0]],
        EqKind::Rotate => rotation_matrix(-angle),
    }
}
