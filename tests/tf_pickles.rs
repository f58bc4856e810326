//! TensorFlow-era pickles (StyleGAN v1, StyleGAN2 TF, StyleGAN2-ADA TF) against the outputs the
//! official TensorFlow code computed (`../shared/fixtures-tf`): ws and images at every psi and
//! cutoff, the raw training G, D logits at batch 4, 8 and 1, the variables as parsed, `convert`
//! round trips and hostile variants. Every network of the fixture set's manifest is checked, so
//! a held-out set is tested whole.

mod common;

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use common::{assert_close, bin, get, max_abs, run_err, run_out, to_vec, Expected, ScratchDir};
use stylescope::model::config::Family;
use stylescope::model::discriminator::Discriminator;
use stylescope::model::sg1::Sg1Discriminator;
use stylescope::model::{Generator, SynthesisOptions};
use stylescope::source::open_generator;
use stylescope::weights::{NetworkFile, Which};

const WS_TOL: f64 = 2e-5;
const D_TOL: f64 = 2e-5;

fn device() -> Device {
    Device::flex()
}

/// `../shared/fixtures-tf` beside the checkout, overridable with STYLESCOPE_FIXTURES_TF.
fn dir() -> PathBuf {
    if let Ok(p) = std::env::var("STYLESCOPE_FIXTURES_TF") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures-tf")
}

/// Every network of the manifest whose pickle is present.
fn networks() -> Vec<String> {
    let text = std::fs::read_to_string(dir().join("manifest.json")).expect("fixtures-tf/manifest.json");
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names: Vec<String> = m["networks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["name"].as_str().map(String::from))
        .filter(|n| dir().join(format!("{n}.pkl")).is_file())
        .collect();
    assert!(!names.is_empty(), "no TF fixtures found in {}", dir().display());
    names
}

fn pkl(name: &str) -> PathBuf {
    dir().join(format!("{name}.pkl"))
}

fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap()).unwrap()
}

fn expected(name: &str) -> Expected {
    stylescope::weights::safetensors::read_all_f64(&dir().join(format!("{name}.expected.safetensors"))).unwrap_or_else(|e| panic!("{e}"))
}

fn tensor2(exp: &Expected, key: &str) -> Option<Tensor<2>> {
    let (shape, v) = get(exp, key);
    if shape[1] == 0 {
        return None;
    }
    Some(Tensor::from_data(TensorData::new(v.iter().map(|x| *x as f32).collect::<Vec<_>>(), [shape[0], shape[1]]), &device()))
}

fn tensor4(exp: &Expected, key: &str) -> Tensor<4> {
    let (s, v) = get(exp, key);
    Tensor::from_data(TensorData::new(v.iter().map(|x| *x as f32).collect::<Vec<_>>(), [s[0], s[1], s[2], s[3]]), &device())
}

fn open(name: &str, which: Which) -> Generator {
    open_generator(pkl(name).to_str().unwrap(), which, &device()).unwrap_or_else(|e| panic!("{e}")).generator
}

/// The image tolerance: 1e-4, 2e-4 from 128 px (the fixtures' suggestion).
fn img_tol(res: usize) -> f64 {
    if res >= 128 {
        2e-4
    } else {
        1e-4
    }
}

#[test]
fn ws_and_images_match_the_official_tensorflow_code() {
    for name in networks() {
        let spec = json(&name);
        let exp = expected(&name);
        let g = open(&name, Which::GEma);
        let format = spec["format"].as_str().unwrap();
        let family = if format == "tf-sg1" { Family::StyleGan1 } else { Family::StyleGan2 };
        assert_eq!(g.family(), family, "{name}");
        assert_eq!(g.config.num_ws(), spec["num_ws"].as_u64().unwrap() as usize, "{name}");
        let res = g.config.img_resolution();
        for seed in spec["seeds"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()) {
            let z = tensor2(&exp, &format!("z/seed{seed}")).unwrap();
            let c = tensor2(&exp, &format!("c/seed{seed}"));
            for psi in spec["psis"].as_array().unwrap() {
                let key = psi["key"].as_str().unwrap();
                let p = psi["truncation_psi"].as_f64().unwrap();
                let cutoff = psi["truncation_cutoff"].as_u64().map(|c| c as usize);
                let ws = g.mapping(z.clone(), c.clone(), p, cutoff, None);
                assert_close(ws.clone(), &exp, &format!("ws/seed{seed}/{key}"), WS_TOL);
                let img = g.synthesis(ws, &SynthesisOptions::default(), None);
                assert_close(img, &exp, &format!("img/seed{seed}/{key}"), img_tol(res));
            }
        }
    }
}

