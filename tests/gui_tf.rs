//! TensorFlow-era networks in the explorer, as a new user would try them: a StyleGAN v1 pickle
//! renders what `gen` writes, its truncation, style mixing, noise and layer controls act, the
//! equivariance controls are greyed out with the reason; a conditional StyleGAN2-ADA TF pickle
//! takes a class; a network URL typed into the model field downloads with a progress bar and
//! opens.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use stylescope::backend::BackendChoice;
use stylescope::gui::{ExplorerApp, Launch};

fn tf_fixture(name: &str) -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures-tf").join(name).display().to_string()
}

fn harness(network: String) -> Harness<'static, ExplorerApp> {
    let launch = Launch { network: Some(network), seed: Some(0), trunc: Some(1.0), backend: Some(BackendChoice::Cpu), state_path: None, shared_gpu: None, train_program: None };
    let app = ExplorerApp::new(&egui::Context::default(), launch).unwrap();
    Harness::builder().with_size([1400.0, 1000.0]).build_ui_state(|ui, app: &mut ExplorerApp| app.ui_root(ui), app)
}

fn step_until(h: &mut Harness<'static, ExplorerApp>, what: &str, done: impl Fn(&ExplorerApp) -> bool) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out waiting for {what} (error: {:?})", h.state().error());
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}

fn settled(h: &mut Harness<'static, ExplorerApp>, what: &str) -> Arc<Vec<u8>> {
    h.step();
    step_until(h, what, |a| a.frame().is_some() && !a.is_busy());
    h.state().frame().map(|f| f.rgba.get().unwrap()).unwrap()
}

fn differs(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).any(|(x, y)| x != y)
}

#[test]
fn stylegan_v1_pickle_in_the_explorer() {
    let net = tf_fixture("tf_sg1_32.pkl");
    let mut h = harness(net.clone());
    let first = settled(&mut h, "the first frame");
    let model = h.state().model().unwrap();
    assert_eq!(model.family_name(), "StyleGAN (v1)");
    assert_eq!((model.num_ws, model.resolution), (8, 32));

    // The same pixels as `stylescope gen` (seed 0, psi 1, const noise).
    let out = common::ScratchDir::new("gui-tf-gen");
    common::run_out(common::bin().args(["gen", "--network", &net, "--seeds", "0", "--outdir", out.to_str().unwrap()]));
    let png = image::open(out.join("seed0000.png")).unwrap().to_rgb8();
    let shown: Vec<u8> = first.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    assert_eq!(png.as_raw(), &shown, "the window and `gen` differ");

    h.get_by_role_and_label(Role::Slider, "Truncation psi").set_value_accesskit(0.5);
    let truncated = settled(&mut h, "psi 0.5");
    assert!(differs(&first, &truncated), "psi left the image unchanged");
    h.get_by_role_and_label(Role::CheckBox, "2").click();
    let mixed = settled(&mut h, "style mixing");
    assert_eq!(h.state().frame().unwrap().request.latent.stylemix, vec![2]);
    assert!(differs(&truncated, &mixed), "style mixing left the image unchanged");

    // Noise applies (v1 has per-layer noise); equivariance does not, and says why.
    for title in ["Noise", "Equivariance", "Layers & channels"] {
        h.get_by_label(title).click_accesskit();
        h.step();
    }
    assert!(h.query_by_label_contains("StyleGAN3 has no noise inputs").is_none(), "the noise panel is greyed out");
    assert!(h.query_by_label_contains("Only StyleGAN3 networks have a transformable input").is_some());
    h.get_by_role_and_label(Role::RadioButton, "none").click();
    let quiet = settled(&mut h, "noise none");
    assert!(differs(&mixed, &quiet), "noise mode left the image unchanged");

    // The layer inspector lists the TF layers and shows one.
    let names: Vec<String> = h.state().layers_list().iter().map(|l| l.name.clone()).collect();
    assert!(names.iter().any(|n| n == "16x16/Conv1"), "{names:?}");
    h.state_mut().settings.view.layer = Some("16x16/Conv1".into());
    settled(&mut h, "the layer view");
    let f = h.state().frame().unwrap();
    assert_eq!(f.layer.as_deref(), Some("16x16/Conv1"));
    assert_eq!((f.width, f.height), (16, 16));
}

#[test]
fn conditional_stylegan2_ada_tf_takes_a_class() {
    let mut h = harness(tf_fixture("tf_sg2ada_32_cond3.pkl"));
    settled(&mut h, "the first frame");
    let model = h.state().model().unwrap();
    assert_eq!((model.family_name(), model.c_dim), ("StyleGAN2", 3));
    let mut images = Vec::new();
    for class in 0..3 {
        h.state_mut().settings.latent.class = Some(class);
        images.push(settled(&mut h, "a class"));
        assert_eq!(h.state().frame().unwrap().request.latent.class, Some(class));
    }
    assert!(differs(&images[0], &images[1]) && differs(&images[1], &images[2]), "the class left the image unchanged");
}

#[test]
fn a_network_url_downloads_with_progress_and_opens() {
    let body = std::fs::read(tf_fixture("tf_sg2_32.pkl")).unwrap();
    let (port, log, server) = common::serve(body, 1);
    let cache = common::ScratchDir::new("gui-tf-cache");
    // The render thread reads XDG_CACHE_HOME when it downloads: this test binary is the only
    // user of the variable.
    std::env::set_var("XDG_CACHE_HOME", &*cache);
    let mut h = harness(tf_fixture("tf_sg1_32.pkl"));
    settled(&mut h, "the first frame");
    let url = format!("http://127.0.0.1:{port}/net.pkl");
    // Replace the model field's text by typing the URL (select all, type), then press Load.
    h.get_by_role_and_label(Role::TextInput, "Network").focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by_role_and_label(Role::TextInput, "Network").type_text(&url);
    h.step();
    assert_eq!(h.get_by_role_and_label(Role::TextInput, "Network").value().as_deref(), Some(url.as_str()));
    h.get_by_label("Load").click();
    step_until(&mut h, "the downloaded network", |a| a.model().is_some_and(|m| m.family_name() == "StyleGAN2"));
    settled(&mut h, "its first frame");
    assert_eq!(h.state().model().unwrap().origin, url);
    assert!(h.state().error().is_none(), "{:?}", h.state().error());
    server.join().unwrap();
    assert_eq!(log.lock().unwrap().len(), 1);
    assert!(cache.join("stylescope/downloads").read_dir().unwrap().count() == 1);
}
