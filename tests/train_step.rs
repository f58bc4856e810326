//! The official training step, phase by phase: losses, intermediates and gradients of Gmain /
//! Gboth, Dmain (with its `w_avg` / `magnitude_ema` updates) and Dreg (exact R1 through the
//! tangent pass) against `../shared/fixtures-train` (teacher-forced from each phase's reference
//! state, as its README prescribes) and `grad_Dr1/*` of `../shared/fixtures`; Adam with the
//! lazy-regularisation corrections and the G_ema update against the official chain; a
//! finite-difference check of the R1 gradient.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::tensor::{Device, Tensor};
use common::*;
use stylescope::model::config::GeneratorConfig;
use stylescope::model::discriminator::Discriminator;
use stylescope::model::Generator;
use stylescope::train::adam::{ema_beta, nan_to_num, update_ema, Adam, Grads, StateDict};
use stylescope::train::loss::{self, tensor, LossOptions, NumpyRng, PhaseOut, ReplayRng};
use stylescope::weights::{HostTensor, LoadedWeights, NetworkFile, Which};

fn fixtures_train() -> PathBuf {
    if let Ok(p) = std::env::var("STYLESCOPE_FIXTURES_TRAIN") {
        return PathBuf::from(p);
    }
    fixtures().join("../fixtures-train")
}

fn manifest() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures_train().join("manifest.json")).unwrap()).unwrap()
}

fn train_networks() -> Vec<String> {
    manifest().as_object().unwrap().keys().filter(|k| fixtures_train().join(format!("{k}.train.safetensors")).is_file()).cloned().collect()
}

struct Net {
    name: String,
    exp: Expected,
    notes: serde_json::Value,
    g: NetworkFile,
    d: NetworkFile,
}

impl Net {
    fn open(name: &str) -> Self {
        let exp = stylescope::weights::safetensors::read_all_f64(&fixtures_train().join(format!("{name}.train.safetensors"))).unwrap();
        let pkl = fixtures().join(format!("{name}.pkl"));
        Net {
            name: name.to_string(),
            exp,
            notes: manifest()[name]["notes"].clone(),
            g: NetworkFile::read(&pkl, Which::G).unwrap(),
            d: NetworkFile::read(&pkl, Which::D).unwrap(),
        }
    }

    fn f32s(&self, key: &str) -> Vec<f32> {
        get(&self.exp, key).1.iter().map(|&v| v as f32).collect()
    }

    fn shape(&self, key: &str) -> Vec<usize> {
        get(&self.exp, key).0.clone()
    }

    /// `base` with every entry found under `prefix/<name>` replaced.
    fn state(&self, base: &StateDict, prefix: &str) -> StateDict {
        let mut s = base.clone();
        for (k, t) in s.iter_mut() {
            if let Some((_, v)) = self.exp.get(&format!("{prefix}/{k}")) {
                t.data = v.iter().map(|&x| x as f32).collect();
            }
        }
        s
    }

    fn generator(&self, state: &StateDict, device: &Device) -> Generator {
        let mut cfg = self.g.generator_config().unwrap();
        if let GeneratorConfig::StyleGan3(c) = &mut cfg {
            c.magnitude_ema_beta = self.notes["train"]["config"]["magnitude_ema_beta"].as_f64().unwrap();
        }
        Generator::load(&cfg, &mut LoadedWeights::new(&self.g.path, state.clone()), device).unwrap()
    }

    fn discriminator(&self, state: &StateDict, device: &Device) -> Discriminator {
        let cfg = self.d.discriminator_config().unwrap();
        Discriminator::load(&cfg, &mut LoadedWeights::new(&self.d.path, state.clone()), device).unwrap()
    }

    fn input2(&self, key: &str, device: &Device) -> Tensor<2> {
        let s = self.shape(key);
        tensor(&self.f32s(key), [s[0], s[1]], device)
    }

    fn labels(&self, key: &str, device: &Device) -> Option<Tensor<2>> {
        let s = self.shape(key);
        loss::labels(&self.f32s(key), s[0], device)
    }

    fn image(&self, key: &str, device: &Device) -> Tensor<4> {
        let s = self.shape(key);
        tensor(&self.f32s(key), [s[0], s[1], s[2], s[3]], device)
    }

