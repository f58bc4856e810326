//! The explorer driven like a user would (issue 4): egui_kittest runs the real app — its panels,
//! its render thread, its texture uploads — on a fixture network, moves controls by their
//! labels, and checks that the image on screen changes accordingly. The egui side renders through
//! wgpu (lavapipe in CI); the networks run on the CPU backend to keep the test quick, except in
//! the test of the copy-free path, where the generator shares the renderer's wgpu device.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use stylescope::backend::BackendChoice;
use stylescope::gui::{ExplorerApp, Launch};

fn fixture(name: &str) -> String {
    common::fixtures().join(name).display().to_string()
}

fn launch(network: &str) -> Launch {
    Launch { network: Some(fixture(network)), seed: Some(0), trunc: Some(1.0), backend: Some(BackendChoice::Cpu), state_path: None, shared_gpu: None, train_program: None }
}

fn harness(launch: Launch, wgpu: bool) -> Harness<'static, ExplorerApp> {
    let app = ExplorerApp::new(&egui::Context::default(), launch).unwrap();
    let builder = Harness::builder().with_size([1400.0, 1000.0]);
    let builder = if wgpu { builder.wgpu() } else { builder };
    builder.build_ui_state(|ui, app: &mut ExplorerApp| app.ui_root(ui), app)
}

/// Steps the GUI until `done` holds (the render thread works in the background).
fn step_until(h: &mut Harness<'static, ExplorerApp>, what: &str, done: impl Fn(&ExplorerApp) -> bool) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(start.elapsed() < Duration::from_secs(180), "timed out waiting for {what} (error: {:?})", h.state().error());
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}

/// The pixels on screen, once the newest request has been answered.
fn settled_pixels(h: &mut Harness<'static, ExplorerApp>, what: &str) -> Arc<Vec<u8>> {
    h.step();
    step_until(h, what, |a| a.frame().is_some() && !a.is_busy());
    h.state().frame().map(|f| f.rgba.get().unwrap()).unwrap()
}

fn differs(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).any(|(x, y)| x != y)
}

#[test]
fn seed_psi_and_style_mixing_change_the_image() {
    let mut h = harness(launch("sg3t_64.pkl"), true);
    let first = settled_pixels(&mut h, "the first frame");
    assert_eq!(first.len(), 64 * 64 * 4);
    let model = h.state().model().unwrap();
    assert_eq!((model.num_ws, model.resolution), (16, 64));
    assert!(model.device.starts_with("cpu"), "{}", model.device);

    // Seed: the labelled drag value.
    h.get_by_label("Seed").set_value_accesskit(5.0);
    let seeded = settled_pixels(&mut h, "seed 5");
    assert_eq!(h.state().frame().unwrap().request.latent.seed(), 5);
    assert!(differs(&first, &seeded), "changing the seed left the image unchanged");

    // Truncation psi slider.
    h.get_by_role_and_label(Role::Slider, "Truncation psi").set_value_accesskit(0.3);
    let truncated = settled_pixels(&mut h, "psi 0.3");
    assert!((h.state().frame().unwrap().request.latent.psi - 0.3).abs() < 1e-9);
    assert!(differs(&seeded, &truncated), "changing psi left the image unchanged");

    // Style mixing: tick w index 3 (coarse styles from seed 1000).
    h.get_by_role_and_label(Role::CheckBox, "3").click();
    let mixed = settled_pixels(&mut h, "style mixing");
    assert_eq!(h.state().frame().unwrap().request.latent.stylemix, vec![3]);
    assert!(differs(&truncated, &mixed), "style mixing left the image unchanged");

    // The window itself renders through wgpu with the frame texture on it.
    let shot = h.render().expect("wgpu rendering of the window");
    assert_eq!(shot.width(), 1400);
}

fn drop_file(h: &mut Harness<'static, ExplorerApp>, path: &str) {
    h.input_mut().dropped_files.push(Arc::new(common::DroppedPath(PathBuf::from(path))));
    h.step();
}

#[test]
fn dropping_networks_loads_them_and_a_bad_file_is_reported() {
    let mut h = harness(launch("sg3t_64.pkl"), false);
    settled_pixels(&mut h, "the first frame");
    assert!(h.state().model().unwrap().is_stylegan3());

    // A StyleGAN2 snapshot dropped on the window: its noise controls come alive.
    drop_file(&mut h, &fixture("sg2_64.pkl"));
    step_until(&mut h, "the StyleGAN2 model", |a| a.model().is_some_and(|m| !m.is_stylegan3()) && a.frame().is_some_and(|f| f.request.network.ends_with("sg2_64.pkl")) && !a.is_busy());
    assert_eq!(h.state().model().unwrap().num_ws, 10);
    assert!(h.state().settings.recent.iter().any(|r| r.ends_with("sg2_64.pkl")));

    // A broken file: a readable message, and the window goes on with the model it had.
    let dir = common::ScratchDir::new("gui-drop");
    let bad = dir.join("truncated.pkl");
    std::fs::write(&bad, &std::fs::read(fixture("sg2_64.pkl")).unwrap()[..4096]).unwrap();
    drop_file(&mut h, &bad.display().to_string());
    step_until(&mut h, "the load error", |a| a.error().is_some());
    let err = h.state().error().unwrap().to_string();
    assert!(err.contains("truncated.pkl"), "{err}");
    step_until(&mut h, "the previous model back", |a| a.settings.network.ends_with("sg2_64.pkl") && !a.is_busy());
    assert!(h.get_all_by_label_contains("could not open").count() >= 1, "the error is not shown in the window");

    // A file of the wrong kind never reaches the worker.
    drop_file(&mut h, "/tmp/picture.png");
    assert!(h.state().error().unwrap().contains("not a network file"));
    assert!(h.state().settings.network.ends_with("sg2_64.pkl"));
}

