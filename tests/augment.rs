//! The ADA augment pipe against the official `training/augment.py` (`../shared/fixtures-train`,
//! README §2): every run (`aug` = bgc at p 0.5, `aug0` = bgc at p 0, `aug1/<t>` = one transform at
//! p 1) replayed with its recorded draws, matrices and images compared; on the CPU backend, on
//! wgpu, and its gradient under autodiff.

mod common;

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use common::{get, max_abs, to_vec, Expected};
use stylescope::train::augment::{AugmentParams, AugmentPipe, AugmentRng, DrawKind, RecordedDraw, Replay, SeededRng};

/// `../shared/fixtures-train` beside the checkout, overridable with STYLESCOPE_FIXTURES_TRAIN.
fn fixtures_train() -> PathBuf {
    if let Ok(p) = std::env::var("STYLESCOPE_FIXTURES_TRAIN") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures-train")
}

fn manifest() -> serde_json::Value {
    let path = fixtures_train().join("manifest.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// One network's augment fixtures: its tensors and its draw tables (run → [(key, fn, shape)]).
struct Fixture {
    name: String,
    data: Expected,
    tables: serde_json::Map<String, serde_json::Value>,
}

fn fixtures() -> Vec<Fixture> {
    let m = manifest();
    let mut out = Vec::new();
    for (name, entry) in m.as_object().unwrap() {
        if name.starts_with('_') {
            continue;
        }
        let path = fixtures_train().join(format!("{name}.train.safetensors"));
        let data = stylescope::weights::safetensors::read_all_f64(&path).unwrap_or_else(|e| panic!("{e}"));
        let tables = entry["notes"]["aug"]["aug_draw_tables"].as_object().unwrap_or_else(|| panic!("{name}: no aug_draw_tables")).clone();
        out.push(Fixture { name: name.clone(), data, tables });
    }
    assert_eq!(out.len(), 4, "expected the four fixture networks");
    out
}

fn tensor4(data: &Expected, key: &str, device: &Device) -> Tensor<4> {
    let (s, v) = get(data, key);
    Tensor::from_data(TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), [s[0], s[1], s[2], s[3]]), device)
}

/// The pipe of a run: bgc at the recorded p, bgc at p 0, or one transform alone at p 1.
fn pipe_for(run: &str, data: &Expected) -> AugmentPipe {
    match run {
        "aug" => AugmentPipe { p: get(data, "aug/p").1[0], ..AugmentPipe::bgc() },
        "aug0" => AugmentPipe { p: 0.0, ..AugmentPipe::bgc() },
        _ => {
            let t = run.strip_prefix("aug1/").unwrap_or_else(|| panic!("unknown run {run}"));
            let mut pipe = AugmentPipe { p: 1.0, ..AugmentPipe::default() };
            *pipe.multiplier_mut(t).unwrap_or_else(|| panic!("unknown transform {t}")) = 1.0;
            pipe
        }
    }
}