    fn options(&self) -> LossOptions {
        let cfg = &self.notes["train"]["config"];
        let lk = &cfg["loss_kwargs"];
        let f = |k: &str, d: f64| lk[k].as_f64().unwrap_or(d);
        LossOptions {
            r1_gamma: f("r1_gamma", 10.0),
            style_mixing_prob: f("style_mixing_prob", 0.0),
            pl_weight: f("pl_weight", 0.0),
            pl_batch_shrink: 2,
            pl_decay: 0.01,
            pl_no_weight_grad: lk["pl_no_weight_grad"].as_bool().unwrap_or(false),
            blur_init_sigma: f("blur_init_sigma", 0.0),
            blur_fade_kimg: f("blur_fade_kimg", 0.0),
        }
    }

    /// The recorded draws `<it>/draw{k}` from index `from` on, in order.
    fn draws(&self, it: &str, from: usize) -> Vec<Vec<f32>> {
        (from..).map(|k| format!("{it}/draw{k:03}")).take_while(|k| self.exp.contains_key(k)).map(|k| self.f32s(&k)).collect()
    }

    /// Index of the first draw of `phase` in iteration `it`.
    fn first_draw(&self, it: &str, phase: &str) -> usize {
        let draws = self.notes["train"][it]["draws"].as_array().cloned().unwrap_or_default();
        draws.iter().position(|d| d["phase"].as_str() == Some(phase)).unwrap_or(draws.len())
    }

    /// The tolerance of a gradient tensor: max(1e-3, 10·r)·max|g_ref| (fixtures-train README).
    fn grad_tol(&self, it: &str, phase: &str, param: &str) -> f64 {
        let r = self.notes["train"]["sensitivity_per_phase_2^-24"][it][phase]["grad_rel_per_param"][param].as_f64().unwrap_or(0.0);
        (10.0 * r).max(1e-3)
    }
}

/// ‖a − b‖ / ‖b‖.
fn rel_l2(a: &[f32], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den.max(1e-300)).sqrt()
}

fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    max_abs(got, want) / scale
}

fn check_values(net: &Net, out: &PhaseOut, it: &str, phase: &str) {
    for (key, got) in &out.values {
        let fkey = format!("{it}/{phase}/{key}");
        let Some((_, want)) = net.exp.get(&fkey) else { continue };
        let relative = key == "r1_grads" || key == "pl_grads";
        let tol = if key == "gen_img" || key == "gen_ws" || relative { 1e-4 } else { 1e-5 };
        let err = if relative { rel_err(got, want) } else { max_abs(got, want) };
        assert!(err <= tol, "{} {fkey}: error {err:e} > {tol:e}", net.name);
    }
}

fn check_grads(net: &Net, grads: &Grads, it: &str, phase: &str) {
    let prefix = format!("{it}/grad/{phase}/");
    let expected: Vec<&String> = net.exp.keys().filter(|k| k.starts_with(&prefix)).collect();
    assert!(!expected.is_empty(), "{}: no {prefix}* in the fixtures", net.name);
    for key in &expected {
        let param = &key[prefix.len()..];
        let got = grads.get(param).unwrap_or_else(|| panic!("{} {key}: no gradient", net.name));
        let err = rel_err(got, &net.exp[*key].1);
        let tol = net.grad_tol(it, phase, param);
        assert!(err <= tol, "{} {key}: relative error {err:e} > {tol:e}", net.name);
    }
    let extra: Vec<&String> = grads.keys().filter(|p| !net.exp.contains_key(&format!("{prefix}{p}"))).collect();
    assert!(extra.is_empty(), "{} {it}/{phase}: gradients the official step has not: {extra:?}", net.name);
}

fn g_phase_name(net: &Net) -> &'static str {
    if net.exp.contains_key("step/gen_z/Gboth") {
        "Gboth"
    } else {
        "Gmain"
    }
}

