//! Getting weights into networks: official `.pkl` snapshots (read by a pickle machine that runs no
//! code), `.safetensors` files with the official state_dict names plus a small config, and random
//! initialisation of official architectures (presets). Never imports egui.

pub mod pickle;
pub mod safetensors;
pub mod snapshot;
pub mod tf;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{ConfigError, LoadError};
use crate::model::config::{DiscriminatorConfig, Family, GeneratorConfig};
use crate::model::filters::DesignedFilter;
use crate::rng::RandomState;
pub use snapshot::HostTensor;

/// How a parameter or buffer is initialised when no file provides it (official inits).
#[derive(Clone, Debug)]
pub enum Init {
    Zeros,
    Const(f32),
    /// Normal with this standard deviation.
    Randn(f64),
    /// Explicit values (designed filters, `[1,0,0,0]` biases, identity transforms).
    Values(Vec<f32>),
    /// SynthesisInput frequencies spread over the disc of this radius.
    FourierFreqs(f64),
    /// SynthesisInput phases, uniform in `[-0.5, 0.5)`.
    FourierPhases,
}

impl Init {
    /// The stored value for an effective value divided by `1/s` (lr-multiplier bookkeeping).
    pub fn scaled(self, s: f64) -> Self {
        match self {
            Self::Const(v) => Self::Const((v as f64 * s) as f32),
            Self::Randn(std) => Self::Randn(std * s),
            Self::Values(v) => Self::Values(v.into_iter().map(|x| (x as f64 * s) as f32).collect()),
            other => other,
        }
    }

    pub fn filter(f: &DesignedFilter) -> Self {
        Self::Values(f.data().to_vec())
    }
}

/// Where a network's parameters come from.
pub trait WeightSource {
    /// The tensor stored under `key` with `shape` (`[]` for a scalar is accepted where `[1]` is
    /// asked), or a fresh one made by `init`.
    fn host(&mut self, key: &str, shape: &[usize], init: &Init) -> Result<HostTensor, LoadError>;
}

impl<'a> dyn WeightSource + 'a {
    pub fn tensor<const D: usize>(&mut self, shape: [usize; D], key: &str, init: Init, device: &Device) -> Result<Tensor<D>, LoadError> {
        let host = self.host(key, &shape, &init)?;
        Ok(Tensor::from_data(TensorData::new(host.data, shape.to_vec()), device))
    }

    pub fn param<const D: usize>(&mut self, shape: [usize; D], key: &str, init: Init, device: &Device) -> Result<Param<Tensor<D>>, LoadError> {
        Ok(Param::from_tensor(self.tensor(shape, key, init, device)?))
    }
}

fn shape_matches(found: &[usize], expected: &[usize]) -> bool {
    found == expected || (found.is_empty() && expected == [1])
}

/// Weights read from a file, checked key by key against the architecture.
pub struct LoadedWeights {
    pub path: PathBuf,
    pub tensors: BTreeMap<String, HostTensor>,
    used: BTreeSet<String>,
}

impl LoadedWeights {
    pub fn new(path: &Path, tensors: BTreeMap<String, HostTensor>) -> Self {
        Self { path: path.to_path_buf(), tensors, used: BTreeSet::new() }
    }

    /// Keys present in the file that the architecture never asked for.
    pub fn unused(&self) -> Vec<&str> {
        self.tensors.keys().filter(|k| !self.used.contains(*k)).map(String::as_str).collect()
    }
}

impl WeightSource for LoadedWeights {
    fn host(&mut self, key: &str, shape: &[usize], _init: &Init) -> Result<HostTensor, LoadError> {
        let t = self
            .tensors
            .get(key)
            .ok_or_else(|| LoadError::MissingWeight { path: self.path.clone(), key: key.to_string() })?;
        if !shape_matches(&t.shape, shape) {
            return Err(LoadError::ShapeMismatch {
                path: self.path.clone(),
                key: key.to_string(),
                expected: shape.to_vec(),
                found: t.shape.clone(),
            });
        }
        self.used.insert(key.to_string());
        Ok(HostTensor { shape: shape.to_vec(), data: t.data.clone() })
    }
}

