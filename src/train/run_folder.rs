//! A run folder's files as the training loop and the window's run manager share them: the
//! `NNNNN-desc` numbering, the snapshots, the lock held by the process training it, and the
//! stop request. No burn here, so the window can read runs without touching the networks.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::train::options::TrainOptions;
use crate::train::TrainError;

fn io_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io { path: path.into(), detail: e.to_string() }
}

/// Held (an exclusive OS file lock) by the process training a run folder for as long as it runs,
/// so others can tell a live run from one that ended, was stopped or was killed.
pub const RUN_LOCK: &str = "run.lock";

/// A file anyone (the window's Stop button) creates in a run folder to ask the process training
/// it to write a snapshot and stop, as Ctrl-C does.
pub const STOP_REQUEST: &str = "stop-request";

/// `--resume latest` or `--resume RUN-FOLDER` continue a run (`Some(what)`); a file fine-tunes.
pub(crate) fn continues_run(resume: Option<&str>) -> Option<&str> {
    resume.filter(|r| *r == "latest" || Path::new(r).is_dir())
}

/// Takes `run_dir`'s [`RUN_LOCK`] (writing our process id into it) and clears a stale
/// [`STOP_REQUEST`]; fails when another process holds the lock.
pub(crate) fn lock_run(run_dir: &Path) -> Result<std::fs::File, TrainError> {
    let path = run_dir.join(RUN_LOCK);
    let mut file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| io_err(&path, e))?;
    // A reader checking the lock (`run_owner`) holds it shared for an instant: try for a second.
    let mut tries = 0;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(TrainError::Options(format!("{}: another process is training this run (stop it first)", run_dir.display())));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&path, e)),
        }
    }
    file.set_len(0).map_err(|e| io_err(&path, e))?;
    write!(file, "{}", std::process::id()).map_err(|e| io_err(&path, e))?;
    let _ = std::fs::remove_file(run_dir.join(STOP_REQUEST));
    Ok(file)
}

/// Whether a process is training `run_dir` now (it holds the run's [`RUN_LOCK`]), and its id.
pub fn run_owner(run_dir: &Path) -> Option<u32> {
    let file = std::fs::File::open(run_dir.join(RUN_LOCK)).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(_) => Some(std::fs::read_to_string(run_dir.join(RUN_LOCK)).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)),
    }
}

/// `NNNNN-desc` run folders of `outdir`, newest (highest number) last.
pub fn run_dirs(outdir: &Path) -> Vec<(u32, PathBuf)> {
    let mut out: Vec<(u32, PathBuf)> = std::fs::read_dir(outdir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id: u32 = name.split('-').next()?.parse().ok()?;
            Some((id, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The complete snapshots of a run folder, oldest first.
pub fn snapshots(run_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("network-snapshot-") && n.ends_with(".safetensors")))
        .collect();
    out.sort();
    out
}

/// A new `NNNNN-desc` folder in `--outdir` (numbered after the highest existing one).
pub(crate) fn new_run_dir(opts: &TrainOptions) -> Result<PathBuf, TrainError> {
    std::fs::create_dir_all(&opts.outdir).map_err(|e| io_err(&opts.outdir, e))?;
    let next = run_dirs(&opts.outdir).last().map_or(0, |(id, _)| id + 1);
    let dir = opts.outdir.join(format!("{next:05}-{}", opts.run_desc()));
    std::fs::create_dir(&dir).map_err(|e| io_err(&dir, e))?;
    let json = serde_json::to_string_pretty(opts).map_err(|e| io_err(&dir, e))?;
    crate::weights::safetensors::write_atomic(&dir.join("training_options.json"), json.as_bytes())?;
    Ok(dir)
}

