//! Training: launch, watch, stop and resume `stylescope train` runs from the window. The form
//! (data, base network, the knobs people use) becomes a command line that is shown, copyable,
//! and run as a child process (`runs::TrainChild`); the `run-watcher` thread reads the output
//! folder's runs (states, `stats.jsonl`, grids, logs) so the panel only draws. Snapshots open
//! in the explorer with one click, or follow the run as it trains.

use std::path::{Path, PathBuf};

use crossbeam_channel::Receiver;
use egui::{Color32, RichText, Ui};
use egui_plot::{Legend, Line, Plot};

use super::{DialogPurpose, ExplorerApp};
use crate::backend::BackendChoice;
use crate::data::summary::LabelSummary;
use crate::data::DatasetSummary;
use crate::runs::command::{gamma_heuristic, resume_args, shell_line};
use crate::runs::folder::{AtKimg, RunState, RunSummary};
use crate::runs::watch::RunDetail;
use crate::runs::{Base, RunsUpdate, RunsWatcher, TrainChild, WatchRequest};
use crate::train::networks::BaseInfo;
use crate::train::options::{AugMode, Cfg};

/// A question answered on a background thread (reading a dataset's headers, a network file).
pub(crate) struct Probe<T> {
    key: Option<PathBuf>,
    rx: Option<Receiver<Result<T, String>>>,
    pub(crate) result: Option<Result<T, String>>,
}

impl<T> Default for Probe<T> {
    fn default() -> Self {
        Self { key: None, rx: None, result: None }
    }
}

impl<T: Send + 'static> Probe<T> {
    /// Asks about `key` (again only when it changed); true when a new answer arrived.
    fn want(&mut self, key: &Path, name: &str, ask: fn(&Path) -> Result<T, String>) -> bool {
        if self.key.as_deref() != Some(key) {
            self.key = Some(key.to_path_buf());
            self.result = None;
            self.rx = None;
            if key.as_os_str().is_empty() {
                return false;
            }
            let (tx, rx) = crossbeam_channel::bounded(1);
            let path = key.to_path_buf();
            match std::thread::Builder::new().name(name.into()).spawn(move || {
                let _ = tx.send(ask(&path));
            }) {
                Ok(_) => self.rx = Some(rx),
                Err(e) => self.result = Some(Err(format!("cannot start a thread: {e}"))),
            }
        }
        match self.rx.as_ref().and_then(|rx| rx.try_recv().ok()) {
            Some(r) => {
                self.result = Some(r);
                self.rx = None;
                true
            }
            None => false,
        }
    }

    fn pending(&self) -> bool {
        self.rx.is_some()
    }

    fn ok(&self) -> Option<&T> {
        self.result.as_ref().and_then(|r| r.as_ref().ok())
    }
}

/// The panel's state that is not persisted: the watcher, the child process, probes, textures.
#[derive(Default)]
pub struct TrainingPanel {
    watcher: Option<RunsWatcher>,
    /// The newest view of the output folder.
    pub(crate) view: Option<RunsUpdate>,
    /// The run shown in detail.
    pub(crate) selected: Option<PathBuf>,
    /// The grid picked with the slider (`None`: the newest).
    grid_choice: Option<PathBuf>,
    texture: Option<(PathBuf, egui::TextureHandle)>,
    /// The training process this window started, if any.
    pub(crate) child: Option<TrainChild>,
    /// How that process ended, when it did not end well.
    pub(crate) child_note: Option<String>,
    pub(crate) data: Probe<DatasetSummary>,
    pub(crate) base: Probe<BaseInfo>,
    /// Load each new snapshot of the selected run into the explorer.
    pub(crate) follow: bool,
    followed: Option<PathBuf>,
    /// The `stylescope` executable that trains.
    pub(crate) program: PathBuf,
    /// Fold the "New run" form away on the next frame (a run started or was found running).
    fold_form: bool,
    /// The remembered run was looked at (once, when the window opens).
    restored: bool,
}

