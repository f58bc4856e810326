//! The `video-export` thread: renders a timeline to a file with its own generator while the window
//! keeps drawing, reporting progress over a bounded channel and stopping cleanly when cancelled
//! (the file then holds the frames so far, complete and playable).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};

use super::sink::{Format, Sink};
use super::timeline::{render_frame, Timeline};
use crate::backend::BackendChoice;

/// What the export thread reports.
#[derive(Clone, Debug, PartialEq)]
pub enum ExportEvent {
    Progress { done: usize, total: usize },
    Finished { frames: usize, total: usize, output: PathBuf },
    Failed(String),
}

/// A running export; dropping it does not stop it (use [`Export::cancel`]).
pub struct Export {
    pub events: Receiver<ExportEvent>,
    cancel: Arc<AtomicBool>,
}

impl Export {
    /// Starts rendering `timeline` of `network` at `fps` into `output` (format by its name).
    pub fn spawn(network: String, backend: BackendChoice, timeline: Timeline, fps: f64, output: PathBuf) -> std::io::Result<Self> {
        let (tx, events) = bounded(16);
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        std::thread::Builder::new().name("video-export".into()).spawn(move || {
            let result = run(&network, backend, &timeline, fps, &output, &stop, &tx);
            let _ = tx.send(match result {
                Ok((frames, total)) => ExportEvent::Finished { frames, total, output },
                Err(e) => ExportEvent::Failed(e),
            });
        })?;
        Ok(Self { events, cancel })
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
}

fn run(network: &str, backend: BackendChoice, timeline: &Timeline, fps: f64, output: &std::path::Path, stop: &AtomicBool, tx: &Sender<ExportEvent>) -> Result<(usize, usize), String> {
    let format = Format::of(output)?;
    let device = backend.device();
    let g = crate::source::open_generator(network, crate::weights::Which::GEma, &device).map_err(|e| e.to_string())?.generator;
    timeline.check_family(g.family())?;
    let res = g.config.img_resolution();
    let mut sink = Sink::create(output, &format, res, res, fps).map_err(|e| e.to_string())?;
    let total = timeline.num_frames(fps);
    for idx in 0..total {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (hwc, h, w, ch) = render_frame(&g, timeline, idx, fps)?;
        sink.push(&hwc, h, w, ch).map_err(|e| e.to_string())?;
        // Progress may be dropped when the window is behind; the end is always sent.
        let _ = tx.try_send(ExportEvent::Progress { done: idx + 1, total });
    }
    let frames = sink.finish().map_err(|e| e.to_string())?;
    Ok((frames, total))
}
