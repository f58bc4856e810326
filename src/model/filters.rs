//! Designed low-pass filters of StyleGAN3 (`design_lowpass_filter` of the official code).
//!
//! Snapshots carry their designed `up_filter` / `down_filter` buffers and we use those verbatim, but
//! networks built from a preset (and networks trained here) need the same design: a Kaiser-windowed
//! sinc (`scipy.signal.firwin` with a transition width) for separable filters, and a Kaiser-windowed
//! jinc for the radial filters of config R. Computed in f64, stored as f32 like the official code.

use std::f64::consts::PI;

/// Zeroth-order modified Bessel function of the first kind (power series; exact to f64 rounding
/// for the Kaiser betas that occur here, which stay below 30).
fn bessel_i0(x: f64) -> f64 {
    let q = 0.25 * x * x;
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut k = 1.0;
    while term > sum * 1e-18 {
        term *= q / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

/// Bessel function of the first kind of order one, from its integral representation
/// `J1(x) = 1/π ∫₀^π cos(τ − x sin τ) dτ`; the integrand is smooth and periodic, so the
/// trapezoid rule converges exponentially and 512 nodes give f64 accuracy for |x| < 200.
fn bessel_j1(x: f64) -> f64 {
    const NODES: usize = 512;
    let h = PI / NODES as f64;
    let mut sum = 0.5 * ((0.0f64).cos() + (PI - x * PI.sin()).cos());
    for n in 1..NODES {
        let tau = n as f64 * h;
        sum += (tau - x * tau.sin()).cos();
    }
    sum * h / PI
}

/// `scipy.signal.kaiser_atten(numtaps, width)` with `width` relative to Nyquist.
fn kaiser_atten(numtaps: usize, width: f64) -> f64 {
    2.285 * (numtaps as f64 - 1.0) * PI * width + 7.95
}

/// `scipy.signal.kaiser_beta(atten)`.
fn kaiser_beta(atten: f64) -> f64 {
    if atten > 50.0 {
        0.1102 * (atten - 8.7)
    } else if atten > 21.0 {
        0.5842 * (atten - 21.0).powf(0.4) + 0.07886 * (atten - 21.0)
    } else {
        0.0
    }
}

/// Symmetric Kaiser window of length `n`.
fn kaiser_window(n: usize, beta: f64) -> Vec<f64> {
    if n == 1 {
        return vec![1.0];
    }
    let alpha = (n as f64 - 1.0) / 2.0;
    let denom = bessel_i0(beta);
    (0..n)
        .map(|i| {
            let r = (i as f64 - alpha) / alpha;
            bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / denom
        })
        .collect()
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

/// A designed filter: 1-D separable taps or a square 2-D kernel (row-major).
#[derive(Clone, Debug, PartialEq)]
pub enum DesignedFilter {
    Separable(Vec<f32>),
    Radial { taps: usize, data: Vec<f32> },
}

impl DesignedFilter {
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Self::Separable(v) => vec![v.len()],
            Self::Radial { taps, .. } => vec![*taps, *taps],
        }
    }

    pub fn data(&self) -> &[f32] {
        match self {
            Self::Separable(v) => v,
            Self::Radial { data, .. } => data,
        }
    }
}

/// `design_lowpass_filter(numtaps, cutoff, width, fs, radial)`; `None` for a single tap.
pub fn design_lowpass_filter(
    numtaps: usize,
    cutoff: f64,
    width: f64,
    fs: f64,
    radial: bool,
) -> Option<DesignedFilter> {
    if numtaps <= 1 {
        return None;
    }
    let nyq = fs / 2.0;
    let beta = kaiser_beta(kaiser_atten(numtaps, width / nyq));
    let window = kaiser_window(numtaps, beta);
    let centre = (numtaps as f64 - 1.0) / 2.0;
    if !radial {
        let nu = cutoff / nyq;
        let h: Vec<f64> = (0..numtaps)
            .map(|i| nu * sinc(nu * (i as f64 - centre)) * window[i])
            .collect();
        let sum: f64 = h.iter().sum();
        return Some(DesignedFilter::Separable(h.iter().map(|v| (v / sum) as f32).collect()));
    }
    let x: Vec<f64> = (0..numtaps).map(|i| (i as f64 - centre) / fs).collect();
    let mut f = Vec::with_capacity(numtaps * numtaps);
    for (i, xi) in x.iter().enumerate() {
        for (j, xj) in x.iter().enumerate() {
            let r = xi.hypot(*xj);
            let jinc = bessel_j1(2.0 * cutoff * (PI * r)) / (PI * r);
            f.push(jinc * window[i] * window[j]);
        }
    }
    let sum: f64 = f.iter().sum();
    Some(DesignedFilter::Radial {
        taps: numtaps,
        data: f.iter().map(|v| (v / sum) as f32).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bessel_values() {
        assert!((bessel_i0(1.0) - 1.266_065_877_752_008_4).abs() < 1e-14);
        assert!((bessel_j1(1.0) - 0.440_050_585_744_933_5).abs() < 1e-14);
        assert!((bessel_j1(25.0) - (-0.125_350_249_580_289_8)).abs() < 1e-13);
    }

    #[test]
    fn lowpass_has_unit_dc_gain_and_symmetry() {
        let f = design_lowpass_filter(12, 2.0, 12.0, 32.0, false).expect("filter");
        let d = f.data();
        let sum: f32 = d.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6);
        for i in 0..6 {
            assert_eq!(d[i], d[11 - i]);
        }
    }
}
