//! The explorer window: eframe (wgpu renderer) + egui, one panel per file, like the official
//! visualizer's control pane.
//!
//! Data flows one way: the panels edit [`state::Settings`]; every frame the app builds a
//! [`RenderRequest`] from them and, when it differs from the last one sent, queues it for the
//! `render` thread ([`crate::render`]); finished frames come back as events and replace the
//! texture. The window never waits on the generator, and never imports burn.

pub mod capture_panel;
pub mod equivariance_metrics;
pub mod equivariance_panel;
pub mod export_panel;
pub mod latent_panel;
pub mod layers_panel;
pub mod model_panel;
pub mod noise_panel;
pub mod perf_panel;
pub mod state;
pub mod stylemix_panel;
pub mod training_panel;
pub mod truncation_panel;
pub mod viewer;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::backend::BackendChoice;
use crate::render::{Frame, LayerInfo, ModelInfo, Queued, RenderEvent, RenderHandle, RenderRequest};
use state::Settings;

/// Shown when no model is given, none is remembered and `models/` is empty.
pub const FALLBACK_NETWORK: &str = "preset:stylegan3-t-256";

/// Official architectures with random weights, offered in the Recent list.
pub const PRESETS: [&str; 3] = ["preset:stylegan3-t-256", "preset:stylegan3-r-256", "preset:stylegan2-256"];

/// How the window is started (from the command line, or a test).
#[derive(Clone, Debug, Default)]
pub struct Launch {
    /// `--network`: wins over the remembered network.
    pub network: Option<String>,
    pub seed: Option<u32>,
    pub trunc: Option<f64>,
    /// `--backend`: wins over the remembered and the default backend.
    pub backend: Option<BackendChoice>,
    /// Where settings persist; `None` = nowhere (tests).
    pub state_path: Option<PathBuf>,
    /// The window's wgpu device, for the generator to share (set by [`run`]).
    pub shared_gpu: Option<crate::render::SharedGpu>,
    /// The `stylescope` executable the Training panel runs (`None`: this one).
    pub train_program: Option<PathBuf>,
}

impl Launch {
    /// The command-line launch: settings persist in the default place.
    pub fn from_cli(network: Option<String>, seed: Option<u32>, trunc: Option<f64>, backend: Option<BackendChoice>) -> Self {
        Self { network, seed, trunc, backend, state_path: state::default_state_path(), shared_gpu: None, train_program: None }
    }
}

/// One line of the message log shown under the image.
#[derive(Clone, Debug)]
pub struct Message {
    pub text: String,
    pub is_error: bool,
    pub at: Instant,
}

/// Timing history for the performance panel.
#[derive(Default)]
pub struct PerfHistory {
    /// (seconds since start, ms) of finished renders.
    pub render_ms: VecDeque<(f64, f64)>,
    /// (seconds since start, ms) spent building each GUI frame.
    pub frame_ms: VecDeque<(f64, f64)>,
    /// (seconds since start, ms) between GUI frames (for FPS).
    pub frame_interval_ms: VecDeque<(f64, f64)>,
}

const PERF_HISTORY: usize = 240;

impl PerfHistory {
    fn push(q: &mut VecDeque<(f64, f64)>, t: f64, ms: f64) {
        if q.len() == PERF_HISTORY {
            q.pop_front();
        }
        q.push_back((t, ms));
    }
}

