//! The Equivariance section's measurements (`stylescope metrics` and `spectrum` live): EQ-T,
//! EQ-T_frac and EQ-R in dB for the current latent and the current translate/rotate (or a drawn
//! sample), updated as the controls move; the masked difference images; sweeps of PSNR against
//! sub-pixel translation and angle; the current network's average spectrum. The render thread
//! computes them between frames (`render::analysis`); nothing here waits for it.

use egui::{RichText, Ui};
use egui_plot::{Line, Plot};

use super::ExplorerApp;
use crate::metrics::eq_sampling::draws;
use crate::metrics::equivariance::EqKind;
use crate::render::analysis::{Analysis, AnalysisRequest, AnalysisResult, EqPoint, Rgba};
use crate::render::Queued;

/// Points of a translation sweep (EQ-T_frac over one pixel along x) and of a rotation sweep.
const SWEEP_TRANSLATE_STEPS: usize = 17;
const SWEEP_ROTATE_STEPS: usize = 37;
/// Images averaged for the spectrum view.
pub const SPECTRUM_IMAGES: usize = 16;

/// What a running or finished job is for.
#[derive(Clone, Debug, PartialEq)]
pub enum JobKind {
    Readout,
    /// x values (pixels or degrees) of each point.
    Sweep { rotation: bool, xs: Vec<f64> },
    Spectrum,
}

/// One job: what was asked and what came back.
pub struct JobState {
    pub kind: JobKind,
    pub request: AnalysisRequest,
    pub points: Vec<EqPoint>,
    pub result: Option<AnalysisResult>,
    /// Sent to the render thread (else: waiting for queue space).
    sent: bool,
}

/// The section's state (not persisted).
#[derive(Default)]
pub struct EqMetrics {
    next_id: u64,
    pub readout: Option<JobState>,
    pub sweep: Option<JobState>,
    pub spectrum: Option<JobState>,
    textures: Vec<(u64, usize, egui::TextureHandle)>,
}

impl EqMetrics {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Whether the live readout is computed for what the window shows (screenshots wait for it).
    pub fn settled(&self) -> bool {
        self.readout.as_ref().is_none_or(|j| j.result.as_ref().is_some_and(|r| r.finished()))
    }

    /// The finished readout's PSNR per kind.
    pub fn readout_psnr(&self) -> Option<Vec<(EqKind, f64)>> {
        let j = self.readout.as_ref()?;
        let r = j.result.as_ref().filter(|r| r.finished() && r.error.is_none())?;
        Some(j.points.iter().map(|p| p.kind).zip(r.psnr.iter().copied()).collect())
    }

    /// Routes a result to its job (stale ones are dropped).
    pub fn take_result(&mut self, r: AnalysisResult) {
        for job in [&mut self.readout, &mut self.sweep, &mut self.spectrum].into_iter().flatten() {
            if job.request.id == r.id {
                job.result = Some(r);
                return;
            }
        }
    }
}

/// The readout's points for the current controls (or the drawn sample).
fn readout_points(app: &ExplorerApp) -> Option<Vec<EqPoint>> {
    let m = app.model.as_ref().filter(|m| m.is_stylegan3())?;
    let p = app.settings.effective_latent(Some(m.resolution));
    let r = m.resolution as f64;
    let (t, angle) = if app.settings.eq_drawn {
        let d = draws(p.seed(), 1, m.c_dim, m.resolution).pop()?;
        return Some(vec![
            EqPoint { kind: EqKind::TranslateInt, t: d.t_int, angle: 0.0 },
            EqPoint { kind: EqKind::TranslateFrac, t: d.t_frac, angle: 0.0 },
            EqPoint { kind: EqKind::Rotate, t: [0.0; 2], angle: d.angle },
        ]);
    } else {
        ([p.translate.0, p.translate.1], p.rotate_turns * std::f64::consts::TAU)
    };
    let t_int = [(t[0] * r).round_ties_even() / r, (t[1] * r).round_ties_even() / r];
    Some(vec![
        EqPoint { kind: EqKind::TranslateInt, t: t_int, angle: 0.0 },
        EqPoint { kind: EqKind::TranslateFrac, t, angle: 0.0 },
        EqPoint { kind: EqKind::Rotate, t: [0.0; 2], angle },
    ])
}

fn request(app: &mut ExplorerApp, what: Analysis) -> AnalysisRequest {
    let latent = app.settings.effective_latent(app.model.as_ref().map(|m| m.resolution));
    AnalysisRequest { id: app.eq.id(), network: app.settings.network.clone(), backend: app.backend(), latent, what }
}