fn run_phases(device: &Device) {
    for name in train_networks() {
        let net = Net::open(&name);
        let opts = net.options();
        let g_init: StateDict = net.g.tensors.clone();
        let d_init: StateDict = net.d.tensors.clone();
        let gphase = g_phase_name(&net);
        let sigma = |it: &str, phase: &str| net.notes["train"][it]["blur_sigma"][phase].as_f64().unwrap_or(0.0);

        // Gmain / Gboth from init/G and <name>.D.
        let mut g = net.generator(&g_init, device);
        let d = net.discriminator(&d_init, device);
        let mut rng = ReplayRng::new(net.draws("step", net.first_draw("step", gphase)));
        let out = loss::gmain(&mut g, &d, net.input2(&format!("step/gen_z/{gphase}"), device), net.labels(&format!("step/gen_c/{gphase}"), device), &opts, sigma("step", gphase), 1.0, &mut None, &mut rng).unwrap();
        assert!(rng.mismatch.is_none(), "{name}: {:?}", rng.mismatch);
        check_values(&net, &out, "step", gphase);
        check_grads(&net, &out.grads, "step", gphase);

        // Greg (StyleGAN2's path length) from params step/after_Gmain/G, buffers init/G, gain 4.
        if net.exp.contains_key("step/gen_z/Greg") {
            let mut g = net.generator(&net.state(&g_init, "step/after_Gmain/G"), device);
            let mut rng = ReplayRng::new(net.draws("step", net.first_draw("step", "Greg")));
            let (out, pl_mean) = loss::greg(&mut g, net.input2("step/gen_z/Greg", device), net.labels("step/gen_c/Greg", device), &opts, 0.0, 4.0, &mut rng, false).unwrap();
            assert!(rng.mismatch.is_none(), "{name}: {:?}", rng.mismatch);
            check_values(&net, &out, "step", "Greg");
            check_grads(&net, &out.grads, "step", "Greg");
            assert!((pl_mean as f64 - net.exp["step/pl_mean"].1[0]).abs() < 1e-6, "{name}: pl_mean state");
        }

        // Dmain from G params step/G (buffers init/G) and <name>.D; the G buffers it updates.
        let g_state = net.state(&g_init, "step/G");
        let g_params: Vec<String> = net.generator(&g_init, device).named_params().into_iter().map(|(n, _)| n).collect();
        let mut g_state_buffers_init = g_state.clone();
        for (k, t) in g_state_buffers_init.iter_mut() {
            if !g_params.contains(k) {
                *t = g_init[k].clone();
            }
        }
        // G where the training loop runs it in Dmain (on the CPU: the inference kernels).
        let g_device = loss::g_device_without_grad(device);
        let mut g = net.generator(&g_state_buffers_init, &g_device);
        let mut rng = ReplayRng::new(net.draws("step", net.first_draw("step", "Dmain")));
        let out = loss::dmain(
            &mut g,
            &d,
            net.input2("step/gen_z/Dmain", device),
            net.labels("step/gen_c/Dmain", device),
            net.image("step/reals", device),
            net.labels("step/real_c", device),
            &opts,
            sigma("step", "Dmain"),
            1.0,
            &mut None,
            &mut rng,
        )
        .unwrap();
        assert!(rng.mismatch.is_none(), "{name}: {:?}", rng.mismatch);
        check_values(&net, &out, "step", "Dmain");
        check_grads(&net, &out.grads, "step", "Dmain");
        // Updated buffers: w_avg and (StyleGAN3) every magnitude_ema, as in step/G.
        let w_avg = stylescope::backend::read_f32(g.w_avg().unwrap()).unwrap();
        let err = max_abs(&w_avg, &net.exp["step/G/mapping.w_avg"].1);
        assert!(err < 1e-5, "{name}: w_avg after Dmain off by {err:e}");
        if let stylescope::model::Synthesis::StyleGan3(s) = &g.synthesis {
            for l in &s.layers {
                let got = stylescope::backend::read_f32(l.magnitude_ema.clone()).unwrap();
                let want = &net.exp[&format!("step/G/synthesis.{}.magnitude_ema", l.spec.name)].1;
                let err = (got[0] as f64 - want[0]).abs() / want[0].abs().max(1e-12);
                assert!(err < 1e-5, "{name}: {} magnitude_ema relative error {err:e}", l.spec.name);
            }
        }

        // Iteration 2 (batch 1: no regularisation): Gmain/Gboth from the complete step/* state,
        // Dmain from G params step2/G with G buffers step/G and D step/D.
        let g_step = net.state(&g_init, "step/G");
        let d_step = net.state(&d_init, "step/D");
        let mut g = net.generator(&g_step, device);
        let d2 = net.discriminator(&d_step, device);
        let mut rng = ReplayRng::new(net.draws("step2", net.first_draw("step2", gphase)));
        let out = loss::gmain(&mut g, &d2, net.input2(&format!("step2/gen_z/{gphase}"), device), net.labels(&format!("step2/gen_c/{gphase}"), device), &opts, sigma("step2", gphase), 1.0, &mut None, &mut rng).unwrap();
        check_values(&net, &out, "step2", gphase);
        check_grads(&net, &out.grads, "step2", gphase);
        let mut g2_state = net.state(&g_init, "step2/G");
        for (k, t) in g2_state.iter_mut() {
            if !g_params.contains(k) {
                *t = g_step[k].clone();
            }
        }
        let mut g = net.generator(&g2_state, &g_device);
        let mut rng = ReplayRng::new(net.draws("step2", net.first_draw("step2", "Dmain")));
        let out = loss::dmain(
            &mut g,
            &d2,
            net.input2("step2/gen_z/Dmain", device),
            net.labels("step2/gen_c/Dmain", device),
            net.image("step2/reals", device),
            net.labels("step2/real_c", device),
            &opts,
            sigma("step2", "Dmain"),
            1.0,
            &mut None,
            &mut rng,
        )
        .unwrap();
        check_values(&net, &out, "step2", "Dmain");
        check_grads(&net, &out.grads, "step2", "Dmain");

        // Dreg from step/after_Dmain/D: exact R1, gain 16.
        let d = net.discriminator(&net.state(&d_init, "step/after_Dmain/D"), device);
        let out = loss::dreg(&d, net.image("step/reals", device), net.labels("step/real_c", device), opts.r1_gamma, sigma("step", "Dreg"), 16.0, &mut None).unwrap();
        check_values(&net, &out, "step", "Dreg");
        check_grads(&net, &out.grads, "step", "Dreg");
    }
}

