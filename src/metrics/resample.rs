//! The band-limited affine resampler of `metrics/equivariance.py`
//! (`construct_affine_bandlimit_filter`, `apply_affine_transformation(x, mat, up=4, a=3, amax=6)`
//! with its mask): the reference image of EQ-R, and the explorer's "Untransform" view.
//!
//! Host-side f64 on `[C, H, W]` data. The 511x511 FFT convolutions of the filter design are done
//! as separable circular convolutions evaluated only at the 47x47 taps that survive the crop, and
//! the ×4 upsampling is evaluated only at the points `grid_sample` reads — the same numbers,
//! far less work.

/// `sinc(x) = sin(πx)/(πx)`, 1 at 0.
pub(crate) fn sinc(x: f64) -> f64 {
    let y = (x * std::f64::consts::PI).abs();
    if y < 1e-30 {
        1.0
    } else {
        y.sin() / y
    }
}

fn lanczos(x: f64, a: f64) -> f64 {
    let r = x.abs() / a;
    if r < 1.0 {
        sinc(r)
    } else {
        0.0
    }
}

/// `construct_affine_bandlimit_filter(mat, a, amax, aflt=64, up, cutoff_in=1, cutoff_out=1)`:
/// a `(2·amax·up − 1)²` filter, row-major.
pub fn bandlimit_filter(mat: [[f64; 3]; 3], a: usize, amax: usize, up: usize) -> Vec<f64> {
    const AFLT: usize = 64;
    let n = 2 * AFLT * up - 1;
    // taps = roll(((0..n) + 1)/up − aflt, 1 − aflt·up): FFT order, taps[0] = 0.
    let raw: Vec<f64> = (0..n).map(|i| (i + 1) as f64 / up as f64 - AFLT as f64).collect();
    let shift = AFLT * up - 1;
    let taps: Vec<f64> = (0..n).map(|j| raw[(j + shift) % n]).collect();
    let (m00, m01, m10, m11) = (mat[0][0], mat[0][1], mat[1][0], mat[1][1]);
    let af = a as f64;
    // Output taps kept by the crop: original indices (r − (aflt·up − 1)) mod n for r in c..n−c.
    let c = (AFLT - amax) * up;
    let kept: Vec<usize> = (c..n - c).map(|r| (r + n - shift) % n).collect();
    let k = kept.len();
    // Circular convolution of a separable input filter (g(xi)·g(yi)) with the oriented output
    // filter h(xo, yo), at the kept points only: first along x for every row, then along y.
    let conv = |g: &dyn Fn(f64) -> f64, h: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
        let gt: Vec<f64> = taps.iter().map(|&t| g(t)).collect();
        // out_o[(yi, xi)] = h at (xo, yo) of input grid position (yi, xi).
        let ho = |r: usize, col: usize| {
            let (yi, xi) = (taps[r], taps[col]);
            h(xi * m00 + yi * m01, xi * m10 + yi * m11)
        };
        // rows: t[r][px] = Σ_q g[q] · ho[r][(px − q) mod n]
        let mut t = vec![0f64; n * k];
        for r in 0..n {
            let row: Vec<f64> = (0..n).map(|col| ho(r, col)).collect();
            for (pi, &px) in kept.iter().enumerate() {
                let mut s = 0.0;
                for (q, gq) in gt.iter().enumerate() {
                    if *gq != 0.0 {
                        s += gq * row[(px + n - q) % n];
                    }
                }
                t[r * k + pi] = s;
            }
        }
        let mut out = vec![0f64; k * k];
        for (pj, &py) in kept.iter().enumerate() {
            for pi in 0..k {
                let mut s = 0.0;
                for (q, gq) in gt.iter().enumerate() {
                    if *gq != 0.0 {
                        s += gq * t[((py + n - q) % n) * k + pi];
                    }
                }
                out[pj * k + pi] = s;
            }
        }
        out
    };
    let f = conv(&sinc, &|x, y| sinc(x) * sinc(y));
    let w = conv(&|x| lanczos(x, af), &|x, y| lanczos(x, af) * lanczos(y, af));
    // Windowed filter, padded to (2·amax·up)² and normalised per polyphase component.
    let m = 2 * amax * up;
    let mut padded = vec![0f64; m * m];
    for y in 0..k {
        for x in 0..k {
            padded[y * m + x] = f[y * k + x] * w[y * k + x];
        }
    }
    for py in 0..up {
        for px in 0..up {
            let idx = |ay: usize, ax: usize| (ay * up + py) * m + ax * up + px;
            let sum: f64 = (0..2 * amax).flat_map(|ay| (0..2 * amax).map(move |ax| (ay, ax))).map(|(ay, ax)| padded[idx(ay, ax)]).sum();
            for ay in 0..2 * amax {
                for ax in 0..2 * amax {
                    padded[idx(ay, ax)] /= sum * (up * up) as f64;
                }
            }
        }
    }
    (0..k).flat_map(|y| (0..k).map(move |x| (y, x))).map(|(y, x)| padded[y * m + x]).collect()
}

