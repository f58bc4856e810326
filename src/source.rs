//! Opening a generator from what a user types: a file path (`.pkl`, `.safetensors`), an
//! `http(s)://` URL (downloaded once into the cache, see [`crate::download`]) or `preset:NAME`
//! (an official architecture with seeded random weights, for benchmarks and a first look without
//! a trained model).

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::tensor::Device;

use crate::error::LoadError;
use crate::model::config::{preset, GeneratorConfig};
use crate::model::Generator;
use crate::weights::{NetworkFile, RandomWeights, Which};

/// A generator ready to run, with what the UI and `info` show about it.
pub struct OpenedGenerator {
    pub generator: Generator,
    /// Where it came from (path or `preset:NAME`).
    pub origin: String,
    /// True for presets: random weights, not a trained model.
    pub untrained: bool,
    /// Number of values of every state_dict entry.
    pub param_counts: BTreeMap<String, usize>,
    /// What the network is, when its file says (`stylescope convert --description`).
    pub description: Option<String>,
}

/// Seed of the random weights of presets (fixed, so a preset is one network).
pub const PRESET_SEED: u32 = 0;

pub fn open_generator(network: &str, which: Which, device: &Device) -> Result<OpenedGenerator, LoadError> {
    let mut bar = crate::download::terminal_progress();
    open_generator_with(network, which, device, &mut bar)
}

/// A local path for a network: a URL is fetched into the cache (reporting to `progress`), a path
/// is returned as it is.
pub fn local_path(network: &str, progress: crate::download::Progress) -> Result<PathBuf, LoadError> {
    if crate::download::is_url(network) {
        Ok(crate::download::fetch(network, &crate::download::cache_dir(), progress)?)
    } else {
        Ok(PathBuf::from(network))
    }
}

/// [`open_generator`] with the download progress of a URL going to `progress`.
pub fn open_generator_with(network: &str, which: Which, device: &Device, progress: crate::download::Progress) -> Result<OpenedGenerator, LoadError> {
    if let Some(name) = network.strip_prefix("preset:") {
        let config = preset(name).map_err(|error| LoadError::Config { path: PathBuf::from(network), error })?;
        return open_preset(&config, network, device);
    }
    let local = local_path(network, progress)?;
    let path = local.as_path();
    let file = NetworkFile::read(path, which)?;
    if file.which == Which::D {
        return Err(LoadError::WrongNetwork {
            path: path.into(),
            detail: if path.extension().is_some_and(|e| e == "pkl") {
                "that is the discriminator (D); rendering needs a generator (use --which G_ema or G)".into()
            } else {
                "this file holds a discriminator (D); rendering needs a generator".into()
            },
        });
    }
    let config = file.generator_config()?;
    let param_counts = file.tensors.iter().map(|(k, t)| (k.clone(), t.data.len())).collect();
    let description = file.description.clone();
    let mut weights = file.into_weights();
    let generator = Generator::load(&config, &mut weights, device)?;
    let origin = if crate::download::is_url(network) { network.split('#').next().unwrap_or(network).to_string() } else { path.display().to_string() };
    Ok(OpenedGenerator { generator, origin, untrained: false, param_counts, description })
}

fn open_preset(config: &GeneratorConfig, origin: &str, device: &Device) -> Result<OpenedGenerator, LoadError> {
    let mut weights = RandomWeights::new(PRESET_SEED);
    let generator = Generator::load(config, &mut weights, device)?;
    let param_counts = weights.tensors.iter().map(|(k, t)| (k.clone(), t.data.len())).collect();
    Ok(OpenedGenerator { generator, origin: origin.to_string(), untrained: true, param_counts, description: None })
}