#[test]
fn settings_persist_between_runs() {
    let dir = common::ScratchDir::new("gui-state");
    let path = dir.join("state.ron");
    let _ = std::fs::remove_file(&path);
    let first = Launch { state_path: Some(path.clone()), ..launch("sg3t_64.pkl") };
    let mut app = ExplorerApp::new(&egui::Context::default(), first).unwrap();
    app.settings.latent.psi = 0.55;
    app.settings.latent.stylemix = vec![1, 4];
    app.settings.view.gain_db = 6.0;
    eframe::App::on_exit(&mut app);
    drop(app);
    // Reopened without flags: everything comes back.
    let again = Launch { network: None, seed: None, trunc: None, backend: None, state_path: Some(path), shared_gpu: None, train_program: None };
    let app = ExplorerApp::new(&egui::Context::default(), again).unwrap();
    assert_eq!(app.settings.latent.psi, 0.55);
    assert_eq!(app.settings.latent.stylemix, vec![1, 4]);
    assert_eq!(app.settings.view.gain_db, 6.0);
    assert!(app.settings.network.ends_with("sg3t_64.pkl"));
}

/// "Copy as command" gives a `stylescope gen` line; running it writes the very pixels on screen
/// (conditional network, per-seed class, truncation cutoff, translate + rotate).
#[test]
fn copy_as_command_reproduces_the_image() {
    let mut h = harness(launch("sg3t_64_cond4.pkl"), false);
    {
        let s = &mut h.state_mut().settings;
        s.latent.x = 3.0;
        s.latent.psi = 0.7;
        s.latent.cutoff = Some(8);
        s.latent.translate = (0.125, -0.05);
        s.latent.rotate_turns = 0.05;
    }
    settled_pixels(&mut h, "the transformed frame");
    let app = h.state();
    let frame = app.frame().unwrap();
    let cmd = stylescope::gui::state::gen_command(&app.settings, app.model().unwrap(), app.backend()).unwrap();
    assert!(cmd.contains("--class"), "{cmd}");
    let outdir = common::ScratchDir::new("gui-gen");
    let words: Vec<String> = cmd.split_whitespace().map(|w| if w == "out" { outdir.display().to_string() } else { w.to_string() }).collect();
    let cli = <stylescope::cli::Cli as clap::Parser>::try_parse_from(&words).unwrap();
    let Some(stylescope::cli::Command::Gen(args)) = cli.command else { panic!("not a gen command: {cmd}") };
    stylescope::cli::gen::run(&args).unwrap();
    let png = image::open(outdir.join("seed0003.png")).unwrap().to_rgb8();
    let ours = stylescope::export::quantize_chw(&frame.output.as_ref().unwrap().get().unwrap(), 3, 64, 64);
    assert_eq!(png.as_raw(), &ours, "`{cmd}` wrote a different image");
    // The window's own pixels use the same conversion.
    let shown: Vec<u8> = frame.rgba.get().unwrap().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    assert_eq!(shown, ours);
}

/// Every panel open at once, on both families: all widgets are named for accessibility (the
/// harness checks), the layer inspector lists layers and shows one with its FFT, and StyleGAN3
/// greys out the noise panel with the reason.
#[test]
fn every_panel_draws_for_both_families() {
    for (net, layer) in [("sg3t_64.pkl", "L3_36_16"), ("sg2_64.pkl", "b16.conv1")] {
        let mut h = harness(launch(net), false);
        settled_pixels(&mut h, "the first frame");
        // Open the collapsed sections as a user would; the layout is remembered.
        for title in ["Noise", "Equivariance", "Layers & channels", "Capture", "Performance"] {
            h.get_by_label(title).click_accesskit();
            h.step();
            assert!(h.state().settings.open_sections.iter().any(|s| s == title), "{title} not remembered as open");
        }
        h.step();
        assert!(!h.state().layers_list().is_empty());
        h.state_mut().settings.view.layer = Some(layer.to_string());
        h.state_mut().settings.view.fft = true;
        settled_pixels(&mut h, "the layer view");
        let f = h.state().frame().unwrap();
        assert_eq!(f.layer.as_deref(), Some(layer), "{net}: layer not shown (have {:?})", h.state().layers_list());
        assert!(f.fft_rgba.is_some());
        let sg3 = h.state().model().unwrap().is_stylegan3();
        assert_eq!(h.query_by_label_contains("StyleGAN3 has no noise inputs").is_some(), sg3);
        assert!(h.query_by_label_contains("not reproducible by `stylescope gen`").is_some(), "{net}: an inner layer is not a gen image");
    }
}

