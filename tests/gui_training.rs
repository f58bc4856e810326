//! The Training panel driven like a user would (issue 14): egui_kittest runs the real window; a
//! tiny dataset made here is dropped on it, the panel shows what it found, "Start training" runs
//! a real `stylescope train` child process, progress and plots follow its `stats.jsonl`, Stop
//! leaves a resumable run, Resume continues it, "Open in explorer" loads its snapshot in the main
//! view, and a child killed with SIGKILL is reported and resumable.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use stylescope::backend::BackendChoice;
use stylescope::gui::{ExplorerApp, Launch};
use stylescope::runs::RunState;

fn harness() -> Harness<'static, ExplorerApp> {
    let launch = Launch {
        network: Some(common::fixtures().join("sg2_64.pkl").display().to_string()),
        seed: Some(0),
        trunc: Some(1.0),
        backend: Some(BackendChoice::Cpu),
        state_path: None,
        shared_gpu: None,
        train_program: Some(PathBuf::from(env!("CARGO_BIN_EXE_stylescope"))),
    };
    let app = ExplorerApp::new(&egui::Context::default(), launch).unwrap();
    Harness::builder().with_size([1400.0, 2400.0]).build_ui_state(|ui, app: &mut ExplorerApp| app.ui_root(ui), app)
}

fn step_until(h: &mut Harness<'static, ExplorerApp>, what: &str, done: impl Fn(&ExplorerApp) -> bool) {
    let start = Instant::now();
    while !done(h.state()) {
        let a = h.state();
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "timed out waiting for {what} (note: {:?}, state: {:?}, log: {:?})",
            a.training.note(),
            a.training.detail().map(|d| d.summary.state.clone()),
            a.training.detail().map(|d| d.log.clone())
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.step();
}

fn state(a: &ExplorerApp) -> Option<RunState> {
    a.training.detail().map(|d| d.summary.state.clone())
}

fn ticks(a: &ExplorerApp) -> usize {
    a.training.detail().map_or(0, |d| d.stats.rows.len())
}

#[test]
fn a_run_is_started_watched_stopped_resumed_opened_and_survives_a_kill() {
    let tmp = common::ScratchDir::new("gui-training");
    let data = tmp.join("faces");
    common::make_images(&data, 6, 16);
    std::fs::write(data.join("notes.txt"), "not an image").unwrap();
    let mut h = harness();
    {
        let s = &mut h.state_mut().settings;
        let f = &mut s.train;
        f.outdir = tmp.join("runs");
        f.cbase = 256;
        f.cmax = 16;
        f.batch = 4;
        f.kimg = 50.0;
        f.tick = 0.004;
        f.snap = 1;
    }
    // The data, dropped on the window: what was found, before anything starts.
    h.input_mut().dropped_files.push(Arc::new(common::DroppedPath(data.clone())));
    h.step();
    assert_eq!(h.state().settings.train.data, data);
    step_until(&mut h, "the dataset summary", |a| a.training.data_summary().is_some());
    h.step();
    h.get_by_label_contains("6 images: 6 × 16x16 RGB");
    h.get_by_label_contains("1 file(s) skipped");
    h.get_by_label_contains("--gamma=0.0128"); // the heuristic, 0.0002 · 16² / 4, in the command shown

    // Start: a child process trains; progress and the plots follow its stats.
    h.get_by_label("Start training").click();
    step_until(&mut h, "the run to start and tick twice", |a| state(a).is_some_and(|s| s.is_running()) && ticks(a) >= 3);
    let run_dir = h.state().training.selected().unwrap().to_path_buf();
    assert!(run_dir.starts_with(tmp.join("runs")), "{}", run_dir.display());
    h.get_by_label_contains("/ 50 kimg");
    assert!(h.state().training.detail().unwrap().grid.is_some(), "the fakes grid is shown");

    // Stop: a snapshot, then a resumable run.
    h.get_by_label("Stop").click();
    step_until(&mut h, "the run to stop", |a| state(a) == Some(RunState::Stopped) && !a.training.child_running());
    let stopped_at = ticks(h.state());
    assert!(!h.state().training.detail().unwrap().summary.snapshots.is_empty(), "a snapshot to resume from");
    assert!(h.state().training.detail().unwrap().log.last().unwrap().starts_with("Stopped at kimg"));

    // Resume continues the same run folder.
    h.get_by_label("Resume").click();
    step_until(&mut h, "the resumed run to tick", |a| state(a).is_some_and(|s| s.is_running()) && ticks(a) > stopped_at + 1);
    assert_eq!(h.state().training.selected(), Some(run_dir.as_path()));

    // Killed: reported, and resumable from its last snapshot.
    let pid = match state(h.state()) {
        Some(RunState::Running { pid }) => pid,
        other => panic!("{other:?}"),
    };
    assert!(pid > 0);
    // SAFETY: kill(2) on the child this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    step_until(&mut h, "the kill to be reported", |a| state(a) == Some(RunState::Killed) && !a.training.child_running());
    let note = h.state().training.note().unwrap().to_string();
    assert!(note.contains("killed by signal 9"), "{note}");
    h.get_by_label_contains("killed or crashed");
    h.get_by_label("Resume");

    // Open the newest snapshot in the explorer.
    h.get_by_label("Open in explorer").click();
    step_until(&mut h, "the snapshot in the explorer", |a| {
        a.model().is_some_and(|m| m.network.contains("network-snapshot-")) && a.frame().is_some_and(|f| f.request.network.contains("network-snapshot-")) && !a.is_busy()
    });
    assert_eq!(h.state().model().unwrap().resolution, 16);
}
