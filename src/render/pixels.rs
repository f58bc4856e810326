//! Turning a layer's float tensor into what the window shows, exactly as the official
//! visualizer's renderer does it: channel selection, per-layer statistics, normalisation, gain in
//! dB, the `x·127.5 + 128` uint8 conversion, and the windowed power spectrum ("FFT" view).
//!
//! Pure Rust on host data (no burn), so it is unit-testable and shared by every backend.

use serde::{Deserialize, Serialize};

use crate::metrics::fft::{fft2, kaiser};

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

/// Viridis colour map (a close polynomial fit of matplotlib's table), input clamped to [0, 1].
pub(crate) fn viridis(t: f64) -> [u8; 3] {
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
}