/// The explorer application.
pub struct ExplorerApp {
    pub settings: Settings,
    pub(crate) backend_note: String,
    pub(crate) default_backend: BackendChoice,
    worker: RenderHandle,
    worker_stopped: bool,
    /// The last request the worker accepted, and one waiting for queue space.
    last_sent: Option<RenderRequest>,
    /// The request whose frame is on screen (or failed).
    last_done: Option<RenderRequest>,
    pub(crate) model: Option<ModelInfo>,
    pub(crate) layers: Vec<LayerInfo>,
    /// The network being loaded, if any.
    pub(crate) loading: Option<String>,
    /// Bytes downloaded of a network URL being opened, and the total when known.
    pub(crate) download: Option<(u64, Option<u64>)>,
    pub(crate) frame: Option<Frame>,
    pub(crate) texture: Option<egui::TextureHandle>,
    /// The frame texture on the window's wgpu device, filled from the generator's buffer.
    native: Option<NativeTexture>,
    /// eframe's wgpu state (device, queue, renderer), when the window is drawn by wgpu.
    pub(crate) render_state: Option<eframe::egui_wgpu::RenderState>,
    pub(crate) fft_texture: Option<egui::TextureHandle>,
    frames_received: u64,
    /// The newest error (shown over the image until dismissed).
    pub(crate) error: Option<String>,
    pub(crate) messages: Vec<Message>,
    pub(crate) perf: PerfHistory,
    pub(crate) started: Instant,
    last_gui_frame: Option<Instant>,
    /// A file dialog running on its own thread.
    pub(crate) dialog: Option<(DialogPurpose, Receiver<Option<PathBuf>>)>,
    /// The text of the "Network" field.
    pub(crate) network_text: String,
    state_path: Option<PathBuf>,
    last_saved: Option<(Instant, Settings)>,
    /// Set by "Save window": the screenshot arrives on a later frame.
    pub(crate) pending_window_capture: Option<PathBuf>,
    /// `STYLESCOPE_SCREENSHOT`: save the window there once a frame is shown, then close.
    auto_screenshot: Option<(PathBuf, u32)>,
    /// The Training panel's runs, child process and probes.
    pub training: training_panel::TrainingPanel,
    /// The Export panel's running export and preview.
    pub export: export_panel::ExportState,
    /// The Equivariance section's live metrics, sweeps and spectrum.
    pub eq: equivariance_metrics::EqMetrics,
    /// A control section to expand on the next frame (dropping data opens Training).
    open_section: Option<&'static str>,
}

/// What a running file dialog is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogPurpose {
    OpenNetwork,
    CaptureDir,
    SaveView,
    OpenView,
    TrainOutdir,
    TrainDataFolder,
    TrainDataZip,
    TrainBase,
    SaveTimeline,
    OpenTimeline,
}

impl ExplorerApp {
    /// Builds the app: loads settings, applies the launch flags, picks the backend, starts the
    /// render thread.
    pub fn new(ctx: &egui::Context, launch: Launch) -> std::io::Result<Self> {
        let mut messages = Vec::new();
        let mut settings = match &launch.state_path {
            Some(path) => {
                let (s, problem) = state::load(path);
                if let Some(p) = problem {
                    messages.push(Message { text: p, is_error: true, at: Instant::now() });
                }
                s
            }
            None => Settings::default(),
        };
        if let Some(n) = &launch.network {
            settings.network = absolute(n);
        } else if !remembered_network_usable(&settings.network) {
            settings.network = default_network();
        }
        if let Some(seed) = launch.seed {
            settings.latent.x = seed as f64;
            settings.latent.y = 0.0;
        }
        if let Some(psi) = launch.trunc {
            settings.latent.psi = psi;
        }
        if launch.backend.is_some() {
            settings.backend = launch.backend;
        }
        let (default_backend, mut backend_note) = match launch.backend {
            // An explicit choice needs no probe.
            Some(b) => (b, format!("backend chosen with --backend {}", b.name())),
            None => crate::backend::default_backend(),
        };
        if settings.backend.is_some_and(|b| b != default_backend) && launch.backend.is_none() {
            backend_note = format!("{backend_note} (the remembered choice overrides it)");
        }
        let repaint = ctx.clone();
        let worker = RenderHandle::spawn_with(Box::new(move || repaint.request_repaint()), launch.shared_gpu.clone())?;
        let auto_screenshot = std::env::var_os("STYLESCOPE_SCREENSHOT").map(|p| (PathBuf::from(p), 0));
        let network_text = settings.network.clone();
        Ok(Self {
            settings,
            backend_note,
            default_backend,
            worker,
            worker_stopped: false,
            last_sent: None,
            last_done: None,
            model: None,
            layers: Vec::new(),
            loading: None,
            download: None,
            frame: None,
            texture: None,
            native: None,
            render_state: None,
            fft_texture: None,
            frames_received: 0,
            error: None,
            messages,
            perf: PerfHistory::default(),
            started: Instant::now(),
            last_gui_frame: None,
            dialog: None,
            network_text,
            state_path: launch.state_path,
            last_saved: None,
            pending_window_capture: None,
            auto_screenshot,
            training: training_panel::TrainingPanel::new(launch.train_program),
            open_section: None,
            eq: Default::default(),
            export: Default::default(),
        })
    }