impl TrainingPanel {
    pub fn new(program: Option<PathBuf>) -> Self {
        let program = program.or_else(|| std::env::current_exe().ok()).unwrap_or_else(|| PathBuf::from("stylescope"));
        Self { program, ..Default::default() }
    }

    /// The run shown in detail, as last read.
    pub fn detail(&self) -> Option<&RunDetail> {
        self.view.as_ref().and_then(|v| v.detail.as_ref()).filter(|d| Some(&d.summary.dir) == self.selected.as_ref())
    }

    /// Whether what the panel shows is read (for screenshots): the folder's view, and the
    /// selected run's details with its grid on a texture.
    pub fn settled(&self) -> bool {
        let Some(view) = &self.view else { return false };
        match (&self.selected, self.detail()) {
            (None, _) => view.request.selected.is_none(),
            (Some(_), None) => false,
            (Some(_), Some(d)) => d.grid.as_ref().is_none_or(|g| self.texture.as_ref().is_some_and(|(p, _)| p == &g.path)),
        }
    }

    /// The run shown in detail.
    pub fn selected(&self) -> Option<&Path> {
        self.selected.as_deref()
    }

    /// Why the training process this window started ended badly, if it did.
    pub fn note(&self) -> Option<&str> {
        self.child_note.as_deref()
    }

    /// Whether a training process this window started is still running.
    pub fn child_running(&self) -> bool {
        self.child.is_some()
    }

    /// What the dataset probe found (once it answered).
    pub fn data_summary(&self) -> Option<&Result<DatasetSummary, String>> {
        self.data.result.as_ref()
    }

    /// The runs of the output folder, as last read (newest first).
    pub fn runs(&self) -> &[RunSummary] {
        self.view.as_ref().map_or(&[], |v| v.runs.as_slice())
    }
}

fn probe_data(path: &Path) -> Result<DatasetSummary, String> {
    crate::data::summarize(path).map_err(|e| e.to_string())
}

fn probe_base(path: &Path) -> Result<BaseInfo, String> {
    crate::train::networks::describe_base(path).map_err(|e| e.to_string())
}

/// The data's resolution, channels and label dimensions as training would use them.
fn data_shape(s: &DatasetSummary, cond: bool) -> Option<(u32, usize, usize)> {
    let res = s.resolution()?;
    let ch = s.shapes.first()?.channels as usize;
    let c_dim = match (&s.labels, cond) {
        (LabelSummary::Classes { classes }, true) => *classes,
        (LabelSummary::Vectors { dim }, true) => *dim,
        _ => 0,
    };
    Some((res, ch, c_dim))
}

