//! Datasets: what `dataset_tool.py` writes and what the training loop reads (folder or zip of
//! images in the official layout, with optional `dataset.json` labels).
//!
//! - [`convert`]: `stylescope dataset`, the official `dataset_tool.py` (folder/zip of images →
//!   `00000/img00000000.png` … + `dataset.json`, in a zip or a folder).
//! - [`dataset`]: [`ImageFolderDataset`], the official training loader (`training/dataset.py`).
//! - [`sampler`]: [`InfiniteSampler`], the official training order (`torch_utils/misc.py`).
//! - [`summary`]: what a folder or zip holds and whether training can use it, for the GUI.
//! - [`files`], [`pixels`], [`resize`]: listing and reading sources, decoding images, Pillow's
//!   Lanczos resampling.

pub mod convert;
pub mod dataset;
pub mod files;
pub mod pixels;
pub mod resize;
pub mod sampler;
pub mod summary;

pub use convert::{convert, ConvertOptions, ConvertReport, Progress, Transform};
pub use dataset::{DatasetOptions, ImageFolderDataset};
pub use sampler::InfiniteSampler;
pub use summary::{summarize, DatasetSummary};

/// Why a dataset could not be read or written. Every message is one line that starts with the
/// file or folder concerned (a zip member reads `data.zip/00000/img00000000.png`).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: no such file or folder")]
    Missing { path: String },
    #[error("{path}: cannot {action}: {error}")]
    Io { path: String, action: &'static str, error: std::io::Error },
    #[error("{path}: not a folder or a .zip archive")]
    NotADataset { path: String },
    #[error("{path}: not a readable zip archive: {detail}")]
    Zip { path: String, detail: String },
    #[error("{path}: no images found{detail}")]
    NoImages { path: String, detail: String },
    #[error("{path}: cannot decode the image: {detail}")]
    Image { path: String, detail: String },
    /// An image whose size or channels differ from the dataset's, or that training cannot use.
    #[error("{path}: {detail}")]
    Shape { path: String, detail: String },
    #[error("{path}: {detail}")]
    Labels { path: String, detail: String },
    /// Where the dataset is to be written cannot be used.
    #[error("{path}: {detail}")]
    Dest { path: String, detail: String },
    /// Options that do not go together (no file involved).
    #[error("{0}")]
    Options(String),
}

impl DataError {
    pub(crate) fn io(path: impl std::fmt::Display, action: &'static str, error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::NotFound && action.starts_with("open") {
            return Self::Missing { path: path.to_string() };
        }
        Self::Io { path: path.to_string(), action, error }
    }
}
