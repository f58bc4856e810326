//! Training runs as the window sees them: the run folders of an output folder with their state
//! (running, finished, stopped, failed, killed), statistics and grids (`folder`), the
//! `stylescope train` command a form describes (`command`), the child process that runs it
//! (`child`) and a background thread that watches the folders (`watch`). The window drives the
//! training engine only through these files and processes: never burn, never egui here.

pub mod child;
pub mod command;
pub mod folder;
pub mod watch;

pub use child::TrainChild;
pub use command::{Base, TrainForm};
pub use folder::{RunState, RunSummary, StatsLog};
pub use watch::{RunDetail, RunsUpdate, RunsWatcher, WatchRequest};