/// Everything that goes on while the panel may be closed: the watcher, the child process, new
/// views, following snapshots. Called every frame; never blocks.
pub fn poll(app: &mut ExplorerApp, ctx: &egui::Context) {
    let p = &mut app.training;
    if !p.restored {
        p.restored = true;
        if p.selected.is_none() {
            p.selected = app.settings.train_run.clone().filter(|d| d.is_dir());
            p.fold_form = p.selected.is_some();
        }
    }
    if app.settings.train_run != p.selected && p.selected.is_some() {
        app.settings.train_run = p.selected.clone();
    }
    if p.watcher.is_none() {
        let repaint = ctx.clone();
        match RunsWatcher::spawn(Box::new(move || repaint.request_repaint())) {
            Ok(w) => p.watcher = Some(w),
            Err(e) => {
                p.child_note = Some(format!("cannot watch training runs: {e}"));
                return;
            }
        }
    }
    // What the data and the base network are, read off the GUI thread as soon as they change.
    p.data.want(&app.settings.train.data, "dataset-probe", probe_data);
    match &app.settings.train.base {
        Base::File(path) => {
            if p.base.want(path, "network-probe", probe_base) {
                if let Some(info) = p.base.ok() {
                    app.settings.train.adopt_base(info);
                }
            }
        }
        Base::Scratch => p.base = Probe::default(),
    }
    if p.data.pending() || p.base.pending() {
        ctx.request_repaint_after(std::time::Duration::from_millis(100));
    }
    let mut messages = Vec::new();
    if let Some(child) = &mut p.child {
        if p.selected.is_none() {
            if let Some(dir) = child.run_dir() {
                p.selected = Some(dir.to_path_buf());
                p.grid_choice = None;
            }
        }
        if let Some(exit) = child.poll().cloned() {
            if exit != crate::runs::child::ChildExit::Success {
                let note = format!("training process {exit}");
                messages.push((note.clone(), true));
                p.child_note = Some(note);
            }
            p.child = None;
        } else {
            ctx.request_repaint_after(std::time::Duration::from_millis(500));
        }
    }
    let request = WatchRequest { outdir: app.settings.train.outdir.clone(), selected: p.selected.clone(), grid: p.grid_choice.clone() };
    if let Some(w) = &p.watcher {
        if p.view.as_ref().is_none_or(|v| v.request != request) {
            w.watch(request.clone());
        }
        if let Some(u) = w.try_update() {
            // Reattach: with nothing chosen yet, a run that is training now is the one to show.
            if p.selected.is_none() && p.child.is_none() {
                p.selected = u.runs.iter().find(|r| r.state.is_running()).map(|r| r.dir.clone());
                p.fold_form = p.selected.is_some();
            }
            p.view = Some(u);
        }
    }
    // Live mode: the newest snapshot of the selected run goes to the explorer.
    let newest = p.detail().and_then(|d| d.summary.latest_snapshot()).map(|s| s.path.clone());
    if p.follow {
        if let Some(s) = newest.filter(|s| p.followed.as_ref() != Some(s)) {
            p.followed = Some(s.clone());
            messages.push((format!("following the run: {}", s.display()), false));
            app.open_network(&s.display().to_string());
        }
    }
    for (m, is_error) in messages {
        if is_error {
            app.report_error(m);
        } else {
            app.report(m);
        }
    }
}

pub fn training_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    ui.horizontal(|ui| {
        let label = ui.label("Runs folder");
        let mut text = app.settings.train.outdir.display().to_string();
        if ui.add(egui::TextEdit::singleline(&mut text).desired_width(ui.available_width() - 70.0)).labelled_by(label.id).changed() {
            app.settings.train.outdir = PathBuf::from(text);
        }
        if ui.add_enabled(app.dialog.is_none(), egui::Button::new("Choose…")).clicked() {
            app.start_dialog(DialogPurpose::TrainOutdir);
        }
    });
    runs_list_ui(ui, app);
    let fold = std::mem::take(&mut app.training.fold_form).then_some(false);
    egui::CollapsingHeader::new("New run").id_salt("train-new").default_open(app.training.selected.is_none()).open(fold).show(ui, |ui| new_run_ui(ui, app));
    if let Some(note) = app.training.child_note.clone() {
        ui.horizontal(|ui| {
            ui.label(RichText::new(&note).color(ui.visuals().error_fg_color));
            if ui.small_button("Dismiss").clicked() {
                app.training.child_note = None;
            }
        });
    }
    if app.training.selected.is_some() {
        ui.separator();
        run_detail_ui(ui, app);
    }
}

fn runs_list_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let runs = app.training.runs().to_vec();
    if runs.is_empty() {
        ui.weak("No runs in this folder yet.");
        return;
    }
    let label = ui.label("Runs");
    let current = app.training.selected.as_ref().and_then(|s| runs.iter().find(|r| &r.dir == s)).map_or("pick a run…".to_string(), run_line);
    egui::ComboBox::from_id_salt("train-runs")
        .selected_text(current)
        .width(ui.available_width() - 10.0)
        .show_ui(ui, |ui| {
            for r in &runs {
                if ui.selectable_label(app.training.selected.as_ref() == Some(&r.dir), run_line(r)).clicked() {
                    app.training.selected = Some(r.dir.clone());
                    app.training.grid_choice = None;
                    app.training.follow = false;
                }
            }
        })
        .response
        .labelled_by(label.id);
}

