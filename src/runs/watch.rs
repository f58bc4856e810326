//! The `run-watcher` thread: reads an output folder's runs twice a second (states, the selected
//! run's statistics, log tail and grids, the chosen grid decoded and scaled for the screen) and
//! hands the window a fresh view only when something changed. All file reading and PNG decoding
//! for the training panel happens here, so no frame of the window waits on the disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

use super::folder::{grids, list_runs, log_tail, AtKimg, RunSummary, StatsLog};

/// What the window wants to watch.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchRequest {
    pub outdir: PathBuf,
    /// The run shown in detail.
    pub selected: Option<PathBuf>,
    /// The grid to show (`None`: the newest).
    pub grid: Option<PathBuf>,
}

/// A grid PNG decoded to RGBA, scaled to at most [`GRID_MAX_PX`] on its longer side.
#[derive(Clone, Debug, PartialEq)]
pub struct GridImage {
    pub path: PathBuf,
    pub kimg: u64,
    pub width: usize,
    pub height: usize,
    pub rgba: Arc<Vec<u8>>,
}

/// Larger grids (1024 images of 256² are 8k × 4k) are scaled down for the window.
pub const GRID_MAX_PX: u32 = 1536;

/// The selected run in detail.
#[derive(Clone, Debug)]
pub struct RunDetail {
    pub summary: RunSummary,
    pub stats: Arc<StatsLog>,
    /// The last lines of `log.txt`.
    pub log: Vec<String>,
    pub grids: Vec<AtKimg>,
    pub grid: Option<GridImage>,
    /// Why the grid could not be shown, if it could not.
    pub grid_error: Option<String>,
}

/// One view of the output folder.
#[derive(Clone, Debug)]
pub struct RunsUpdate {
    pub request: WatchRequest,
    /// Newest first.
    pub runs: Vec<RunSummary>,
    pub detail: Option<RunDetail>,
}

/// The handle of the watcher thread; dropping it ends the thread.
pub struct RunsWatcher {
    requests: Sender<WatchRequest>,
    updates: Receiver<RunsUpdate>,
}

const POLL: Duration = Duration::from_millis(500);
const LOG_LINES: usize = 40;

impl RunsWatcher {
    /// Starts the thread; `repaint` is called after each new view.
    pub fn spawn(repaint: Box<dyn Fn() + Send>) -> std::io::Result<Self> {
        let (req_tx, req_rx) = bounded::<WatchRequest>(8);
        let (upd_tx, upd_rx) = bounded::<RunsUpdate>(1);
        std::thread::Builder::new().name("run-watcher".into()).spawn(move || watch_loop(&req_rx, &upd_tx, repaint.as_ref()))?;
        Ok(Self { requests: req_tx, updates: upd_rx })
    }

    /// Asks for a view of `request` (the thread answers at once, then whenever it changes).
    pub fn watch(&self, request: WatchRequest) {
        // Full means the thread has not caught up yet; it reads to the newest anyway.
        let _ = self.requests.try_send(request);
    }

    /// The newest view, if a new one came.
    pub fn try_update(&self) -> Option<RunsUpdate> {
        self.updates.try_iter().last()
    }
}

/// What decides whether a view is new (cheap to compare).
#[derive(PartialEq)]
struct Signature {
    request: WatchRequest,
    runs: Vec<RunSummary>,
    stats_rows: usize,
    log: Vec<String>,
    grids: Vec<AtKimg>,
    grid: Option<(PathBuf, Option<SystemTime>)>,
}

fn watch_loop(requests: &Receiver<WatchRequest>, updates: &Sender<RunsUpdate>, repaint: &(dyn Fn() + Send)) {
    let mut request: Option<WatchRequest> = None;
    let mut stats: (Option<PathBuf>, StatsLog) = (None, StatsLog::default());
    let mut shown: Option<Signature> = None;
    let mut decoded: Option<(PathBuf, Option<SystemTime>, Result<GridImage, String>)> = None;
    let mut pending: Option<RunsUpdate> = None;
    loop {
        match requests.recv_timeout(POLL) {
            Ok(r) => request = Some(requests.try_iter().last().unwrap_or(r)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(req) = request.clone() else { continue };
        let runs = list_runs(&req.outdir);
        let mut detail = None;
        let mut grid_sig = None;
        if let Some(dir) = &req.selected {
            if stats.0.as_ref() != Some(dir) {
                stats = (Some(dir.clone()), StatsLog::default());
            }
            stats.1.update(&dir.join("stats.jsonl"));
            let summary = runs.iter().find(|r| &r.dir == dir).cloned().unwrap_or_else(|| RunSummary::read(dir));
            let all_grids = grids(dir);
            let wanted = req.grid.clone().filter(|g| g.is_file()).or_else(|| all_grids.last().map(|g| g.path.clone()));
            let mut grid = None;
            let mut grid_error = None;
            if let Some(path) = wanted {
                let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
                let fresh = decoded.as_ref().is_some_and(|(p, t, _)| p == &path && *t == mtime);
                if !fresh {
                    let kimg = all_grids.iter().find(|g| g.path == path).map_or(0, |g| g.kimg);
                    decoded = Some((path.clone(), mtime, decode_grid(&path, kimg)));
                }
                if let Some((_, _, result)) = &decoded {
                    match result {
                        Ok(g) => grid = Some(g.clone()),
                        Err(e) => grid_error = Some(e.clone()),
                    }
                }
                grid_sig = Some((path, mtime));
            }
            detail = Some(RunDetail { summary, stats: Arc::new(stats.1.clone()), log: log_tail(&dir.join("log.txt"), LOG_LINES), grids: all_grids, grid, grid_error });
        }
        let sig = Signature {
            request: req.clone(),
            runs: runs.clone(),
            stats_rows: detail.as_ref().map_or(0, |d| d.stats.rows.len()),
            log: detail.as_ref().map(|d| d.log.clone()).unwrap_or_default(),
            grids: detail.as_ref().map(|d| d.grids.clone()).unwrap_or_default(),
            grid: grid_sig,
        };
        if shown.as_ref() != Some(&sig) {
            shown = Some(sig);
            pending = Some(RunsUpdate { request: req, runs, detail });
        }
        if let Some(u) = pending.take() {
            match updates.try_send(u) {
                Ok(()) => repaint(),
                // The window has not taken the last one: keep this one for the next round.
                Err(TrySendError::Full(u)) => pending = Some(u),
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

/// Decodes a grid PNG to RGBA, scaled down to fit [`GRID_MAX_PX`].
fn decode_grid(path: &Path, kimg: u64) -> Result<GridImage, String> {
    let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let longest = img.width().max(img.height());
    let img = if longest > GRID_MAX_PX {
        let s = GRID_MAX_PX as f64 / longest as f64;
        img.resize((img.width() as f64 * s) as u32, (img.height() as f64 * s) as u32, image::imageops::FilterType::Triangle)
    } else {
        img
    };
    let rgba = img.to_rgba8();
    Ok(GridImage { path: path.to_path_buf(), kimg, width: rgba.width() as usize, height: rgba.height() as usize, rgba: Arc::new(rgba.into_raw()) })
}