#[test]
fn training_phases_match_the_official_step() {
    run_phases(&Device::flex().autodiff());
}

/// The same phases through the WGSL kernels and their backward (lavapipe in CI).
#[test]
fn training_phases_match_the_official_step_on_wgpu() {
    run_phases(&stylescope::backend::BackendChoice::Wgpu.device().autodiff());
}

/// Path length as the fixtures define it (`pl/*`, `grad_Gpl/*`: noise const, no mixing,
/// `pl_mean` from 0, gain 1), through the tangent pass of the synthesis network.
fn check_path_length(device: &Device) {
    for name in train_networks() {
        let net = Net::open(&name);
        if !net.exp.contains_key("pl/pl_lengths") {
            continue;
        }
        let mut g = net.generator(&net.g.tensors.clone(), device);
        let opts = LossOptions { style_mixing_prob: 0.0, pl_weight: 2.0, pl_batch_shrink: 2, pl_decay: 0.01, ..net.options() };
        let mut rng = ReplayRng::new(vec![net.f32s("pl/pl_noise_raw")]);
        let (out, state) = loss::greg(&mut g, net.input2("pl/z", device), net.labels("pl/c", device), &opts, 0.0, 1.0, &mut rng, true).unwrap();
        assert_eq!(rng.remaining(), 0);
        for (key, tol, relative) in [("gen_ws", 1e-4, false), ("gen_img", 1e-4, false), ("pl_noise", 1e-6, false), ("pl_grads", 1e-4, true), ("pl_lengths", 1e-5, false), ("pl_mean", 1e-5, false), ("pl_penalty", 1e-5, false), ("loss_Gpl", 1e-5, false)] {
            let want = &net.exp[&format!("pl/{key}")].1;
            let err = if relative { rel_err(&out.values[key], want) } else { max_abs(&out.values[key], want) };
            assert!(err <= tol, "{name} pl/{key}: error {err:e} > {tol:e}");
        }
        assert!((state as f64 - net.exp["pl/pl_mean_state"].1[0]).abs() < 1e-6);
        let mut compared = 0;
        for (key, (_, want)) in net.exp.iter().filter(|(k, _)| k.starts_with("grad_Gpl/")) {
            let param = &key["grad_Gpl/".len()..];
            let got = out.grads.get(param).unwrap_or_else(|| panic!("{name}: no PL gradient for {param}"));
            let err = rel_err(got, want);
            assert!(err < 1e-3, "{name} {key}: relative error {err:e}");
            compared += 1;
        }
        assert_eq!(compared, out.grads.len(), "{name}: PL gradients for parameters the official graph does not reach");
        let without: Vec<String> = serde_json::from_value(net.notes["pl"]["pl_params_without_grad"].clone()).unwrap();
        assert_eq!(without, loss::pl_without_grad(&g), "{name}");
    }
}