fn run_line(r: &RunSummary) -> String {
    let kimg = r.latest_snapshot().map(|s| format!(" · snapshot {} kimg", s.kimg)).unwrap_or_default();
    format!("{} · {}{kimg}", r.name, r.state.label())
}

fn new_run_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let form = &mut app.settings.train;
    // Data.
    ui.horizontal(|ui| {
        let label = ui.label("Data");
        let mut text = form.data.display().to_string();
        if ui.add(egui::TextEdit::singleline(&mut text).desired_width(ui.available_width() - 110.0).hint_text("folder or zip of images")).labelled_by(label.id).changed() {
            form.data = PathBuf::from(text);
        }
    });
    let browsing = app.dialog.is_some();
    ui.horizontal(|ui| {
        if ui.add_enabled(!browsing, egui::Button::new("Folder…")).clicked() {
            app.start_dialog(DialogPurpose::TrainDataFolder);
        }
        if ui.add_enabled(!browsing, egui::Button::new("Zip…")).clicked() {
            app.start_dialog(DialogPurpose::TrainDataZip);
        }
        ui.weak("or drop a folder / .zip on the window");
    });
    let cond = app.settings.train.cond;
    let shape = app.training.data.ok().and_then(|s| data_shape(s, cond));
    data_summary_ui(ui, &app.training.data);

    // Base.
    ui.horizontal(|ui| {
        ui.label("Start from");
        let scratch = app.settings.train.base == Base::Scratch;
        if ui.radio(scratch, "scratch").clicked() {
            app.settings.train.base = Base::Scratch;
        }
        let explorer_model = app.model.as_ref().filter(|m| !m.network.starts_with("preset:")).map(|m| PathBuf::from(&m.network));
        let is_explorer = matches!((&app.settings.train.base, &explorer_model), (Base::File(f), Some(m)) if f == m);
        if ui.add_enabled(explorer_model.is_some(), egui::RadioButton::new(is_explorer, "the explorer's model")).on_disabled_hover_text("load a trained network in the Model section first").clicked() {
            if let Some(m) = explorer_model {
                app.settings.train.base = Base::File(m);
            }
        }
        if ui.add_enabled(app.dialog.is_none(), egui::RadioButton::new(matches!(app.settings.train.base, Base::File(_)) && !is_explorer, "a file…")).clicked() {
            app.start_dialog(DialogPurpose::TrainBase);
        }
    });
    let mut base_ok = true;
    match app.settings.train.base.clone() {
        Base::Scratch => {
            ui.horizontal(|ui| {
                let label = ui.label("Config");
                egui::ComboBox::from_id_salt("train-cfg")
                    .selected_text(app.settings.train.cfg.name())
                    .show_ui(ui, |ui| {
                        for c in [Cfg::StyleGan3T, Cfg::StyleGan3R, Cfg::StyleGan2] {
                            ui.selectable_value(&mut app.settings.train.cfg, c, c.name());
                        }
                    })
                    .response
                    .labelled_by(label.id);
            });
        }
        Base::File(path) => {
            ui.label(format!("fine-tune {}", path.display()));
            match (&app.training.base.result, shape) {
                (None, _) => {
                    base_ok = false;
                    ui.weak("reading the network…");
                }
                (Some(Err(e)), _) => {
                    base_ok = false;
                    ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
                }
                (Some(Ok(info)), Some((res, ch, c_dim))) => match info.check(app.settings.train.cfg, res as usize, ch, c_dim) {
                    Ok(()) => {
                        ui.weak(format!("{} · {r}x{r} · cbase {} · cmax {}: fits the data", info.cfg.name(), info.cbase, info.cmax, r = info.resolution));
                    }
                    Err(e) => {
                        base_ok = false;
                        ui.label(RichText::new(format!("does not fit the data: {e}")).color(ui.visuals().error_fg_color));
                    }
                },
                (Some(Ok(info)), None) => {
                    ui.weak(format!("{} · {r}x{r}", info.cfg.name(), r = info.resolution));
                }
            }
        }
    }
    knobs_ui(ui, app, shape.map(|s| s.0));

    // The command, and Start.
    let form = &app.settings.train;
    let args = form.args(shape.map(|s| s.0));
    let line = shell_line("stylescope", &args);
    ui.horizontal(|ui| {
        ui.label("Command");
        if ui.small_button("Copy").on_hover_text("the same run from a terminal").clicked() {
            ui.ctx().copy_text(line.clone());
        }
    });
    ui.add(egui::Label::new(RichText::new(&line).monospace().small()).wrap());
    let data_ready = app.training.data.ok().is_some_and(|s| s.ready());
    let busy = app.training.child.is_some();
    let why_not = if busy {
        Some("a run started here is still starting or running")
    } else if !data_ready {
        Some("pick a dataset that training can use")
    } else if !base_ok {
        Some("the base network does not fit")
    } else {
        None
    };
    let start = ui.add_enabled(why_not.is_none(), egui::Button::new("Start training"));
    let start = match why_not {
        Some(w) => start.on_disabled_hover_text(w),
        None => start,
    };
    if start.clicked() {
        let outdir = app.settings.train.outdir.clone();
        launch(app, &args, &outdir);
    }
}

