//! The equivariance metrics' building blocks against `metrics/equivariance.py` on the fixture
//! (`eq.safetensors`: EQ-T at (5, −3) pixels, EQ-T_frac at (0.0723, −0.0412), EQ-R at 0.3 rad, for
//! StyleGAN3-T and -R): reference images, masks, the pseudo-rotation and the PSNR of each.

mod common;

use stylescope::metrics::equivariance::*;

type Eq = std::collections::BTreeMap<String, (Vec<usize>, Vec<f64>)>;

fn eq() -> Eq {
    stylescope::weights::safetensors::read_all_f64(&common::fixtures().join("eq.safetensors")).unwrap()
}

fn f32s(eq: &Eq, key: &str) -> Vec<f32> {
    eq.get(key).unwrap_or_else(|| panic!("{key}")).1.iter().map(|&v| v as f32).collect()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The official masks are [1, C, H, W]; ours [H, W].
fn first_channel(m: &[f32], hw: usize) -> &[f32] {
    &m[..hw]
}

const NETS: [&str; 2] = ["sg3t_64", "sg3r_64"];
const C: usize = 3;
const H: usize = 64;
const W: usize = 64;

#[test]
fn integer_translation_matches() {
    let eq = eq();
    for net in NETS {
        let orig = f32s(&eq, &format!("{net}/orig"));
        let t = f32s(&eq, &format!("{net}/eqt_int/t"));
        let (r, m) = integer_translation(&orig, C, H, W, t[0] as f64, t[1] as f64);
        assert_eq!(max_abs(&r, &f32s(&eq, &format!("{net}/eqt_int/ref"))), 0.0, "{net}");
        assert_eq!(m, first_channel(&f32s(&eq, &format!("{net}/eqt_int/mask")), H * W), "{net}");
        let img = f32s(&eq, &format!("{net}/eqt_int/img"));
        let (e, n) = sample_sums(EqKind::TranslateInt, &orig, &img, C, H, W, [t[0] as f64, t[1] as f64], 0.0);
        let want = eq[&format!("{net}/eqt_int/psnr")].1[0];
        assert!((psnr(e, n) - want).abs() < 0.01, "{net}: {} vs {want}", psnr(e, n));
    }
}

#[test]
fn fractional_translation_matches() {
    let eq = eq();
    for net in NETS {
        let orig = f32s(&eq, &format!("{net}/orig"));
        let t = f32s(&eq, &format!("{net}/eqt_frac/t"));
        let (r, m) = fractional_translation(&orig, C, H, W, t[0] as f64, t[1] as f64);
        let err = max_abs(&r, &f32s(&eq, &format!("{net}/eqt_frac/ref")));
        assert!(err < 1e-4, "{net}: max abs error {err:e}");
        assert_eq!(m, first_channel(&f32s(&eq, &format!("{net}/eqt_frac/mask")), H * W), "{net}");
        let img = f32s(&eq, &format!("{net}/eqt_frac/img"));
        let (e, n) = sample_sums(EqKind::TranslateFrac, &orig, &img, C, H, W, [t[0] as f64, t[1] as f64], 0.0);
        let want = eq[&format!("{net}/eqt_frac/psnr")].1[0];
        assert!((psnr(e, n) - want).abs() < 0.01, "{net}: {} vs {want}", psnr(e, n));
    }
}

#[test]
fn rotation_and_pseudo_rotation_match() {
    let eq = eq();
    for net in NETS {
        let orig = f32s(&eq, &format!("{net}/orig"));
        let angle = eq[&format!("{net}/eqr/angle")].1[0];
        let img = f32s(&eq, &format!("{net}/eqr/img"));
        let (r, rm) = fractional_rotation(&orig, C, H, W, angle);
        let err = max_abs(&r, &f32s(&eq, &format!("{net}/eqr/ref")));
        assert!(err < 1e-4, "{net}: ref max abs error {err:e}");
        assert_eq!(rm, first_channel(&f32s(&eq, &format!("{net}/eqr/ref_mask")), H * W), "{net}: ref mask");
        let (p, pm) = fractional_pseudo_rotation(&img, C, H, W, angle);
        let err = max_abs(&p, &f32s(&eq, &format!("{net}/eqr/pseudo")));
        assert!(err < 1e-4, "{net}: pseudo max abs error {err:e}");
        assert_eq!(pm, first_channel(&f32s(&eq, &format!("{net}/eqr/pseudo_mask")), H * W), "{net}: pseudo mask");
        let (e, n) = sample_sums(EqKind::Rotate, &orig, &img, C, H, W, [0.0, 0.0], angle);
        let want = eq[&format!("{net}/eqr/psnr")].1[0];
        assert!((psnr(e, n) - want).abs() < 0.01, "{net}: {} vs {want}", psnr(e, n));
        // The transform buffer the official code sets for this angle.
        let buf = eq[&format!("{net}/eqr/transform_buffer")].1.clone();
        let ours = transform_buffer(EqKind::Rotate, [0.0, 0.0], angle);
        for (i, v) in buf.iter().enumerate() {
            assert!((ours[i / 3][i % 3] - v).abs() < 1e-6, "{net}: transform buffer {buf:?} vs {ours:?}");
        }
    }
}

#[test]
fn psnr_is_the_formula_and_identity_is_perfect() {
    // MSE 0.01 over the mask → 20·log10(2) + 20 dB.
    let a = vec![0.1f32; 2 * 4 * 4];
    let b = vec![0.0f32; 2 * 4 * 4];
    let mask = vec![1f32; 16];
    let (e, n) = masked_sums(&a, &b, &mask, 2);
    assert!((psnr(e, n) - (20.0 * 2f64.log10() + 20.0)).abs() < 1e-4);
    // An image translated by a whole number of pixels with the integer operator is its own
    // reference where the mask is 1: infinite PSNR (zero error).
    let img: Vec<f32> = (0..3 * 16 * 16).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let (moved, _) = integer_translation(&img, 3, 16, 16, 2.0 / 16.0, -1.0 / 16.0);
    let (e, n) = sample_sums(EqKind::TranslateInt, &img, &moved, 3, 16, 16, [2.0 / 16.0, -1.0 / 16.0], 0.0);
    assert_eq!(e, 0.0);
    assert!(n > 0.0 && psnr(e, n).is_infinite());
}