#[test]
fn path_length_gradients_are_exact() {
    check_path_length(&Device::flex().autodiff());
}

/// Path length through finite differences where they are meaningful (PL jumps where a leaky
/// ReLU input crosses 0): the synthesis tangent `J_img(ws)·u` against differences of the image
/// along u, and ⟨∇θ PL, u⟩ against central differences over the ToRGB layers (after every
/// activation, so they move no sign).
#[test]
fn path_length_gradient_matches_finite_differences() {
    let device = Device::flex().autodiff();
    let Some(name) = train_networks().into_iter().find(|n| Net::open(n).exp.contains_key("pl/pl_lengths")) else { return };
    let net = Net::open(&name);
    let base: StateDict = net.g.tensors.clone();
    let opts = LossOptions { style_mixing_prob: 0.0, pl_weight: 2.0, pl_batch_shrink: 2, pl_decay: 0.01, ..net.options() };

    // J_img(ws)·u against differences of the image.
    let g = net.generator(&base, &device);
    let stylescope::model::Synthesis::StyleGan2(s) = &g.synthesis else { panic!("{name} is not StyleGAN2") };
    let ws = g.mapping(net.input2("pl/z", &device), None, 1.0, None, None);
    let [n, k, w] = ws.dims();
    let noise = s.const_noise(n);
    let mut rng = stylescope::rng::RandomState::new(5);
    let u: Vec<f32> = rng.randn(n * k * w).into_iter().map(|x| x as f32).collect();
    let ut = tensor(&u, [n, k, w], &device);
    let (_, jt) = s.forward_tangent(ws.clone(), ut.clone(), &noise);
    let jt = stylescope::backend::read_f32(jt).unwrap();
    // Converging as ε shrinks (see the R1 test for why linearly).
    let errors: Vec<f64> = [1e-2, 1e-3, 1e-4]
        .iter()
        .map(|&eps| {
            let img = |sign: f64| stylescope::backend::read_f32(s.forward_with_noise(ws.clone() + ut.clone().mul_scalar(sign * eps), &noise, Default::default())).unwrap();
            let (up, down) = (img(1.0), img(-1.0));
            let fd: Vec<f64> = up.iter().zip(&down).map(|(a, b)| (*a as f64 - *b as f64) / (2.0 * eps)).collect();
            rel_l2(&jt, &fd)
        })
        .collect();
    assert!(errors[1] < errors[0] / 2.0 && errors[2] < 1e-2, "J·u vs finite differences at ε = 1e-2, 1e-3, 1e-4: relative errors {errors:?}");

    // ⟨∇θ PL, u⟩ over the ToRGB layers.
    let pl = |state: &StateDict| -> (f64, Grads) {
        let mut g = net.generator(state, &device);
        let mut rng = ReplayRng::new(vec![net.f32s("pl/pl_noise_raw")]);
        let (out, _) = loss::greg(&mut g, net.input2("pl/z", &device), None, &opts, 0.0, 1.0, &mut rng, true).unwrap();
        let loss = out.values["loss_Gpl"].iter().map(|&v| v as f64).sum::<f64>() / out.values["loss_Gpl"].len() as f64;
        (loss, out.grads)
    };
    let (_, grads) = pl(&base);
    let (fd, predicted) = directional(&base, &grads, &["torgb.weight", "torgb.affine"], &|s| pl(s).0, 11, 1e-2);
    let err = (fd - predicted).abs() / predicted.abs().max(1e-12);
    assert!(err < 1e-2, "PL directional derivative: finite difference {fd:e}, gradient {predicted:e} (relative error {err:e})");
}

