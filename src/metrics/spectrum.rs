//! Average power spectra of images, as `avg_spectra.py` computes and draws them: uint8 images
//! whitened with the data's mean and std, windowed by a Kaiser window (β 8), zero-padded ×4,
//! `|FFT2|²` averaged over channels and images; saved as the official `.npz` (`spectrum`,
//! `image_size`) and drawn as its heatmap (dB, fftshifted, Gaussian-smoothed, contour bands −40…20
//! dB in blues) and its 0° / 45° slices.
//!
//! The mean and std may be unknown until every image was seen (one pass instead of the official
//! `stats` + `calc`): whitening is affine, so `Σ|FFT(x·w)|²`, `ΣFFT(x·w)` and the moments are
//! accumulated, and `|FFT((x − m)·w)/s|²` is formed exactly at the end.

use std::io::Write;
use std::path::Path;

use super::fft::{fft2, kaiser};

/// The running sums of one spectrum.
pub struct SpectrumAccumulator {
    pub image_size: usize,
    /// Spectrum side: image_size · interp.
    pub size: usize,
    window: Vec<f64>,
    /// Σ over images and channels of |FFT(pad(x·w))|².
    power: Vec<f64>,
    /// Σ over images and channels of FFT(pad(x·w)) (real, imaginary).
    sum_re: Vec<f64>,
    sum_im: Vec<f64>,
    /// Images, channel planes, Σx, Σx² (pixel moments for the whitening).
    images: usize,
    planes: usize,
    moments: [f64; 3],
}

impl SpectrumAccumulator {
    /// `beta`: the Kaiser window's shape (8); `interp`: the frequency-domain interpolation (4).
    pub fn new(image_size: usize, beta: f64, interp: usize) -> Self {
        let size = image_size * interp.max(1);
        let k = kaiser(image_size, beta);
        // window *= rsqrt(Σ window²), then the outer product.
        let norm = k.iter().map(|v| v * v).sum::<f64>().sqrt();
        let k: Vec<f64> = k.iter().map(|v| v / norm).collect();
        let window = (0..image_size * image_size).map(|i| k[i / image_size] * k[i % image_size]).collect();
        let n = size * size;
        Self { image_size, size, window, power: vec![0.0; n], sum_re: vec![0.0; n], sum_im: vec![0.0; n], images: 0, planes: 0, moments: [0.0; 3] }
    }

    /// Adds one uint8 `[C, H, W]` image (H = W = image_size).
    pub fn add(&mut self, chw: &[u8], channels: usize) {
        let (r, s) = (self.image_size, self.size);
        let mut re = vec![0f64; s * s];
        let mut im = vec![0f64; s * s];
        for c in 0..channels {
            let plane = &chw[c * r * r..(c + 1) * r * r];
            re.iter_mut().for_each(|v| *v = 0.0);
            im.iter_mut().for_each(|v| *v = 0.0);
            for y in 0..r {
                for x in 0..r {
                    let v = plane[y * r + x] as f64;
                    self.moments[1] += v;
                    self.moments[2] += v * v;
                    re[y * s + x] = v * self.window[y * r + x];
                }
            }
            self.moments[0] += (r * r) as f64;
            fft2(&mut re, &mut im, s, s);
            for i in 0..s * s {
                self.power[i] += re[i] * re[i] + im[i] * im[i];
                self.sum_re[i] += re[i];
                self.sum_im[i] += im[i];
            }
            self.planes += 1;
        }
        self.images += 1;
    }

    /// The data's mean and std over every pixel seen (avg_spectra.py's `stats`).
    pub fn mean_std(&self) -> (f64, f64) {
        let n = self.moments[0].max(1.0);
        let mean = self.moments[1] / n;
        (mean, (self.moments[2] / n - mean * mean).max(0.0).sqrt())
    }

    /// The average spectrum (`size`², row-major) whitened with `mean` and `std`.
    pub fn spectrum(&self, mean: f64, std: f64) -> Vec<f64> {
        let (r, s) = (self.image_size, self.size);
        // B = FFT(pad(w)).
        let mut b_re = vec![0f64; s * s];
        let mut b_im = vec![0f64; s * s];
        for y in 0..r {
            for x in 0..r {
                b_re[y * s + x] = self.window[y * r + x];
            }
        }
        fft2(&mut b_re, &mut b_im, s, s);
        let planes = self.planes.max(1) as f64;
        // Σ|A − mB|² = Σ|A|² − 2m·Re(ΣA·conj B) + N·m²·|B|².
        (0..s * s)
            .map(|i| {
                let cross = self.sum_re[i] * b_re[i] + self.sum_im[i] * b_im[i];
                let b2 = b_re[i] * b_re[i] + b_im[i] * b_im[i];
                (self.power[i] - 2.0 * mean * cross + planes * mean * mean * b2) / (std * std) / planes
            })
            .collect()
    }

    pub fn images(&self) -> usize {
        self.images
    }
}

