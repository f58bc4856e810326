//! The render worker: a named thread that owns the burn device and the loaded generator.
//!
//! The GUI never touches burn. It sends [`RenderRequest`]s over a bounded channel; the worker
//! drains the channel (stale requests are dropped, only the newest is rendered), loads or reuses
//! the model, renders, and sends back a [`RenderEvent`] (a finished frame, a model summary, or an
//! error), then wakes the GUI. The GUI keeps showing the last good frame meanwhile.
//!
//! A failure (bad file, device out of memory, no adapter, even a panic inside the backend) is
//! turned into a [`RenderEvent::Error`]; the worker keeps the previous model and keeps serving.

pub mod analysis;
pub mod compose;
pub mod on_gpu;
pub mod pixels;
pub mod untransform;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use crate::backend::{describe, read_f32, BackendChoice};
use crate::cli::info::report;

use crate::model::layers::Trace;
use crate::source::open_generator_with;
use crate::weights::Which;
pub use crate::model::config::Family;
pub use crate::model::NoiseMode;
pub use compose::{input_transform, w0_seeds, LatentParams, NoiseParams};
pub use on_gpu::HostCopy;
pub use pixels::{LayerView, Stats};
pub use crate::kernels::wgpu::PackedRgba8;

/// Everything that determines one rendered frame.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderRequest {
    /// Path or `preset:NAME`.
    pub network: String,
    pub backend: BackendChoice,
    pub latent: LatentParams,
    pub view: LayerView,
    /// A forward input transform that replaces translate/rotate (scripted views and tests; the
    /// visualizer's `input_transform` argument).
    pub input_transform: Option<[[f64; 3]; 3]>,
}

/// A model as the GUI sees it.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// The request's `network` string that loaded it.
    pub network: String,
    pub origin: String,
    pub family: Family,
    /// Random weights (a preset), not a trained model.
    pub untrained: bool,
    /// What the network is, when its file says.
    pub description: Option<String>,
    pub z_dim: usize,
    pub w_dim: usize,
    pub num_ws: usize,
    pub c_dim: usize,
    pub resolution: usize,
    /// `stylescope info`'s text.
    pub summary: String,
    /// Backend and adapter, e.g. `wgpu (llvmpipe ...)`.
    pub device: String,
    pub backend: BackendChoice,
    pub load_ms: f64,
}

impl ModelInfo {
    pub fn is_stylegan3(&self) -> bool {
        self.family == Family::StyleGan3
    }

    pub fn family_name(&self) -> &'static str {
        match self.family {
            Family::StyleGan3 => "StyleGAN3",
            Family::StyleGan2 => "StyleGAN2",
            Family::StyleGan1 => "StyleGAN (v1)",
        }
    }
}

/// A traced layer: name and `[C, H, W]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    pub name: String,
    pub shape: [usize; 3],
}

/// A rendered frame.
#[derive(Clone, Debug)]
pub struct Frame {
    pub request: RenderRequest,
    pub width: usize,
    pub height: usize,
    /// RGBA8, row-major: the shown image (read back from the GPU on demand when it stayed
    /// there, see `gpu`).
    pub rgba: HostCopy<u8>,
    /// The shown image in a buffer of the window's wgpu device, when the generator runs there:
    /// the window copies it into its texture, never through the CPU.
    pub gpu: Option<PackedRgba8>,
    /// The power spectrum beside it (same size), when asked for.
    pub fft_rgba: Option<Arc<Vec<u8>>>,
    /// The network output `[C, H, W]` as floats, when the shown tensor is the output (capture
    /// writes it with the official uint8 rule; tests compare it with the reference). Read back
    /// on demand when the frame stayed on the GPU.
    pub output: Option<HostCopy<f32>>,
    /// Shown layer (`None` = output; also when the asked layer does not exist in this network).
    pub layer: Option<String>,
    pub channels: usize,
    pub base_channel: usize,
    pub shown_channels: usize,
    pub stats_all: Stats,
    pub stats_shown: Stats,
    pub render_ms: f64,
}