/// Starts `stylescope ARGS` and selects the run it makes.
fn launch(app: &mut ExplorerApp, args: &[String], outdir: &Path) {
    match TrainChild::spawn(&app.training.program, args, outdir) {
        Ok(child) => {
            app.report(format!("training started (process {}): {}", child.pid(), shell_line("stylescope", args)));
            app.training.child = Some(child);
            app.training.child_note = None;
            app.training.fold_form = true;
            app.training.selected = None;
            app.training.grid_choice = None;
        }
        Err(e) => app.report_error(format!("cannot start {}: {e}", app.training.program.display())),
    }
}

fn data_summary_ui(ui: &mut Ui, probe: &Probe<DatasetSummary>) {
    let err = ui.visuals().error_fg_color;
    match &probe.result {
        None if probe.pending() => {
            ui.weak("reading the dataset…");
        }
        None => {}
        Some(Err(e)) => {
            ui.label(RichText::new(e).color(err));
        }
        Some(Ok(s)) => {
            let shapes: Vec<String> = s.shapes.iter().map(|c| format!("{} × {}x{} {}", c.count, c.width, c.height, channels_name(c.channels))).collect();
            let labels = match &s.labels {
                LabelSummary::None => "no labels".to_string(),
                LabelSummary::Classes { classes } => format!("{classes} classes"),
                LabelSummary::Vectors { dim } => format!("label vectors of {dim}"),
                LabelSummary::Invalid(_) => "labels unusable".to_string(),
            };
            ui.label(format!("{} images: {} · {labels}", s.images, shapes.join(", ")));
            if !s.skipped.is_empty() {
                egui::CollapsingHeader::new(format!("{} file(s) skipped", s.skipped.len())).id_salt("train-skipped").show(ui, |ui| {
                    for k in s.skipped.iter().take(50) {
                        ui.label(RichText::new(format!("{}: {}", k.file, k.reason)).small());
                    }
                });
            }
            for p in &s.problems {
                ui.label(RichText::new(p).color(err));
            }
        }
    }
}

fn channels_name(c: u8) -> &'static str {
    match c {
        1 => "gray",
        3 => "RGB",
        _ => "channels",
    }
}

