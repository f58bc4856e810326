//! Training and fine-tuning, step for step like the official `training_loop.py`, `loss.py` and
//! `augment.py`: the loss phases with exact R1 (`loss`), the host-side Adam and G_ema
//! (`adam`), the ADA pipe (`augment`), train.py's options (`options`), the run's networks
//! (`networks`), per-tick statistics (`stats`) and the loop with its snapshots
//! (`training_loop`). Never imports egui.

pub mod adam;
pub mod augment;
pub mod loss;
pub mod networks;
pub mod options;
pub mod run_folder;
pub mod stats;
pub mod training_loop;

use std::path::PathBuf;

/// Why training could not start or go on; every message names the file or flag involved.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Load(#[from] crate::error::LoadError),
    #[error(transparent)]
    Save(#[from] crate::error::SaveError),
    #[error(transparent)]
    Device(#[from] crate::error::DeviceError),
    #[error("{}: {detail}", path.display())]
    Io { path: PathBuf, detail: String },
    #[error("{}: {detail}", path.display())]
    Mismatch { path: PathBuf, detail: String },
}