/// Writes the official `.npz`: `spectrum` (float64 `[size, size]`) and `image_size` (int64 scalar).
pub fn write_npz(path: &Path, spectrum: &[f64], size: usize, image_size: usize) -> Result<(), crate::error::SaveError> {
    let err = |e: &dyn std::fmt::Display| crate::error::SaveError::Encode { path: path.into(), detail: e.to_string() };
    let mut spec = crate::export::npy::header("<f8", &[size, size]);
    for v in spectrum {
        spec.extend_from_slice(&v.to_le_bytes());
    }
    let mut isz = crate::export::npy::header("<i8", &[]);
    isz.extend_from_slice(&(image_size as i64).to_le_bytes());
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in [("spectrum.npy", &spec), ("image_size.npy", &isz)] {
            zip.start_file(name, opts).map_err(|e| err(&e))?;
            zip.write_all(bytes).map_err(|e| err(&e))?;
        }
        zip.finish().map_err(|e| err(&e))?;
    }
    crate::weights::safetensors::write_atomic(path, &buf.into_inner())
}

/// Reads an `.npz` written by [`write_npz`] or avg_spectra.py → (spectrum, size, image_size).
pub fn read_npz(path: &Path) -> Result<(Vec<f64>, usize, usize), String> {
    let bad = |m: &str| format!("{}: {m}", path.display());
    let file = std::fs::File::open(path).map_err(|e| bad(&e.to_string()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(&format!("not an .npz ({e})")))?;
    let mut read = |name: &str| -> Result<(String, Vec<u8>), String> {
        let mut f = zip.by_name(name).map_err(|_| bad(&format!("no {name} in the archive")))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut bytes).map_err(|e| bad(&e.to_string()))?;
        if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
            return Err(bad(&format!("{name} is not an .npy array")));
        }
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header = String::from_utf8_lossy(bytes.get(10..10 + hlen).ok_or_else(|| bad("truncated"))?).into_owned();
        Ok((header, bytes[10 + hlen..].to_vec()))
    };
    let (h, body) = read("spectrum.npy")?;
    if !h.contains("'<f8'") {
        return Err(bad("spectrum is not float64"));
    }
    let spectrum: Vec<f64> = body.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
    let size = (spectrum.len() as f64).sqrt() as usize;
    if size * size != spectrum.len() || size == 0 {
        return Err(bad("spectrum is not square"));
    }
    let (h, body) = read("image_size.npy")?;
    let image_size = match (h.contains("'<i8'"), body.get(..8)) {
        (true, Some(b)) => i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize,
        _ => return Err(bad("image_size is not an int64")),
    };
    Ok((spectrum, size, image_size))
}

/// `construct_heatmap`: 10·log10, fftshift, the first row and column repeated at the end
/// (`size + 1` square), Gaussian smoothing with σ = size / image_size · smooth (mode 'nearest').
pub fn heatmap(spectrum: &[f64], size: usize, image_size: usize, smooth: f64) -> Vec<f64> {
    let n = size + 1;
    let mut h = vec![0f64; n * n];
    for y in 0..n {
        for x in 0..n {
            // fftshift: index (i + size/2) mod size.
            let sy = ((y % size) + size / 2) % size;
            let sx = ((x % size) + size / 2) % size;
            h[y * n + x] = 10.0 * spectrum[sy * size + sx].log10();
        }
    }
    if smooth > 0.0 {
        gaussian_filter(&mut h, n, size as f64 / image_size as f64 * smooth);
    }
    h
}

/// scipy.ndimage.gaussian_filter (truncate 4, mode 'nearest') on an `n x n` array.
fn gaussian_filter(a: &mut [f64], n: usize, sigma: f64) {
    let radius = (4.0 * sigma + 0.5) as i64;
    let mut k: Vec<f64> = (-radius..=radius).map(|i| (-0.5 * (i as f64 / sigma).powi(2)).exp()).collect();
    let sum: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    let clamp = |i: i64| i.clamp(0, n as i64 - 1) as usize;
    let mut tmp = vec![0f64; n * n];
    for y in 0..n {
        for x in 0..n {
            tmp[y * n + x] = k.iter().enumerate().map(|(j, w)| w * a[y * n + clamp(x as i64 + j as i64 - radius)]).sum();
        }
    }
    for y in 0..n {
        for x in 0..n {
            a[y * n + x] = k.iter().enumerate().map(|(j, w)| w * tmp[clamp(y as i64 + j as i64 - radius) * n + x]).sum();
        }
    }
}

/// The heatmap and the two slices of one or more spectra (`(label, spectrum, size, image_size)`,
/// same sizes), drawn as one RGB PNG like avg_spectra.py's `heatmap` and `slices` figures.
pub fn render_png(path: &Path, cases: &[(String, Vec<f64>, usize, usize)]) -> Result<(), String> {
    super::spectrum_plot::render(path, cases)
}
