//! The Export panel driven like a user would (issue 15): two views added as keyframes, one shown
//! again from the list, the timeline exported to PNG frames on the export thread while the window
//! keeps drawing; the first frame equals `stylescope gen` of the first keyframe's settings.

mod common;

use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use stylescope::backend::BackendChoice;
use stylescope::gui::{ExplorerApp, Launch};

fn step_until(h: &mut Harness<'static, ExplorerApp>, what: &str, done: impl Fn(&ExplorerApp) -> bool) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(start.elapsed() < Duration::from_secs(240), "timed out waiting for {what} (outcome: {:?})", h.state().export.outcome);
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}

#[test]
fn keyframes_export_to_frames_that_equal_gen() {
    let tmp = common::ScratchDir::new("gui-export");
    let net = common::fixtures().join("sg3t_64.pkl");
    let launch = Launch { network: Some(net.display().to_string()), seed: Some(3), trunc: Some(0.7), backend: Some(BackendChoice::Cpu), state_path: None, shared_gpu: None, train_program: None };
    let app = ExplorerApp::new(&egui::Context::default(), launch).unwrap();
    let mut h = Harness::builder().with_size([1400.0, 1600.0]).build_ui_state(|ui, app: &mut ExplorerApp| app.ui_root(ui), app);
    step_until(&mut h, "the first frame", |a| a.frame().is_some() && !a.is_busy());
    h.get_by_label("Export").click();
    h.step();
    h.get_by_label("Add current view").click();
    h.step();
    h.state_mut().settings.latent.x = 5.0;
    h.state_mut().settings.latent.psi = 1.0;
    step_until(&mut h, "the second view", |a| !a.is_busy());
    // A second click within egui's double-click delay (0.3 s; each harness frame is 0.25 s) is a
    // double click, not another click: let a second pass, as between two deliberate clicks.
    for _ in 0..4 {
        h.step();
    }
    h.get_by_label("Add current view").click();
    h.step();
    assert_eq!(h.state().settings.timeline.keyframes.len(), 2);
    // "Show" puts a keyframe back into the view.
    h.get_all_by_label("Show").next().unwrap().click();
    h.step();
    assert_eq!((h.state().settings.latent.x, h.state().settings.latent.psi), (3.0, 0.7));
    {
        let s = &mut h.state_mut().settings;
        s.timeline.keyframes[0].duration = 0.2;
        s.video_fps = 10.0;
        s.video_output = tmp.join("frames");
    }
    h.step();
    let frames_before = h.state().frames_received();
    h.get_by_label("Export video").click();
    step_until(&mut h, "the export", |a| a.export.outcome.is_some());
    assert!(h.state().export.outcome.as_ref().unwrap().is_ok(), "{:?}", h.state().export.outcome);
    assert_eq!(std::fs::read_dir(tmp.join("frames")).unwrap().count(), 3);
    let gen = tmp.join("gen");
    common::run_out(common::bin().args(["gen", "--network"]).arg(&net).args(["--seeds", "3", "--trunc", "0.7", "--outdir"]).arg(&gen));
    assert_eq!(image::open(tmp.join("frames/frame000000.png")).unwrap().to_rgb8(), image::open(gen.join("seed0003.png")).unwrap().to_rgb8());
    assert!(h.state().frames_received() >= frames_before, "the window kept working");

    // "Record": the running latent animation, 0.5 s at 10 fps, as one keyframe per frame.
    {
        let s = &mut h.state_mut().settings;
        s.anim_latent = true;
        s.anim_speed = 1.0;
    }
    h.state_mut().export.record_secs = 0.5;
    h.get_by_label("Record").click();
    h.step();
    let kfs = &h.state().settings.timeline.keyframes;
    assert_eq!(kfs.len(), 6);
    assert!((kfs[5].latent.x - kfs[0].latent.x - 0.5).abs() < 1e-9, "x advanced 0.5 seeds: {} → {}", kfs[0].latent.x, kfs[5].latent.x);
}
