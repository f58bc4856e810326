//! End-to-end runs of the `stylescope` binary, as a user would type them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use stylescope::export::npy;

/// Runs and expects success → stdout.
fn run_ok(cmd: &mut Command) -> String {
    run_out(cmd).0
}

fn tmpdir(tag: &str) -> ScratchDir {
    ScratchDir::new(&format!("test-{tag}"))
}

#[test]
fn gen_raw_matches_official_images_and_pngs() {
    let out = tmpdir("gen");
    let pkl = fixtures().join("sg3t_64.pkl");
    run_ok(bin().args(["gen", "--network", pkl.to_str().unwrap(), "--seeds", "0-1,42", "--outdir", out.to_str().unwrap(), "--raw"]));
    let exp = expected("sg3t_64");
    for seed in [0u32, 1, 42] {
        let (shape, data) = npy::read_f32(&out.join(format!("seed{seed:04}.npy"))).unwrap();
        assert_eq!(shape, vec![1, 3, 64, 64]);
        let (_, want) = get(&exp, &format!("img/seed{seed}/psi1/const"));
        assert!(max_abs(&data, want) <= 1e-4);
        let png = image::open(out.join(format!("seed{seed:04}.png"))).unwrap().to_rgb8();
        let (_, want_png) = get(&exp, &format!("png/seed{seed}"));
        let diff = png.as_raw().iter().zip(want_png).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
        // Truncating quantisation: a value within float noise of an integer may land one step off.
        assert!(diff <= 1.0, "seed {seed}: png differs by {diff}");
    }
}

#[test]
fn gen_with_transform_and_truncation() {
    let out = tmpdir("xform");
    let pkl = fixtures().join("sg3r_64.pkl");
    let spec = fixture_json("sg3r_64")["fixture_spec"]["transform"].clone();
    let tr = format!("{},{}", spec["translate"][0], spec["translate"][1]);
    let rot = spec["rotate"].to_string();
    run_ok(bin().args([
        "gen", "--network", pkl.to_str().unwrap(), "--seeds", "1", "--trunc", "0.5", "--translate", &tr, "--rotate", &rot,
        "--outdir", out.to_str().unwrap(), "--raw",
    ]));
    let (_, data) = npy::read_f32(&out.join("seed0001.npy")).unwrap();
    let exp = expected("sg3r_64");
    assert!(max_abs(&data, &get(&exp, "xform/img/seed1/psi0.5/const").1) <= 1e-4);
}

#[test]
fn gen_conditional_needs_class() {
    let out = tmpdir("cond");
    let pkl = fixtures().join("sg3t_64_cond4.pkl");
    run_err(bin().args(["gen", "--network", pkl.to_str().unwrap(), "--seeds", "0", "--outdir", out.to_str().unwrap()]), "--class");
    // Seed 1 sits at position 1 of the fixture seeds → class 1.
    run_ok(bin().args(["gen", "--network", pkl.to_str().unwrap(), "--seeds", "1", "--class", "1", "--outdir", out.to_str().unwrap(), "--raw"]));
    let (_, data) = npy::read_f32(&out.join("seed0001.npy")).unwrap();
    assert!(max_abs(&data, &get(&expected("sg3t_64_cond4"), "img/seed1/psi1/const").1) <= 1e-4);
}

#[test]
fn gen_stylegan2_noise_none() {
    let out = tmpdir("sg2");
    let pkl = fixtures().join("sg2_64.pkl");
    run_ok(bin().args(["gen", "--network", pkl.to_str().unwrap(), "--seeds", "42", "--noise-mode", "none", "--outdir", out.to_str().unwrap(), "--raw"]));
    let (_, data) = npy::read_f32(&out.join("seed0042.npy")).unwrap();
    assert!(max_abs(&data, &get(&expected("sg2_64"), "img/seed42/psi1/none").1) <= 1e-4);
}