/// "Save image" writes the frame at full resolution with gen_images.py's conversion, numbered
/// like the visualizer's captures.
#[test]
fn save_image_writes_numbered_full_resolution_pngs() {
    let dir = common::ScratchDir::new("gui-capture");
    let mut h = harness(launch("sg3t_64.pkl"), false);
    h.state_mut().settings.capture_dir = dir.to_path_buf();
    settled_pixels(&mut h, "the first frame");
    h.get_by_label("Capture").click_accesskit();
    h.step();
    for _ in 0..2 {
        h.get_by_label("Save image").click_accesskit();
        h.step();
    }
    let first = image::open(dir.join("00001.png")).unwrap().to_rgb8();
    assert!(dir.join("00002.png").is_file());
    let frame = h.state().frame().unwrap();
    assert_eq!((first.width(), first.height()), (64, 64));
    assert_eq!(first.as_raw(), &stylescope::export::quantize_chw(&frame.output.as_ref().unwrap().get().unwrap(), 3, 64, 64));
}

/// The window's own wgpu device (here the test renderer's, on lavapipe) shared with the
/// generator: the frame goes from the generator's buffer to the egui texture on the GPU, and the
/// window shows the same image as with the CPU backend.
#[test]
fn frames_reach_the_window_texture_on_the_gpu() {
    use eframe::egui_wgpu;
    let mut setup = egui_kittest::wgpu::default_wgpu_setup();
    if let egui_wgpu::WgpuSetup::CreateNew(create) = &mut setup {
        // As `gui::run` asks: the adapter's limits and features, so burn can share the device.
        create.device_descriptor = Arc::new(|adapter| wgpu::DeviceDescriptor {
            required_limits: adapter.limits(),
            required_features: adapter.features().difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS | wgpu::Features::all_experimental_mask()),
            ..Default::default()
        });
    }
    let rs = egui_kittest::wgpu::create_render_state(setup, egui_wgpu::RendererOptions::PREDICTABLE);
    let shared = stylescope::render::SharedGpu { instance: rs.instance.clone(), adapter: rs.adapter.clone(), device: rs.device.clone(), queue: rs.queue.clone() };
    let gpu_launch = Launch { backend: Some(BackendChoice::Wgpu), shared_gpu: Some(shared), ..launch("sg3t_64.pkl") };
    let mut app = ExplorerApp::new(&egui::Context::default(), gpu_launch).unwrap();
    app.set_render_state(Some(rs.clone()));
    let mut gpu = Harness::builder()
        .with_size([1400.0, 1000.0])
        .renderer(egui_kittest::wgpu::WgpuTestRenderer::from_render_state(rs))
        .build_ui_state(|ui, app: &mut ExplorerApp| app.ui_root(ui), app);
    step_until(&mut gpu, "the first frame on the shared device", |a| a.frame().is_some() && !a.is_busy());
    assert!(gpu.state().model().unwrap().device.contains("sharing"), "{}", gpu.state().model().unwrap().device);
    assert!(gpu.state().frame_stayed_on_gpu(), "the frame did not go to the texture on the GPU");
    assert!(!gpu.state().frame().unwrap().rgba.is_on_host(), "the pixels were read back to the CPU");
    let on_gpu = gpu.render().unwrap();

    let mut cpu = harness(launch("sg3t_64.pkl"), true);
    settled_pixels(&mut cpu, "the first CPU frame");
    let on_cpu = cpu.render().unwrap();
    // The middle of the image area (the same place in both windows): same picture, up to float
    // differences between the backends, and not blank.
    let (cx, cy) = (on_gpu.width() / 2 + 150, on_gpu.height() / 2);
    let (mut max_diff, mut lo, mut hi) = (0u8, 255u8, 0u8);
    for y in cy - 100..cy + 100 {
        for x in cx - 100..cx + 100 {
            let (a, b) = (on_gpu.get_pixel(x, y), on_cpu.get_pixel(x, y));
            for k in 0..3 {
                max_diff = max_diff.max(a[k].abs_diff(b[k]));
                lo = lo.min(a[k]);
                hi = hi.max(a[k]);
            }
        }
    }
    assert!(hi > lo + 4, "the image area is flat ({lo}..{hi}): no frame on screen?");
    assert!(max_diff <= 3, "GPU-path window differs from the CPU-path window by {max_diff}");
}