    /// The backend the next request uses.
    pub fn backend(&self) -> BackendChoice {
        self.settings.backend.unwrap_or(self.default_backend)
    }

    /// Gives the app eframe's wgpu state (done by [`run`]; tests pass their renderer's), so
    /// frames rendered on that device reach the screen without a CPU copy.
    pub fn set_render_state(&mut self, render_state: Option<eframe::egui_wgpu::RenderState>) {
        self.render_state = render_state;
    }

    /// The texture showing the current frame.
    pub(crate) fn frame_texture(&self) -> Option<egui::TextureId> {
        match &self.native {
            Some(n) if self.frame_stayed_on_gpu() => Some(n.id),
            _ => self.texture.as_ref().map(|t| t.id()),
        }
    }

    /// Whether the frame on screen came to its texture without a copy through the CPU: it is
    /// in a GPU buffer and the window (drawn by wgpu) copied it into `native` (see `upload`).
    pub fn frame_stayed_on_gpu(&self) -> bool {
        frame_copied_on_gpu(self.frame.as_ref(), self.render_state.is_some()) && self.native.is_some()
    }

    /// Frames received from the worker so far.
    pub fn frames_received(&self) -> u64 {
        self.frames_received
    }

    /// The frame on screen.
    pub fn frame(&self) -> Option<&Frame> {
        self.frame.as_ref()
    }

    /// The traced layers of the loaded model (after its first frame).
    pub fn layers_list(&self) -> &[LayerInfo] {
        &self.layers
    }

    pub fn model(&self) -> Option<&ModelInfo> {
        self.model.as_ref()
    }

    /// The error shown over the image, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// True while the worker has not answered the newest request.
    pub fn is_busy(&self) -> bool {
        self.last_sent.is_some() && self.last_sent != self.last_done
    }

    /// Switches to another network (validated by the worker; on failure the window goes back).
    pub fn open_network(&mut self, network: &str) {
        let network = network.trim();
        if network.is_empty() {
            return;
        }
        if crate::download::is_url(network) {
            // Downloaded by the render thread into the cache, then opened like a file.
            self.settings.network = network.to_string();
            self.network_text = self.settings.network.clone();
            return;
        }
        if !network.starts_with("preset:") {
            let ext = std::path::Path::new(network).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            if !matches!(ext.as_deref(), Some("pkl" | "safetensors")) {
                self.report_error(format!("{network}: not a network file (expected a .pkl snapshot or .safetensors)"));
                return;
            }
        }
        self.settings.network = absolute(network);
        self.network_text = self.settings.network.clone();
    }

    pub(crate) fn report_error(&mut self, text: String) {
        self.messages.push(Message { text: text.clone(), is_error: true, at: Instant::now() });
        self.error = Some(text);
    }

    pub(crate) fn report(&mut self, text: String) {
        self.messages.push(Message { text, is_error: false, at: Instant::now() });
    }

    /// The request the controls describe now.
    pub fn current_request(&self) -> RenderRequest {
        RenderRequest {
            network: self.settings.network.clone(),
            backend: self.backend(),
            latent: self.settings.effective_latent(self.model.as_ref().map(|m| m.resolution)),
            view: self.settings.view.clone(),
            input_transform: None,
        }
    }