#[test]
fn convert_then_render_from_safetensors() {
    let out = tmpdir("convert");
    for name in ["sg3r_64", "sg2_64"] {
        let pkl = fixtures().join(format!("{name}.pkl"));
        let st = out.join(format!("{name}.safetensors"));
        run_ok(bin().args(["convert", pkl.to_str().unwrap(), st.to_str().unwrap()]));
        assert!(st.with_extension("json").exists());
        // The converted file holds exactly the official G_ema state_dict.
        let ours = stylescope::weights::safetensors::read_all_f64(&st).unwrap();
        let official = stylescope::weights::safetensors::read_all_f64(&fixtures().join(format!("{name}.G_ema.safetensors"))).unwrap();
        assert_eq!(ours.keys().collect::<Vec<_>>(), official.keys().collect::<Vec<_>>());
        for (k, (shape, v)) in &official {
            assert_eq!(&ours[k].1, v, "{k}");
            assert_eq!(ours[k].0.iter().product::<usize>(), shape.iter().product::<usize>(), "{k}");
        }
        let img_dir = out.join(name);
        run_ok(bin().args(["gen", "--network", st.to_str().unwrap(), "--seeds", "2021", "--outdir", img_dir.to_str().unwrap(), "--raw"]));
        let (_, data) = npy::read_f32(&img_dir.join("seed2021.npy")).unwrap();
        assert!(max_abs(&data, &get(&expected(name), "img/seed2021/psi1/const").1) <= 1e-4);
    }
}

#[test]
fn official_safetensors_with_fixture_sidecar_loads() {
    // `<name>.G_ema.safetensors` + `<name>.json` (G_init_kwargs) is a valid input too.
    let out = tmpdir("sidecar");
    let st = fixtures().join("sg3t_64.G_ema.safetensors");
    run_ok(bin().args(["gen", "--network", st.to_str().unwrap(), "--seeds", "0", "--outdir", out.to_str().unwrap(), "--raw"]));
    let (_, data) = npy::read_f32(&out.join("seed0000.npy")).unwrap();
    assert!(max_abs(&data, &get(&expected("sg3t_64"), "img/seed0/psi1/const").1) <= 1e-4);
}

#[test]
fn info_prints_the_schedule() {
    let pkl = fixtures().join("sg3t_64.pkl");
    let text = run_ok(bin().args(["info", pkl.to_str().unwrap()]));
    let layers = fixture_json("sg3t_64")["synthesis"]["layers"].clone();
    for l in layers.as_array().unwrap() {
        assert!(text.contains(l["name"].as_str().unwrap()), "missing {} in\n{text}", l["name"]);
    }
    assert!(text.contains("StyleGAN3-T"));
    let text = run_ok(bin().args(["info", fixtures().join("sg2_64.pkl").to_str().unwrap()]));
    assert!(text.contains("StyleGAN2") && text.contains("b64"));
    let text = run_ok(bin().args(["info", "preset:stylegan3-r-256"]));
    assert!(text.contains("untrained") && text.contains("L14_256_3"));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn bad_inputs_get_one_clear_line() {
    let dir = tmpdir("bad");
    let out = dir.join("out");
    let gen = |p: &Path| {
        let mut c = bin();
        c.args(["gen", "--network", p.to_str().unwrap(), "--seeds", "0", "--outdir", out.to_str().unwrap()]);
        c
    };
    let full = std::fs::read(fixtures().join("sg3t_64.pkl")).unwrap();
    let truncated = write(&dir, "truncated.pkl", &full[..full.len() / 2]);
    let err = run_err(&mut gen(&truncated), "truncated.pkl");
    assert!(err.to_lowercase().contains("truncated"), "{err}");
    run_err(&mut gen(&write(&dir, "list.pkl", b"\x80\x04]\x94.")), "list.pkl");
    // GLOBAL 'os system' + REDUCE: must be refused, not executed.
    let evil = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00truex\x85q\x01Rq\x02.";
    run_err(&mut gen(&write(&dir, "evil.pkl", evil)), "os.system");
    run_err(&mut gen(&dir.join("missing.pkl")), "missing.pkl");
    run_err(&mut gen(&write(&dir, "noise.safetensors", b"hello world, not a tensor file")), "noise.safetensors");
    run_err(&mut gen(&write(&dir, "model.txt", b"text")), "model.txt");
    run_err(bin().args(["gen", "--network", "preset:stylegan9", "--seeds", "0", "--outdir", out.to_str().unwrap()]), "preset");
    run_err(bin().args(["gen", "--network", "preset:stylegan3-t-256", "--seeds", "x", "--outdir", out.to_str().unwrap()]), "seed");
}

#[test]
fn bench_prints_json() {
    let pkl = fixtures().join("sg3r_64.pkl");
    for extra in [&[][..], &["--reference"][..]] {
        let mut cmd = bin();
        cmd.args(["bench", "--network", pkl.to_str().unwrap(), "--iters", "2", "--warmup", "0", "--json"]).args(extra);
        let out = run_ok(&mut cmd);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["backend"], "cpu");
        assert_eq!(v["kernels"], if extra.is_empty() { "fast" } else { "reference" });
        assert!(v["ms_per_image"].as_f64().unwrap() > 0.0);
        assert_eq!(v["ms_per_batch_all"].as_array().unwrap().len(), 2);
    }
}