/// Keeps the live readout current and hands waiting jobs to the render thread; every frame.
pub fn poll(app: &mut ExplorerApp) {
    if app.settings.eq_live && app.loading.is_none() {
        if let Some(points) = readout_points(app) {
            let latent = app.settings.effective_latent(app.model.as_ref().map(|m| m.resolution));
            let heatmaps = app.settings.eq_differences;
            let stale = app.eq.readout.as_ref().is_none_or(|j| {
                j.points != points || j.request.latent != latent || j.request.network != app.settings.network || j.request.backend != app.backend() || !matches!(&j.request.what, Analysis::Equivariance { heatmaps: h, .. } if *h == heatmaps)
            });
            if stale {
                let req = request(app, Analysis::Equivariance { points: points.clone(), heatmaps });
                app.eq.readout = Some(JobState { kind: JobKind::Readout, request: req, points, result: None, sent: false });
            }
        }
    }
    let mut jobs: Vec<&mut JobState> = [&mut app.eq.readout, &mut app.eq.sweep, &mut app.eq.spectrum].into_iter().flatten().filter(|j| !j.sent).collect();
    // The newest job replaces the running one on the render thread: send the sweep or spectrum
    // (asked for by a click) after the readout, so a readout never cancels them.
    jobs.sort_by_key(|j| matches!(j.kind, JobKind::Readout));
    for j in jobs.into_iter().rev() {
        match app.worker.analyse(j.request.clone()) {
            Queued::Sent => j.sent = true,
            Queued::Full | Queued::Stopped => {}
        }
    }
}

pub fn metrics_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    ui.horizontal(|ui| {
        ui.checkbox(&mut app.settings.eq_live, "Live EQ").on_hover_text("EQ-T, EQ-T_frac and EQ-R of this latent, as metrics/equivariance.py computes them");
        ui.checkbox(&mut app.settings.eq_drawn, "drawn sample").on_hover_text("the translation and angle `stylescope metrics --seed SEED --num 1` draws, instead of the controls'");
        ui.checkbox(&mut app.settings.eq_differences, "differences").on_hover_text("|reference - transformed| where the mask is 1");
    });
    if app.settings.eq_live {
        readout_ui(ui, app);
    }
    ui.horizontal(|ui| {
        ui.label("Sweep");
        let r = app.model.as_ref().map_or(0.0, |m| m.resolution as f64);
        if ui.button("translation").on_hover_text("EQ-T_frac for x = 0…1 pixel").clicked() && r > 0.0 {
            let xs: Vec<f64> = (0..SWEEP_TRANSLATE_STEPS).map(|i| i as f64 / (SWEEP_TRANSLATE_STEPS - 1) as f64).collect();
            let points: Vec<EqPoint> = xs.iter().map(|&px| EqPoint { kind: EqKind::TranslateFrac, t: [px / r, 0.0], angle: 0.0 }).collect();
            start_sweep(app, false, xs, points);
        }
        if ui.button("rotation").on_hover_text("EQ-R for -180…180°").clicked() {
            let xs: Vec<f64> = (0..SWEEP_ROTATE_STEPS).map(|i| -180.0 + 360.0 * i as f64 / (SWEEP_ROTATE_STEPS - 1) as f64).collect();
            let points: Vec<EqPoint> = xs.iter().map(|&d| EqPoint { kind: EqKind::Rotate, t: [0.0; 2], angle: d.to_radians() }).collect();
            start_sweep(app, true, xs, points);
        }
        let running = app.eq.sweep.as_ref().is_some_and(|j| !j.result.as_ref().is_some_and(|r| r.finished()));
        if running && ui.button("Cancel").clicked() {
            let req = request(app, Analysis::Cancel);
            let _ = app.worker.analyse(req);
            app.eq.sweep = None;
        }
    });
    sweep_ui(ui, app);
    ui.horizontal(|ui| {
        if ui.button("Average spectrum").on_hover_text(format!("of {SPECTRUM_IMAGES} images (seeds 0…{}), as avg_spectra.py", SPECTRUM_IMAGES - 1)).clicked() {
            let req = request(app, Analysis::Spectrum { num: SPECTRUM_IMAGES });
            app.eq.spectrum = Some(JobState { kind: JobKind::Spectrum, request: req, points: Vec::new(), result: None, sent: false });
        }
        if let Some(r) = app.eq.spectrum.as_ref().and_then(|j| j.result.as_ref()).filter(|r| !r.finished()) {
            ui.add(egui::ProgressBar::new(r.done as f32 / r.total.max(1) as f32).desired_width(120.0));
        }
    });
    let spectrum = app.eq.spectrum.as_ref().and_then(|j| Some((j.request.id, j.result.as_ref()?.spectrum.clone()?)));
    if let Some((id, img)) = spectrum {
        let tex = texture(ui, &mut app.eq, id, 0, &img);
        ui.image((tex, egui::vec2(200.0, 200.0))).on_hover_text("dB, -40…20 in 5 dB bands; frequencies -res/2…res/2");
    }
}