    /// Handles everything the worker sent since the last frame.
    fn poll_worker(&mut self, ctx: &egui::Context) {
        while let Some(event) = self.worker.try_event() {
            match event {
                RenderEvent::Loading { network } => self.loading = Some(network),
                RenderEvent::Downloading { done, total, .. } => self.download = Some((done, total)),
                RenderEvent::Loaded(info) => {
                    self.loading = None;
                    self.download = None;
                    self.settings.remember(&info.network);
                    self.report(format!("loaded {} ({}, {}x{}) in {:.0} ms on {}", info.origin, info.family_name(), info.resolution, info.resolution, info.load_ms, info.device));
                    if info.untrained {
                        self.report("this is an official architecture with random weights (untrained): its images are abstract patterns, not a learned subject. Open a trained snapshot (.pkl) to see real images".into());
                    }
                    if let Some(d) = &info.description {
                        self.report(d.clone());
                    }
                    // Class and cutoff follow the new model.
                    if self.settings.latent.class.is_some_and(|c| c >= info.c_dim) {
                        self.settings.latent.class = None;
                    }
                    if self.settings.latent.cutoff.is_some_and(|c| c > info.num_ws) {
                        self.settings.latent.cutoff = None;
                    }
                    self.settings.latent.stylemix.retain(|&i| i < info.num_ws);
                    self.layers.clear();
                    self.error = None;
                    self.model = Some(info);
                }
                RenderEvent::Layers(layers) => {
                    if let Some(l) = &self.settings.view.layer {
                        if !layers.iter().any(|x| &x.name == l) {
                            self.settings.view.layer = None;
                        }
                    }
                    self.layers = layers;
                }
                RenderEvent::Frame(frame) => {
                    self.frames_received += 1;
                    PerfHistory::push(&mut self.perf.render_ms, self.started.elapsed().as_secs_f64(), frame.render_ms);
                    self.upload(ctx, &frame);
                    self.last_done = Some(frame.request.clone());
                    if self.error.as_deref().is_some_and(|e| e.starts_with("render failed")) {
                        self.error = None;
                    }
                    self.frame = Some(frame);
                }
                RenderEvent::Analysis(result) => self.eq.take_result(result),
                RenderEvent::Error { request, message, during_load } => {
                    self.last_done = Some(request.clone());
                    if during_load {
                        self.loading = None;
                        self.download = None;
                        self.report_error(format!("could not open {}: {message}", request.network));
                        // Go back to the model that works (if any), so the window keeps working.
                        match &self.model {
                            Some(m) => {
                                self.settings.network = m.network.clone();
                                if m.backend != request.backend {
                                    self.settings.backend = Some(m.backend);
                                }
                            }
                            None => {
                                self.settings.recent.retain(|r| r != &request.network);
                            }
                        }
                        self.network_text = self.settings.network.clone();
                    } else {
                        self.report_error(format!("render failed: {message}"));
                    }
                }
            }
        }
    }

    /// Puts a frame's pixels into the textures: a GPU-to-GPU copy when the frame is in a buffer
    /// of the window's device, else one upload from the host.
    fn upload(&mut self, ctx: &egui::Context, frame: &Frame) {
        if let (Some(gpu), Some(rs)) = (&frame.gpu, &self.render_state) {
            let first = self.native.is_none();
            self.native = Some(NativeTexture::show(self.native.take(), rs, gpu));
            if first {
                self.report("frames go from the generator to the screen on the GPU (no copy through the CPU)".to_string());
            }
        }
        // Nearest-neighbour, like the visualizer: pixels stay pixels when zoomed.
        let options = egui::TextureOptions::NEAREST;
        if !frame_copied_on_gpu(Some(frame), self.render_state.is_some()) {
            match frame.rgba.get() {
                Ok(rgba) => {
                    let image = egui::ColorImage::from_rgba_unmultiplied([frame.width, frame.height], &rgba);
                    match &mut self.texture {
                        Some(t) => t.set(image, options),
                        None => self.texture = Some(ctx.load_texture("frame", image, options)),
                    }
                }
                Err(e) => self.report_error(format!("render failed: {e}")),
            }
        }
        match &frame.fft_rgba {
            Some(rgba) => {
                let image = egui::ColorImage::from_rgba_unmultiplied([frame.width, frame.height], rgba);
                match &mut self.fft_texture {
                    Some(t) => t.set(image, options),
                    None => self.fft_texture = Some(ctx.load_texture("fft", image, options)),
                }
            }
            None => self.fft_texture = None,
        }
    }

