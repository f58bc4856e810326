//! The explorer driven through egui_kittest: load a fixture network, move the psi slider, tick a
//! style-mixing box, and check that each change reaches the render thread and changes the image.

mod common;

use std::time::{Duration, Instant};

use common::*;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use eframe::egui;
use stylescope::backend::BackendChoice;
use stylescope::gui::{LaunchOptions, StyleScopeApp};

type App = Option<StyleScopeApp>;

fn harness(network: &str) -> Harness<'static, App> {
    let opts = LaunchOptions {
        network: Some(network.to_string()),
        seed: Some(42),
        trunc: None,
        backend: Some(BackendChoice::Cpu),
        state_path: None,
    };
    // The real app on the harness's own context, created on the first frame.
    Harness::builder().with_size([1280.0, 900.0]).build_ui_state(
        move |ui, app: &mut App| {
            app.get_or_insert_with(|| StyleScopeApp::with_context(ui.ctx().clone(), opts.clone())).app_ui(ui);
        },
        None,
    )
}

/// Steps the UI until `done` holds (the render thread works asynchronously).
fn wait_for(h: &mut Harness<'static, App>, what: &str, done: impl Fn(&StyleScopeApp) -> bool) {
    let start = Instant::now();
    h.step();
    while !h.state().as_ref().is_some_and(&done) {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out waiting for {what}; error: {:?}", h.state().as_ref().and_then(|a| a.error.clone()));
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
}

fn app_of<'a>(h: &'a Harness<'static, App>) -> &'a StyleScopeApp {
    h.state().as_ref().expect("the app is created on the first frame")
}

fn pixels(app: &StyleScopeApp) -> Vec<u8> {
    app.frame.as_ref().map(|f| f.rgba.as_ref().clone()).unwrap_or_default()
}

#[test]
fn sliders_and_style_mixing_change_the_image() {
    let path = fixtures().join("sg3t_64.pkl");
    let mut h = harness(path.to_str().unwrap());
    wait_for(&mut h, "the model", |a| a.model.is_some());
    wait_for(&mut h, "the first frame", |a| a.frame.is_some());
    let app = app_of(&h);
    assert_eq!(app.model.as_ref().unwrap().num_ws, 16);
    let first = pixels(app);
    assert_eq!(app.frame.as_ref().unwrap().width, 64);

    // Move the truncation slider.
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "psi").set_value_accesskit(0.3);
    h.step();
    wait_for(&mut h, "a frame at psi 0.3", |a| a.frame.as_ref().is_some_and(|f| (f.request.latent.psi - 0.3).abs() < 1e-9));
    let truncated = pixels(app_of(&h));
    assert_ne!(first, truncated, "psi did not change the image");

    // Tick a style-mixing box.
    h.get_by_label("w3").click();
    h.step();
    wait_for(&mut h, "a mixed frame", |a| a.frame.as_ref().is_some_and(|f| f.request.latent.stylemix == vec![3]));
    assert_ne!(truncated, pixels(app_of(&h)), "style mixing did not change the image");
    assert!(app_of(&h).error.is_none());
}

#[test]
fn a_bad_file_shows_an_error_and_the_window_keeps_working() {
    let bad = std::env::temp_dir().join(format!("stylescope-gui-bad-{}.pkl", std::process::id()));
    std::fs::write(&bad, b"not a pickle").unwrap();
    let mut h = harness(bad.to_str().unwrap());
    wait_for(&mut h, "the error", |a| a.error.is_some());
    let err = app_of(&h).error.clone().unwrap();
    assert!(err.contains("not a pickle"), "{err}");
    // Opening a good network afterwards works.
    let good = fixtures().join("sg2_64.pkl");
    h.state_mut().as_mut().unwrap().open_network(good.display().to_string());
    wait_for(&mut h, "a frame of the good network", |a| a.frame.is_some() && a.error.is_none());
    assert_eq!(app_of(&h).model.as_ref().unwrap().num_ws, 10);
}
