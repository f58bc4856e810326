//! The three networks of a run (G, D, G_ema) as host state dicts with their configs: built fresh
//! with the official initialisation, taken from a snapshot to fine-tune (checked against the
//! dataset and flags before anything trains), and turned into burn modules for each phase.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::model::config::{DiscriminatorConfig, Family, GeneratorConfig};
use crate::model::discriminator::Discriminator;
use crate::model::Generator;
use crate::train::adam::StateDict;
use crate::train::TrainError;
use crate::weights::{LoadedWeights, NetworkFile, RandomWeights, Which};

/// A network's architecture, constructor arguments and current values.
#[derive(Clone, Debug)]
pub struct Net {
    pub class_name: String,
    pub init_kwargs: serde_json::Value,
    pub state: StateDict,
}

/// G, D and G_ema with their parsed configs.
#[derive(Clone, Debug)]
pub struct Networks {
    pub g: Net,
    pub d: Net,
    pub g_ema: Net,
    pub g_cfg: GeneratorConfig,
    pub d_cfg: DiscriminatorConfig,
}

fn family(cfg: &crate::train::options::Cfg) -> Family {
    match cfg {
        crate::train::options::Cfg::StyleGan2 => Family::StyleGan2,
        _ => Family::StyleGan3,
    }
}

/// The train.py `--cfg` a generator architecture corresponds to.
fn cfg_name(cfg: &GeneratorConfig) -> &'static str {
    match cfg {
        GeneratorConfig::StyleGan3(c) if c.use_radial_filters => "stylegan3-r",
        GeneratorConfig::StyleGan3(_) => "stylegan3-t",
        GeneratorConfig::StyleGan2(_) => "stylegan2",
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::StyleGan3 => "StyleGAN3",
        Family::StyleGan2 => "StyleGAN2",
    }
}

fn config_err(detail: String) -> TrainError {
    TrainError::Options(detail)
}

impl Networks {
    /// Fresh networks from the constructor arguments (official initialisation, seeded), G_ema a
    /// copy of G as the official loop makes it.
    pub fn fresh(cfg: crate::train::options::Cfg, g_kwargs: &serde_json::Value, d_kwargs: &serde_json::Value, seed: u32) -> Result<Self, TrainError> {
        let g_cfg = GeneratorConfig::from_init_kwargs(family(&cfg), g_kwargs).map_err(|e| config_err(format!("generator: {e}")))?;
        let d_cfg = DiscriminatorConfig::from_init_kwargs(d_kwargs).map_err(|e| config_err(format!("discriminator: {e}")))?;
        // Building the modules on the CPU records every tensor the architecture asks for.
        let device = Device::flex();
        let mut gw = RandomWeights::new(seed);
        Generator::load(&g_cfg, &mut gw, &device)?;
        let mut dw = RandomWeights::new(seed.wrapping_add(1));
        Discriminator::load(&d_cfg, &mut dw, &device)?;
        let g = Net { class_name: "Generator".into(), init_kwargs: g_kwargs.clone(), state: gw.tensors };
        let d = Net { class_name: "Discriminator".into(), init_kwargs: d_kwargs.clone(), state: dw.tensors };
        Ok(Self { g_ema: g.clone(), g, d, g_cfg, d_cfg })
    }