    /// Sends the current request when it changed (and retries when the queue was full).
    fn send_request(&mut self, ctx: &egui::Context) {
        if self.settings.network.is_empty() {
            return;
        }
        let req = self.current_request();
        if self.last_sent.as_ref() == Some(&req) {
            return;
        }
        match self.worker.request(req.clone()) {
            Queued::Sent => self.last_sent = Some(req),
            // The worker is busy: try again shortly.
            Queued::Full => ctx.request_repaint_after(Duration::from_millis(5)),
            Queued::Stopped => {
                if !self.worker_stopped {
                    self.worker_stopped = true;
                    self.report_error("the render thread has stopped; restart StyleScope (settings are saved)".into());
                }
            }
        }
    }

    /// Advances every running animation by `dt` seconds (the visualizer's per-frame updates).
    fn animate(&mut self, dt: f64) -> bool {
        animate_settings(&mut self.settings, self.model.as_ref(), dt)
    }

    /// Saves the settings when they changed (at most every 2 s) or when `force`.
    fn persist(&mut self, force: bool) {
        let Some(path) = &self.state_path else { return };
        let due = match &self.last_saved {
            Some((at, saved)) => saved != &self.settings && (force || at.elapsed() > Duration::from_secs(2)),
            None => true,
        };
        if !due {
            return;
        }
        if let Err(e) = state::save(path, &self.settings) {
            let text = format!("cannot save settings: {e}");
            self.messages.push(Message { text, is_error: true, at: Instant::now() });
        }
        self.last_saved = Some((Instant::now(), self.settings.clone()));
    }

