//! Turning a layer's float tensor into what the window shows, exactly as the official
//! visualizer's renderer does it: channel selection, per-layer statistics, normalisation, gain in
//! dB, the `x·127.5 + 128` uint8 conversion, and the windowed power spectrum ("FFT" view).
//!
//! Pure Rust on host data (no burn), so it is unit-testable and shared by every backend.

use serde::{Deserialize, Serialize};

/// How the selected layer is turned into pixels (the visualizer's "Layers & channels").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LayerView {
    /// `None` = the network output.
    pub layer: Option<String>,
    /// Show 3 consecutive channels as RGB (else one channel as grey).
    pub rgb: bool,
    /// First shown channel (clamped to the layer's channel count).
    pub base_channel: usize,
    /// Divide each shown channel by its max |x|.
    pub normalize: bool,
    /// Extra gain in dB (`x·10^(dB/20)`).
    pub gain_db: f64,
    /// Show the power spectrum beside the image.
    pub fft: bool,
    /// Sum the spectrum over all channels of the layer (else only the shown ones).
    pub fft_all_channels: bool,
    /// Displayed spectrum range, ±dB.
    pub fft_range_db: f64,
    /// Kaiser window beta.
    pub fft_beta: f64,
    /// StyleGAN3: resample the shown tensor back through the input transform.
    pub untransform: bool,
}

impl Default for LayerView {
    fn default() -> Self {
        Self {
            layer: None,
            rgb: true,
            base_channel: 0,
            normalize: false,
            gain_db: 0.0,
            fft: false,
            fft_all_channels: true,
            fft_range_db: 50.0,
            fft_beta: 8.0,
            untransform: false,
        }
    }
}

/// mean / std / max|x| of a set of values (std unbiased, like `torch.std`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub mean: f32,
    pub std: f32,
    pub max_abs: f32,
}

impl Stats {
    pub fn of(values: impl Iterator<Item = f32> + Clone) -> Self {
        let (mut n, mut sum, mut max_abs) = (0usize, 0f64, 0f32);
        for v in values.clone() {
            n += 1;
            sum += v as f64;
            max_abs = max_abs.max(v.abs());
        }
        if n == 0 {
            return Self::default();
        }
        let mean = sum / n as f64;
        let ss: f64 = values.map(|v| (v as f64 - mean).powi(2)).sum();
        let std = if n > 1 { (ss / (n - 1) as f64).sqrt() } else { 0.0 };
        Self { mean: mean as f32, std: std as f32, max_abs }
    }
}

/// The shown image of one tensor `[C, H, W]`.
pub struct Shown {
    /// RGBA8, row-major, `H x W`.
    pub rgba: Vec<u8>,
    /// Channels actually shown (`base..base+n`).
    pub base_channel: usize,
    pub shown_channels: usize,
    /// Statistics of all channels and of the shown ones.
    pub stats_all: Stats,
    pub stats_shown: Stats,
}

/// Channel selection as in the renderer: 3 channels for RGB unless the layer has fewer (then 1),
/// base clamped to `[0, C - n]`.
pub fn select_channels(c: usize, view: &LayerView) -> (usize, usize) {
    let n = if view.rgb && c >= 3 { 3 } else { 1 };
    let base = view.base_channel.min(c.saturating_sub(n));
    (base, n)
}

/// Converts `data` (`[C, H, W]`, row-major) to pixels with the view's settings.
pub fn to_rgba(data: &[f32], c: usize, h: usize, w: usize, view: &LayerView) -> Shown {
    let plane = h * w;
    let (base, n) = select_channels(c, view);
    let channel = |ch: usize| &data[ch * plane..(ch + 1) * plane];
    let gain = 10f32.powf(view.gain_db as f32 / 20.0);
    let scales: Vec<f32> = (base..base + n)
        .map(|ch| {
            let norm = if view.normalize {
                let m = channel(ch).iter().fold(0f32, |m, v| m.max(v.abs()));
                1.0 / m.clamp(1e-8, 1e8)
            } else {
                1.0
            };
            norm * gain
        })
        .collect();
    let mut rgba = vec![255u8; plane * 4];
    for p in 0..plane {
        for k in 0..3 {
            let i = if n == 3 { k } else { 0 };
            let v = channel(base + i)[p] * scales[i];
            // `(x·127.5 + 128).clamp(0, 255).to(uint8)`: a truncating cast.
            rgba[p * 4 + k] = (v * 127.5 + 128.0).clamp(0.0, 255.0) as u8;
        }
    }
    let stats_all = Stats::of(data[..c * plane].iter().copied());
    let stats_shown = Stats::of(data[base * plane..(base + n) * plane].iter().copied());
    Shown { rgba, base_channel: base, shown_channels: n, stats_all, stats_shown }
}