/// The converted state_dict is exactly what the architecture asks for: nothing missing, nothing
/// left over.
#[test]
fn every_converted_weight_is_used() {
    for name in networks() {
        for which in [Which::GEma, Which::G] {
            let file = NetworkFile::read(&pkl(&name), which).unwrap();
            let cfg = file.generator_config().unwrap();
            let mut w = file.into_weights();
            Generator::load(&cfg, &mut w, &device()).unwrap_or_else(|e| panic!("{e}"));
            assert!(w.unused().is_empty(), "{name} {which:?}: unused weights {:?}", w.unused());
        }
    }
}

#[test]
fn raw_generator_is_the_first_network_of_the_tuple() {
    for name in networks() {
        let exp = expected(&name);
        let z = tensor2(&exp, "z/seed0").unwrap();
        let c = tensor2(&exp, "c/seed0");
        let g = open(&name, Which::G);
        let img = g.synthesis(g.mapping(z, c, 1.0, None, None), &SynthesisOptions::default(), None);
        let res = g.config.img_resolution();
        assert_close(img.clone(), &exp, "G_raw/img/seed0/psi1", img_tol(res));
        let (_, gs) = get(&exp, "img/seed0/psi1");
        assert!(max_abs(&to_vec(img), gs) > 1e-3, "{name}: G rendered like Gs");
    }
}

#[test]
fn discriminator_logits_match_at_batch_4_8_and_1() {
    for name in networks() {
        let exp = expected(&name);
        let file = NetworkFile::read(&pkl(&name), Which::D).unwrap_or_else(|e| panic!("{e}"));
        let images = tensor4(&exp, "D/images");
        let labels = tensor2(&exp, "D/labels");
        let score: Box<dyn Fn(Tensor<4>, Option<Tensor<2>>) -> Tensor<2>> = if file.class_name == "D_basic" {
            let cfg = file.sg1_discriminator_config().unwrap();
            let mut w = file.into_weights();
            let d = Sg1Discriminator::load(&cfg, &mut w, &device()).unwrap();
            assert!(w.unused().is_empty(), "{name}: unused D weights {:?}", w.unused());
            Box::new(move |x, _| d.forward(x, Default::default()))
        } else {
            let cfg = file.discriminator_config().unwrap_or_else(|e| panic!("{e}"));
            let mut w = file.into_weights();
            let d = Discriminator::load(&cfg, &mut w, &device()).unwrap_or_else(|e| panic!("{e}"));
            assert!(w.unused().is_empty(), "{name}: unused D weights {:?}", w.unused());
            Box::new(move |x, c| d.forward(x, c))
        };
        let first = |n: usize| (images.clone().narrow(0, 0, n), labels.clone().map(|l| l.narrow(0, 0, n)));
        let (x4, c4) = first(4);
        assert_close(score(x4, c4), &exp, "D/logits", D_TOL);
        assert_close(score(images.clone(), labels.clone()), &exp, "D/logits_b8", D_TOL);
        let singles: Vec<f32> = (0..4)
            .flat_map(|i| to_vec(score(images.clone().narrow(0, i, 1), labels.clone().map(|l| l.narrow(0, i, 1)))))
            .collect();
        let (_, want) = get(&exp, "D/logits_b1");
        assert!(max_abs(&singles, want) <= D_TOL, "{name}: D/logits_b1 off by {}", max_abs(&singles, want));
    }
}

/// The pickle machine reads every TF variable exactly (compared with the fixture's own dump).
#[test]
fn every_variable_is_read_exactly() {
    for name in networks() {
        let bytes = std::fs::read(pkl(&name)).unwrap();
        let value = stylescope::weights::pickle::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(stylescope::weights::tf::is_tf_pickle(&value));
        let nets = stylescope::weights::tf::networks(&value).unwrap();
        let dump = stylescope::weights::safetensors::read_all_f64(&dir().join(format!("{name}.vars.safetensors"))).unwrap();
        let mut seen = 0;
        for net in &nets {
            for (key, t) in &net.vars {
                let local = key.replacen("synthesis/", "G_synthesis/", 1).replacen("mapping/", "G_mapping/", 1);
                let (shape, want) = dump.get(&format!("{}/{local}", net.name)).unwrap_or_else(|| panic!("{name}: {}/{local} not in the dump", net.name));
                // 0-d variables: the dump reader gives `[1]` for `[]`.
                let scalar = |s: &[usize]| s.iter().product::<usize>() == 1 && s.len() <= 1;
                assert!(&t.shape == shape || (scalar(&t.shape) && scalar(shape)), "{name}: {}/{local}: {:?} vs {shape:?}", net.name, t.shape);
                assert_eq!(max_abs(&t.data, want), 0.0, "{name}: {}/{local}", net.name);
                seen += 1;
            }
        }
        assert_eq!(seen, dump.len(), "{name}: variables parsed vs dumped");
    }
}

