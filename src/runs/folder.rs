//! One run folder read from disk: whether a process trains it now (its lock), how it ended (the
//! last line of `log.txt`), how far it got, its snapshots and `fakesNNNNNN.png` grids, and
//! `stats.jsonl` read incrementally as the run appends to it.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::train::options::TrainOptions;
use crate::train::run_folder::{run_dirs, run_owner, snapshots};

/// Where a run stands.
#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    /// A process holds the run's lock (its id, 0 when unknown).
    Running { pid: u32 },
    /// Reached `--kimg`.
    Finished,
    /// Stopped on request (Stop, Ctrl-C) after writing a snapshot.
    Stopped,
    /// Ended with an error (the message from its log).
    Failed(String),
    /// Ended without a last word: killed, or the machine went down.
    Killed,
}

impl RunState {
    pub fn is_running(&self) -> bool {
        matches!(self, Self::Running { .. })
    }

    /// A short word for lists.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Running { .. } => "running",
            Self::Finished => "finished",
            Self::Stopped => "stopped",
            Self::Failed(_) => "failed",
            Self::Killed => "killed",
        }
    }
}

/// A snapshot or grid of a run, at `kimg`.
#[derive(Clone, Debug, PartialEq)]
pub struct AtKimg {
    pub kimg: u64,
    pub path: PathBuf,
}

/// A run folder at a glance.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub dir: PathBuf,
    /// The folder's name (`00003-stylegan2-data-gpus1-batch32-gamma0.01`).
    pub name: String,
    pub state: RunState,
    /// Its `training_options.json` (missing only for a folder that is not a StyleScope run).
    pub options: Option<TrainOptions>,
    pub snapshots: Vec<AtKimg>,
}

impl RunSummary {
    /// Reads `dir` (cheap: a directory listing, the lock, the end of the log).
    pub fn read(dir: &Path) -> Self {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let options = std::fs::read(dir.join("training_options.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let snapshots = snapshots(dir).into_iter().filter_map(|p| Some(AtKimg { kimg: kimg_in_name(&p, "network-snapshot-")?, path: p })).collect();
        Self { dir: dir.to_path_buf(), name, state: state_of(dir), options, snapshots }
    }

    /// The newest snapshot.
    pub fn latest_snapshot(&self) -> Option<&AtKimg> {
        self.snapshots.last()
    }

    /// Whether `--resume` can continue it: not running, not finished, and a snapshot to start from.
    pub fn resumable(&self) -> bool {
        !self.state.is_running() && self.state != RunState::Finished && !self.snapshots.is_empty() && self.options.is_some()
    }
}

/// The run folders of `outdir`, newest first.
pub fn list_runs(outdir: &Path) -> Vec<RunSummary> {
    run_dirs(outdir).into_iter().rev().map(|(_, d)| RunSummary::read(&d)).collect()
}

/// The state of the run in `dir`: running while a process holds its lock, else told by the last
/// line the training command wrote to `log.txt`.
pub fn state_of(dir: &Path) -> RunState {
    if let Some(pid) = run_owner(dir) {
        return RunState::Running { pid };
    }
    let last = log_tail(&dir.join("log.txt"), 1).pop().unwrap_or_default();
    if last.starts_with("Done") {
        RunState::Finished
    } else if last.starts_with("Stopped") {
        RunState::Stopped
    } else if let Some(e) = last.strip_prefix("error: ") {
        RunState::Failed(e.to_string())
    } else {
        RunState::Killed
    }
}

/// The last `n` lines of a text file (reading at most its last 64 KiB).
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else { return Vec::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if f.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // cut in the middle
    }
    let skip = lines.len().saturating_sub(n);
    lines.split_off(skip)
}

/// The `fakesNNNNNN.png` grids of a run, oldest first (`fakes_init.png` counts as kimg 0 when
/// no `fakes000000.png` exists).
pub fn grids(dir: &Path) -> Vec<AtKimg> {
    let mut out: Vec<AtKimg> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .filter_map(|p| Some(AtKimg { kimg: kimg_in_name(&p, "fakes")?, path: p }))
        .collect();
    out.sort_by_key(|g| g.kimg);
    if out.first().is_none_or(|g| g.kimg != 0) && dir.join("fakes_init.png").is_file() {
        out.insert(0, AtKimg { kimg: 0, path: dir.join("fakes_init.png") });
    }
    out
}

/// `PREFIXnnnnnn.ext` → nnnnnn.
fn kimg_in_name(path: &Path, prefix: &str) -> Option<u64> {
    path.file_stem()?.to_str()?.strip_prefix(prefix)?.parse().ok()
}

/// One line of `stats.jsonl`: the mean of every statistic of a tick.
#[derive(Clone, Debug, PartialEq)]
pub struct StatsRow {
    pub means: BTreeMap<String, f64>,
}

impl StatsRow {
    pub fn get(&self, key: &str) -> Option<f64> {
        self.means.get(key).copied()
    }
}

/// `stats.jsonl` read as it grows: each [`StatsLog::update`] parses only the complete lines
/// appended since the last one.
#[derive(Clone, Debug, Default)]
pub struct StatsLog {
    pub rows: Vec<StatsRow>,
    offset: u64,
}

impl StatsLog {
    /// Reads what was appended to `path`; true when rows were added.
    pub fn update(&mut self, path: &Path) -> bool {
        let Ok(mut f) = std::fs::File::open(path) else { return false };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Rewritten: start over.
            *self = Self::default();
        }
        if len == self.offset || f.seek(SeekFrom::Start(self.offset)).is_err() {
            return false;
        }
        let mut bytes = Vec::new();
        if f.read_to_end(&mut bytes).is_err() {
            return false;
        }
        // Only complete lines: the writer may be in the middle of one.
        let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else { return false };
        let before = self.rows.len();
        for line in bytes[..end].split(|&b| b == b'\n') {
            let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
            let means = map.iter().filter_map(|(k, v)| Some((k.clone(), v.get("mean")?.as_f64()?))).collect();
            self.rows.push(StatsRow { means });
        }
        self.offset += end as u64 + 1;
        self.rows.len() > before
    }

