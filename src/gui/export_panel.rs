//! Export: a keyframe timeline of the explorer's own controls — add the current view, reorder,
//! delete, set each segment's duration and easing, scrub or play the preview in the main view,
//! save/open the timeline file — and its export to MP4 / GIF / PNG frames on the `video-export`
//! thread (its own generator) with progress and cancel. The copyable `stylescope video
//! --timeline` line makes the same file.

use egui::{RichText, Ui};

use super::{DialogPurpose, ExplorerApp};
use crate::export::video::timeline::{Easing, Keyframe};
use crate::export::video::worker::{Export, ExportEvent};

/// The panel's state that is not persisted.
pub struct ExportState {
    job: Option<Export>,
    /// (done, total) of the running export.
    pub progress: Option<(usize, usize)>,
    /// How the last export ended.
    pub outcome: Option<Result<String, String>>,
    /// The preview frame.
    pub scrub: usize,
    pub playing: bool,
    play_time: f64,
    /// Seconds "Record" captures.
    pub record_secs: f64,
}

impl Default for ExportState {
    fn default() -> Self {
        Self { job: None, progress: None, outcome: None, scrub: 0, playing: false, play_time: 0.0, record_secs: 4.0 }
    }
}

impl ExportState {
    pub fn running(&self) -> bool {
        self.job.is_some()
    }
}

/// Export events and the preview's playback; every frame.
pub fn poll(app: &mut ExplorerApp, dt: f64) -> bool {
    let mut finished = None;
    if let Some(job) = &app.export.job {
        for e in job.events.try_iter() {
            match e {
                ExportEvent::Progress { done, total } => app.export.progress = Some((done, total)),
                ExportEvent::Finished { frames, total, output } => {
                    finished = Some(Ok(if frames < total { format!("cancelled: {} holds the first {frames} of {total} frames", output.display()) } else { format!("wrote {} ({frames} frames)", output.display()) }));
                }
                ExportEvent::Failed(e) => finished = Some(Err(format!("export failed: {e}"))),
            }
        }
    }
    if let Some(outcome) = finished {
        app.export.job = None;
        app.export.progress = None;
        match &outcome {
            Ok(m) => app.report(m.clone()),
            Err(e) => app.report_error(e.clone()),
        }
        app.export.outcome = Some(outcome);
    }
    let total = app.settings.timeline.num_frames(app.settings.video_fps).max(1);
    if app.export.playing && !app.settings.timeline.keyframes.is_empty() {
        app.export.play_time += dt;
        let frame = (app.export.play_time * app.settings.video_fps) as usize % total;
        if frame != app.export.scrub {
            app.export.scrub = frame;
            show_frame(app);
        }
        return true;
    }
    app.export.job.is_some()
}

/// Puts the preview frame's controls into the main view.
fn show_frame(app: &mut ExplorerApp) {
    if app.settings.timeline.keyframes.is_empty() {
        return;
    }
    let (p, _) = app.settings.timeline.at(app.export.scrub, app.settings.video_fps);
    app.settings.latent = p;
}

