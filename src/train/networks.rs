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

/// What a network file is, as far as fine-tuning from it goes: the `--cfg`, `--cbase`, `--cmax`
/// and `--map-depth` that rebuild its architecture, and the images and labels it was made for.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseInfo {
    pub cfg: crate::train::options::Cfg,
    pub resolution: usize,
    pub channels: usize,
    pub c_dim: usize,
    pub cbase: usize,
    pub cmax: usize,
    pub map_depth: usize,
}

impl BaseInfo {
    /// What a generator is as a base for `train --resume`; `Err` (one line) for families the
    /// trainer does not continue.
    pub fn of(g: &GeneratorConfig) -> Result<Self, String> {
        use crate::train::options::Cfg;
        let (cfg, cbase, cmax) = match g {
            // train.py doubles stylegan3-r's generator channels.
            GeneratorConfig::StyleGan3(c) if c.use_radial_filters => (Cfg::StyleGan3R, c.channel_base as usize / 2, c.channel_max as usize / 2),
            GeneratorConfig::StyleGan3(c) => (Cfg::StyleGan3T, c.channel_base as usize, c.channel_max as usize),
            GeneratorConfig::StyleGan2(c) => (Cfg::StyleGan2, c.channel_base, c.channel_max),
            GeneratorConfig::StyleGan1(_) => {
                return Err("it is a StyleGAN v1 network (TensorFlow G_style): it renders, but training continues StyleGAN2 and StyleGAN3 networks only".into())
            }
        };
        Ok(Self { cfg, resolution: g.img_resolution(), channels: g.img_channels(), c_dim: g.c_dim(), cbase, cmax, map_depth: g.mapping().num_layers })
    }

    /// Why this network cannot be fine-tuned by a run of `cfg` on `resolution`² images with
    /// `channels` channels and `c_dim` label dimensions (one line), or `Ok`.
    pub fn check(&self, cfg: crate::train::options::Cfg, resolution: usize, channels: usize, c_dim: usize) -> Result<(), String> {
        if self.cfg != cfg {
            return Err(format!("it is a {} network; this run has --cfg {} (pass --cfg {} to fine-tune it)", self.cfg.name(), cfg.name(), self.cfg.name()));
        }
        if (self.resolution, self.channels, self.c_dim) != (resolution, channels, c_dim) {
            return Err(format!(
                "it is a {} network for {r}x{r} images with {} channels and {} classes; this run (--cfg and the dataset) needs {} at {res}x{res}, {channels} channels, {c_dim} classes",
                self.cfg.name(),
                self.channels,
                self.c_dim,
                cfg.name(),
                r = self.resolution,
                res = resolution,
            ));
        }
        Ok(())
    }
}

/// Reads what the generator in `path` (a `.pkl` snapshot or `.safetensors`) is, for checking a
/// fine-tuning run before it starts.
pub fn describe_base(path: &Path) -> Result<BaseInfo, TrainError> {
    BaseInfo::of(&NetworkFile::read(path, Which::GEma)?.generator_config()?).map_err(|detail| TrainError::Mismatch { path: path.into(), detail })
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
        let mismatch = |detail| TrainError::Mismatch { path: path.into(), detail };
        let theirs = BaseInfo::of(&g_ema.generator_config()?).map_err(mismatch)?;
        let ours = BaseInfo::of(&out.g_cfg).map_err(mismatch)?;
        theirs.check(ours.cfg, ours.resolution, ours.channels, ours.c_dim).map_err(|detail| TrainError::Mismatch { path: path.into(), detail })?;
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