fn start_sweep(app: &mut ExplorerApp, rotation: bool, xs: Vec<f64>, points: Vec<EqPoint>) {
    let req = request(app, Analysis::Equivariance { points: points.clone(), heatmaps: false });
    app.eq.sweep = Some(JobState { kind: JobKind::Sweep { rotation, xs }, request: req, points, result: None, sent: false });
}

fn readout_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let Some(j) = &app.eq.readout else {
        ui.weak("StyleGAN3 only: load a StyleGAN3 network.");
        return;
    };
    let res = app.model.as_ref().map_or(1.0, |m| m.resolution as f64);
    let result = j.result.clone();
    if let Some(e) = result.as_ref().and_then(|r| r.error.clone()) {
        ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
        return;
    }
    let done = result.as_ref().map_or(0, |r| r.psnr.len());
    let points = j.points.clone();
    let id = j.request.id;
    egui::Grid::new("eq-readout").num_columns(3).show(ui, |ui| {
        for (i, p) in points.iter().enumerate() {
            ui.label(p.kind.label());
            match result.as_ref().and_then(|r| r.psnr.get(i)) {
                Some(v) if v.is_infinite() => ui.monospace("   inf dB"),
                Some(v) => ui.monospace(format!("{v:6.2} dB")),
                None => ui.weak("…"),
            };
            ui.weak(match p.kind {
                EqKind::Rotate => format!("{:.1}°", p.angle.to_degrees()),
                _ => format!("({:.2}, {:.2}) px", p.t[0] * res, p.t[1] * res),
            });
            ui.end_row();
        }
    });
    if done < points.len() {
        ui.weak("computing…");
    }
    if let Some(r) = &result {
        if !r.heatmaps.is_empty() {
            let side = (ui.available_width() / 3.0 - 8.0).clamp(48.0, 128.0);
            ui.horizontal(|ui| {
                for (i, h) in r.heatmaps.iter().enumerate() {
                    let tex = texture(ui, &mut app.eq, id, i + 1, h);
                    ui.image((tex, egui::vec2(side, side))).on_hover_text(format!("{}: |ref - img| (0…0.25) where the mask is 1", points[i].kind.label()));
                }
            });
        }
    }
}

fn sweep_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let Some(j) = &app.eq.sweep else { return };
    let JobKind::Sweep { rotation, xs } = &j.kind else { return };
    let Some(r) = &j.result else {
        ui.weak("sweep queued…");
        return;
    };
    if let Some(e) = &r.error {
        ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
        return;
    }
    if !r.finished() {
        ui.add(egui::ProgressBar::new(r.done as f32 / r.total.max(1) as f32).text(format!("{}/{}", r.done, r.total)));
    }
    let pts: Vec<[f64; 2]> = xs.iter().zip(&r.psnr).filter(|(_, v)| v.is_finite()).map(|(x, v)| [*x, *v]).collect();
    let (name, unit) = if *rotation { ("EQ-R", "angle (°)") } else { ("EQ-T_frac", "x (pixels)") };
    Plot::new("eq-sweep").height(120.0).x_axis_label(unit).y_axis_label("dB").allow_scroll(false).show(ui, |p| {
        p.line(Line::new(name, pts));
    });
}

/// The texture for image `slot` of job `id` (made once).
fn texture(ui: &Ui, eq: &mut EqMetrics, id: u64, slot: usize, img: &Rgba) -> egui::TextureId {
    if let Some((_, _, t)) = eq.textures.iter().find(|(i, s, _)| *i == id && *s == slot) {
        return t.id();
    }
    // Keep the textures of the current jobs only.
    let current: Vec<u64> = [&eq.readout, &eq.sweep, &eq.spectrum].into_iter().flatten().map(|j| j.request.id).collect();
    eq.textures.retain(|(i, _, _)| current.contains(i));
    let image = egui::ColorImage::from_rgba_unmultiplied([img.width, img.height], &img.pixels);
    let t = ui.ctx().load_texture(format!("eq-{id}-{slot}"), image, egui::TextureOptions::NEAREST);
    let tid = t.id();
    eq.textures.push((id, slot, t));
    tid
}