    /// Files dropped on the window open as networks.
    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).collect());
        for path in dropped {
            // A folder or zip is training data; anything else a network.
            if path.is_dir() || path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip")) {
                self.settings.train.data = path;
                self.open_section = Some("Training");
            } else {
                self.open_network(&path.display().to_string());
            }
        }
    }

    fn poll_dialog(&mut self) {
        let Some((purpose, rx)) = &self.dialog else { return };
        let purpose = *purpose;
        let Ok(result) = rx.try_recv() else { return };
        self.dialog = None;
        let Some(path) = result else { return };
        match purpose {
            DialogPurpose::OpenNetwork => self.open_network(&path.display().to_string()),
            DialogPurpose::CaptureDir => self.settings.capture_dir = path,
            DialogPurpose::TrainOutdir => self.settings.train.outdir = path,
            DialogPurpose::TrainDataFolder | DialogPurpose::TrainDataZip => self.settings.train.data = path,
            DialogPurpose::TrainBase => self.settings.train.base = crate::runs::Base::File(path),
            DialogPurpose::SaveTimeline => match self.settings.timeline.save(&path) {
                Ok(()) => {
                    self.report(format!("timeline saved to {}", path.display()));
                    self.settings.timeline_path = Some(path);
                }
                Err(e) => self.report_error(format!("cannot save the timeline: {e}")),
            },
            DialogPurpose::OpenTimeline => match crate::export::video::timeline::Timeline::load(&path) {
                Ok(t) => {
                    self.settings.timeline = t;
                    self.settings.timeline_path = Some(path);
                }
                Err(e) => self.report_error(e),
            },
            DialogPurpose::SaveView => match state::save(&path, &self.settings) {
                Ok(()) => self.report(format!("view saved to {}", path.display())),
                Err(e) => self.report_error(format!("cannot save the view: {e}")),
            },
            DialogPurpose::OpenView => {
                let (s, problem) = state::load(&path);
                match problem {
                    Some(p) => self.report_error(p),
                    None if s.network.is_empty() => self.report_error(format!("{}: not a saved view", path.display())),
                    None => {
                        let recent = std::mem::take(&mut self.settings.recent);
                        self.settings = Settings { recent, ..s };
                        self.network_text = self.settings.network.clone();
                        self.report(format!("view opened from {}", path.display()));
                    }
                }
            }
        }
    }

    /// Runs a file dialog on its own thread so the window keeps rendering.
    pub(crate) fn start_dialog(&mut self, purpose: DialogPurpose) {
        if self.dialog.is_some() {
            return;
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let start_dir = match purpose {
            DialogPurpose::CaptureDir => Some(self.settings.capture_dir.clone()),
            DialogPurpose::TrainOutdir => Some(self.settings.train.outdir.clone()),
            DialogPurpose::TrainDataFolder | DialogPurpose::TrainDataZip => self.settings.train.data.parent().map(|p| p.to_path_buf()),
            _ => std::path::Path::new(&self.settings.network).parent().map(|p| p.to_path_buf()),
        };
        let spawned = std::thread::Builder::new().name("file-dialog".into()).spawn(move || {
            let mut d = rfd::FileDialog::new();
            if let Some(dir) = start_dir.filter(|d| d.is_dir()) {
                d = d.set_directory(dir);
            }
            let picked = match purpose {
                DialogPurpose::OpenNetwork | DialogPurpose::TrainBase => d.add_filter("StyleGAN network", &["pkl", "safetensors"]).pick_file(),
                DialogPurpose::CaptureDir | DialogPurpose::TrainOutdir | DialogPurpose::TrainDataFolder => d.pick_folder(),
                DialogPurpose::TrainDataZip => d.add_filter("zip of images", &["zip"]).pick_file(),
                DialogPurpose::SaveTimeline => d.add_filter("StyleScope timeline", &["ron", "json"]).set_file_name("timeline.ron").save_file(),
                DialogPurpose::OpenTimeline => d.add_filter("StyleScope timeline", &["ron", "json"]).pick_file(),
                DialogPurpose::SaveView => d.add_filter("StyleScope view", &["ron"]).set_file_name("view.ron").save_file(),
                DialogPurpose::OpenView => d.add_filter("StyleScope view", &["ron"]).pick_file(),
            };
            let _ = tx.send(picked);
        });
        match spawned {
            Ok(_) => self.dialog = Some((purpose, rx)),
            Err(e) => self.report_error(format!("cannot open a file dialog: {e}")),
        }
    }

    /// The whole window; `eframe::App::ui` and the tests call this.
    pub fn ui_root(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        let now = Instant::now();
        let dt = self.last_gui_frame.map(|t| now.duration_since(t).as_secs_f64()).unwrap_or(0.0).min(0.25);
        self.last_gui_frame = Some(now);
        PerfHistory::push(&mut self.perf.frame_interval_ms, self.started.elapsed().as_secs_f64(), dt * 1000.0);

        self.poll_worker(&ctx);
        training_panel::poll(self, &ctx);
        equivariance_metrics::poll(self);
        let exporting = export_panel::poll(self, dt);
        self.poll_dialog();
        self.handle_dropped_files(&ctx);
        let animating = self.animate(dt);

        egui::Panel::bottom("status").show(ui, |ui| viewer::status_ui(ui, self));
        egui::Panel::left("controls").resizable(true).default_size(380.0).min_size(300.0).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.controls_ui(ui));
        });
        egui::CentralPanel::default().show(ui, |ui| viewer::image_ui(ui, self));

        self.send_request(&ctx);
        self.capture_window_if_asked(&ctx);
        if exporting {
            ctx.request_repaint_after(Duration::from_millis(50));
        }
        if animating {
            ctx.request_repaint_after(Duration::from_secs_f64(1.0 / self.settings.fps_cap.clamp(1.0, 1000.0)));
        }
        if self.dialog.is_some() {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
        self.persist(false);
        PerfHistory::push(&mut self.perf.frame_ms, self.started.elapsed().as_secs_f64(), now.elapsed().as_secs_f64() * 1000.0);
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui) {
        type PanelFn = fn(&mut egui::Ui, &mut ExplorerApp);
        let panels: [(&str, PanelFn); 11] = [
            ("Model", model_panel::model_ui),
            ("Latent", latent_panel::latent_ui),
            ("Truncation", truncation_panel::truncation_ui),
            ("Style mixing", stylemix_panel::stylemix_ui),
            ("Noise", noise_panel::noise_ui),
            ("Equivariance", equivariance_panel::equivariance_ui),
            ("Layers & channels", layers_panel::layers_ui),
            ("Capture", capture_panel::capture_ui),
            ("Export", export_panel::export_ui),
            ("Training", training_panel::training_ui),
            ("Performance", perf_panel::perf_ui),
        ];
        let force = self.open_section.take();
        for (title, panel) in panels {
            let forced = force == Some(title);
            if forced && !self.settings.open_sections.iter().any(|s| s == title) {
                self.settings.open_sections.push(title.to_string());
            }
            let open = self.settings.open_sections.iter().any(|s| s == title);
            let r = egui::CollapsingHeader::new(title).default_open(open).open(forced.then_some(true)).show(ui, |ui| panel(ui, self));
            // Remember which sections are open, so the layout persists too.
            if r.header_response.clicked() {
                if !open {
                    self.settings.open_sections.push(title.to_string());
                } else {
                    self.settings.open_sections.retain(|s| s != title);
                }
            }
        }
    }

    /// `STYLESCOPE_SCREENSHOT` (documentation screenshots) and "Save window".
    fn capture_window_if_asked(&mut self, ctx: &egui::Context) {
        let training_shown = self.settings.open_sections.iter().any(|s| s == "Training");
        let settled = self.frame.is_some() && !self.is_busy() && self.loading.is_none() && (!training_shown || self.training.settled()) && self.eq.settled();
        if let Some((path, frames)) = &mut self.auto_screenshot {
            // Wait until a frame is on screen, nothing is pending, and a few GUI frames settled.
            if settled {
                *frames += 1;
                if *frames == 5 {
                    capture_panel::request_window_png(ctx, path.clone(), true);
                }
            }
            ctx.request_repaint_after(Duration::from_millis(250));
        }
        if let Some(path) = self.pending_window_capture.take() {
            capture_panel::request_window_png(ctx, path, false);
        }
    }
}