fn check_r1_against_fixtures(device: &Device) {
    for name in networks() {
        let exp = expected(&name);
        if !exp.contains_key("loss/r1_penalty") {
            continue;
        }
        let pkl = fixtures().join(format!("{name}.pkl"));
        let dfile = NetworkFile::read(&pkl, Which::D).unwrap();
        let cfg = dfile.discriminator_config().unwrap();
        let d = Discriminator::load(&cfg, &mut dfile.into_weights(), device).unwrap();
        let gamma = fixture_json(&name)["notes"]["gamma"].as_f64().or_else(|| fixture_json(&name)["gamma"].as_f64()).unwrap();
        let (rs, rv) = get(&exp, "loss/reals");
        let reals = tensor(&rv.iter().map(|&v| v as f32).collect::<Vec<_>>(), [rs[0], rs[1], rs[2], rs[3]], device);
        let (cs, cv) = get(&exp, "loss/c");
        let c = loss::labels(&cv.iter().map(|&v| v as f32).collect::<Vec<_>>(), cs[0], device).filter(|_| cs[1] > 0);
        let out = loss::dreg(&d, reals, c, gamma, 0.0, 1.0, &mut None).unwrap();
        for (key, fkey) in [("r1_penalty", "loss/r1_penalty"), ("loss_Dr1", "loss/loss_Dr1")] {
            let err = rel_err(&out.values[key], &get(&exp, fkey).1);
            assert!(err < 1e-4, "{name} {fkey}: relative error {err:e}");
        }
        let mut compared = 0;
        for (key, (_, want)) in exp.iter().filter(|(k, _)| k.starts_with("grad_Dr1/")) {
            let param = &key["grad_Dr1/".len()..];
            let got = out.grads.get(param).unwrap_or_else(|| panic!("{name}: no R1 gradient for {param}"));
            let err = rel_err(got, want);
            assert!(err < 1e-3, "{name} {key}: relative error {err:e}");
            compared += 1;
        }
        assert_eq!(compared, out.grads.len(), "{name}: gradients for parameters the official R1 does not reach");
        let without: Vec<String> = serde_json::from_value(fixture_json(&name)["notes"]["grad_Dr1_params_without_grad"].clone()).unwrap();
        assert_eq!(without, loss::r1_without_grad(), "{name}");
    }
}

#[test]
fn r1_gradients_are_exact() {
    check_r1_against_fixtures(&Device::flex().autodiff());
}

/// Central differences along a random direction `u` over the parameters `names` (scaled by
/// each tensor's largest value): `(f(θ + εu) − f(θ − εu)) / 2ε` and `⟨∇f, u⟩` from `grads`.
fn directional(base: &StateDict, grads: &Grads, names: &[&str], f: &dyn Fn(&StateDict) -> f64, seed: u32, eps: f64) -> (f64, f64) {
    let mut rng = stylescope::rng::RandomState::new(seed);
    let mut dirs: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut predicted = 0.0;
    for (k, g) in grads.iter().filter(|(k, _)| names.iter().any(|n| k.contains(n))) {
        let scale = base[k].data.iter().fold(0f64, |m, x| m.max(x.abs() as f64)).max(1e-3);
        let u: Vec<f64> = rng.randn(g.len()).into_iter().map(|v| v * scale).collect();
        predicted += g.iter().zip(&u).map(|(a, b)| *a as f64 * b).sum::<f64>();
        dirs.insert(k.clone(), u);
    }
    assert!(!dirs.is_empty(), "no parameter matches {names:?}");
    let shifted = |sign: f64| -> StateDict {
        let mut s = base.clone();
        for (k, u) in &dirs {
            let t: &mut HostTensor = s.get_mut(k).unwrap();
            t.data.iter_mut().zip(u).for_each(|(x, d)| *x = (*x as f64 + sign * eps * d) as f32);
        }
        s
    };
    ((f(&shifted(1.0)) - f(&shifted(-1.0))) / (2.0 * eps), predicted)
}