/// The visualizer's FFT view: `Σ_c |FFT2((x_c − mean_c)·kaiser⊗kaiser)|²`, fftshift, dB relative
/// to the mean power, mapped `(v/range + 1)/2` through viridis. Returns RGBA8 `H x W`.
pub fn spectrum_rgba(data: &[f32], channels: std::ops::Range<usize>, h: usize, w: usize, range_db: f64, beta: f64) -> Vec<u8> {
    let plane = h * w;
    let win_y = kaiser(h, beta);
    let win_x = kaiser(w, beta);
    let mut power = vec![0f64; plane];
    let mut re = vec![0f64; plane];
    let mut im = vec![0f64; plane];
    for ch in channels {
        let x = &data[ch * plane..(ch + 1) * plane];
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / plane as f64;
        for y in 0..h {
            for xx in 0..w {
                re[y * w + xx] = (x[y * w + xx] as f64 - mean) * win_y[y] * win_x[xx];
                im[y * w + xx] = 0.0;
            }
        }
        fft2(&mut re, &mut im, h, w);
        for i in 0..plane {
            power[i] += re[i] * re[i] + im[i] * im[i];
        }
    }
    let mean_power = (power.iter().sum::<f64>() / plane as f64).max(1e-30);
    let mut rgba = vec![255u8; plane * 4];
    for y in 0..h {
        for x in 0..w {
            // fftshift (torch.roll by size/2).
            let sy = (y + h - h / 2) % h;
            let sx = (x + w - w / 2) % w;
            let db = 10.0 * (power[sy * w + sx] / mean_power).max(1e-30).log10();
            let [r, g, b] = viridis((db / range_db + 1.0) / 2.0);
            let o = (y * w + x) * 4;
            rgba[o] = r;
            rgba[o + 1] = g;
            rgba[o + 2] = b;
        }
    }
    rgba
}

/// `torch.kaiser_window(n, periodic=False, beta)`.
fn kaiser(n: usize, beta: f64) -> Vec<f64> {
    if n == 1 {
        return vec![1.0];
    }
    let denom = bessel_i0(beta);
    (0..n)
        .map(|i| {
            let r = 2.0 * i as f64 / (n - 1) as f64 - 1.0;
            bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / denom
        })
        .collect()
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, q) = (1.0, 1.0, x * x / 4.0);
    for k in 1..200 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// In-place 2-D DFT of an `h x w` complex array (rows, then columns).
fn fft2(re: &mut [f64], im: &mut [f64], h: usize, w: usize) {
    let mut r = vec![0f64; w.max(h)];
    let mut i = vec![0f64; w.max(h)];
    for y in 0..h {
        r[..w].copy_from_slice(&re[y * w..(y + 1) * w]);
        i[..w].copy_from_slice(&im[y * w..(y + 1) * w]);
        dft(&mut r[..w], &mut i[..w]);
        re[y * w..(y + 1) * w].copy_from_slice(&r[..w]);
        im[y * w..(y + 1) * w].copy_from_slice(&i[..w]);
    }
    for x in 0..w {
        for y in 0..h {
            r[y] = re[y * w + x];
            i[y] = im[y * w + x];
        }
        dft(&mut r[..h], &mut i[..h]);
        for y in 0..h {
            re[y * w + x] = r[y];
            im[y * w + x] = i[y];
        }
    }
}