fn knobs_ui(ui: &mut Ui, app: &mut ExplorerApp, resolution: Option<u32>) {
    let fine_tuning = matches!(app.settings.train.base, Base::File(_));
    let f = &mut app.settings.train;
    egui::Grid::new("train-knobs").num_columns(2).show(ui, |ui| {
        ui.label("kimg").on_hover_text("training length in thousands of images shown to D");
        ui.add(egui::DragValue::new(&mut f.kimg).range(0.001..=100000.0).speed(1.0));
        ui.end_row();
        ui.label("Batch");
        ui.add(egui::DragValue::new(&mut f.batch).range(1..=1024));
        ui.end_row();
        ui.label("Gamma").on_hover_text("R1 weight; auto = 0.0002 · resolution² / batch, the official starting point");
        ui.horizontal(|ui| {
            let mut auto = f.gamma.is_none();
            if ui.checkbox(&mut auto, "auto").changed() {
                f.gamma = if auto { None } else { Some(f.effective_gamma(resolution)) };
            }
            match &mut f.gamma {
                Some(g) => {
                    ui.add(egui::DragValue::new(g).range(0.0..=1000.0).speed(0.01));
                }
                None => {
                    ui.weak(resolution.map_or("(from the data)".to_string(), |r| format!("{}", gamma_heuristic(r, f.batch))));
                }
            }
        });
        ui.end_row();
        ui.label("Mirror");
        ui.checkbox(&mut f.mirror, "x-flips");
        ui.end_row();
        ui.label("Augment");
        ui.horizontal(|ui| {
            egui::ComboBox::from_id_salt("train-aug").selected_text(format!("{:?}", f.aug).to_lowercase()).show_ui(ui, |ui| {
                ui.selectable_value(&mut f.aug, AugMode::Ada, "ada");
                ui.selectable_value(&mut f.aug, AugMode::Noaug, "noaug");
                ui.selectable_value(&mut f.aug, AugMode::Fixed, "fixed");
            });
            match f.aug {
                AugMode::Ada => {
                    ui.label("target");
                    ui.add(egui::DragValue::new(&mut f.target).range(0.0..=1.0).speed(0.01));
                }
                AugMode::Fixed => {
                    ui.label("p");
                    ui.add(egui::DragValue::new(&mut f.p).range(0.0..=1.0).speed(0.01));
                }
                AugMode::Noaug => {}
            }
        });
        ui.end_row();
        ui.label("Freeze D").on_hover_text("--freezed: D's first layers stay fixed (fine-tuning)");
        ui.add(egui::DragValue::new(&mut f.freezed).range(0..=64));
        ui.end_row();
        ui.label("Snapshot every").on_hover_text("--snap, in ticks");
        ui.horizontal(|ui| {
            ui.add(egui::DragValue::new(&mut f.snap).range(1..=1000));
            ui.label(format!("ticks of {} kimg", f.tick));
        });
        ui.end_row();
        ui.label("Backend");
        egui::ComboBox::from_id_salt("train-backend").selected_text(f.backend.name()).show_ui(ui, |ui| {
            ui.selectable_value(&mut f.backend, BackendChoice::Cpu, "cpu");
            ui.selectable_value(&mut f.backend, BackendChoice::Wgpu, "wgpu");
        });
        ui.end_row();
    });
    egui::CollapsingHeader::new("Advanced").id_salt("train-advanced").show(ui, |ui| {
        egui::Grid::new("train-advanced-grid").num_columns(2).show(ui, |ui| {
            ui.label("Tick (kimg)");
            ui.add(egui::DragValue::new(&mut f.tick).range(0.001..=1000.0).speed(0.1));
            ui.end_row();
            ui.add_enabled_ui(!fine_tuning, |ui| ui.label("cbase / cmax")).response.on_disabled_hover_text("taken from the base network");
            ui.add_enabled_ui(!fine_tuning, |ui| {
                ui.horizontal(|ui| {
                    ui.add(egui::DragValue::new(&mut f.cbase).range(64..=131072));
                    ui.add(egui::DragValue::new(&mut f.cmax).range(8..=1024));
                });
            });
            ui.end_row();
            ui.label("G lr");
            optional(ui, &mut f.glr, if f.cfg == Cfg::StyleGan2 { 0.002 } else { 0.0025 });
            ui.end_row();
            ui.label("D lr");
            ui.add(egui::DragValue::new(&mut f.dlr).range(0.0..=1.0).speed(0.0001));
            ui.end_row();
            ui.label("Seed");
            ui.add(egui::DragValue::new(&mut f.seed));
            ui.end_row();
            ui.label("Batch per step").on_hover_text("--batch-gpu: gradient accumulation over smaller steps (less memory)");
            let mut bg = f.batch_gpu.unwrap_or(0);
            if ui.add(egui::DragValue::new(&mut bg).range(0..=f.batch).custom_formatter(|v, _| if v == 0.0 { "= batch".into() } else { format!("{v}") })).changed() {
                f.batch_gpu = (bg > 0).then_some(bg);
            }
            ui.end_row();
            ui.label("Conditional");
            ui.checkbox(&mut f.cond, "use the dataset's labels");
            ui.end_row();
        });
    });
}

