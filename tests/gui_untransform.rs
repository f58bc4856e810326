//! The "Untransform" view uses the official band-limited affine resampler: its 47x47 filter and
//! its output match `metrics/equivariance.py` on the fixture (`eq.safetensors`, EQ-R at 0.3 rad).

use std::path::PathBuf;

use stylescope::render::untransform::{apply_affine, bandlimit_filter};

fn eq() -> std::collections::BTreeMap<String, (Vec<usize>, Vec<f64>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/eq.safetensors");
    stylescope::weights::safetensors::read_all_f64(&path).unwrap()
}

/// `rotation_matrix(θ)` of metrics/equivariance.py.
fn rotation(angle: f64) -> [[f64; 3]; 3] {
    let (s, c) = angle.sin_cos();
    [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]
}

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn filter_matches_construct_affine_bandlimit_filter() {
    let eq = eq();
    let angle = eq["sg3t_64/eqr/angle"].1[0];
    let want = &eq["sg3t_64/eqr/filter_rot_up4"].1;
    let got = bandlimit_filter(rotation(angle), 3, 6, 4);
    let err = max_abs(&got, want);
    let peak = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    eprintln!("filter max abs error {err:e}, peak {peak}");
    assert!(err <= 1e-6 * peak.max(1.0) + 1e-7, "filter max abs error {err:e} (peak {peak})");
}

#[test]
fn resampling_matches_apply_fractional_rotation() {
    let eq = eq();
    for net in ["sg3t_64", "sg3r_64"] {
        let angle = eq[&format!("{net}/eqr/angle")].1[0];
        let orig: Vec<f32> = eq[&format!("{net}/orig")].1.iter().map(|&v| v as f32).collect();
        let want = &eq[&format!("{net}/eqr/ref")].1;
        let got: Vec<f64> = apply_affine(&orig, 3, 64, 64, rotation(angle)).unwrap().into_iter().map(f64::from).collect();
        let err = max_abs(&got, want);
        eprintln!("{net}: untransform max abs error {err:e}");
        assert!(err <= 1e-4, "{net}: apply_fractional_rotation max abs error {err:e}");
    }
}

/// The view's use: StyleGAN3-R's rotated output (`eqr/img`, transform buffer
/// `rotation_matrix(-angle)`) resampled through that buffer lines up with `orig` (R is
/// rotation-equivariant; T is not, so only R is held to it).
#[test]
fn untransform_realigns_the_rotation_equivariant_network() {
    let eq = eq();
    let angle = eq["sg3r_64/eqr/angle"].1[0];
    let orig = &eq["sg3r_64/orig"].1;
    let img: Vec<f32> = eq["sg3r_64/eqr/img"].1.iter().map(|&v| v as f32).collect();
    let back = apply_affine(&img, 3, 64, 64, rotation(-angle)).unwrap();
    let central_mse = |a: &dyn Fn(usize) -> f64| {
        let idx: Vec<usize> = (0..3).flat_map(|c| (16..48).flat_map(move |y| (16..48).map(move |x| (c * 64 + y) * 64 + x))).collect();
        idx.iter().map(|&i| (a(i) - orig[i]).powi(2)).sum::<f64>() / idx.len() as f64
    };
    let before = central_mse(&|i| img[i] as f64);
    let after = central_mse(&|i| back[i] as f64);
    assert!(after < 1e-3 * before, "mse {after:e} after untransform vs {before:e} before");
}