    /// Fine-tuning: this run's fresh architecture with every tensor taken from `path` (G, D and
    /// G_ema; a file with only a generator gives G = G_ema and a fresh D). Any tensor missing or
    /// shaped differently is an error naming the file, the tensor and both shapes.
    pub fn resume_from(fresh: Networks, path: &Path) -> Result<Self, TrainError> {
        let g_ema = NetworkFile::read(path, Which::GEma)?;
        let g = NetworkFile::read(path, Which::G).ok();
        let d = NetworkFile::read(path, Which::D).ok();
        let mut out = fresh;
        // The snapshot's own architecture must be the one the flags and data ask for.
        let theirs = g_ema.generator_config()?;
        let ours = &out.g_cfg;
        if cfg_name(&theirs) != cfg_name(ours) {
            return Err(TrainError::Mismatch {
                path: path.into(),
                detail: format!("it is a {} network; this run has --cfg {} (pass --cfg {} to fine-tune it)", cfg_name(&theirs), cfg_name(ours), cfg_name(&theirs)),
            });
        }
        if theirs.family() != ours.family() || theirs.img_resolution() != ours.img_resolution() || theirs.img_channels() != ours.img_channels() || theirs.c_dim() != ours.c_dim() {
            return Err(TrainError::Mismatch {
                path: path.into(),
                detail: format!(
                    "it is a {} network for {}x{} images with {} channels and {} classes; this run (--cfg and the dataset) needs {} at {}x{}, {} channels, {} classes",
                    family_name(theirs.family()),
                    theirs.img_resolution(),
                    theirs.img_resolution(),
                    theirs.img_channels(),
                    theirs.c_dim(),
                    family_name(ours.family()),
                    ours.img_resolution(),
                    ours.img_resolution(),
                    ours.img_channels(),
                    ours.c_dim()
                ),
            });
        }
        copy_matching(&mut out.g_ema.state, &g_ema.tensors, path, "G_ema")?;
        match &g {
            Some(g) => copy_matching(&mut out.g.state, &g.tensors, path, "G")?,
            None => copy_matching(&mut out.g.state, &g_ema.tensors, path, "G_ema (as G)")?,
        }
        if let Some(d) = &d {
            copy_matching(&mut out.d.state, &d.tensors, path, "D")?;
        }
        Ok(out)
    }

    /// The generator on `device` from state `which` (G or G_ema).
    pub fn generator(&self, net: &Net, device: &Device) -> Result<Generator, TrainError> {
        Ok(Generator::load(&self.g_cfg, &mut LoadedWeights::new(&PathBuf::from("<training state>"), net.state.clone()), device)?)
    }

    pub fn discriminator(&self, device: &Device) -> Result<Discriminator, TrainError> {
        Ok(Discriminator::load(&self.d_cfg, &mut LoadedWeights::new(&PathBuf::from("<training state>"), self.d.state.clone()), device)?)
    }

    /// Names of the trainable parameters of G and D (in module order).
    pub fn param_names(&self) -> Result<(Vec<String>, Vec<String>), TrainError> {
        let device = Device::flex();
        let g = self.generator(&self.g, &device)?;
        let d = self.discriminator(&device)?;
        Ok((g.named_params().into_iter().map(|(n, _)| n).collect(), d.named_params().into_iter().map(|(n, _)| n).collect()))
    }

    /// D parameters `--freezed N` keeps fixed: the layers of the first N layer indices, counted
    /// as the official DiscriminatorBlock does (fromrgb, conv0, conv1, skip per block, highest
    /// resolution first).
    pub fn frozen_d_params(&self, freeze_layers: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut idx = 0;
        for b in self.d_cfg.blocks() {
            let mut layers = Vec::new();
            if b.in_channels == 0 {
                layers.push(("fromrgb", true));
            }
            layers.extend([("conv0", true), ("conv1", true), ("skip", false)]);
            for (layer, has_bias) in layers {
                if idx < freeze_layers {
                    out.push(format!("{}.{layer}.weight", b.name));
                    if has_bias {
                        out.push(format!("{}.{layer}.bias", b.name));
                    }
                }
                idx += 1;
            }
        }
        out
    }
}

/// Copies every tensor of `dst` from `src` (same name, same shape).
fn copy_matching(dst: &mut StateDict, src: &StateDict, path: &Path, which: &str) -> Result<(), TrainError> {
    for (name, t) in dst.iter_mut() {
        let s = src.get(name).ok_or_else(|| TrainError::Mismatch {
            path: path.into(),
            detail: format!("its {which} has no '{name}', which this run's architecture needs (check --cfg, --cbase, --cmax, --map-depth)"),
        })?;
        if s.shape != t.shape && !(s.shape.is_empty() && t.shape == [1]) {
            return Err(TrainError::Mismatch {
                path: path.into(),
                detail: format!("its {which} '{name}' has shape {:?}, this run needs {:?} (check --cfg, --cbase, --cmax, --map-depth)", s.shape, t.shape),
            });
        }
        t.data.clone_from(&s.data);
    }
    Ok(())
}
