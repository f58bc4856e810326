//! The Equivariance section's measurements driven like a user would (issue 16): the live
//! EQ-T / EQ-T_frac / EQ-R readout for the current latent and transform equals `stylescope
//! metrics`' numbers for the same sample (and the official ones of the fixture), the difference
//! images, a rotation sweep, and the average spectrum, all computed by the render thread while
//! the window keeps drawing.

mod common;

use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use stylescope::backend::BackendChoice;
use stylescope::gui::{ExplorerApp, Launch};
use stylescope::metrics::eq_sampling::{accumulate, sample_images, Draw, EqSums};
use stylescope::metrics::equivariance::EqKind;

fn step_until(h: &mut Harness<'static, ExplorerApp>, what: &str, done: impl Fn(&ExplorerApp) -> bool) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(start.elapsed() < Duration::from_secs(240), "timed out waiting for {what} (error: {:?})", h.state().error());
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}

#[test]
fn live_readout_equals_the_cli_and_sweeps_and_spectrum_arrive() {
    let net = common::fixtures().join("sg3t_64.pkl").display().to_string();
    let launch = Launch { network: Some(net.clone()), seed: Some(0), trunc: Some(1.0), backend: Some(BackendChoice::Cpu), state_path: None, shared_gpu: None, train_program: None };
    let app = ExplorerApp::new(&egui::Context::default(), launch).unwrap();
    let mut h = Harness::builder().with_size([1400.0, 1600.0]).build_ui_state(|ui, app: &mut ExplorerApp| app.ui_root(ui), app);
    step_until(&mut h, "the first frame", |a| a.frame().is_some() && !a.is_busy());

    // The fixture's sample: 5, −3 pixels and 0.3 rad.
    let eq = stylescope::weights::safetensors::read_all_f64(&common::fixtures().join("eq.safetensors")).unwrap();
    let t = &eq["sg3t_64/eqt_int/t"].1;
    let angle = eq["sg3t_64/eqr/angle"].1[0];
    {
        let s = &mut h.state_mut().settings;
        s.latent.translate = (t[0], t[1]);
        s.latent.rotate_turns = angle / std::f64::consts::TAU;
    }
    h.get_by_label("Equivariance").click();
    h.step();
    h.get_by_label("Metrics").click();
    h.step();
    h.get_by_label("Live EQ").click();
    h.get_by_label("differences").click();
    step_until(&mut h, "the live readout", |a| a.eq.readout_psnr().is_some() && a.eq.readout.as_ref().is_some_and(|j| j.result.as_ref().is_some_and(|r| r.heatmaps.len() == 3)));
    let live = h.state().eq.readout_psnr().unwrap();

    // The same sample through the library `stylescope metrics` uses.
    let device = BackendChoice::Cpu.device();
    let g = stylescope::source::open_generator(&net, stylescope::weights::Which::GEma, &device).unwrap().generator;
    let draw = Draw { z_seed: 0, class: None, t_int: [t[0], t[1]], t_frac: [t[0], t[1]], angle };
    let kinds = [EqKind::TranslateInt, EqKind::TranslateFrac, EqKind::Rotate];
    let mut sums = EqSums::default();
    accumulate(&mut sums, &sample_images(&g, &draw, &kinds, Default::default()).unwrap(), &draw);
    let cli = sums.psnr();
    for (k, v) in &live {
        assert!((v - cli[k]).abs() < 1e-6, "{k:?}: window {v} dB, metrics {} dB", cli[k]);
    }
    let official = |key: &str| eq[&format!("sg3t_64/{key}/psnr")].1[0];
    assert!((live[0].1 - official("eqt_int")).abs() < 0.01 && (live[2].1 - official("eqr")).abs() < 0.01, "{live:?}");
    assert!(h.get_all_by_label_contains("EQ-T_frac").count() >= 1, "the readout is shown");

    // A rotation sweep (37 angles), then the average spectrum.
    h.get_by_label("rotation").click();
    step_until(&mut h, "the rotation sweep", |a| a.eq.sweep.as_ref().is_some_and(|j| j.result.as_ref().is_some_and(|r| r.finished())));
    let sweep = h.state().eq.sweep.as_ref().unwrap().result.clone().unwrap();
    assert_eq!(sweep.psnr.len(), 37);
    assert!(sweep.psnr.iter().all(|v| v.is_finite() || v.is_infinite() && *v > 0.0));
    h.get_by_label("Average spectrum").click();
    step_until(&mut h, "the spectrum", |a| a.eq.spectrum.as_ref().is_some_and(|j| j.result.as_ref().is_some_and(|r| r.spectrum.is_some())));
    let s = h.state().eq.spectrum.as_ref().unwrap().result.clone().unwrap().spectrum.unwrap();
    assert_eq!((s.width, s.height), (64 * 4 + 1, 64 * 4 + 1));
    // The window kept drawing frames meanwhile and no error was reported.
    assert!(h.state().error().is_none(), "{:?}", h.state().error());
}