/// 1-D DFT: radix-2 for powers of two, direct O(n²) otherwise (StyleGAN3's odd layer sizes).
fn dft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    if n <= 1 {
        return;
    }
    if n.is_power_of_two() {
        // Bit-reversal permutation, then iterative butterflies.
        let mut j = 0;
        for i in 1..n {
            let mut bit = n >> 1;
            while j & bit != 0 {
                j ^= bit;
                bit >>= 1;
            }
            j |= bit;
            if i < j {
                re.swap(i, j);
                im.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= n {
            let ang = -2.0 * std::f64::consts::PI / len as f64;
            for start in (0..n).step_by(len) {
                for k in 0..len / 2 {
                    let (s, c) = (ang * k as f64).sin_cos();
                    let (a, b) = (start + k, start + k + len / 2);
                    let tr = re[b] * c - im[b] * s;
                    let ti = re[b] * s + im[b] * c;
                    re[b] = re[a] - tr;
                    im[b] = im[a] - ti;
                    re[a] += tr;
                    im[a] += ti;
                }
            }
            len <<= 1;
        }
        return;
    }
    let (cos, sin): (Vec<f64>, Vec<f64>) = (0..n)
        .map(|k| {
            let a = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
            (a.cos(), a.sin())
        })
        .unzip();
    let mut out_r = vec![0f64; n];
    let mut out_i = vec![0f64; n];
    for k in 0..n {
        let (mut sr, mut si) = (0.0, 0.0);
        for t in 0..n {
            let idx = (k * t) % n;
            sr += re[t] * cos[idx] - im[t] * sin[idx];
            si += re[t] * sin[idx] + im[t] * cos[idx];
        }
        out_r[k] = sr;
        out_i[k] = si;
    }
    re.copy_from_slice(&out_r);
    im.copy_from_slice(&out_i);
}

/// Viridis colour map (a close polynomial fit of matplotlib's table), input clamped to [0, 1].
fn viridis(t: f64) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let c0 = [0.277_727_3, 0.005_407_344, 0.334_099_8];
    let c1 = [0.105_093_0, 1.404_613_5, 1.384_590_2];
    let c2 = [-0.330_861_8, 0.214_847_6, 0.095_096_9];
    let c3 = [-4.634_230_5, -5.799_100_9, -19.332_441_4];
    let c4 = [6.228_270_0, 14.179_933_5, 56.690_552_6];
    let c5 = [4.776_384_9, -13.745_145_1, -65.353_033_0];
    let c6 = [-5.435_455_9, 4.645_852_6, 26.312_435_2];
    let mut out = [0u8; 3];
    for k in 0..3 {
        let v = c0[k] + t * (c1[k] + t * (c2[k] + t * (c3[k] + t * (c4[k] + t * (c5[k] + t * c6[k])))));
        out[k] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_matches_the_official_uint8_rule() {
        let data = [-1.0f32, 0.0, 0.5, 2.0, -1.0, 0.0, 0.5, 2.0, -1.0, 0.0, 0.5, 2.0];
        let shown = to_rgba(&data, 3, 2, 2, &LayerView::default());
        assert_eq!(&shown.rgba[0..4], &[0, 0, 0, 255]);
        assert_eq!(shown.rgba[4], 128);
        assert_eq!(shown.rgba[8], 191); // 0.5·127.5 + 128 = 191.75, truncated
        assert_eq!(shown.rgba[12], 255);
        assert!((shown.stats_all.max_abs - 2.0).abs() < 1e-6);
    }

    #[test]
    fn channel_selection_clamps_like_the_renderer() {
        let v = LayerView { base_channel: 15, ..Default::default() };
        assert_eq!(select_channels(16, &v), (13, 3));
        assert_eq!(select_channels(2, &v), (1, 1));
        let grey = LayerView { base_channel: 15, rgb: false, ..Default::default() };
        assert_eq!(select_channels(16, &grey), (15, 1));
    }

    #[test]
    fn dft_agrees_between_radix2_and_direct() {
        let x: Vec<f64> = (0..8).map(|i| (i as f64 * 0.7).sin()).collect();
        let (mut r1, mut i1) = (x.clone(), vec![0.0; 8]);
        dft(&mut r1, &mut i1);
        // Direct DFT of the same signal.
        for k in 0..8 {
            let (mut sr, mut si) = (0.0, 0.0);
            for (t, v) in x.iter().enumerate() {
                let a = -2.0 * std::f64::consts::PI * (k * t) as f64 / 8.0;
                sr += v * a.cos();
                si += v * a.sin();
            }
            assert!((sr - r1[k]).abs() < 1e-9 && (si - i1[k]).abs() < 1e-9);
        }
    }

    #[test]
    fn kaiser_is_symmetric_and_peaks_at_one() {
        let k = kaiser(9, 8.0);
        assert!((k[4] - 1.0).abs() < 1e-12);
        assert!((k[0] - k[8]).abs() < 1e-12);
    }
}