    /// `(kimg, mean)` of one statistic over the ticks that have it.
    pub fn series(&self, key: &str) -> Vec<[f64; 2]> {
        self.rows.iter().filter_map(|r| Some([r.get("Progress/kimg")?, r.get(key)?])).collect()
    }

    /// The newest value of a statistic.
    pub fn last(&self, key: &str) -> Option<f64> {
        self.rows.iter().rev().find_map(|r| r.get(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_read_as_they_grow_and_half_lines_wait() {
        let dir = std::env::temp_dir().join(format!("stylescope-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stats.jsonl");
        std::fs::write(&path, "{\"Progress/kimg\":{\"mean\":0.0},\"Loss/G/loss\":{\"mean\":1.5}}\n{\"Progress/kimg\":{\"mean\":4.0").unwrap();
        let mut log = StatsLog::default();
        assert!(log.update(&path));
        assert_eq!(log.series("Loss/G/loss"), vec![[0.0, 1.5]]);
        assert!(!log.update(&path), "a half-written line is not read");
        use std::io::Write;
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"},\"Loss/G/loss\":{\"mean\":0.5}}\n").unwrap();
        assert!(log.update(&path));
        assert_eq!(log.series("Loss/G/loss"), vec![[0.0, 1.5], [4.0, 0.5]]);
        assert_eq!(log.last("Progress/kimg"), Some(4.0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_state_comes_from_the_logs_last_line() {
        let dir = std::env::temp_dir().join(format!("stylescope-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log.txt");
        for (text, state) in [
            ("tick 0\nDone: x\n", RunState::Finished),
            ("tick 0\nStopped at kimg 0.1; continue with --resume latest\n", RunState::Stopped),
            ("tick 0\nerror: data.zip: bad image\n", RunState::Failed("data.zip: bad image".into())),
            ("tick 0\ntick 1\n", RunState::Killed),
        ] {
            std::fs::write(&log, text).unwrap();
            assert_eq!(state_of(&dir), state, "{text}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