pub enum RenderEvent {
    /// The worker started loading a network (can take seconds).
    Loading { network: String },
    /// Bytes of a network URL downloaded so far, and the total when known.
    Downloading { network: String, done: u64, total: Option<u64> },
    Loaded(ModelInfo),
    /// The traced layers of the loaded model (after its first traced render).
    Layers(Vec<LayerInfo>),
    Frame(Frame),
    Error { request: RenderRequest, message: String, during_load: bool },
    /// Progress or the result of an analysis job (Equivariance panel).
    Analysis(analysis::AnalysisResult),
}

/// Capacity of the request queue; the worker drains it, so a few slots are plenty.
const REQUEST_QUEUE: usize = 4;
/// Capacity of the event queue (frames waiting for the GUI).
const EVENT_QUEUE: usize = 8;

/// The window's wgpu handles (eframe's device), offered to the worker so that burn runs on the
/// same GPU device as egui instead of opening a second one.
#[derive(Clone, Debug)]
pub struct SharedGpu {
    pub instance: wgpu::Instance,
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
}

/// What became of a request handed to [`RenderHandle::request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queued {
    Sent,
    /// The queue is full (the worker is busy): send it again on a later frame.
    Full,
    /// The render thread has stopped.
    Stopped,
}

/// The GUI's end of the worker.
pub struct RenderHandle {
    /// `None` after [`RenderHandle::shutdown`].
    tx: Option<Sender<RenderRequest>>,
    analysis_tx: Option<Sender<analysis::AnalysisRequest>>,
    events: Receiver<RenderEvent>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RenderHandle {
    /// Starts the `render` thread; `wake` is called after every event (the GUI's `request_repaint`).
    pub fn spawn(wake: Box<dyn Fn() + Send>) -> std::io::Result<Self> {
        Self::spawn_with(wake, None)
    }

    /// [`Self::spawn`], with the window's wgpu device for the wgpu backend to share.
    pub fn spawn_with(wake: Box<dyn Fn() + Send>, shared: Option<SharedGpu>) -> std::io::Result<Self> {
        let (tx, rx) = bounded::<RenderRequest>(REQUEST_QUEUE);
        let (atx, arx) = bounded::<analysis::AnalysisRequest>(REQUEST_QUEUE);
        let (etx, events) = bounded::<RenderEvent>(EVENT_QUEUE);
        let thread = std::thread::Builder::new().name("render".into()).spawn(move || worker(rx, arx, etx, wake, shared))?;
        Ok(Self { tx: Some(tx), analysis_tx: Some(atx), events, thread: Some(thread) })
    }

    /// Stops the worker: closes the request queue and waits up to `timeout` for the thread to
    /// finish its current frame (a clean exit, before the process tears down GPU drivers).
    pub fn shutdown(&mut self, timeout: std::time::Duration) {
        self.tx = None;
        self.analysis_tx = None;
        let Some(thread) = self.thread.take() else { return };
        let start = Instant::now();
        while !thread.is_finished() {
            // Let a worker blocked on a full event queue finish.
            while self.events.try_recv().is_ok() {}
            if start.elapsed() > timeout {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = thread.join();
    }

    /// Queues a request without waiting.
    pub fn request(&self, req: RenderRequest) -> Queued {
        let Some(tx) = &self.tx else { return Queued::Stopped };
        match tx.try_send(req) {
            Ok(()) => Queued::Sent,
            Err(TrySendError::Full(_)) => Queued::Full,
            Err(TrySendError::Disconnected(_)) => Queued::Stopped,
        }
    }

    /// Queues an analysis job (it replaces the running one) without waiting.
    pub fn analyse(&self, req: analysis::AnalysisRequest) -> Queued {
        let Some(tx) = &self.analysis_tx else { return Queued::Stopped };
        match tx.try_send(req) {
            Ok(()) => Queued::Sent,
            Err(TrySendError::Full(_)) => Queued::Full,
            Err(TrySendError::Disconnected(_)) => Queued::Stopped,
        }
    }

}

impl Drop for RenderHandle {
    fn drop(&mut self) {
        self.shutdown(std::time::Duration::from_secs(2));
    }
}

impl RenderHandle {
    /// The next event, if any (never blocks).
    pub fn try_event(&self) -> Option<RenderEvent> {
        self.events.try_recv().ok()
    }

    /// Waits up to `timeout` for the next event (tests, scripts).
    pub fn wait_event(&self, timeout: std::time::Duration) -> Option<RenderEvent> {
        self.events.recv_timeout(timeout).ok()
    }
}

struct Loaded {
    network: String,
    backend: BackendChoice,
    device: Device,
    generator: crate::model::Generator,
    /// Known after the first traced render.
    layers: Option<Vec<LayerInfo>>,
    /// Runs on the window's wgpu device.
    on_shared_device: bool,
}

/// The burn device of a backend: for wgpu, the window's device when it was offered and burn
/// accepts it (registered once), else burn's own.
struct Devices {
    shared: Option<SharedGpu>,
    /// The registered shared device, or why it could not be used.
    shared_device: Option<Result<Device, String>>,
}

impl Devices {
    /// The device, a note for the window, and whether it is the shared one.
    fn get(&mut self, backend: BackendChoice) -> (Device, Option<String>, bool) {
        if backend != BackendChoice::Wgpu {
            return (backend.device(), None, false);
        }
        let Some(gpu) = &self.shared else { return (backend.device(), None, false) };
        let registered = self.shared_device.get_or_insert_with(|| {
            let setup = burn::tensor::wgpu::WgpuSetup {
                instance: gpu.instance.clone(),
                adapter: gpu.adapter.clone(),
                device: gpu.device.clone(),
                queue: gpu.queue.clone(),
                backend: gpu.adapter.get_info().backend,
            };
            guarded(|| Device::wgpu_options().setup(setup).init().map_err(|e| e.to_string()))
        });
        match registered {
            Ok(d) => (d.clone(), Some("sharing the window's wgpu device".to_string()), true),
            Err(e) => (backend.device(), Some(format!("own wgpu device (the window's could not be shared: {e})")), false),
        }
    }
}

fn worker(rx: Receiver<RenderRequest>, arx: Receiver<analysis::AnalysisRequest>, tx: Sender<RenderEvent>, wake: Box<dyn Fn() + Send>, shared: Option<SharedGpu>) {
    let mut loaded: Option<Loaded> = None;
    let mut devices = Devices { shared, shared_device: None };
    let send = |event: RenderEvent| -> bool {
        let ok = tx.send(event).is_ok();
        wake();
        ok
    };
    let mut job: Option<analysis::Job> = None;
    loop {
        // Idle: wait for a frame or a job. Frames always go first; a job runs one step at a time
        // in between.
        let mut req = None;
        // A job runs on the model the window shows; for another one it waits for that frame.
        let runnable = job.as_ref().is_some_and(|j| loaded.as_ref().is_some_and(|l| l.network == j.request.network && l.backend == j.request.backend));
        if !runnable {
            crossbeam_channel::select! {
                recv(rx) -> r => match r {
                    Ok(r) => req = Some(r),
                    Err(_) => return,
                },
                recv(arx) -> a => match a {
                    Ok(a) => job = analysis::Job::new(a),
                    Err(_) => return,
                },
            }
        }
        // Only the newest request and the newest job matter.
        while let Ok(newer) = rx.try_recv() {
            req = Some(newer);
        }
        while let Ok(a) = arx.try_recv() {
            job = analysis::Job::new(a);
        }
        if let Some(req) = req {
            if !serve_frame(&req, &mut loaded, &mut devices, &send) {
                return;
            }
            continue;
        }
        let Some(j) = job.as_mut() else { continue };
        let Some(l) = loaded.as_ref().filter(|l| l.network == j.request.network && l.backend == j.request.backend) else { continue };
        let over = match guarded(|| Ok(j.step(&l.generator))) {
            Ok(over) => over,
            Err(e) => {
                j.result.error = Some(e);
                true
            }
        };
        let sweep = j.result.total > 4;
        if (over || sweep) && !send(RenderEvent::Analysis(j.result.clone())) {
            return;
        }
        if over {
            job = None;
        }
    }
}

/// Loads (when needed) and renders one request; false when the window has gone.
fn serve_frame(req: &RenderRequest, loaded: &mut Option<Loaded>, devices: &mut Devices, send: &dyn Fn(RenderEvent) -> bool) -> bool {
    // A second attempt only when the first frame on the window's shared device failed.
    for _attempt in 0..2 {
        let needs_load = !matches!(&*loaded, Some(l) if l.network == req.network && l.backend == req.backend);
        if needs_load {
            if !send(RenderEvent::Loading { network: req.network.clone() }) {
                return false;
            }
            match guarded(|| load(req, devices, send)) {
                Ok((l, info)) => {
                    // Free the old model before the next render.
                    *loaded = Some(l);
                    if !send(RenderEvent::Loaded(info)) {
                        return false;
                    }
                }
                Err(message) => {
                    // Keep the previous model: the GUI goes back to it.
                    return send(RenderEvent::Error { request: req.clone(), message, during_load: true });
                }
            }
        }
        let Some(l) = loaded.as_mut() else { return true };
        let first_frame = l.layers.is_none();
        let result = guarded(|| render_one(l, req));
        if let (Err(message), true, true) = (&result, first_frame, l.on_shared_device) {
            // The window's device lacks something burn needs: use burn's own device.
            devices.shared_device = Some(Err(message.clone()));
            *loaded = None;
            continue;
        }
        if first_frame {
            if let Some(layers) = &l.layers {
                if !send(RenderEvent::Layers(layers.clone())) {
                    return false;
                }
            }
        }
        let event = match result {
            Ok(frame) => RenderEvent::Frame(frame),
            Err(message) => RenderEvent::Error { request: req.clone(), message, during_load: false },
        };
        return send(event);
    }
    true
}

/// Runs `f`, turning a panic inside burn or wgpu into an error message.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let text = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(format!("the backend failed: {}", text.lines().take(3).collect::<Vec<_>>().join(" ")))
        }
    }
}