/// R1 through finite differences, in the two places where they are meaningful (R1 jumps where a
/// leaky ReLU input crosses 0, so a difference over the whole network measures those jumps):
/// the tangent pass `J_D(x)·v` against `(D(x + εv) − D(x − εv)) / 2ε` (D itself is continuous),
/// and ⟨∇θ R1, u⟩ against central differences over the epilogue's weights, which move no
/// activation's sign.
#[test]
fn r1_gradient_matches_finite_differences() {
    let device = Device::flex().autodiff();
    let name = "sg3t_64";
    let exp = expected(name);
    let pkl = fixtures().join(format!("{name}.pkl"));
    let dfile = NetworkFile::read(&pkl, Which::D).unwrap();
    let cfg = dfile.discriminator_config().unwrap();
    let base: StateDict = dfile.tensors.clone();
    let (rs, rv) = get(&exp, "loss/reals");
    let shape = [rs[0], rs[1], rs[2], rs[3]];
    let reals: Vec<f32> = rv.iter().map(|&v| v as f32).collect();

    // J_D(x)·v against differences of D along v.
    let d = Discriminator::load(&cfg, &mut LoadedWeights::new(&pkl, base.clone()), &device).unwrap();
    let mut rng = stylescope::rng::RandomState::new(3);
    let v: Vec<f32> = rng.randn(reals.len()).into_iter().map(|x| x as f32).collect();
    let (_, jv) = d.forward_tangent(tensor(&reals, shape, &device), tensor(&v, shape, &device), None);
    let jv = stylescope::backend::read_f32(jv).unwrap();
    // The differences converge to J·v as ε shrinks (linearly: the leaky ReLUs whose input crosses
    // 0 within ±εv are the error); a wrong tangent would stall at its own error.
    let errors: Vec<f64> = [1e-2f32, 1e-3, 3e-4]
        .iter()
        .map(|&eps| {
            let at = |sign: f32| {
                let x: Vec<f32> = reals.iter().zip(&v).map(|(a, b)| a + sign * eps * b).collect();
                stylescope::backend::read_f32(d.forward(tensor(&x, shape, &device), None)).unwrap()
            };
            let (up, down) = (at(1.0), at(-1.0));
            let fd: Vec<f64> = up.iter().zip(&down).map(|(a, b)| (*a as f64 - *b as f64) / (2.0 * eps as f64)).collect();
            rel_l2(&jv, &fd)
        })
        .collect();
    assert!(errors[1] < errors[0] / 3.0 && errors[2] < 0.03, "J·v vs finite differences at ε = 1e-2, 1e-3, 3e-4: relative errors {errors:?}");

    // ⟨∇θ R1, u⟩ over the epilogue weights.
    let r1 = |state: &StateDict| -> (f64, Grads) {
        let d = Discriminator::load(&cfg, &mut LoadedWeights::new(&pkl, state.clone()), &device).unwrap();
        let out = loss::dreg(&d, tensor(&reals, shape, &device), None, 1.0, 0.0, 1.0, &mut None).unwrap();
        let mean = out.values["loss_Dr1"].iter().map(|&v| v as f64).sum::<f64>() / rs[0] as f64;
        (mean, out.grads)
    };
    let (_, grads) = r1(&base);
    let (fd, predicted) = directional(&base, &grads, &["b4.fc.weight", "b4.out.weight"], &|s| r1(s).0, 7, 1e-2);
    let err = (fd - predicted).abs() / predicted.abs().max(1e-12);
    assert!(err < 1e-2, "R1 directional derivative: finite difference {fd:e}, gradient {predicted:e} (relative error {err:e})");
}

