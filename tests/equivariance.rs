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

/// The whole sample through our generator: orig and the transformed images from
/// `sg3?_64.pkl` at seed 0 (the fixture's first seed) under the official transform buffers give
/// the fixture's per-sample PSNRs.
#[test]
fn our_generator_gives_the_official_per_sample_psnr() {
    use stylescope::metrics::eq_sampling::{accumulate, sample_images, Draw, EqSums};
    let eq = eq();
    let device = stylescope::backend::BackendChoice::Cpu.device();
    for net in NETS {
        let opened = stylescope::source::open_generator(&common::fixtures().join(format!("{net}.pkl")).display().to_string(), stylescope::weights::Which::GEma, &device).unwrap();
        let t_int = f32s(&eq, &format!("{net}/eqt_int/t"));
        let t_frac = f32s(&eq, &format!("{net}/eqt_frac/t"));
        let draw = Draw {
            z_seed: 0,
            class: None,
            t_int: [t_int[0] as f64, t_int[1] as f64],
            t_frac: [t_frac[0] as f64, t_frac[1] as f64],
            angle: eq[&format!("{net}/eqr/angle")].1[0],
        };
        let kinds = [EqKind::TranslateInt, EqKind::TranslateFrac, EqKind::Rotate];
        let images = sample_images(&opened.generator, &draw, &kinds, Default::default()).unwrap();
        let err = max_abs(&images.orig, &f32s(&eq, &format!("{net}/orig")));
        assert!(err < 1e-4, "{net}: orig max abs error {err:e}");
        let mut sums = EqSums::default();
        accumulate(&mut sums, &images, &draw);
        let psnr = sums.psnr();
        for (k, key) in [(EqKind::TranslateInt, "eqt_int"), (EqKind::TranslateFrac, "eqt_frac"), (EqKind::Rotate, "eqr")] {
            let img = &images.transformed.iter().find(|(kk, _)| *kk == k).unwrap().1;
            let err = max_abs(img, &f32s(&eq, &format!("{net}/{key}/img")));
            assert!(err < 1e-4, "{net} {key}: img max abs error {err:e}");
            let want = eq[&format!("{net}/{key}/psnr")].1[0];
            assert!((psnr[&k] - want).abs() < 0.01, "{net} {key}: {} dB vs {want}", psnr[&k]);
        }
    }
}

/// `stylescope metrics`: calc_metrics-style lines, the JSON line, draws saved and read back give
/// the same numbers, and the aggregate equals PSNR(Σ err / Σ mask) over the samples.
#[test]
fn metrics_cli_reproduces_its_draws_and_aggregates_like_the_formula() {
    use stylescope::metrics::eq_sampling::{accumulate, load_draws, sample_images, EqSums};
    let tmp = common::ScratchDir::new("eq-cli");
    let net = common::fixtures().join("sg3t_64.pkl");
    let draws = tmp.join("draws.json");
    let (out, _) = common::run_out(common::bin().args(["metrics", "--network"]).arg(&net).args(["--num", "3", "--seed", "7", "--json", "--save-draws"]).arg(&draws));
    // One calc_metrics-style line per metric; the results merged.
    let merged = |text: &str| -> serde_json::Value {
        let mut results = serde_json::Map::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["num_samples"], 3, "{line}");
            assert!(v["metric"].is_string() && v["total_time_str"].is_string(), "{line}");
            results.extend(v["results"].as_object().unwrap().clone());
        }
        serde_json::json!({ "results": results })
    };
    let first = merged(&out);
    assert_eq!(out.lines().count(), 3);
    let (again, _) = common::run_out(common::bin().args(["metrics", "--network"]).arg(&net).args(["--json", "--draws"]).arg(&draws));
    let second = merged(&again);
    assert_eq!(first["results"], second["results"]);
    // The same from the library, sample by sample.
    let device = stylescope::backend::BackendChoice::Cpu.device();
    let g = stylescope::source::open_generator(&net.display().to_string(), stylescope::weights::Which::GEma, &device).unwrap().generator;
    let kinds = [EqKind::TranslateInt, EqKind::TranslateFrac, EqKind::Rotate];
    let mut sums = EqSums::default();
    let (mut e, mut m) = (0.0, 0.0);
    for d in load_draws(&draws).unwrap() {
        let images = sample_images(&g, &d, &kinds, Default::default()).unwrap();
        accumulate(&mut sums, &images, &d);
        let (c, r) = (images.channels, images.resolution);
        let img = &images.transformed[2].1;
        let (se, sm) = sample_sums(EqKind::Rotate, &images.orig, img, c, r, r, [0.0; 2], d.angle);
        e += se;
        m += sm;
    }
    let eqr = first["results"]["eqr50k"].as_f64().unwrap();
    assert!((eqr - psnr(e, m)).abs() < 1e-9, "{eqr} vs {}", psnr(e, m));
    assert!((sums.psnr()[&EqKind::TranslateFrac] - first["results"]["eqt50k_frac"].as_f64().unwrap()).abs() < 1e-9);
    // Text lines like calc_metrics.py's names.
    let (text, _) = common::run_out(common::bin().args(["metrics", "--network"]).arg(&net).args(["--metrics", "eqt50k_int", "--num", "1"]));
    assert!(text.starts_with("eqt50k_int: ") && text.contains(" dB"), "{text}");
    // Errors: a StyleGAN2 network, an unknown metric, a broken draws file.
    common::run_err(common::bin().args(["metrics", "--num", "1", "--network"]).arg(common::fixtures().join("sg2_64.pkl")), "StyleGAN3");
    common::run_err(common::bin().args(["metrics", "--metrics", "fid50k", "--network"]).arg(&net), "unknown metric 'fid50k'");
    std::fs::write(tmp.join("bad.json"), "[{\"z_seed\": 1}]").unwrap();
    common::run_err(common::bin().args(["metrics", "--draws"]).arg(tmp.join("bad.json")).arg("--network").arg(&net), "bad.json");
}
