//! `stylescope spectrum` (avg_spectra.py): the one-pass whitening equals whitening each image
//! before its FFT (the official order); the `.npz` holds `spectrum` (float64) and `image_size`
//! (int64) as numpy writes them; PNGs of the heatmap and slices; one-line errors.

mod common;

use stylescope::metrics::fft::{fft2, kaiser};
use stylescope::metrics::spectrum::{read_npz, SpectrumAccumulator};

/// avg_spectra.py's `calc`, literally: whiten, window, pad, |FFT|², mean over channels and images.
fn official(images: &[Vec<u8>], c: usize, r: usize, interp: usize, mean: f64, std: f64) -> Vec<f64> {
    let s = r * interp;
    let k = kaiser(r, 8.0);
    let norm = k.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut spec = vec![0f64; s * s];
    for img in images {
        for ch in 0..c {
            let mut re = vec![0f64; s * s];
            let mut im = vec![0f64; s * s];
            for y in 0..r {
                for x in 0..r {
                    re[y * s + x] = (img[(ch * r + y) * r + x] as f64 - mean) / std * (k[y] / norm) * (k[x] / norm);
                }
            }
            fft2(&mut re, &mut im, s, s);
            for i in 0..s * s {
                spec[i] += (re[i] * re[i] + im[i] * im[i]) / c as f64;
            }
        }
    }
    spec.iter().map(|v| v / images.len() as f64).collect()
}

#[test]
fn one_pass_whitening_equals_whitening_each_image() {
    let mut rng = stylescope::rng::RandomState::new(3);
    let (c, r) = (3, 16);
    let images: Vec<Vec<u8>> = (0..5).map(|_| (0..c * r * r).map(|_| rng.randint(256) as u8).collect()).collect();
    let mut acc = SpectrumAccumulator::new(r, 8.0, 4);
    for img in &images {
        acc.add(img, c);
    }
    let (mean, std) = acc.mean_std();
    let all: Vec<f64> = images.iter().flatten().map(|&v| v as f64).collect();
    let m = all.iter().sum::<f64>() / all.len() as f64;
    let sd = (all.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / all.len() as f64).sqrt();
    assert!((mean - m).abs() < 1e-9 && (std - sd).abs() < 1e-9);
    for (mm, ss) in [(mean, std), (112.684, 69.509)] {
        let want = official(&images, c, r, 4, mm, ss);
        let got = acc.spectrum(mm, ss);
        let peak = want.iter().fold(0f64, |a, v| a.max(v.abs()));
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f64, f64::max);
        assert!(err <= 1e-9 * peak, "max error {err:e} (peak {peak})");
    }
}

#[test]
fn cli_writes_npz_and_png_and_says_what_is_wrong() {
    let tmp = common::ScratchDir::new("spectrum-cli");
    common::make_images(&tmp.join("data"), 4, 16);
    let npz = tmp.join("data.npz");
    let png = tmp.join("data.png");
    common::run_out(common::bin().args(["spectrum", "--data"]).arg(tmp.join("data")).arg("--output").arg(&npz).arg("--output").arg(&png));
    let (spec, size, image_size) = read_npz(&npz).unwrap();
    assert_eq!((size, image_size, spec.len()), (64, 16, 64 * 64));
    assert!(spec.iter().all(|v| v.is_finite() && *v >= 0.0));
    let img = image::open(&png).unwrap();
    assert!(img.width() > 1000 && img.height() > 400);
    // A network's images (avg_spectra.py needs --num for networks too).
    let net = common::fixtures().join("sg3t_64.pkl");
    let net_npz = tmp.join("net.npz");
    common::run_out(common::bin().args(["spectrum", "--num", "2", "--network"]).arg(&net).arg("--output").arg(&net_npz));
    assert_eq!(read_npz(&net_npz).unwrap().2, 64);
    // Drawing saved spectra; two of different sizes cannot share slices.
    common::run_out(common::bin().args(["spectrum", "--npz"]).arg(&npz).arg("--output").arg(tmp.join("again.png")));
    assert!(tmp.join("again.png").is_file());
    common::run_err(common::bin().args(["spectrum", "--npz"]).arg(&npz).arg(&net_npz).arg("--output").arg(tmp.join("x.png")), "same resolution");
    common::run_err(common::bin().args(["spectrum", "--network"]).arg(&net).arg("--output").arg(tmp.join("y.npz")), "--num is required");
    common::run_err(common::bin().args(["spectrum", "--data"]).arg(tmp.join("data")).arg("--output").arg(tmp.join("y.jpg")), "must end in .npz or .png");
    std::fs::write(tmp.join("broken.npz"), b"not a zip").unwrap();
    common::run_err(common::bin().args(["spectrum", "--npz"]).arg(tmp.join("broken.npz")).arg("--output").arg(tmp.join("z.png")), "broken.npz");
}
