//! The render worker: a named thread that owns the burn device and the loaded generator.
//!
//! The GUI never touches burn. It sends [`RenderRequest`]s over a bounded channel; the worker
//! drains the channel (stale requests are dropped, only the newest is rendered), loads or reuses
//! the model, renders, and sends back a [`RenderEvent`] (a finished frame, a model summary, or an
//! error), then wakes the GUI. The GUI keeps showing the last good frame meanwhile.

pub mod compose;

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use serde::{Deserialize, Serialize};

use crate::backend::{describe, read_f32, BackendChoice};
use crate::cli::info::report;
use crate::model::config::Family;
use crate::model::layers::Trace;
use crate::model::NoiseMode;
use crate::source::open_generator;
use crate::weights::Which;
pub use compose::{input_transform, w0_seeds, LatentParams};

/// How the selected layer is turned into pixels (the visualizer's "Layers & channels").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LayerView {
    /// `None` = the network output.
    pub layer: Option<String>,
    /// Show 3 consecutive channels as RGB (else one channel as grey).
    pub rgb: bool,
    pub base_channel: usize,
    /// Divide each channel by its max |x|.
    pub normalize: bool,
    /// Extra gain in dB.
    pub gain_db: f64,
}

impl Default for LayerView {
    fn default() -> Self {
        Self { layer: None, rgb: true, base_channel: 0, normalize: false, gain_db: 0.0 }
    }
}

/// Everything that determines one rendered frame.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderRequest {
    pub network: String,
    pub backend: BackendChoice,
    pub latent: LatentParams,
    pub view: LayerView,
}

/// A model as the GUI sees it.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub origin: String,
    pub family: Family,
    pub untrained: bool,
    pub num_ws: usize,
    pub c_dim: usize,
    pub resolution: usize,
    pub summary: String,
    pub device: String,
    /// Every traced layer with its `[C, H, W]`.
    pub layers: Vec<(String, [usize; 3])>,
}

/// Statistics of the shown tensor.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub mean: f32,
    pub std: f32,
    pub max_abs: f32,
}

/// A rendered frame.
#[derive(Clone, Debug)]
pub struct Frame {
    pub request: RenderRequest,
    pub width: usize,
    pub height: usize,
    /// RGBA8, row-major.
    pub rgba: Arc<Vec<u8>>,
    pub render_ms: f64,
    pub stats: Stats,
    pub channels: usize,
}

pub enum RenderEvent {
    Loaded(ModelInfo),
    Frame(Frame),
    Error { request: RenderRequest, message: String },
}

/// The GUI's end of the worker.
pub struct RenderHandle {
    tx: Sender<RenderRequest>,
    pub events: Receiver<RenderEvent>,
}

impl RenderHandle {
    /// Starts the thread; `wake` is called after every event (the GUI's `request_repaint`).
    pub fn spawn(wake: Box<dyn Fn() + Send>) -> std::io::Result<Self> {
        let (tx, rx) = bounded::<RenderRequest>(8);
        let (etx, events) = bounded::<RenderEvent>(8);
        std::thread::Builder::new().name("render".into()).spawn(move || worker(rx, etx, wake))?;
        Ok(Self { tx, events })
    }

    /// A handle with no worker behind it (when the thread could not start): requests go nowhere.
    pub fn disconnected() -> Self {
        let (tx, _) = bounded(1);
        let (_, events) = bounded(1);
        Self { tx, events }
    }