fn load(req: &RenderRequest, devices: &mut Devices, send: &dyn Fn(RenderEvent) -> bool) -> Result<(Loaded, ModelInfo), String> {
    let start = Instant::now();
    let (device, device_note, on_shared_device) = devices.get(req.backend);
    let mut last_report: Option<Instant> = None;
    let mut progress = |done: u64, total: Option<u64>| {
        // A few reports a second are plenty for a progress bar.
        if last_report.is_none_or(|t| t.elapsed().as_millis() >= 100) || total == Some(done) {
            last_report = Some(Instant::now());
            send(RenderEvent::Downloading { network: req.network.clone(), done, total });
        }
    };
    let opened = open_generator_with(&req.network, Which::GEma, &device, &mut progress).map_err(|e| e.to_string())?;
    let g = &opened.generator;
    let cfg = &g.config;
    let info = ModelInfo {
        network: req.network.clone(),
        origin: opened.origin.clone(),
        family: g.family(),
        untrained: opened.untrained,
        description: opened.description.clone(),
        z_dim: cfg.z_dim(),
        w_dim: cfg.w_dim(),
        num_ws: cfg.num_ws(),
        c_dim: cfg.c_dim(),
        resolution: cfg.img_resolution(),
        summary: report(&opened),
        device: match device_note {
            Some(note) => format!("{}, {note}", describe(req.backend, &device)),
            None => describe(req.backend, &device),
        },
        backend: req.backend,
        load_ms: start.elapsed().as_secs_f64() * 1000.0,
    };
    let loaded = Loaded { network: req.network.clone(), backend: req.backend, device, generator: opened.generator, layers: None, on_shared_device };
    Ok((loaded, info))
}