pub fn export_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let n = app.settings.timeline.keyframes.len();
    ui.horizontal(|ui| {
        if ui.button("Add current view").on_hover_text("the current latent, psi, style mixing, noise, translate and rotate as a keyframe").clicked() {
            let latent = app.settings.effective_latent(app.model.as_ref().map(|m| m.resolution));
            app.settings.timeline.keyframes.push(Keyframe { latent, duration: 2.0, easing: Easing::Cubic });
        }
        ui.label(format!("{n} keyframe(s)"));
    });
    let mut action: Option<(usize, &str)> = None;
    egui::ScrollArea::vertical().id_salt("export-keyframes-scroll").max_height(220.0).show(ui, |ui| egui::Grid::new("export-keyframes").num_columns(4).show(ui, |ui| {
        for (i, k) in app.settings.timeline.keyframes.iter_mut().enumerate() {
            ui.label(format!("{i}: seed {:.2}, psi {:.2}", k.latent.x + 100.0 * k.latent.y, k.latent.psi));
            ui.add(egui::DragValue::new(&mut k.duration).range(0.05..=600.0).speed(0.05).suffix(" s"));
            egui::ComboBox::from_id_salt(("easing", i)).width(70.0).selected_text(format!("{:?}", k.easing).to_lowercase()).show_ui(ui, |ui| {
                ui.selectable_value(&mut k.easing, Easing::Linear, "linear");
                ui.selectable_value(&mut k.easing, Easing::Cubic, "cubic");
                ui.selectable_value(&mut k.easing, Easing::Slerp, "slerp").on_hover_text("z slerp between the two seeds");
            });
            ui.horizontal(|ui| {
                for (label, what) in [("Show", "show"), ("Up", "up"), ("Down", "down"), ("Delete", "delete")] {
                    if ui.small_button(label).clicked() {
                        action = Some((i, what));
                    }
                }
            });
            ui.end_row();
        }
    }));
    if let Some((i, what)) = action {
        let kfs = &mut app.settings.timeline.keyframes;
        match what {
            "show" => app.settings.latent = kfs[i].latent.clone(),
            "up" if i > 0 => kfs.swap(i, i - 1),
            "down" if i + 1 < kfs.len() => kfs.swap(i, i + 1),
            "delete" => {
                kfs.remove(i);
            }
            _ => {}
        }
    }
    ui.horizontal(|ui| {
        let any = app.settings.anim_latent || app.settings.anim_stylemix || app.settings.anim_noise || app.settings.anim_translate || app.settings.anim_rotate;
        let b = ui.add_enabled(any, egui::Button::new("Record")).on_hover_text("the animations running now, for the given seconds, as a timeline (one keyframe per frame)");
        let b = b.on_disabled_hover_text("turn on an animation (Latent, Style mixing, Noise, Equivariance) first");
        let label = ui.label("for");
        ui.add(egui::DragValue::new(&mut app.export.record_secs).range(0.1..=600.0).speed(0.1).suffix(" s")).labelled_by(label.id);
        if b.clicked() {
            record(app);
        }
    });
    ui.horizontal(|ui| {
        ui.checkbox(&mut app.settings.timeline.looping, "loop");
        let label = ui.label("fps");
        ui.add(egui::DragValue::new(&mut app.settings.video_fps).range(1.0..=240.0)).labelled_by(label.id);
    });
    let total = app.settings.timeline.num_frames(app.settings.video_fps);
    if n > 0 {
        ui.horizontal(|ui| {
            let label = ui.label("Preview");
            let mut f = app.export.scrub.min(total.saturating_sub(1));
            if ui.add(egui::Slider::new(&mut f, 0..=total.saturating_sub(1)).suffix(format!(" / {total}"))).labelled_by(label.id).changed() {
                app.export.scrub = f;
                app.export.playing = false;
                show_frame(app);
            }
            let text = if app.export.playing { "Pause" } else { "Play" };
            if ui.button(text).clicked() {
                app.export.playing = !app.export.playing;
                app.export.play_time = app.export.scrub as f64 / app.settings.video_fps;
            }
        });
    }
    ui.horizontal(|ui| {
        let browsing = app.dialog.is_some();
        if ui.add_enabled(!browsing && n > 0, egui::Button::new("Save timeline…")).clicked() {
            app.start_dialog(DialogPurpose::SaveTimeline);
        }
        if ui.add_enabled(!browsing, egui::Button::new("Open timeline…")).clicked() {
            app.start_dialog(DialogPurpose::OpenTimeline);
        }
    });
    ui.horizontal(|ui| {
        let label = ui.label("Output");
        let mut text = app.settings.video_output.display().to_string();
        if ui.add(egui::TextEdit::singleline(&mut text).desired_width(ui.available_width() - 10.0).hint_text("out.mp4, out.gif or a folder")).labelled_by(label.id).changed() {
            app.settings.video_output = text.into();
        }
    });
    match app.export.progress {
        Some((done, total)) => {
            ui.horizontal(|ui| {
                ui.add(egui::ProgressBar::new(done as f32 / total.max(1) as f32).text(format!("{done}/{total} frames")).desired_width(ui.available_width() - 80.0));
                if ui.button("Cancel").clicked() {
                    if let Some(j) = &app.export.job {
                        j.cancel();
                    }
                }
            });
        }
        None if app.export.running() => {
            ui.horizontal(|ui| {
                ui.weak("loading the network…");
                if ui.button("Cancel").clicked() {
                    if let Some(j) = &app.export.job {
                        j.cancel();
                    }
                }
            });
        }
        None => {
            let ready = n > 0 && !app.settings.video_output.as_os_str().is_empty() && !app.settings.network.is_empty();
            if ui.add_enabled(ready, egui::Button::new("Export video")).clicked() {
                start_export(app);
            }
        }
    }
    if let Some(o) = &app.export.outcome {
        let (text, color) = match o {
            Ok(m) => (m.clone(), ui.visuals().weak_text_color()),
            Err(e) => (e.clone(), ui.visuals().error_fg_color),
        };
        ui.label(RichText::new(text).color(color));
    }
    if let Some(path) = &app.settings.timeline_path {
        let args: Vec<String> = vec![
            "video".into(),
            format!("--network={}", app.settings.network),
            format!("--timeline={}", path.display()),
            format!("--fps={}", app.settings.video_fps),
            format!("--output={}", app.settings.video_output.display()),
        ];
        let line = crate::runs::command::shell_line("stylescope", &args);
        ui.horizontal(|ui| {
            if ui.small_button("Copy command").on_hover_text(&line).clicked() {
                ui.ctx().copy_text(line.clone());
            }
            ui.weak("(the saved timeline file)");
        });
    }
}

/// "Record": steps a copy of the running animations at the export fps for `record_secs` and
/// makes each step a keyframe (linear, one frame long), replacing the timeline.
fn record(app: &mut ExplorerApp) {
    let fps = app.settings.video_fps;
    let frames = (app.export.record_secs * fps).round().max(1.0) as usize;
    let mut s = app.settings.clone();
    let mut keyframes = Vec::with_capacity(frames + 1);
    for _ in 0..=frames {
        keyframes.push(Keyframe { latent: s.effective_latent(app.model.as_ref().map(|m| m.resolution)), duration: 1.0 / fps, easing: Easing::Linear });
        super::animate_settings(&mut s, app.model.as_ref(), 1.0 / fps);
    }
    app.settings.timeline = crate::export::video::timeline::Timeline { keyframes, looping: false };
    app.settings.timeline_path = None;
    app.report(format!("recorded {} s of the running animation as {} keyframes", app.export.record_secs, frames + 1));
}

fn start_export(app: &mut ExplorerApp) {
    let s = &app.settings;
    match Export::spawn(s.network.clone(), app.backend(), s.timeline.clone(), s.video_fps, s.video_output.clone()) {
        Ok(job) => {
            app.export.job = Some(job);
            app.export.outcome = None;
            app.export.progress = None;
        }
        Err(e) => app.report_error(format!("cannot start the export: {e}")),
    }
}