/// The CPU kernels' AVX2 copies (`kernels::simd`) compute exactly what the baseline copies do:
/// every fixture network's raw image is byte-identical with `STYLESCOPE_SIMD=baseline`, and
/// `bench` reports which copy ran.
#[test]
fn avx2_and_baseline_loops_give_identical_images() {
    let out = tmpdir("simd");
    for name in networks() {
        let pkl = fixtures().join(format!("{name}.pkl"));
        let mut images = Vec::new();
        for simd in ["default", "baseline"] {
            let dir = out.join(format!("{name}-{simd}"));
            let mut cmd = bin();
            // `--class 0` is valid for any conditional network and ignored (a warning) otherwise.
            cmd.env("STYLESCOPE_SIMD", simd).args(["gen", "--network", pkl.to_str().unwrap(), "--seeds", "3", "--class", "0", "--outdir", dir.to_str().unwrap(), "--raw"]);
            run_ok(&mut cmd);
            images.push(std::fs::read(dir.join("seed0003.npy")).unwrap());
        }
        assert!(images[0] == images[1], "{name}: AVX2 and baseline loops differ");
    }
    let pkl = fixtures().join("sg3t_64.pkl");
    let out = run_ok(bin().env("STYLESCOPE_SIMD", "baseline").args(["bench", "--network", pkl.to_str().unwrap(), "--iters", "1", "--warmup", "0", "--json"]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let device = v["device"].as_str().unwrap();
    assert!(device.contains("SSE2 loops") || !cfg!(target_arch = "x86_64"), "{device}");
}

/// `convert --description` stores a sentence about the network; the explorer's loader reads it.
#[test]
fn convert_keeps_a_description_for_the_explorer() {
    let tmp = ScratchDir::new("convert-description");
    let out = tmp.join("net.safetensors");
    run_out(bin().arg("convert").arg(fixtures().join("sg2_64.pkl")).arg(&out).args(["--description", "A tiny test network"]));
    let device = stylescope::backend::BackendChoice::Cpu.device();
    let opened = stylescope::source::open_generator(&out.display().to_string(), stylescope::weights::Which::GEma, &device).unwrap();
    assert_eq!(opened.description.as_deref(), Some("A tiny test network"));
    let plain = stylescope::source::open_generator(&fixtures().join("sg2_64.pkl").display().to_string(), stylescope::weights::Which::GEma, &device).unwrap();
    assert_eq!(plain.description, None);
}

/// The shipped default model: `stylescope` without arguments opens it, it says what it is, and
/// `stylescope gen` renders it.
#[test]
fn shipped_default_model_opens_renders_and_says_what_it_is() {
    let default = stylescope::gui::default_network();
    assert!(default.ends_with("noto-smileys-32-stylegan2.safetensors"), "{default}");
    let device = stylescope::backend::BackendChoice::Cpu.device();
    let opened = stylescope::source::open_generator(&default, stylescope::weights::Which::GEma, &device).unwrap();
    assert!(opened.description.as_deref().is_some_and(|d| d.contains("Noto")), "{:?}", opened.description);
    assert!(!opened.untrained);
    let tmp = ScratchDir::new("shipped-model");
    run_out(bin().args(["gen", "--network", &default, "--seeds", "0-1", "--trunc", "0.7", "--outdir"]).arg(tmp.join("out")));
    let a = image::open(tmp.join("out/seed0000.png")).unwrap().to_rgb8();
    let b = image::open(tmp.join("out/seed0001.png")).unwrap().to_rgb8();
    assert_eq!(a.dimensions(), (32, 32));
    assert_ne!(a, b, "different seeds, different emoji");
}