/// Adam with the lazy-regularisation corrections and the G_ema update, from the stored
/// gradients: every parameter, the optimiser state and the EMA after both iterations.
#[test]
fn adam_and_ema_follow_the_official_chain() {
    for name in train_networks() {
        let net = Net::open(&name);
        let cfg = &net.notes["train"]["config"];
        let phases = cfg["phases"].as_object().unwrap().clone();
        let mut g: StateDict = net.g.tensors.clone();
        let mut d: StateDict = net.d.tensors.clone();
        let mut g_ema: StateDict = NetworkFile::read(&fixtures().join(format!("{name}.pkl")), Which::GEma).unwrap().tensors;
        let opt_of = |which: &str| {
            let (_, p) = phases.iter().find(|(_, p)| p["optimizer"] == which).unwrap();
            let betas = p["betas"].as_array().unwrap();
            Adam::new(p["lr"].as_f64().unwrap(), (betas[0].as_f64().unwrap(), betas[1].as_f64().unwrap()), p["eps"].as_f64().unwrap())
        };
        let (mut opt_g, mut opt_d) = (opt_of("G"), opt_of("D"));
        let g_params: Vec<String> = cfg["G_params_order"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        for (it, cur_nimg) in [("step", 0u64), ("step2", 4)] {
            for phase in net.notes["train"][it]["phases_run"].as_array().unwrap() {
                let phase = phase.as_str().unwrap();
                let prefix = format!("{it}/grad/{phase}/");
                let mut grads: Grads = net.exp.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(k, (_, v))| (k[prefix.len()..].to_string(), v.iter().map(|&x| x as f32).collect())).collect();
                grads.values_mut().for_each(|g| nan_to_num(g));
                if phase.starts_with('G') {
                    opt_g.step(&mut g, &grads);
                } else {
                    opt_d.step(&mut d, &grads);
                }
            }
            // Buffers (w_avg, magnitude_ema) come from the loss phases; take the reference ones.
            for (k, t) in g.iter_mut() {
                if !g_params.contains(k) {
                    t.data = net.f32s(&format!("{it}/G/{k}"));
                }
            }
            update_ema(&mut g_ema, &g, &g_params, ema_beta(4, cfg["ema_kimg"].as_f64().unwrap(), cfg["ema_rampup"].as_f64(), cur_nimg));
            for (label, state, prefix) in [("G", &g, "G"), ("D", &d, "D"), ("G_ema", &g_ema, "G_ema")] {
                for (k, t) in state.iter() {
                    let Some((_, want)) = net.exp.get(&format!("{it}/{prefix}/{k}")) else { continue };
                    let worst = t.data.iter().zip(want).map(|(a, b)| (*a as f64 - b).abs() / b.abs().max(1.0)).fold(0.0, f64::max);
                    assert!(worst <= 1e-6, "{name} {it}/{label}/{k}: off by {worst:e}");
                }
            }
            for (label, opt) in [("opt_G", &opt_g), ("opt_D", &opt_d)] {
                for (k, slot) in &opt.state {
                    let steps = net.exp[&format!("{it}/{label}/step/{k}")].1[0];
                    assert_eq!(slot.step as f64, steps, "{name} {it}/{label}/step/{k}");
                    for (field, v) in [("exp_avg", &slot.exp_avg), ("exp_avg_sq", &slot.exp_avg_sq)] {
                        let want = &net.exp[&format!("{it}/{label}/{field}/{k}")].1;
                        let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-30);
                        let err = max_abs(v, want) / scale;
                        assert!(err <= 1e-6, "{name} {it}/{label}/{field}/{k}: relative error {err:e}");
                    }
                }
                let stored = net.exp.keys().filter(|k| k.starts_with(&format!("{it}/{label}/step/"))).count();
                assert_eq!(stored, opt.state.len(), "{name} {it}/{label}: parameters with Adam state");
            }
        }
        // A non-degenerate EMA (ema/*): lerp(step/G, G_ema_before, beta).
        let before = NetworkFile::read(&fixtures().join(format!("{name}.pkl")), Which::GEma).unwrap().tensors;
        let mut e = before.clone();
        let step_g = net.state(&net.g.tensors, "step/G");
        update_ema(&mut e, &step_g, &g_params, net.exp["ema/beta"].1[0]);
        for k in &g_params {
            let Some((_, want)) = net.exp.get(&format!("ema/G_ema/{k}")) else { continue };
            let worst = e[k].data.iter().zip(want).map(|(a, b)| (*a as f64 - b).abs() / b.abs().max(1.0)).fold(0.0, f64::max);
            assert!(worst <= 1e-6, "{name} ema/G_ema/{k}: off by {worst:e}");
        }
    }
}

/// The training run's own draws are numpy's: the same seed gives the same stream.
#[test]
fn training_draws_are_reproducible() {
    use stylescope::train::loss::LossRng;
    let mut a = NumpyRng(stylescope::rng::RandomState::new(3));
    let mut b = NumpyRng(stylescope::rng::RandomState::new(3));
    assert_eq!(a.randn(&[5]), b.randn(&[5]));
    let k = a.randint(1, 16);
    assert!((1..16).contains(&k));
}