fn invert2x3(m: [[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    crate::model::invert3(m)
}

/// `apply_affine_transformation(x, mat, up=4, a=3, amax=6)` on `[C, H, W]`: the resampled image
/// (the view needs no mask; [`apply_affine_masked`] gives it too).
pub fn apply_affine(data: &[f32], c: usize, h: usize, w: usize, mat: [[f64; 3]; 3]) -> Option<Vec<f32>> {
    apply_affine_masked(data, c, h, w, mat).map(|(img, _)| img)
}

/// `apply_affine_transformation(x, mat, up=4, a=3, amax=6)` on `[C, H, W]`: the resampled image
/// and its `[H, W]` mask (1 where the nearest sample of the ×4 image lies `2p + 1` inside it).
pub fn apply_affine_masked(data: &[f32], c: usize, h: usize, w: usize, mat: [[f64; 3]; 3]) -> Option<(Vec<f32>, Vec<f32>)> {
    const UP: usize = 4;
    let f = bandlimit_filter(mat, 3, 6, UP);
    let fs = (f.len() as f64).sqrt() as usize; // 47
    let p = fs / 2; // 23
    // upsample2d(x, f, up, padding=p): zero-insertion, pad (p + (fs+up−1)/2, p + (fs−up)/2), true
    // convolution with f·up² (f is point-symmetric, so flipping changes nothing).
    let pad0 = (p + (fs + UP - 1) / 2) as i64;
    let (hy, wy) = (h * UP + 2 * p, w * UP + 2 * p);
    let gain = (UP * UP) as f64;
    let upsampled = |ch: usize, oy: i64, ox: i64| -> f64 {
        if oy < 0 || ox < 0 || oy >= hy as i64 || ox >= wy as i64 {
            return 0.0;
        }
        let mut s = 0.0;
        // Only every up-th tap meets an inserted (non-zero) sample.
        let up = UP as i64;
        let first = |o: i64| (((pad0 - o) % up) + up) % up;
        for ky in (first(oy)..fs as i64).step_by(UP) {
            let ry = oy + ky - pad0;
            if ry < 0 || ry / up >= h as i64 {
                continue;
            }
            let row = (ch * h + (ry / up) as usize) * w;
            let frow = (fs - 1 - ky as usize) * fs;
            for kx in (first(ox)..fs as i64).step_by(UP) {
                let rx = ox + kx - pad0;
                if rx < 0 || rx / up >= w as i64 {
                    continue;
                }
                s += data[row + (rx / up) as usize] as f64 * f[frow + (fs - 1 - kx as usize)];
            }
        }
        s * gain
    };
    // theta = inv(mat), translation doubled, half-pixel shift of the ×up grid, scaled to the
    // padded size; then affine_grid + bilinear grid_sample (align_corners=False, zero padding).
    let mut t = invert2x3(mat)?;
    t[0][2] *= 2.0;
    t[1][2] *= 2.0;
    t[0][2] += 1.0 / (UP * w) as f64;
    t[1][2] += 1.0 / (UP * h) as f64;
    let sx = w as f64 / (w as f64 + 2.0 * p as f64 / UP as f64);
    let sy = h as f64 / (h as f64 + 2.0 * p as f64 / UP as f64);
    for v in t[0].iter_mut() {
        *v *= sx;
    }
    for v in t[1].iter_mut() {
        *v *= sy;
    }
    // Output rows split across threads ([H, W, C] while computing, then back to [C, H, W]).
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(h);
    let rows_per = h.div_ceil(threads);
    // The mask: grid_sample(nearest) of 1 on [c, size − c)² of the ×up image, c = 2p + 1.
    let inset = (2 * p + 1) as i64;
    let mut mask = vec![0f32; h * w];
    for i in 0..h {
        for j in 0..w {
            let xn = (2 * j + 1) as f64 / w as f64 - 1.0;
            let yn = (2 * i + 1) as f64 / h as f64 - 1.0;
            let gx = t[0][0] * xn + t[0][1] * yn + t[0][2];
            let gy = t[1][0] * xn + t[1][1] * yn + t[1][2];
            let ix = (((gx + 1.0) * wy as f64 - 1.0) / 2.0).round_ties_even() as i64;
            let iy = (((gy + 1.0) * hy as f64 - 1.0) / 2.0).round_ties_even() as i64;
            if ix >= inset && ix < wy as i64 - inset && iy >= inset && iy < hy as i64 - inset {
                mask[i * w + j] = 1.0;
            }
        }
    }
    let mut hwc = vec![0f32; h * w * c];
    std::thread::scope(|s| {
        for (chunk, dst) in hwc.chunks_mut(rows_per * w * c).enumerate() {
            let upsampled = &upsampled;
            s.spawn(move || {
                for (r, row) in dst.chunks_mut(w * c).enumerate() {
                    let i = chunk * rows_per + r;
                    for j in 0..w {
                        let xn = (2 * j + 1) as f64 / w as f64 - 1.0;
                        let yn = (2 * i + 1) as f64 / h as f64 - 1.0;
                        let gx = t[0][0] * xn + t[0][1] * yn + t[0][2];
                        let gy = t[1][0] * xn + t[1][1] * yn + t[1][2];
                        let ix = ((gx + 1.0) * wy as f64 - 1.0) / 2.0;
                        let iy = ((gy + 1.0) * hy as f64 - 1.0) / 2.0;
                        let (x0, y0) = (ix.floor(), iy.floor());
                        let (fx, fy) = (ix - x0, iy - y0);
                        let (x0, y0) = (x0 as i64, y0 as i64);
                        for ch in 0..c {
                            let v = upsampled(ch, y0, x0) * (1.0 - fx) * (1.0 - fy)
                                + upsampled(ch, y0, x0 + 1) * fx * (1.0 - fy)
                                + upsampled(ch, y0 + 1, x0) * (1.0 - fx) * fy
                                + upsampled(ch, y0 + 1, x0 + 1) * fx * fy;
                            row[j * c + ch] = v as f32;
                        }
                    }
                }
            });
        }
    });
    let mut out = vec![0f32; c * h * w];
    for (p, px) in hwc.chunks(c).enumerate() {
        for (ch, v) in px.iter().enumerate() {
            out[ch * h * w + p] = *v;
        }
    }
    Some((out, mask))
}
