//! The explorer window (eframe + egui, wgpu renderer). It owns the settings and the texture and
//! talks to the render thread (`crate::render`) only through channels; it never touches burn.

pub mod panels;
pub mod state;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use eframe::egui;

use crate::backend::{default_backend, BackendChoice};
use crate::render::{Frame, ModelInfo, RenderEvent, RenderHandle, RenderRequest};
use state::Settings;

/// How the window was started.
#[derive(Clone, Debug, Default)]
pub struct LaunchOptions {
    pub network: Option<String>,
    pub seed: Option<u32>,
    pub trunc: Option<f64>,
    pub backend: Option<BackendChoice>,
    /// Where settings persist; `None` keeps them in memory only (tests).
    pub state_path: Option<PathBuf>,
}

/// The network opened when none is given: the first model in `models/`, else an untrained preset.
pub fn default_network() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("pkl" | "safetensors")))
        .collect();
    found.sort();
    found.first().map(|p| p.display().to_string()).unwrap_or_else(|| "preset:stylegan3-t-256".to_string())
}

pub struct StyleScopeApp {
    pub settings: Settings,
    handle: RenderHandle,
    pub model: Option<ModelInfo>,
    pub frame: Option<Frame>,
    texture: Option<egui::TextureHandle>,
    pub error: Option<String>,
    pub message: Option<String>,
    backend_note: String,
    last_sent: Option<RenderRequest>,
    pub frames_received: u64,
    render_ms: VecDeque<f64>,
    gui_ms: VecDeque<f64>,
    last_frame_time: Instant,
    state_path: Option<PathBuf>,
    last_saved: Option<Settings>,
    /// Window screenshots delivered by the viewport callback, saved on the next frame.
    pub screenshots: std::sync::Arc<std::sync::Mutex<Vec<std::sync::Arc<egui::ColorImage>>>>,
}

impl StyleScopeApp {
    pub fn new(cc: &eframe::CreationContext<'_>, opts: LaunchOptions) -> Self {
        Self::with_context(cc.egui_ctx.clone(), opts)
    }

    /// The app on an existing egui context (used by `new`, and by tests driving it headless).
    pub fn with_context(egui_ctx: egui::Context, opts: LaunchOptions) -> Self {
        let (mut settings, load_msg) = match &opts.state_path {
            Some(p) => state::load(p),
            None => (Settings::default(), None),
        };
        if let Some(n) = opts.network {
            settings.network = n;
        }
        if settings.network.is_empty() {
            settings.network = default_network();
        }
        if let Some(seed) = opts.seed {
            settings.latent.x = seed as f64;
            settings.latent.y = 0.0;
        }
        if let Some(t) = opts.trunc {
            settings.latent.psi = t;
        }
        let backend_note = match opts.backend.or(settings.backend) {
            Some(b) => {
                settings.backend = Some(b);
                format!("backend chosen: {}", b.name())
            }
            None => {
                let (b, note) = default_backend();
                settings.backend = Some(b);
                note
            }
        };
        let ctx = egui_ctx;
        let (handle, error) = match RenderHandle::spawn(Box::new(move || ctx.request_repaint())) {
            Ok(h) => (Some(h), None),
            Err(e) => (None, Some(format!("cannot start the render thread: {e}"))),
        };
        let handle = handle.unwrap_or_else(|| RenderHandle::disconnected());
        let state_path = opts.state_path;
        Self {
            settings,
            handle,
            model: None,
            frame: None,
            texture: None,
            error: error.or(load_msg),
            message: None,
            backend_note,
            last_sent: None,
            frames_received: 0,
            render_ms: VecDeque::new(),
            gui_ms: VecDeque::new(),
            last_frame_time: Instant::now(),
            state_path,
            last_saved: None,
            screenshots: Default::default(),
        }
    }

    pub fn backend(&self) -> BackendChoice {
        self.settings.backend.unwrap_or_default()
    }

    /// Opens another model (dialog, drop, recent list).
    pub fn open_network(&mut self, network: String) {
        self.settings.recent.retain(|r| r != &network);
        self.settings.recent.insert(0, network.clone());
        self.settings.recent.truncate(10);
        self.settings.network = network;
        self.settings.latent.stylemix.clear();
        self.settings.view.layer = None;
        self.model = None;
        self.error = None;
    }