    /// Queues a request; when the queue is full the request is dropped (a newer one follows).
    pub fn request(&self, req: RenderRequest) -> bool {
        match self.tx.try_send(req) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

struct Loaded {
    network: String,
    backend: BackendChoice,
    device: Device,
    generator: crate::model::Generator,
}

fn worker(rx: Receiver<RenderRequest>, tx: Sender<RenderEvent>, wake: Box<dyn Fn() + Send>) {
    let mut loaded: Option<Loaded> = None;
    while let Ok(mut req) = rx.recv() {
        // Only the newest request matters.
        while let Ok(newer) = rx.try_recv() {
            req = newer;
        }
        let event = match render_one(&mut loaded, &req, &tx, &wake) {
            Ok(frame) => RenderEvent::Frame(frame),
            Err(message) => RenderEvent::Error { request: req, message },
        };
        if tx.send(event).is_err() {
            return;
        }
        wake();
    }
}

fn render_one(loaded: &mut Option<Loaded>, req: &RenderRequest, tx: &Sender<RenderEvent>, wake: &dyn Fn()) -> Result<Frame, String> {
    let stale = !matches!(loaded, Some(l) if l.network == req.network && l.backend == req.backend);
    if stale {
        *loaded = None;
        let device = req.backend.device();
        let opened = open_generator(&req.network, Which::GEma, &device).map_err(|e| e.to_string())?;
        let g = &opened.generator;
        let info = ModelInfo {
            origin: opened.origin.clone(),
            family: g.family(),
            untrained: opened.untrained,
            num_ws: g.config.num_ws(),
            c_dim: g.config.c_dim(),
            resolution: g.config.img_resolution(),
            summary: report(&opened),
            device: describe(req.backend, &device),
            layers: Vec::new(),
        };
        let mut info = info;
        info.layers = layer_shapes(&opened.generator, &device, &req.latent)?;
        let _ = tx.send(RenderEvent::Loaded(info));
        wake();
        *loaded = Some(Loaded { network: req.network.clone(), backend: req.backend, device, generator: opened.generator });
    }
    let l = loaded.as_ref().ok_or("no model")?;
    let start = Instant::now();
    let mut trace = Trace::default();
    let want_trace = req.view.layer.is_some();
    let img = compose::render(&l.generator, &l.device, &req.latent, if want_trace { Some(&mut trace) } else { None })?;
    let tensor = match &req.view.layer {
        Some(name) => trace.get(name).cloned().ok_or_else(|| format!("layer '{name}' is not part of this network"))?,
        None => img,
    };
    let [_, c, h, w] = tensor.dims();
    let data = read_f32(tensor.narrow(0, 0, 1)).map_err(|e| e.to_string())?;
    let (rgba, stats) = to_rgba(&data, c, h, w, &req.view);
    Ok(Frame {
        request: req.clone(),
        width: w,
        height: h,
        rgba: Arc::new(rgba),
        render_ms: start.elapsed().as_secs_f64() * 1000.0,
        stats,
        channels: c,
    })
}

/// Shapes of every traced layer (one pass at load time).
fn layer_shapes(g: &crate::model::Generator, device: &Device, latent: &LatentParams) -> Result<Vec<(String, [usize; 3])>, String> {
    let mut trace = Trace::default();
    compose::render(g, device, latent, Some(&mut trace))?;
    Ok(trace
        .entries
        .iter()
        .filter(|(_, t)| t.dims()[2] > 1)
        .map(|(n, t)| {
            let [_, c, h, w] = t.dims();
            (n.clone(), [c, h, w])
        })
        .collect())
}

/// The visualizer's conversion of selected channels to pixels, with statistics.
pub fn to_rgba(data: &[f32], c: usize, h: usize, w: usize, view: &LayerView) -> (Vec<u8>, Stats) {
    let plane = h * w;
    let base = view.base_channel.min(c.saturating_sub(1));
    let picked: Vec<usize> = if view.rgb && c >= 3 {
        (0..3).map(|i| (base + i).min(c - 1)).collect()
    } else {
        vec![base]
    };
    let gain = 10f32.powf(view.gain_db as f32 / 20.0);
    let mut scales = Vec::new();
    for &ch in &picked {
        let s = if view.normalize {
            let m = data[ch * plane..(ch + 1) * plane].iter().fold(0f32, |m, v| m.max(v.abs()));
            if m > 0.0 { 1.0 / m } else { 1.0 }
        } else {
            1.0
        };
        scales.push(s * gain);
    }
    let mut rgba = vec![255u8; plane * 4];
    for p in 0..plane {
        for k in 0..3 {
            let idx = if picked.len() == 3 { k } else { 0 };
            let v = data[picked[idx] * plane + p] * scales[idx];
            rgba[p * 4 + k] = (v * 127.5 + 128.0).clamp(0.0, 255.0) as u8;
        }
    }
    let sel: Vec<f32> = picked.iter().flat_map(|&ch| data[ch * plane..(ch + 1) * plane].iter().copied()).collect();
    let n = sel.len().max(1) as f32;
    let mean = sel.iter().sum::<f32>() / n;
    let std = (sel.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n).sqrt();
    let max_abs = sel.iter().fold(0f32, |m, v| m.max(v.abs()));
    (rgba, Stats { mean, std, max_abs })
}

/// Noise settings sent with a request (StyleGAN2 only).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NoiseParams {
    pub mode: NoiseMode,
    pub seed: u64,
    pub gain: f64,
}

impl Default for NoiseParams {
    fn default() -> Self {
        Self { mode: NoiseMode::Const, seed: 0, gain: 1.0 }
    }
}