/// Random official initialisation (for presets): every tensor drawn from a seeded numpy-compatible
/// generator, so a preset is the same network on every run.
pub struct RandomWeights {
    rng: RandomState,
    /// Everything handed out, under its official name (so a preset can be saved).
    pub tensors: BTreeMap<String, HostTensor>,
}

impl RandomWeights {
    pub fn new(seed: u32) -> Self {
        Self { rng: RandomState::new(seed), tensors: BTreeMap::new() }
    }
}

impl WeightSource for RandomWeights {
    fn host(&mut self, key: &str, shape: &[usize], init: &Init) -> Result<HostTensor, LoadError> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = match init {
            Init::Zeros => vec![0.0; n],
            Init::Const(v) => vec![*v; n],
            Init::Randn(std) => (0..n).map(|_| (self.rng.gauss() * std) as f32).collect(),
            Init::Values(v) if v.len() == n => v.clone(),
            Init::Values(v) => {
                return Err(LoadError::ShapeMismatch {
                    path: PathBuf::from("<preset>"),
                    key: key.to_string(),
                    expected: shape.to_vec(),
                    found: vec![v.len()],
                })
            }
            Init::FourierFreqs(bandwidth) => {
                let c = n / 2;
                let mut out = Vec::with_capacity(n);
                for _ in 0..c {
                    let (a, b) = (self.rng.gauss(), self.rng.gauss());
                    let r = a.hypot(b);
                    let s = bandwidth / (r * (r * r).exp().powf(0.25));
                    out.push((a * s) as f32);
                    out.push((b * s) as f32);
                }
                out
            }
            Init::FourierPhases => (0..n).map(|_| (self.rng.next_f64() - 0.5) as f32).collect(),
        };
        let t = HostTensor { shape: shape.to_vec(), data };
        self.tensors.insert(key.to_string(), t.clone());
        Ok(t)
    }
}

/// Which network of a snapshot to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// The exponential moving average of the generator (what every official script renders).
    #[value(name = "G_ema")]
    GEma,
    /// The raw training generator.
    #[value(name = "G")]
    G,
    /// The discriminator.
    #[value(name = "D")]
    D,
}

impl Which {
    pub fn key(self) -> &'static str {
        match self {
            Self::GEma => "G_ema",
            Self::G => "G",
            Self::D => "D",
        }
    }
}

/// A network read from a file: its official class, constructor arguments and state_dict.
pub struct NetworkFile {
    pub path: PathBuf,
    pub which: Which,
    pub class_name: String,
    pub init_kwargs: serde_json::Value,
    pub tensors: BTreeMap<String, HostTensor>,
    /// A sentence about the network, when its file carries one.
    pub description: Option<String>,
}