    fn poll_events(&mut self, ctx: &egui::Context) {
        while let Ok(ev) = self.handle.events.try_recv() {
            match ev {
                RenderEvent::Loaded(info) => {
                    if let Some(l) = &self.settings.view.layer {
                        if !info.layers.iter().any(|(n, _)| n == l) {
                            self.settings.view.layer = None;
                        }
                    }
                    self.settings.latent.stylemix.retain(|&i| i < info.num_ws);
                    self.model = Some(info);
                }
                RenderEvent::Frame(frame) => {
                    let image = egui::ColorImage::from_rgba_unmultiplied([frame.width, frame.height], &frame.rgba);
                    match &mut self.texture {
                        Some(t) => t.set(image, egui::TextureOptions::NEAREST),
                        None => self.texture = Some(ctx.load_texture("render", image, egui::TextureOptions::NEAREST)),
                    }
                    push(&mut self.render_ms, frame.render_ms);
                    self.frames_received += 1;
                    self.error = None;
                    self.frame = Some(frame);
                }
                RenderEvent::Error { message, .. } => self.error = Some(message),
            }
        }
    }

    fn animate(&mut self, dt: f64) {
        let s = &mut self.settings;
        if s.anim_latent {
            s.latent.x += s.anim_speed * dt;
        }
        if s.anim_translate {
            let t = self.last_frame_time.elapsed().as_secs_f64();
            let phase = s.anim_eq_speed * t * std::f64::consts::TAU;
            s.latent.translate = (0.1 * phase.cos(), 0.1 * phase.sin());
        }
        if s.anim_rotate {
            s.latent.rotate_turns = (s.latent.rotate_turns + s.anim_eq_speed * dt * 0.1).rem_euclid(1.0);
        }
    }

    fn request(&self) -> RenderRequest {
        let mut latent = self.settings.latent.clone();
        if self.settings.round_translate {
            if let Some(m) = &self.model {
                let r = m.resolution as f64;
                latent.translate = ((latent.translate.0 * r).round() / r, (latent.translate.1 * r).round() / r);
            }
        }
        RenderRequest { network: self.settings.network.clone(), backend: self.backend(), latent, view: self.settings.view.clone() }
    }

    fn persist(&mut self) {
        if let Some(path) = &self.state_path {
            if self.last_saved.as_ref() != Some(&self.settings) {
                if let Err(e) = state::save(path, &self.settings) {
                    self.message = Some(format!("cannot save settings: {e}"));
                }
                self.last_saved = Some(self.settings.clone());
            }
        }
    }

    /// The whole window.
    pub fn app_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        let now = Instant::now();
        let dt = now.duration_since(self.last_frame_time).as_secs_f64().min(0.25);
        self.last_frame_time = now;
        push(&mut self.gui_ms, dt * 1000.0);
        self.poll_events(&ctx);
        self.animate(dt);
        let dropped: Vec<PathBuf> = ctx.input(|i| i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).filter(|p| !p.as_os_str().is_empty()).collect());
        if let Some(p) = dropped.into_iter().next() {
            self.open_network(p.display().to_string());
        }

        egui::Panel::left("controls").resizable(true).default_size(340.0).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| panels::controls_ui(self, ui));
        });
        egui::CentralPanel::default().show(ui, |ui| panels::image_ui(self, ui));

        let req = self.request();
        if self.last_sent.as_ref() != Some(&req) && self.handle.request(req.clone()) {
            self.last_sent = Some(req);
        }
        let animating = self.settings.anim_latent || self.settings.anim_translate || self.settings.anim_rotate;
        if animating {
            ctx.request_repaint_after(std::time::Duration::from_secs_f64(1.0 / self.settings.fps_cap.max(1.0)));
        }
        self.persist();
    }

    pub fn backend_note(&self) -> &str {
        &self.backend_note
    }

    pub fn render_history(&self) -> &VecDeque<f64> {
        &self.render_ms
    }

    pub fn gui_history(&self) -> &VecDeque<f64> {
        &self.gui_ms
    }

    pub fn texture(&self) -> Option<&egui::TextureHandle> {
        self.texture.as_ref()
    }
}

fn push(q: &mut VecDeque<f64>, v: f64) {
    q.push_back(v);
    while q.len() > 240 {
        q.pop_front();
    }
}

impl eframe::App for StyleScopeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.app_ui(ui);
    }
}

/// Opens the window and runs until it is closed.
pub fn run(opts: LaunchOptions) -> anyhow::Result<()> {
    let native = eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport: egui::ViewportBuilder::default().with_title("StyleScope").with_inner_size([1280.0, 860.0]).with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native("StyleScope", native, Box::new(move |cc| Ok(Box::new(StyleScopeApp::new(cc, opts)))))
        .map_err(|e| anyhow::anyhow!("cannot open the window: {e} (no display? run under Xvfb or use the CLI subcommands)"))
}