impl eframe::App for ExplorerApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.ui_root(ui);
    }

    fn on_exit(&mut self) {
        self.persist(true);
        // Stop the render thread before the process unloads the GPU driver under it.
        self.worker.shutdown(Duration::from_secs(3));
    }
}

/// Advances the running animations of `s` by `dt` seconds (the visualizer's per-frame updates);
/// whether any runs. Also used to record an animation as a timeline.
pub(crate) fn animate_settings(s: &mut Settings, model: Option<&ModelInfo>, dt: f64) -> bool {
    let mut any = false;
    if s.anim_latent {
        s.latent.x += dt * s.anim_speed;
        any = true;
    }
    if s.anim_stylemix {
        s.latent.stylemix_seed = s.latent.stylemix_seed.wrapping_add(1);
        any = true;
    }
    let sg2 = model.is_some_and(|m| !m.is_stylegan3());
    if s.anim_noise && sg2 {
        s.latent.noise.seed = s.latent.noise.seed.wrapping_add(1);
        any = true;
    }
    let sg3 = model.is_some_and(|m| m.is_stylegan3());
    if s.anim_translate && sg3 {
        s.latent.translate = equivariance_panel::circle_step(s.latent.translate, dt * s.translate_speed);
        any = true;
    }
    if s.anim_rotate && sg3 {
        s.latent.rotate_turns += dt * s.rotate_speed;
        any = true;
    }
    any
}

/// Whether `upload` puts `frame` into the native texture by a GPU copy (rather than uploading
/// its pixels): it is in a GPU buffer and the window is drawn by wgpu.
fn frame_copied_on_gpu(frame: Option<&Frame>, window_on_wgpu: bool) -> bool {
    window_on_wgpu && frame.is_some_and(|f| f.gpu.is_some())
}

/// The frame texture on the window's wgpu device (`Rgba8Unorm`, registered with egui's
/// renderer), filled by copying the generator's packed buffer on the GPU.
struct NativeTexture {
    texture: wgpu::Texture,
    id: egui::TextureId,
}

