//! Parity with the official networks: every fixture network, loaded from its official snapshot,
//! must reproduce the official outputs (ws, every synthesis layer, images at psi 1 and 0.5, user
//! transforms, style mixing, noise modes, discriminator logits) within 1e-4.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::*;
use stylescope::kernels::KernelChoice;
use stylescope::model::config::Family;
use stylescope::model::layers::Trace;
use stylescope::model::{invert3, make_transform, one_hot, Generator, NoiseMode, SynthesisOptions};
use stylescope::rng::z_from_seed;
use stylescope::source::open_generator;
use stylescope::weights::Which;

const TOL: f64 = 1e-4;

fn device() -> Device {
    Device::flex()
}

fn open(name: &str, which: Which) -> Generator {
    let path = fixtures().join(format!("{name}.pkl"));
    open_generator(path.to_str().unwrap(), which, &device()).unwrap_or_else(|e| panic!("{e}")).generator
}

fn spec(name: &str) -> serde_json::Value {
    fixture_json(name)["fixture_spec"].clone()
}

fn seeds(name: &str) -> Vec<u32> {
    spec(name)["seeds"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
}

fn z_tensor(g: &Generator, seed: u32) -> Tensor<2> {
    let z: Vec<f32> = z_from_seed(seed, g.config.z_dim()).into_iter().map(|v| v as f32).collect();
    Tensor::from_data(TensorData::new(z, [1, g.config.z_dim()]), &device())
}

/// The class gen_images-style fixtures use: seed position modulo c_dim.
fn class_of(g: &Generator, position: usize) -> Option<Tensor<2>> {
    let c_dim = g.config.c_dim();
    one_hot(if c_dim > 0 { position % c_dim } else { 0 }, c_dim, 1, &device())
}

fn psi_key(psi: f64) -> String {
    if psi == 1.0 { "1".into() } else { format!("{psi}") }
}

#[test]
fn seeds_give_the_official_z() {
    for name in networks() {
        let name = name.as_str();
        let exp = expected(name);
        for seed in seeds(name) {
            let (_, want) = get(&exp, &format!("z/seed{seed}"));
            let z = z_from_seed(seed, want.len());
            assert_eq!(&z, want, "{name} seed {seed}");
        }
    }
}

fn check_generator(name: &str) {
    let g = open(name, Which::GEma);
    let exp = expected(name);
    let opts = SynthesisOptions::default();
    for (pos, seed) in seeds(name).into_iter().enumerate() {
        let c = class_of(&g, pos);
        if let Some(c) = &c {
            assert_close(c.clone(), &exp, &format!("c/seed{seed}"), 0.0);
        }
        for psi in [1.0, 0.5] {
            let p = psi_key(psi);
            let ws = g.mapping(z_tensor(&g, seed), c.clone(), psi, None, None);
            assert_close(ws.clone(), &exp, &format!("ws/seed{seed}/psi{p}"), TOL);
            let img = g.synthesis(ws.clone(), &opts, None);
            assert_close(img, &exp, &format!("img/seed{seed}/psi{p}/const"), TOL);
            // The pure-tensor reference path gives the same numbers as the fast path.
            let reference = SynthesisOptions { kernels: KernelChoice::Reference, ..Default::default() };
            assert_close(g.synthesis(ws.clone(), &reference, None), &exp, &format!("img/seed{seed}/psi{p}/const"), TOL);
            if g.family() == Family::StyleGan2 {
                let none = SynthesisOptions { noise_mode: NoiseMode::None, ..Default::default() };
                assert_close(g.synthesis(ws, &none, None), &exp, &format!("img/seed{seed}/psi{p}/none"), TOL);
            }
        }
    }
}

fn check_layers(name: &str) {
    let g = open(name, Which::GEma);
    let exp = expected(name);
    let seed = seeds(name)[0];
    let mut trace = Trace::default();
    let c = class_of(&g, 0);
    let ws = g.mapping(z_tensor(&g, seed), c, 1.0, None, Some(&mut trace));
    g.synthesis(ws, &SynthesisOptions::default(), Some(&mut trace));
    let mut checked = 0;
    for key in exp.keys().filter(|k| k.starts_with("synth/") || (k.starts_with("map/") && *k != "map/output")) {
        let ours = key.strip_prefix("synth/").unwrap_or(key);
        let t = trace.get(ours).unwrap_or_else(|| panic!("{name}: no traced output for {key}"));
        assert_close(t.clone(), &exp, key, TOL);
        checked += 1;
    }
    assert!(checked > 10, "{name}: only {checked} layer outputs compared");
}

#[test]
fn sg3t_images_and_ws() {
    check_generator("sg3t_64");
}

#[test]
fn sg3r_images_and_ws() {
    check_generator("sg3r_64");
}

#[test]
fn sg2_images_ws_and_noise_modes() {
    check_generator("sg2_64");
}

#[test]
fn conditional_images_and_ws() {
    check_generator("sg3t_64_cond4");
}

#[test]
fn every_layer_matches() {
    for name in networks() {
        let name = name.as_str();
        check_layers(name);
    }
}

#[test]
fn user_transform_matches_gen_images() {
    for name in ["sg3t_64", "sg3r_64", "sg3t_64_cond4"] {
        let g = open(name, Which::GEma);
        let exp = expected(name);
        let t = &spec(name)["transform"];
        let tr = (t["translate"][0].as_f64().unwrap(), t["translate"][1].as_f64().unwrap());
        let m = make_transform(tr, t["rotate"].as_f64().unwrap());
        let inv = invert3(m).unwrap();
        let flat = |m: [[f64; 3]; 3]| m.iter().flatten().copied().collect::<Vec<f64>>();
        let (_, want_fwd) = get(&exp, "xform/forward_matrix_f64");
        let (_, want_inv) = get(&exp, "xform/inverse_matrix_f64");
        for (a, b) in flat(m).iter().zip(want_fwd) {
            assert!((a - b).abs() < 1e-12);
        }
        for (a, b) in flat(inv).iter().zip(want_inv) {
            assert!((a - b).abs() < 1e-12);
        }
        let opts = SynthesisOptions { transform: Some(inv), ..Default::default() };
        for (pos, seed) in seeds(name).into_iter().take(2).enumerate() {
            for psi in [1.0, 0.5] {
                let ws = g.mapping(z_tensor(&g, seed), class_of(&g, pos), psi, None, None);
                let mut trace = Trace::default();
                let img = g.synthesis(ws, &opts, Some(&mut trace));
                assert_close(img, &exp, &format!("xform/img/seed{seed}/psi{}/const", psi_key(psi)), TOL);
                if pos == 0 && psi == 1.0 {
                    assert_close(trace.get("input").unwrap().clone(), &exp, "xform_synth/input", TOL);
                }
            }
        }
    }
}

#[test]
fn style_mixing_matches() {
    for name in networks() {
        let name = name.as_str();
        let g = open(name, Which::GEma);
        let exp = expected(name);
        let mix = &spec(name)["mix"];
        let rows: Vec<u32> = mix["rows"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let cols: Vec<u32> = mix["cols"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let styles: Vec<usize> = mix["col_styles"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let psi = mix["psi"].as_f64().unwrap();
        let c = one_hot(0, g.config.c_dim(), 1, &device());
        let ws_of = |seed: u32| g.mapping(z_tensor(&g, seed), c.clone(), psi, None, None);
        let opts = SynthesisOptions::default();
        for &r in &rows {
            assert_close(g.synthesis(ws_of(r), &opts, None), &exp, &format!("mix/img/row{r}"), TOL);
            for &col in &cols {
                let (row_ws, col_ws) = (ws_of(r), ws_of(col));
                let num_ws = g.config.num_ws();
                let parts: Vec<Tensor<3>> = (0..num_ws)
                    .map(|i| if styles.contains(&i) { col_ws.clone().narrow(1, i, 1) } else { row_ws.clone().narrow(1, i, 1) })
                    .collect();
                let mixed = Tensor::cat(parts, 1);
                assert_close(mixed.clone(), &exp, &format!("mix/ws/row{r}/col{col}"), TOL);
                assert_close(g.synthesis(mixed, &opts, None), &exp, &format!("mix/img/row{r}/col{col}"), TOL);
            }
        }
    }
}

#[test]
fn raw_generator_is_not_g_ema() {
    // The fixture perturbs G; loading G must give different pixels, G_ema the official ones.
    let g = open("sg3t_64", Which::G);
    let exp = expected("sg3t_64");
    let seed = seeds("sg3t_64")[0];
    let img = g.synthesis(g.mapping(z_tensor(&g, seed), None, 1.0, None, None), &SynthesisOptions::default(), None);
    let (_, want) = get(&exp, &format!("img/seed{seed}/psi1/const"));
    assert!(max_abs(&to_vec(img), want) > 1e-3, "G rendered like G_ema");
}

#[test]
fn discriminator_logits_match() {
    use stylescope::model::discriminator::Discriminator;
    use stylescope::weights::NetworkFile;
    for name in networks() {
        let name = name.as_str();
        let exp = expected(name);
        let file = NetworkFile::read(&fixtures().join(format!("{name}.pkl")), Which::D).unwrap();
        let cfg = file.discriminator_config().unwrap();
        let mut w = file.into_weights();
        let d = Discriminator::load(&cfg, &mut w, &device()).unwrap();
        assert!(w.unused().is_empty(), "{name}: unused D weights {:?}", w.unused());
        let (shape, input) = get(&exp, "D/input");
        let input_t = Tensor::<4>::from_data(
            TensorData::new(input.iter().map(|v| *v as f32).collect::<Vec<_>>(), [shape[0], shape[1], shape[2], shape[3]]),
            &device(),
        );
        let c = if cfg.c_dim > 0 {
            let (cs, cv) = get(&exp, "D/c");
            Some(Tensor::<2>::from_data(TensorData::new(cv.iter().map(|v| *v as f32).collect::<Vec<_>>(), [cs[0], cs[1]]), &device()))
        } else {
            None
        };
        assert_close(d.forward(input_t.clone(), c.clone()), &exp, "D/logits_batch4", TOL);
        for (i, seed) in seeds(name).into_iter().enumerate() {
            let one = input_t.clone().narrow(0, i, 1);
            let ci = c.clone().map(|c| c.narrow(0, i, 1));
            assert_close(d.forward(one, ci), &exp, &format!("D/logits_single/seed{seed}"), TOL);
        }
    }
}

#[test]
fn every_stored_weight_is_used_and_pickle_equals_safetensors() {
    use stylescope::weights::NetworkFile;
    for name in networks() {
        let name = name.as_str();
        let file = NetworkFile::read(&fixtures().join(format!("{name}.pkl")), Which::GEma).unwrap();
        let official = NetworkFile::read(&fixtures().join(format!("{name}.G_ema.safetensors")), Which::GEma).unwrap();
        assert_eq!(file.tensors, official.tensors, "{name}: pickle and safetensors weights differ");
        let cfg = file.generator_config().unwrap();
        let mut w = file.into_weights();
        Generator::load(&cfg, &mut w, &device()).unwrap();
        assert!(w.unused().is_empty(), "{name}: unused G weights {:?}", w.unused());
    }
}

/// The fixture networks have 16 channels; the CPU kernels' rounding grows with the channel count
/// (Winograd's transforms, the GEMM sums). A full-size StyleGAN3-T (512 channels, 256², random
/// weights, with the user transform and truncation turned on) through the fast CPU path agrees
/// with the pure-tensor reference within the parity tolerance.
#[test]
fn fast_cpu_path_matches_reference_on_a_full_size_network() {
    let g = open_generator("preset:stylegan3-t-256", Which::GEma, &device()).unwrap_or_else(|e| panic!("{e}")).generator;
    let ws = g.mapping(z_tensor(&g, 7), None, 0.7, None, None);
    let transform = invert3(make_transform((0.1, -0.05), 12.0));
    let fast = SynthesisOptions { transform, ..Default::default() };
    let reference = SynthesisOptions { transform, kernels: KernelChoice::Reference, ..Default::default() };
    let a: Vec<f32> = g.synthesis(ws.clone(), &fast, None).into_data().try_to_vec().unwrap();
    let b: Vec<f32> = g.synthesis(ws, &reference, None).into_data().try_to_vec().unwrap();
    let range = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(range > 0.05, "degenerate image (max |v| {range})");
    let err = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!((err as f64) < TOL * range.max(1.0) as f64 / 10.0, "max abs error {err:e} (image max |v| {range})");
}

/// The fast CPU path keeps each layer's transformed convolution weights between images
/// (`kernels::WinogradCache`). New weights in a layer (a fine-tuning step, an edited snapshot) must
/// be picked up: after every layer's filters are mirrored, the fast path still equals the
/// reference on the changed network, and differs from its own first image.
#[test]
fn fast_cpu_path_follows_changed_weights() {
    use burn::module::Param;
    use stylescope::model::Synthesis;
    let mut g = open("sg3t_64", Which::GEma);
    let ws = g.mapping(z_tensor(&g, 3), None, 1.0, None, None);
    let fast = SynthesisOptions::default();
    let reference = SynthesisOptions { kernels: KernelChoice::Reference, ..Default::default() };
    let before: Vec<f32> = g.synthesis(ws.clone(), &fast, None).into_data().try_to_vec().unwrap();
    let Synthesis::StyleGan3(net) = &mut g.synthesis else { panic!("sg3t_64 is a StyleGAN3") };
    for layer in &mut net.layers {
        // A new contiguous buffer, as loading or an optimiser step makes.
        let mirrored = layer.weight.val().flip([3]).into_data();
        layer.weight = Param::from_tensor(Tensor::from_data(mirrored, &device()));
    }
    let after: Vec<f32> = g.synthesis(ws.clone(), &fast, None).into_data().try_to_vec().unwrap();
    let want: Vec<f32> = g.synthesis(ws, &reference, None).into_data().try_to_vec().unwrap();
    let err = after.iter().zip(&want).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!((err as f64) < TOL, "changed weights: max abs error {err:e}");
    let change = after.iter().zip(&before).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(change > 0.01, "mirroring the filters changed the image by only {change:e}");
}