/// A value with a default shown when unset.
fn optional(ui: &mut Ui, v: &mut Option<f64>, default: f64) {
    ui.horizontal(|ui| {
        let mut set = v.is_some();
        if ui.checkbox(&mut set, "").changed() {
            *v = set.then_some(default);
        }
        match v {
            Some(x) => {
                ui.add(egui::DragValue::new(x).range(0.0..=1.0).speed(0.0001));
            }
            None => {
                ui.weak(format!("default ({default})"));
            }
        }
    });
}

fn run_detail_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let Some(d) = app.training.detail().cloned() else {
        ui.weak("reading the run…");
        return;
    };
    let s = &d.summary;
    ui.label(RichText::new(&s.name).strong());
    let total = s.options.as_ref().map_or(0.0, |o| o.kimg);
    let kimg = d.stats.last("Progress/kimg").unwrap_or(0.0);
    let spk = d.stats.last("Timing/sec_per_kimg").filter(|v| *v > 0.0);
    let (state_text, color) = match &s.state {
        RunState::Running { pid } => (format!("running (process {pid})"), Color32::from_rgb(80, 170, 80)),
        RunState::Finished => ("finished".into(), ui.visuals().text_color()),
        RunState::Stopped => ("stopped: resume continues it exactly".into(), ui.visuals().warn_fg_color),
        RunState::Failed(e) => (format!("failed: {e}"), ui.visuals().error_fg_color),
        RunState::Killed => ("ended without a last word: killed or crashed (resume from its last snapshot)".into(), ui.visuals().error_fg_color),
    };
    ui.label(RichText::new(state_text).color(color));
    let eta = spk.map(|v| format!(" · {v:.0} s/kimg · ETA {}", duration((total - kimg).max(0.0) * v))).unwrap_or_default();
    ui.add(egui::ProgressBar::new(if total > 0.0 { (kimg / total) as f32 } else { 0.0 }).text(format!("{kimg:.1} / {total} kimg{eta}")));
    ui.horizontal(|ui| {
        if s.state.is_running() && ui.button("Stop").on_hover_text("writes a snapshot, then stops (resumable)").clicked() {
            match std::fs::write(s.dir.join(crate::train::run_folder::STOP_REQUEST), b"stop\n") {
                Ok(()) => app.report(format!("asked {} to stop after a snapshot", s.name)),
                Err(e) => app.report_error(format!("cannot ask the run to stop: {e}")),
            }
        }
        if s.resumable() && app.training.child.is_none() {
            if let Some(o) = &s.options {
                let more = if s.state == RunState::Finished { Some(total * 2.0) } else { None };
                let args = resume_args(&s.dir, o, more, None);
                if ui.button("Resume").on_hover_text(shell_line("stylescope", &args)).clicked() {
                    let outdir = s.dir.parent().map(Path::to_path_buf).unwrap_or_default();
                    launch(app, &args, &outdir);
                    app.training.selected = Some(s.dir.clone());
                }
            }
        }
    });
    snapshots_ui(ui, app, &s.snapshots);
    if d.stats.rows.is_empty() {
        ui.weak("no statistics yet (the first tick comes after the initial grids)");
    } else {
        plots_ui(ui, &d);
    }
    grid_ui(ui, app, &d);
    egui::CollapsingHeader::new("Log").id_salt("train-log").default_open(false).show(ui, |ui| {
        egui::ScrollArea::vertical().id_salt("train-log-scroll").max_height(140.0).stick_to_bottom(true).show(ui, |ui| {
            for l in &d.log {
                ui.label(RichText::new(l).monospace().small());
            }
        });
    });
}