impl NativeTexture {
    /// Copies `gpu` into the texture (re-created when the size changes) and submits the copy.
    fn show(previous: Option<Self>, rs: &eframe::egui_wgpu::RenderState, gpu: &crate::render::PackedRgba8) -> Self {
        let size = wgpu::Extent3d { width: gpu.width as u32, height: gpu.height as u32, depth_or_array_layers: 1 };
        let this = match previous {
            Some(t) if t.texture.size() == size => t,
            previous => {
                let texture = rs.device.create_texture(&wgpu::TextureDescriptor {
                    label: Some("stylescope frame"),
                    size,
                    mip_level_count: 1,
                    sample_count: 1,
                    dimension: wgpu::TextureDimension::D2,
                    // egui expects sRGB-encoded bytes in a linear-format texture.
                    format: wgpu::TextureFormat::Rgba8Unorm,
                    usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                    view_formats: &[],
                });
                let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
                let mut renderer = rs.renderer.write();
                let id = match previous {
                    Some(p) => {
                        renderer.update_egui_texture_from_wgpu_texture(&rs.device, &view, wgpu::FilterMode::Nearest, p.id);
                        p.id
                    }
                    None => renderer.register_native_texture(&rs.device, &view, wgpu::FilterMode::Nearest),
                };
                Self { texture, id }
            }
        };
        let mut encoder = rs.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("stylescope frame copy") });
        gpu.copy_to_texture(&mut encoder, &this.texture);
        rs.queue.submit([encoder.finish()]);
        this
    }
}

/// File paths are remembered absolute, so the recent list and "copy as command" work from any
/// directory; presets and missing files stay as typed (the worker reports the latter).
fn absolute(network: &str) -> String {
    if network.starts_with("preset:") {
        return network.to_string();
    }
    std::fs::canonicalize(network).map(|p| p.display().to_string()).unwrap_or_else(|_| network.to_string())
}

/// A remembered network is used again only if it still exists.
fn remembered_network_usable(network: &str) -> bool {
    !network.is_empty() && (network.starts_with("preset:") || std::path::Path::new(network).is_file())
}

/// The model in `models/` (next to the working directory, else next to the executable), else the
/// untrained official architecture.
pub fn default_network() -> String {
    let mut dirs = vec![PathBuf::from("models")];
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(|p| p.join("models"))) {
        dirs.push(dir);
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "pkl" || e == "safetensors"))
            .collect();
        found.sort();
        if let Some(p) = found.into_iter().next() {
            return p.display().to_string();
        }
    }
    FALLBACK_NETWORK.to_string()
}

/// Opens the window and runs until it is closed.
pub fn run(mut launch: Launch) -> anyhow::Result<()> {
    let mut options = eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport: egui::ViewportBuilder::default()
            .with_title("StyleScope")
            .with_inner_size([1400.0, 900.0])
            .with_min_inner_size([700.0, 450.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    if let eframe::egui_wgpu::WgpuSetup::CreateNew(create) = &mut options.wgpu_options.wgpu_setup {
        // The generator shares the window's device, so ask for what burn's own device would:
        // the adapter's limits and its non-experimental features.
        let base = create.device_descriptor.clone();
        create.device_descriptor = std::sync::Arc::new(move |adapter| {
            let mut d = base(adapter);
            if adapter.get_info().backend != wgpu::Backend::Gl {
                d.required_limits = adapter.limits();
                d.required_features |= adapter.features().difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS | wgpu::Features::all_experimental_mask());
            }
            d
        });
    }
    eframe::run_native(
        "StyleScope",
        options,
        Box::new(move |cc| {
            if let Some(rs) = &cc.wgpu_render_state {
                launch.shared_gpu = Some(crate::render::SharedGpu {
                    instance: rs.instance.clone(),
                    adapter: rs.adapter.clone(),
                    device: rs.device.clone(),
                    queue: rs.queue.clone(),
                });
            }
            let mut app = ExplorerApp::new(&cc.egui_ctx, launch)?;
            app.set_render_state(cc.wgpu_render_state.clone());
            if let Some(rs) = &cc.wgpu_render_state {
                let info = rs.adapter.get_info();
                app.report(format!("window drawn by wgpu on {} ({:?})", info.name, info.backend));
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e} (no display? try a subcommand, or run under Xvfb)"))
}
