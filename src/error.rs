//! The library's error types: one enum per concern, each message naming the file and what to do.

use std::path::PathBuf;

/// A network architecture that cannot be built from its constructor arguments.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid architecture: {0}")]
    Invalid(String),
    #[error("unsupported architecture: {0}")]
    Unsupported(String),
}

/// Why a model file could not be turned into a network.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read the file: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{}: {error}{}", path.display(), pickle_hint(error))]
    Pickle { path: PathBuf, error: crate::weights::pickle::PickleError },
    #[error("{}: not a valid .safetensors file: {detail}", path.display())]
    Safetensors { path: PathBuf, detail: String },
    #[error("{}: {error}", path.display())]
    Config { path: PathBuf, error: ConfigError },
    #[error("{}: {detail}", path.display())]
    WrongNetwork { path: PathBuf, detail: String },
    #[error("{}: snapshot has no '{wanted}' network (it holds: {available})", path.display())]
    MissingNetwork { path: PathBuf, wanted: String, available: String },
    #[error("{}: weight '{key}' is missing (the file does not match the architecture in its own init kwargs)", path.display())]
    MissingWeight { path: PathBuf, key: String },
    #[error("{}: weight '{key}' has shape {found:?}, the architecture needs {expected:?}", path.display())]
    ShapeMismatch { path: PathBuf, key: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("{}: unsupported architecture: {detail}", path.display())]
    Unsupported { path: PathBuf, detail: String },
    #[error("{}: unknown file type (expected .pkl or .safetensors)", path.display())]
    UnknownFormat { path: PathBuf },
    #[error(transparent)]
    Download(#[from] crate::download::DownloadError),
}

/// Why a network could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{}: cannot write: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{}: cannot encode safetensors: {detail}", path.display())]
    Encode { path: PathBuf, detail: String },
}

/// What the user can do about a pickle that failed to load.
fn pickle_hint(e: &crate::weights::pickle::PickleError) -> &'static str {
    use crate::weights::pickle::PickleError as P;
    match e {
        P::Truncated { .. } => " (the file is incomplete: copy or download it again)",
        P::UnknownGlobal { .. } => " (refusing to load it: StyleScope never runs code from a pickle)",
        P::NotASnapshot(_) => "",
        _ => " (expected an official StyleGAN network pickle: a PyTorch network-snapshot .pkl or a TensorFlow-era (G, D, Gs) .pkl)",
    }
}

/// A computation the device could not carry out (out of memory, lost device, ...).
#[derive(Debug, thiserror::Error)]
#[error("the {backend} device failed: {detail} (if it ran out of memory, try a smaller batch or --backend cpu)")]
pub struct DeviceError {
    pub backend: String,
    pub detail: String,
}