fn snapshots_ui(ui: &mut Ui, app: &mut ExplorerApp, snapshots: &[AtKimg]) {
    let Some(latest) = snapshots.last() else {
        ui.weak("no snapshot yet");
        return;
    };
    ui.horizontal(|ui| {
        if ui.button("Open in explorer").on_hover_text(latest.path.display().to_string()).clicked() {
            app.open_network(&latest.path.display().to_string());
        }
        let mut pick = None;
        egui::ComboBox::from_id_salt("train-snapshots").selected_text(format!("{} kimg", latest.kimg)).show_ui(ui, |ui| {
            for s in snapshots.iter().rev() {
                if ui.selectable_label(false, format!("{} kimg", s.kimg)).clicked() {
                    pick = Some(s.path.clone());
                }
            }
        });
        if let Some(p) = pick {
            app.training.follow = false;
            app.open_network(&p.display().to_string());
        }
        ui.checkbox(&mut app.training.follow, "follow").on_hover_text("load each new snapshot as the run writes it");
    });
}

fn plots_ui(ui: &mut Ui, d: &RunDetail) {
    let series = |key: &str| d.stats.series(key);
    Plot::new("train-losses").height(130.0).legend(Legend::default()).x_axis_label("kimg").allow_scroll(false).show(ui, |p| {
        p.line(Line::new("G loss", series("Loss/G/loss")));
        p.line(Line::new("D loss", series("Loss/D/loss")));
        p.line(Line::new("R1 penalty", series("Loss/r1_penalty")));
        let pl = series("Loss/pl_penalty");
        if !pl.is_empty() {
            p.line(Line::new("PL penalty", pl));
        }
    });
    Plot::new("train-scores").height(110.0).legend(Legend::default()).x_axis_label("kimg").allow_scroll(false).show(ui, |p| {
        p.line(Line::new("real score", series("Loss/scores/real")));
        p.line(Line::new("fake score", series("Loss/scores/fake")));
        p.line(Line::new("augment p", series("Progress/augment")));
    });
}

fn grid_ui(ui: &mut Ui, app: &mut ExplorerApp, d: &RunDetail) {
    if let Some(e) = &d.grid_error {
        ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
    }
    let Some(g) = &d.grid else { return };
    let p = &mut app.training;
    if p.texture.as_ref().is_none_or(|(path, _)| path != &g.path) {
        let image = egui::ColorImage::from_rgba_unmultiplied([g.width, g.height], &g.rgba);
        p.texture = Some((g.path.clone(), ui.ctx().load_texture("train-grid", image, egui::TextureOptions::LINEAR)));
    }
    if d.grids.len() > 1 {
        let mut idx = d.grids.iter().position(|x| x.path == g.path).unwrap_or(d.grids.len() - 1);
        let last = d.grids.len() - 1;
        let grids = d.grids.clone();
        ui.horizontal(|ui| {
            let label = ui.label("Fakes at");
            let r = ui.add(egui::Slider::new(&mut idx, 0..=last).custom_formatter(move |v, _| format!("{} kimg", grids[(v as usize).min(last)].kimg))).labelled_by(label.id);
            if r.changed() {
                p.grid_choice = (idx != last).then(|| d.grids[idx].path.clone());
            }
        });
    }
    if let Some((_, tex)) = &p.texture {
        let w = ui.available_width().min(g.width as f32 * 2.0);
        let h = w * g.height as f32 / g.width as f32;
        ui.image((tex.id(), egui::vec2(w, h)));
    }
}

/// Seconds as "1h 05m", "12m 30s", "45s".
fn duration(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s / 60) % 60),
    }
}