/// The recorded draws of `run`, in call order, with their function and shape.
fn replay_for(fx: &Fixture, run: &str) -> Replay {
    let table = fx.tables[run].as_array().unwrap();
    let draws = table
        .iter()
        .map(|d| {
            let key = d["key"].as_str().unwrap();
            let kind = match d["fn"].as_str().unwrap() {
                "rand" => DrawKind::Rand,
                "randn" => DrawKind::Randn,
                other => panic!("{key}: unexpected draw function {other}"),
            };
            let shape: Vec<usize> = d["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            let (stored, values) = get(&fx.data, key);
            assert_eq!(stored, &shape, "{key}: stored shape differs from the table");
            RecordedDraw { kind: Some(kind), shape, values: values.iter().map(|&v| v as f32).collect() }
        })
        .collect();
    Replay::new(draws)
}

/// Draws the run's parameters with its recorded draws, checking that exactly all were used.
fn draw_run(fx: &Fixture, run: &str) -> AugmentParams {
    let (s, _) = get(&fx.data, "aug/input");
    let mut replay = replay_for(fx, run);
    let params = pipe_for(run, &fx.data).draw(s[0], s[2], s[3], &mut replay);
    assert_eq!(replay.remaining(), 0, "{} {run}: {} recorded draws left unused", fx.name, replay.remaining());
    params
}

fn assert_matrices<const N: usize>(got: Option<&[[[f32; N]; N]]>, fx: &Fixture, key: &str, tol: f64) {
    let want = fx.data.get(key);
    match (got, want) {
        (None, None) => {}
        (Some(m), Some((_, want))) => {
            let flat: Vec<f32> = m.iter().flat_map(|m| m.iter().flatten().copied()).collect();
            let err = max_abs(&flat, want);
            assert!(err <= tol, "{} {key}: max abs error {err:e} > {tol:e}\n got {flat:?}\nwant {want:?}", fx.name);
        }
        (Some(_), None) => panic!("{} {key}: the pipe ran this path, the official one did not", fx.name),
        (None, Some(_)) => panic!("{} {key}: the official pipe ran this path, ours did not", fx.name),
    }
}

fn assert_image(got: Tensor<4>, fx: &Fixture, key: &str, tol: f64) {
    let (_, want) = get(&fx.data, key);
    let err = max_abs(&to_vec(got), want);
    assert!(err <= tol, "{} {key}: max abs error {err:e} > {tol:e}", fx.name);
}

/// Replays `run` and checks its matrices and images on `device`.
fn check_run(fx: &Fixture, run: &str, device: &Device) {
    let params = draw_run(fx, run);
    assert_matrices(params.g_inv(), fx, &format!("{run}/G_inv"), 1e-6);
    assert_matrices(params.g_inv_grid(), fx, &format!("{run}/G_inv_grid"), 1e-6);
    assert_matrices(params.c(), fx, &format!("{run}/C"), 1e-6);
    match (params.pad(), fx.data.get(&format!("{run}/pad"))) {
        (Some(p), Some((_, want))) => {
            let want: Vec<usize> = want.iter().map(|&v| v as usize).collect();
            assert_eq!(p.to_vec(), want, "{} {run}/pad", fx.name);
        }
        (None, None) => {}
        (p, w) => panic!("{} {run}/pad: ours {p:?}, official {w:?}", fx.name),
    }
    let x = tensor4(&fx.data, "aug/input", device);
    if fx.data.contains_key(&format!("{run}/after_geom")) {
        assert_image(params.apply_geometric(x.clone()), fx, &format!("{run}/after_geom"), 1e-4);
    }
    assert_image(params.apply(x), fx, &format!("{run}/output"), 1e-4);
}

#[test]
fn every_run_matches_the_official_pipe_on_cpu() {
    let device = Device::flex();
    for fx in fixtures() {
        let mut runs: Vec<&String> = fx.tables.keys().collect();
        runs.sort();
        assert_eq!(runs.len(), 14, "{}: aug, aug0 and 12 aug1 runs", fx.name);
        for run in runs {
            check_run(&fx, run, &device);
        }
    }
}

/// On wgpu the upsampling/downsampling run as WGSL kernels and the sampling as tensor ops.
#[test]
fn bgc_output_matches_on_wgpu() {
    let device = stylescope::backend::BackendChoice::Wgpu.device();
    for fx in fixtures() {
        check_run(&fx, "aug", &device);
    }
}

fn random4(shape: [usize; 4], seed: u32, device: &Device) -> Tensor<4> {
    let v = SeededRng::new(seed).randn(&shape);
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn dot(a: Tensor<4>, b: Tensor<4>) -> f64 {
    to_vec(a).iter().zip(to_vec(b)).map(|(&x, y)| x as f64 * y as f64).sum()
}

/// apply is affine in x: its autodiff gradient is the adjoint of apply_linear, and
/// apply(x + v) − apply(x) = apply_linear(v).
fn check_gradient(device: &Device) {
    let fx = fixtures().into_iter().next().unwrap();
    let params = draw_run(&fx, "aug");
    let x = tensor4(&fx.data, "aug/input", device);
    let shape = x.dims();
    let r = random4(shape, 1, device);

    // Under autodiff (the reference ops on flex) the forward still matches the official output.
    let xg = x.clone().require_grad();
    let y = params.apply(xg.clone());
    assert_image(y.clone(), &fx, "aug/output", 1e-4);
    let grads = (y * r.clone()).sum().backward();
    let grad = xg.grad(&grads).expect("gradient w.r.t. the images");

    for seed in [2, 3] {
        let v = random4(shape, seed, device);
        let lhs = dot(grad.clone(), v.clone());
        let rhs = dot(params.apply_linear(v.clone()), r.clone());
        let scale = dot(grad.clone().abs(), v.clone().abs()).max(1.0);
        assert!((lhs - rhs).abs() <= 1e-5 * scale, "<grad, v> = {lhs} but <apply_linear(v), r> = {rhs} (scale {scale})");

        let diff = params.apply(x.clone() + v.clone()) - params.apply(x.clone());
        let lin = params.apply_linear(v);
        let err = to_vec(diff).iter().zip(to_vec(lin)).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 1e-4, "apply(x + v) - apply(x) differs from apply_linear(v) by {err}");
    }
}

#[test]
fn gradient_is_the_adjoint_of_the_linear_map() {
    check_gradient(&Device::flex().autodiff());
}

/// The same on wgpu: the WGSL up/downsampling kernels' backward and `select`'s scatter.
#[test]
fn gradient_is_the_adjoint_of_the_linear_map_on_wgpu() {
    check_gradient(&stylescope::backend::BackendChoice::Wgpu.device().autodiff());
}

#[test]
fn seeded_draws_are_deterministic_and_finite() {
    let device = Device::flex();
    let pipe = AugmentPipe { p: 0.8, ..AugmentPipe::bgc() };
    let x = random4([2, 3, 16, 16], 7, &device);
    let a = pipe.draw(2, 16, 16, &mut SeededRng::new(11));
    let b = pipe.draw(2, 16, 16, &mut SeededRng::new(11));
    assert_eq!(a.g_inv(), b.g_inv());
    assert_eq!(a.c(), b.c());
    let (ya, yb) = (to_vec(a.apply(x.clone())), to_vec(b.apply(x)));
    assert_eq!(ya, yb);
    assert!(ya.iter().all(|v| v.is_finite()));
    // Grayscale: hue and saturation make no draws, colour still applies.
    let g = pipe.draw_channels(2, 1, 16, 16, &mut SeededRng::new(5)).unwrap();
    let y = to_vec(g.apply(random4([2, 1, 16, 16], 8, &device)));
    assert!(y.iter().all(|v| v.is_finite()));
    assert!(pipe.draw_channels(2, 2, 16, 16, &mut SeededRng::new(5)).is_err());
}