#[test]
fn convert_round_trip_renders_the_same_images() {
    let tmp = ScratchDir::new("tf-convert");
    for name in networks() {
        let out = tmp.join(format!("{name}.safetensors"));
        let (stdout, _) = run_out(bin().args(["convert", pkl(&name).to_str().unwrap(), out.to_str().unwrap()]));
        assert!(stdout.contains("wrote"), "{stdout}");
        let a = NetworkFile::read(&pkl(&name), Which::GEma).unwrap();
        let b = NetworkFile::read(&out, Which::GEma).unwrap();
        assert_eq!(a.tensors, b.tensors, "{name}");
        assert_eq!(a.init_kwargs, b.init_kwargs, "{name}");
        for (network, sub) in [(pkl(&name), "pkl"), (out.clone(), "st")] {
            run_out(bin().args(["gen", "--network", network.to_str().unwrap(), "--seeds", "0-1", "--raw", "--class", "1", "--outdir", tmp.join(format!("{name}-{sub}")).to_str().unwrap()]));
        }
        for f in ["seed0000.png", "seed0001.npy"] {
            let x = std::fs::read(tmp.join(format!("{name}-pkl")).join(f)).unwrap();
            let y = std::fs::read(tmp.join(format!("{name}-st")).join(f)).unwrap();
            assert!(x == y, "{name}: {f} differs between the pickle and its conversion");
        }
        // The discriminator converts too.
        let d = tmp.join(format!("{name}.D.safetensors"));
        run_out(bin().args(["convert", pkl(&name).to_str().unwrap(), d.to_str().unwrap(), "--which", "D"]));
        assert_eq!(NetworkFile::read(&d, Which::D).unwrap().tensors, NetworkFile::read(&pkl(&name), Which::D).unwrap().tensors);
    }
}

#[test]
fn info_names_the_family() {
    for name in networks() {
        let (stdout, _) = run_out(bin().args(["info", pkl(&name).to_str().unwrap()]));
        let want = if json(&name)["format"] == "tf-sg1" { "StyleGAN (v1)" } else { "StyleGAN2" };
        assert!(stdout.contains(&format!("family      {want}")), "{name}: {stdout}");
    }
}

/// One line naming the file: an unknown global, a truncated file, a variable of the wrong shape.
#[test]
fn hostile_variants_are_refused_with_one_line() {
    let tmp = ScratchDir::new("tf-hostile");
    for name in networks() {
        let bytes = std::fs::read(pkl(&name)).unwrap();
        let write = |tag: &str, data: &[u8]| {
            let p = tmp.join(format!("{name}-{tag}.pkl"));
            std::fs::write(&p, data).unwrap();
            p
        };
        let check = |p: &PathBuf, needle: &str| {
            let err = run_err(bin().args(["info", p.to_str().unwrap()]), needle);
            assert_eq!(err.trim().lines().count(), 1, "{name}: {err}");
            assert!(err.contains(p.file_name().unwrap().to_str().unwrap()), "{name}: {err}");
        };
        // An unknown global (the Network class in another module) is refused before anything runs.
        let at = bytes.windows(20).position(|w| w == b"dnnlib.tflib.network").expect("module name");
        let mut evil = bytes.clone();
        evil[at + 19] = b'X';
        check(&write("global", &evil), "unknown global");
        check(&write("truncated", &bytes[..bytes.len() / 2]), "truncated");
        // Gs's `4x4/Conv/weight` (the last one: the tuple is (G, D, Gs)) stored as [1, 9, in, out]
        // instead of [3, 3, in, out]: the same number of values, the wrong shape.
        let name_at = bytes.windows(15).rposition(|w| w == b"4x4/Conv/weight").expect("4x4/Conv/weight");
        let at = name_at + bytes[name_at..].windows(4).position(|w| w == [b'K', 3, b'K', 3]).expect("its shape");
        assert!(at - name_at < 400, "{name}: shape tuple too far from the name");
        let mut bad = bytes.clone();
        bad[at + 1] = 1;
        bad[at + 3] = 9;
        check(&write("shape", &bad), "shape");
    }
}