fn render_one(l: &mut Loaded, req: &RenderRequest) -> Result<Frame, String> {
    let start = Instant::now();
    let p = &req.latent;
    let known = |layers: &Option<Vec<LayerInfo>>, name: &str| layers.as_ref().is_none_or(|ls| ls.iter().any(|x| x.name == name));
    // An unknown layer (e.g. left over from another model) shows the output instead.
    let layer = req.view.layer.clone().filter(|n| known(&l.layers, n));
    let want_trace = layer.is_some() || l.layers.is_none();
    let mut trace = Trace::default();
    let forward = req.input_transform.unwrap_or_else(|| input_transform(p.translate, p.rotate_turns));
    let img = compose::render_with(&l.generator, &l.device, &w0_seeds(p.x, p.y), p, forward, want_trace.then_some(&mut trace))?;
    if l.layers.is_none() {
        l.layers = Some(
            trace
                .entries
                .iter()
                // 2-D affine outputs are recorded as [N, C, 1, 1]; the inspector lists layer
                // images only, without StyleGAN3's pre-activation `.conv` intermediates.
                .filter(|(n, t)| t.dims()[2] > 1 && !n.ends_with(".conv") && !n.ends_with(".affine"))
                .map(|(n, t)| {
                    let [_, c, h, w] = t.dims();
                    LayerInfo { name: n.clone(), shape: [c, h, w] }
                })
                .collect(),
        );
    }
    let layer = layer.filter(|n| known(&l.layers, n));
    let tensor = match &layer {
        Some(name) => trace.get(name).cloned().ok_or_else(|| format!("layer '{name}' was not recorded"))?,
        None => img,
    };
    drop(trace);
    let [_, c, h, w] = tensor.dims();
    let (base, n) = pixels::select_channels(c, &req.view);
    let untransform = req.view.untransform && l.generator.family() == Family::StyleGan3;
    // On the window's own device, the shown image stays on the GPU (the FFT and untransform
    // views are computed on the host).
    let on_gpu = if l.on_shared_device && !untransform && !req.view.fft { on_gpu::shown_on_gpu(&tensor, base, n, &req.view)? } else { None };
    let (rgba, gpu, fft_rgba, output, stats_all, stats_shown) = match on_gpu {
        Some(g) => {
            let image = g.image.clone();
            let output = layer.is_none().then(|| {
                let t = tensor.narrow(0, 0, 1);
                HostCopy::on_device(move || read_f32(t.clone()).map_err(|e| e.to_string()))
            });
            (HostCopy::on_device(move || image.read()), Some(g.image), None, output, g.stats_all, g.stats_shown)
        }
        None => {
            let data = read_f32(tensor.narrow(0, 0, 1)).map_err(|e| e.to_string())?;
            // Untransform: resample the shown channels back through `synthesis.input.transform`
            // (the inverse of the forward transform), as the visualizer does. Only the shown
            // channels, so wide inner layers stay interactive; the statistics then describe them.
            let (data, c_eff, view) = if untransform {
                let buffer = crate::model::invert3(forward).ok_or("the input transform is singular")?;
                let sub = &data[base * h * w..(base + n) * h * w];
                let out = untransform::apply_affine(sub, n, h, w, buffer).ok_or("the input transform is singular")?;
                (out, n, LayerView { base_channel: 0, ..req.view.clone() })
            } else {
                (data, c, req.view.clone())
            };
            let shown = pixels::to_rgba(&data, c_eff, h, w, &view);
            let fft_rgba = view.fft.then(|| {
                let channels = if view.fft_all_channels { 0..c_eff } else { shown.base_channel..shown.base_channel + shown.shown_channels };
                Arc::new(pixels::spectrum_rgba(&data, channels, h, w, view.fft_range_db, view.fft_beta))
            });
            let output = layer.is_none().then(|| HostCopy::ready(data));
            (HostCopy::ready(shown.rgba), None, fft_rgba, output, shown.stats_all, shown.stats_shown)
        }
    };
    Ok(Frame {
        request: req.clone(),
        width: w,
        height: h,
        rgba,
        gpu,
        fft_rgba,
        output,
        layer,
        channels: c,
        base_channel: base,
        shown_channels: n,
        stats_all,
        stats_shown,
        render_ms: start.elapsed().as_secs_f64() * 1000.0,
    })
}