impl NetworkFile {
    /// Reads `which` from a `.pkl` snapshot or a `.safetensors` file (plus its config).
    pub fn read(path: &Path, which: Which) -> Result<Self, LoadError> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("pkl") | Some("pickle") => Self::read_pickle(path, which),
            Some("safetensors") => safetensors::read(path, which),
            _ => {
                // Sniff: a pickle starts with PROTO (0x80).
                let bytes = std::fs::read(path).map_err(|error| LoadError::Io { path: path.into(), error })?;
                if bytes.first() == Some(&0x80) {
                    Self::from_pickle_bytes(path, &bytes, which)
                } else {
                    Err(LoadError::UnknownFormat { path: path.into() })
                }
            }
        }
    }

    fn read_pickle(path: &Path, which: Which) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path).map_err(|error| LoadError::Io { path: path.into(), error })?;
        Self::from_pickle_bytes(path, &bytes, which)
    }

    fn from_pickle_bytes(path: &Path, bytes: &[u8], which: Which) -> Result<Self, LoadError> {
        let value = pickle::parse(bytes).map_err(|error| LoadError::Pickle { path: path.into(), error })?;
        if tf::is_tf_pickle(&value) {
            return tf::network_file(path, &value, which);
        }
        let mut snap = snapshot::from_value(value).map_err(|error| LoadError::Pickle { path: path.into(), error })?;
        let available = snap.networks.keys().cloned().collect::<Vec<_>>().join(", ");
        let module = snap.networks.remove(which.key()).ok_or_else(|| LoadError::MissingNetwork {
            path: path.into(),
            wanted: which.key().into(),
            available,
        })?;
        Ok(Self {
            path: path.into(),
            which,
            class_name: module.class_name,
            init_kwargs: module.init_kwargs,
            tensors: module.state_dict,
            description: None,
        })
    }

    /// StyleGAN3 vs StyleGAN2 vs v1, decided from the structure (class names collide).
    pub fn family(&self) -> Result<Family, LoadError> {
        if self.tensors.contains_key("synthesis/4x4/Const/const") {
            Ok(Family::StyleGan1)
        } else if self.tensors.keys().any(|k| k.starts_with("synthesis.input.")) {
            Ok(Family::StyleGan3)
        } else if self.tensors.contains_key("synthesis.b4.const") {
            Ok(Family::StyleGan2)
        } else {
            Err(LoadError::Unsupported {
                path: self.path.clone(),
                detail: format!(
                    "'{}' is neither a StyleGAN3 generator (synthesis.input) nor a StyleGAN2 one (synthesis.b4.const)",
                    self.which.key()
                ),
            })
        }
    }

    pub fn generator_config(&self) -> Result<GeneratorConfig, LoadError> {
        let family = self.family()?;
        GeneratorConfig::from_init_kwargs(family, &self.init_kwargs).map_err(|e| self.config_err(e))
    }

    /// The StyleGAN v1 discriminator (`D_basic`) of a TF pickle.
    pub fn sg1_discriminator_config(&self) -> Result<crate::model::config::Sg1DiscriminatorConfig, LoadError> {
        crate::model::config::Sg1DiscriminatorConfig::from_init_kwargs(&self.init_kwargs).map_err(|e| self.config_err(e))
    }

    /// Checks that the file's network builds from its kwargs (generator or either discriminator).
    pub fn validate(&self) -> Result<(), LoadError> {
        match (self.which, self.class_name.as_str()) {
            (Which::D, "D_basic") => self.sg1_discriminator_config().map(drop),
            (Which::D, _) => self.discriminator_config().map(drop),
            _ => self.generator_config().map(drop),
        }
    }

    pub fn discriminator_config(&self) -> Result<DiscriminatorConfig, LoadError> {
        if self.class_name == "D_basic" {
            return Err(LoadError::Unsupported {
                path: self.path.clone(),
                detail: "a StyleGAN v1 discriminator (D_basic): it loads and scores images, but training continues only StyleGAN2/StyleGAN3 networks".into(),
            });
        }
        if !self.tensors.keys().any(|k| k.starts_with("b4.")) {
            return Err(LoadError::Unsupported {
                path: self.path.clone(),
                detail: format!("'{}' is not a discriminator (no b4 epilogue)", self.which.key()),
            });
        }
        DiscriminatorConfig::from_init_kwargs(&self.init_kwargs).map_err(|e| self.config_err(e))
    }

    fn config_err(&self, error: ConfigError) -> LoadError {
        match error {
            ConfigError::Unsupported(detail) => LoadError::Unsupported { path: self.path.clone(), detail },
            other => LoadError::Config { path: self.path.clone(), error: other },
        }
    }

    pub fn into_weights(self) -> LoadedWeights {
        LoadedWeights::new(&self.path, self.tensors)
    }
}
