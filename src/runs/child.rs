//! A `stylescope train` child process started by the window. It runs in its own process group
//! with its output in a launch log inside the output folder (not a pipe), so it keeps training
//! when the window closes or crashes; the window finds the run folder it made from that log and
//! tells a clean end from an error or a kill by its exit status.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::folder::log_tail;

/// The line `stylescope train` prints first: `Training in RUN-DIR (backend …)`.
const TRAINING_IN: &str = "Training in ";

/// How a child process ended.
#[derive(Clone, Debug, PartialEq)]
pub enum ChildExit {
    Success,
    /// A non-zero exit, with the last line it printed (the error).
    Failed { code: Option<i32>, last_line: String },
    /// Killed by a signal (number, name).
    Killed { signal: i32 },
}

impl std::fmt::Display for ChildExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Success => write!(f, "finished"),
            Self::Failed { code, last_line } => match code {
                Some(c) => write!(f, "exited with status {c}: {last_line}"),
                None => write!(f, "failed: {last_line}"),
            },
            Self::Killed { signal } => write!(f, "killed by signal {signal}{}", signal_name(*signal)),
        }
    }
}

fn signal_name(s: i32) -> &'static str {
    match s {
        9 => " (SIGKILL: killed, or out of memory)",
        15 => " (SIGTERM)",
        2 => " (SIGINT)",
        6 => " (SIGABRT: crashed)",
        11 => " (SIGSEGV: crashed)",
        _ => "",
    }
}

/// A training process the window started.
pub struct TrainChild {
    child: Child,
    /// Where its output goes.
    pub launch_log: PathBuf,
    /// The run folder, once it said which.
    run_dir: Option<PathBuf>,
    exit: Option<ChildExit>,
}

impl TrainChild {
    /// Starts `program args…` with its output in a new launch log in `outdir` (created).
    pub fn spawn(program: &Path, args: &[String], outdir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(outdir)?;
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        let launch_log = outdir.join(format!(".launch-{stamp}.log"));
        let out = std::fs::File::create(&launch_log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::from(out)).stderr(Stdio::from(err));
        #[cfg(unix)]
        {
            // Its own process group: Ctrl-C in the window's terminal does not reach it.
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd.spawn()?;
        Ok(Self { child, launch_log, run_dir: None, exit: None })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The run folder the process trains (known once it printed it).
    pub fn run_dir(&mut self) -> Option<&Path> {
        if self.run_dir.is_none() {
            let head = std::fs::read_to_string(&self.launch_log).unwrap_or_default();
            self.run_dir = head.lines().find_map(|l| l.strip_prefix(TRAINING_IN)).map(|rest| PathBuf::from(rest.rsplit_once(" (backend").map_or(rest, |(d, _)| d)));
        }
        self.run_dir.as_deref()
    }

    /// How it ended, once it has (never blocks).
    pub fn poll(&mut self) -> Option<&ChildExit> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.run_dir();
                let exit = exit_of(status, &self.launch_log);
                if exit == ChildExit::Success {
                    // The run's own log.txt holds everything it printed.
                    let _ = std::fs::remove_file(&self.launch_log);
                }
                self.exit = Some(exit);
            }
        }
        self.exit.as_ref()
    }

    /// The last lines it printed.
    pub fn tail(&self, n: usize) -> Vec<String> {
        log_tail(&self.launch_log, n)
    }
}

fn exit_of(status: std::process::ExitStatus, log: &Path) -> ChildExit {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return ChildExit::Killed { signal };
        }
    }
    if status.success() {
        return ChildExit::Success;
    }
    let last_line = log_tail(log, 1).pop().unwrap_or_default();
    ChildExit::Failed { code: status.code(), last_line: last_line.strip_prefix("error: ").unwrap_or(&last_line).to_string() }
}
