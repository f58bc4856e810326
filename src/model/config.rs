//! Network architectures, rebuilt from the `_init_kwargs` an official snapshot carries.
//!
//! One source of truth: every derived fact (StyleGAN3's per-layer sizes, sampling rates, cutoffs,
//! channels, filter taps and paddings; StyleGAN2's block channels and w indices; the
//! discriminator's blocks) is computed here, once, from the constructor arguments, exactly as the
//! official constructors compute it. The forward pass, `stylescope info` and the GUI's layer
//! inspector all read these schedules.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ConfigError;

/// Which generator family a network belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "stylegan3")]
    StyleGan3,
    #[serde(rename = "stylegan2")]
    StyleGan2,
    /// The original StyleGAN (TensorFlow `G_style`), read from TF-era pickles.
    #[serde(rename = "stylegan1")]
    StyleGan1,
}

/// MappingNetwork arguments (every family).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MappingConfig {
    pub num_layers: usize,
    pub lr_multiplier: f64,
    pub w_avg_beta: f64,
    /// Width of the hidden layers (`layer_features`; `None` = w_dim). TF-era networks set it
    /// through `mapping_fmaps` (512 by default in StyleGAN v1 and StyleGAN2 TF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_features: Option<usize>,
}

/// StyleGAN3 generator constructor arguments (configs T and R).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sg3Config {
    pub z_dim: usize,
    pub c_dim: usize,
    pub w_dim: usize,
    pub img_resolution: usize,
    pub img_channels: usize,
    pub mapping: MappingConfig,
    pub channel_base: f64,
    pub channel_max: f64,
    pub num_layers: usize,
    pub num_critical: usize,
    pub first_cutoff: f64,
    pub first_stopband: f64,
    pub last_stopband_rel: f64,
    pub margin_size: usize,
    pub output_scale: f64,
    pub conv_kernel: usize,
    pub filter_size: usize,
    pub lrelu_upsampling: usize,
    pub use_radial_filters: bool,
    pub conv_clamp: Option<f64>,
    pub magnitude_ema_beta: f64,
}

/// StyleGAN2 generator constructor arguments (`--cfg stylegan2`, skip architecture).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sg2Config {
    pub z_dim: usize,
    pub c_dim: usize,
    pub w_dim: usize,
    pub img_resolution: usize,
    pub img_channels: usize,
    pub mapping: MappingConfig,
    pub channel_base: usize,
    pub channel_max: usize,
    pub conv_clamp: Option<f64>,
}

/// Either generator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family")]
pub enum GeneratorConfig {
    #[serde(rename = "stylegan3")]
    StyleGan3(Sg3Config),
    #[serde(rename = "stylegan2")]
    StyleGan2(Sg2Config),
    #[serde(rename = "stylegan1")]
    StyleGan1(Sg1Config),
}

/// The original StyleGAN generator (`G_style` of NVlabs/stylegan), as read from a TF pickle. The
/// mapping is the common [`MappingConfig`]; the synthesis follows `G_synthesis` with
/// `structure='recursive'` at `lod = 0` (what every released network is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sg1Config {
    pub z_dim: usize,
    pub w_dim: usize,
    pub img_resolution: usize,
    pub img_channels: usize,
    pub mapping: MappingConfig,
    /// Feature maps at 4x4, 8x8, ..., img_resolution (`nf(1)`, `nf(2)`, ...).
    pub channels: Vec<usize>,
    /// Fused up-scaling convolutions: `None` = `'auto'` (layers whose output is at least 128x128).
    pub fused_scale: Option<bool>,
}

/// The original StyleGAN discriminator (`D_basic`) at `lod = 0`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sg1DiscriminatorConfig {
    pub img_resolution: usize,
    pub img_channels: usize,
    /// Feature maps of the block at 4x4, 8x8, ..., img_resolution (`nf(1)`, `nf(2)`, ...).
    pub channels: Vec<usize>,
    /// Width of `4x4/Dense0` (`nf(0)`).
    pub dense_features: usize,
    pub mbstd_group_size: usize,
    pub mbstd_num_features: usize,
}

/// networks_stylegan2.Discriminator arguments (resnet architecture).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiscriminatorConfig {
    pub c_dim: usize,
    pub img_resolution: usize,
    pub img_channels: usize,
    pub channel_base: usize,
    pub channel_max: usize,
    pub conv_clamp: Option<f64>,
    pub cmap_dim: usize,
    pub mbstd_group_size: usize,
    pub mbstd_num_channels: usize,
    pub mapping_layers: usize,
    /// The conditioning mapping's lr multiplier (0.01 in PyTorch; TF-era ADA networks 0.1).
    #[serde(default = "default_d_mapping_lr")]
    pub mapping_lr_multiplier: f64,
}

fn default_d_mapping_lr() -> f64 {
    0.01
}

/// One entry of the StyleGAN3 synthesis schedule (`L{idx}_{out_size}_{out_channels}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sg3LayerSpec {
    pub name: String,
    pub idx: usize,
    pub is_torgb: bool,
    pub is_critically_sampled: bool,
    pub in_channels: usize,
    pub out_channels: usize,
    pub in_size: usize,
    pub out_size: usize,
    pub in_sampling_rate: f64,
    pub out_sampling_rate: f64,
    pub tmp_sampling_rate: f64,
    pub in_cutoff: f64,
    pub out_cutoff: f64,
    pub in_half_width: f64,
    pub out_half_width: f64,
    pub conv_kernel: usize,
    pub up_factor: usize,
    pub down_factor: usize,
    pub up_taps: usize,
    pub down_taps: usize,
    pub down_radial: bool,
    /// `[x0, x1, y0, y1]`; negative values crop.
    pub padding: [i64; 4],
}

/// The StyleGAN3 SynthesisInput's construction arguments.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sg3InputSpec {
    pub channels: usize,
    pub size: usize,
    pub sampling_rate: f64,
    pub bandwidth: f64,
}

/// One StyleGAN2 synthesis block `b{resolution}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sg2BlockSpec {
    pub name: String,
    pub resolution: usize,
    /// 0 for the first block (which starts from the learned constant).
    pub in_channels: usize,
    pub out_channels: usize,
    pub num_conv: usize,
    /// First w index this block reads.
    pub w_index: usize,
}

/// One discriminator block `b{resolution}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DBlockSpec {
    pub name: String,
    pub resolution: usize,
    pub in_channels: usize,
    pub tmp_channels: usize,
    pub out_channels: usize,
}

/// Typed access to an `_init_kwargs` object, with the official defaults.
struct Kwargs<'a> {
    map: &'a serde_json::Map<String, Value>,
    what: &'static str,
}

impl<'a> Kwargs<'a> {
    fn new(value: &'a Value, what: &'static str) -> Result<Self, ConfigError> {
        match value {
            Value::Object(map) => Ok(Self { map, what }),
            other => Err(ConfigError::Invalid(format!("{what} init kwargs are not a dict: {other}"))),
        }
    }

    fn sub(&self, key: &str) -> Result<Option<Kwargs<'a>>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => Kwargs::new(v, self.what).map(Some),
        }
    }

    fn f64_or(&self, key: &str, default: f64) -> Result<f64, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => n.as_f64().ok_or_else(|| self.bad(key, "a number")),
            Some(Value::Bool(b)) => Ok(f64::from(u8::from(*b))),
            Some(_) => Err(self.bad(key, "a number")),
        }
    }

    fn opt_f64(&self, key: &str, default: Option<f64>) -> Result<Option<f64>, ConfigError> {
        match self.map.get(key) {
            None => Ok(default),
            Some(Value::Null) => Ok(None),
            Some(_) => self.f64_or(key, 0.0).map(Some),
        }
    }

    fn usize_or(&self, key: &str, default: usize) -> Result<usize, ConfigError> {
        let v = self.f64_or(key, default as f64)?;
        if v < 0.0 || v.fract() != 0.0 || v > 1e9 {
            return Err(self.bad(key, "a non-negative integer"));
        }
        Ok(v as usize)
    }

    fn usize_list(&self, key: &str) -> Result<Vec<usize>, ConfigError> {
        match self.map.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_u64().map(|n| n as usize).ok_or_else(|| self.bad(key, "a list of non-negative integers")))
                .collect(),
            None => Err(ConfigError::Invalid(format!("{} init kwargs lack '{key}'", self.what))),
            Some(_) => Err(self.bad(key, "a list of non-negative integers")),
        }
    }

    fn usize_req(&self, key: &str) -> Result<usize, ConfigError> {
        if !self.map.contains_key(key) {
            return Err(ConfigError::Invalid(format!("{} init kwargs lack '{key}'", self.what)));
        }
        self.usize_or(key, 0)
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(0.0) != 0.0),
            Some(_) => Err(self.bad(key, "a bool")),
        }
    }

    fn str_or(&self, key: &str, default: &'a str) -> Result<&'a str, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(self.bad(key, "a string")),
        }
    }

    fn bad(&self, key: &str, expected: &str) -> ConfigError {
        ConfigError::Invalid(format!(
            "{} init kwarg '{key}' should be {expected}, found {}",
            self.what,
            self.map.get(key).map(|v| v.to_string()).unwrap_or_default()
        ))
    }
}

fn mapping_from(kw: &Kwargs, default_layers: usize) -> Result<MappingConfig, ConfigError> {
    let m = kw.sub("mapping_kwargs")?;
    let get = |key: &str, default: f64| match &m {
        Some(m) => m.f64_or(key, default),
        None => Ok(default),
    };
    let layer_features = match &m {
        Some(m) => match m.opt_f64("layer_features", None)? {
            Some(_) => Some(m.usize_or("layer_features", 0)?).filter(|&f| f > 0),
            None => None,
        },
        None => None,
    };
    Ok(MappingConfig {
        num_layers: get("num_layers", default_layers as f64)? as usize,
        lr_multiplier: get("lr_multiplier", 0.01)?,
        w_avg_beta: get("w_avg_beta", 0.998)?,
        layer_features,
    })
}

fn check_resolution(res: usize) -> Result<(), ConfigError> {
    if res < 4 || !res.is_power_of_two() || res > 8192 {
        return Err(ConfigError::Unsupported(format!(
            "image resolution {res} (expected a power of two between 4 and 8192)"
        )));
    }
    Ok(())
}

impl Sg3Config {
    /// From the pickled `_init_kwargs` of a networks_stylegan3.Generator.
    pub fn from_init_kwargs(value: &Value) -> Result<Self, ConfigError> {
        let kw = Kwargs::new(value, "StyleGAN3 generator")?;
        let cfg = Self {
            z_dim: kw.usize_req("z_dim")?,
            c_dim: kw.usize_or("c_dim", 0)?,
            w_dim: kw.usize_req("w_dim")?,
            img_resolution: kw.usize_req("img_resolution")?,
            img_channels: kw.usize_or("img_channels", 3)?,
            mapping: mapping_from(&kw, 2)?,
            channel_base: kw.f64_or("channel_base", 32768.0)?,
            channel_max: kw.f64_or("channel_max", 512.0)?,
            num_layers: kw.usize_or("num_layers", 14)?,
            num_critical: kw.usize_or("num_critical", 2)?,
            first_cutoff: kw.f64_or("first_cutoff", 2.0)?,
            first_stopband: kw.f64_or("first_stopband", 2f64.powf(2.1))?,
            last_stopband_rel: kw.f64_or("last_stopband_rel", 2f64.powf(0.3))?,
            margin_size: kw.usize_or("margin_size", 10)?,
            output_scale: kw.f64_or("output_scale", 0.25)?,
            conv_kernel: kw.usize_or("conv_kernel", 3)?,
            filter_size: kw.usize_or("filter_size", 6)?,
            lrelu_upsampling: kw.usize_or("lrelu_upsampling", 2)?,
            use_radial_filters: kw.bool_or("use_radial_filters", false)?,
            conv_clamp: kw.opt_f64("conv_clamp", Some(256.0))?,
            magnitude_ema_beta: kw.f64_or("magnitude_ema_beta", 0.999)?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        check_resolution(self.img_resolution)?;
        if self.img_resolution < 16 {
            return Err(ConfigError::Unsupported("StyleGAN3 below 16x16".into()));
        }
        if self.num_layers <= self.num_critical || self.num_layers < 2 {
            return Err(ConfigError::Invalid("num_layers must exceed num_critical".into()));
        }
        if self.z_dim == 0 || self.w_dim == 0 || self.img_channels == 0 {
            return Err(ConfigError::Invalid("z_dim, w_dim and img_channels must be positive".into()));
        }
        if self.conv_kernel == 0 || self.conv_kernel % 2 == 0 {
            return Err(ConfigError::Unsupported(format!("conv_kernel {}", self.conv_kernel)));
        }
        Ok(())
    }

    /// `num_ws = num_layers + 2`.
    pub fn num_ws(&self) -> usize {
        self.num_layers + 2
    }

    /// Per-entry arrays of the SynthesisNetwork constructor: (cutoff, stopband, sampling rate,
    /// half width, size, channels) for `i = 0..=num_layers`.
    fn entries(&self) -> Vec<(f64, f64, f64, f64, usize, usize)> {
        let l = self.num_layers;
        let res = self.img_resolution as f64;
        let last_cutoff = res / 2.0;
        let last_stopband = last_cutoff * self.last_stopband_rel;
        (0..=l)
            .map(|i| {
                let e = (i as f64 / (l - self.num_critical) as f64).min(1.0);
                let cutoff = self.first_cutoff * (last_cutoff / self.first_cutoff).powf(e);
                let stopband = self.first_stopband * (last_stopband / self.first_stopband).powf(e);
                let sr = 2f64.powf((2.0 * stopband).min(res).log2().ceil());
                let half_width = stopband.max(sr / 2.0) - cutoff;
                let size = if i + 2 > l { self.img_resolution } else { sr as usize + 2 * self.margin_size };
                let channels = if i == l {
                    self.img_channels
                } else {
                    ((self.channel_base / 2.0) / cutoff).min(self.channel_max).round_ties_even() as usize
                };
                (cutoff, stopband, sr, half_width, size, channels)
            })
            .collect()
    }

    /// The SynthesisInput's arguments.
    pub fn input_spec(&self) -> Sg3InputSpec {
        let e = self.entries();
        Sg3InputSpec { channels: e[0].5, size: e[0].4, sampling_rate: e[0].2, bandwidth: e[0].0 }
    }

    /// Every SynthesisLayer, L0 .. L{num_layers} (the last one is ToRGB).
    pub fn layers(&self) -> Vec<Sg3LayerSpec> {
        let e = self.entries();
        let l = self.num_layers;
        (0..=l)
            .map(|idx| {
                let prev = idx.saturating_sub(1);
                let is_torgb = idx == l;
                let is_critically_sampled = idx >= l - self.num_critical;
                let (in_cutoff, _, in_sr, in_half_width, in_size, in_channels) = e[prev];
                let (out_cutoff, _, out_sr, out_half_width, out_size, out_channels) = e[idx];
                let in_sr = in_sr.trunc();
                let out_sr = out_sr.trunc();
                let tmp_sr = in_sr.max(out_sr) * if is_torgb { 1.0 } else { self.lrelu_upsampling as f64 };
                let conv_kernel = if is_torgb { 1 } else { self.conv_kernel };
                let up_factor = (tmp_sr / in_sr).round_ties_even() as usize;
                let down_factor = (tmp_sr / out_sr).round_ties_even() as usize;
                let up_taps = if up_factor > 1 && !is_torgb { self.filter_size * up_factor } else { 1 };
                let down_taps = if down_factor > 1 && !is_torgb { self.filter_size * down_factor } else { 1 };
                let (up, down) = (up_factor as i64, down_factor as i64);
                let pad_total = (out_size as i64 - 1) * down + 1
                    - (in_size as i64 + conv_kernel as i64 - 1) * up
                    + up_taps as i64
                    + down_taps as i64
                    - 2;
                let pad_lo = (pad_total + up).div_euclid(2);
                let pad_hi = pad_total - pad_lo;
                Sg3LayerSpec {
                    name: format!("L{idx}_{out_size}_{out_channels}"),
                    idx,
                    is_torgb,
                    is_critically_sampled,
                    in_channels,
                    out_channels,
                    in_size,
                    out_size,
                    in_sampling_rate: in_sr,
                    out_sampling_rate: out_sr,
                    tmp_sampling_rate: tmp_sr,
                    in_cutoff,
                    out_cutoff,
                    in_half_width,
                    out_half_width,
                    conv_kernel,
                    up_factor,
                    down_factor,
                    up_taps,
                    down_taps,
                    down_radial: self.use_radial_filters && !is_critically_sampled,
                    padding: [pad_lo, pad_hi, pad_lo, pad_hi],
                }
            })
            .collect()
    }
}

impl Sg2Config {
    /// From the pickled `_init_kwargs` of a networks_stylegan2.Generator.
    pub fn from_init_kwargs(value: &Value) -> Result<Self, ConfigError> {
        let kw = Kwargs::new(value, "StyleGAN2 generator")?;
        let architecture = kw.str_or("architecture", "skip")?;
        if architecture != "skip" {
            return Err(ConfigError::Unsupported(format!(
                "StyleGAN2 synthesis architecture '{architecture}' (only 'skip', the official default, is implemented)"
            )));
        }
        let cfg = Self {
            z_dim: kw.usize_req("z_dim")?,
            c_dim: kw.usize_or("c_dim", 0)?,
            w_dim: kw.usize_req("w_dim")?,
            img_resolution: kw.usize_req("img_resolution")?,
            img_channels: kw.usize_or("img_channels", 3)?,
            mapping: mapping_from(&kw, 8)?,
            channel_base: kw.usize_or("channel_base", 32768)?,
            channel_max: kw.usize_or("channel_max", 512)?,
            conv_clamp: kw.opt_f64("conv_clamp", Some(256.0))?,
        };
        check_resolution(cfg.img_resolution)?;
        if cfg.w_dim == 0 || cfg.img_channels == 0 {
            return Err(ConfigError::Invalid("w_dim and img_channels must be positive".into()));
        }
        Ok(cfg)
    }

    pub fn channels_at(&self, res: usize) -> usize {
        (self.channel_base / res).min(self.channel_max)
    }

    /// `2·log2(res) − 2`.
    pub fn num_ws(&self) -> usize {
        2 * self.img_resolution.trailing_zeros() as usize - 2
    }

    /// Blocks b4 .. b{res}.
    pub fn blocks(&self) -> Vec<Sg2BlockSpec> {
        let mut out = Vec::new();
        let mut w_index = 0;
        let mut res = 4;
        while res <= self.img_resolution {
            let in_channels = if res == 4 { 0 } else { self.channels_at(res / 2) };
            let num_conv = if res == 4 { 1 } else { 2 };
            out.push(Sg2BlockSpec {
                name: format!("b{res}"),
                resolution: res,
                in_channels,
                out_channels: self.channels_at(res),
                num_conv,
                w_index,
            });
            w_index += num_conv;
            res *= 2;
        }
        out
    }
}

impl Sg1Config {
    /// From the init kwargs `weights::tf` derives from a `G_style` pickle (or a converted file's
    /// config): `z_dim`, `w_dim`, `img_resolution`, `img_channels`, `mapping_kwargs`, `channels`,
    /// `fused_scale` (true / false / null = auto).
    pub fn from_init_kwargs(value: &Value) -> Result<Self, ConfigError> {
        let kw = Kwargs::new(value, "StyleGAN v1 generator")?;
        let img_resolution = kw.usize_req("img_resolution")?;
        check_resolution(img_resolution)?;
        let channels = kw.usize_list("channels")?;
        let cfg = Self {
            z_dim: kw.usize_req("z_dim")?,
            w_dim: kw.usize_req("w_dim")?,
            img_resolution,
            img_channels: kw.usize_or("img_channels", 3)?,
            mapping: mapping_from(&kw, 8)?,
            channels,
            fused_scale: match kw.map.get("fused_scale") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s == "auto" => None,
                Some(_) => Some(kw.bool_or("fused_scale", false)?),
            },
        };
        let levels = img_resolution.trailing_zeros() as usize - 1;
        if cfg.channels.len() != levels || cfg.channels.contains(&0) {
            return Err(ConfigError::Invalid(format!(
                "StyleGAN v1 generator: {} channel counts for {levels} resolutions (4 to {img_resolution})",
                cfg.channels.len()
            )));
        }
        if cfg.z_dim == 0 || cfg.w_dim == 0 || cfg.img_channels == 0 {
            return Err(ConfigError::Invalid("z_dim, w_dim and img_channels must be positive".into()));
        }
        Ok(cfg)
    }

    /// `2·log2(res) − 2`: one w per layer (two per resolution).
    pub fn num_ws(&self) -> usize {
        2 * self.img_resolution.trailing_zeros() as usize - 2
    }

    /// Feature maps at resolution `res` (4, 8, ...).
    pub fn channels_at(&self, res: usize) -> usize {
        self.channels[(res.trailing_zeros() as usize).saturating_sub(2).min(self.channels.len() - 1)]
    }

    /// Whether the up-scaling convolution producing resolution `res` is the fused one.
    pub fn fused_at(&self, res: usize) -> bool {
        self.fused_scale.unwrap_or(res >= 128)
    }
}

impl Sg1DiscriminatorConfig {
    pub fn from_init_kwargs(value: &Value) -> Result<Self, ConfigError> {
        let kw = Kwargs::new(value, "StyleGAN v1 discriminator")?;
        let img_resolution = kw.usize_req("img_resolution")?;
        check_resolution(img_resolution)?;
        let cfg = Self {
            img_resolution,
            img_channels: kw.usize_or("img_channels", 3)?,
            channels: kw.usize_list("channels")?,
            dense_features: kw.usize_req("dense_features")?,
            mbstd_group_size: kw.usize_or("mbstd_group_size", 4)?,
            mbstd_num_features: kw.usize_or("mbstd_num_features", 1)?,
        };
        let levels = img_resolution.trailing_zeros() as usize - 1;
        if cfg.channels.len() != levels || cfg.channels.contains(&0) || cfg.dense_features == 0 {
            return Err(ConfigError::Invalid(format!(
                "StyleGAN v1 discriminator: {} channel counts for {levels} resolutions",
                cfg.channels.len()
            )));
        }
        Ok(cfg)
    }

    pub fn channels_at(&self, res: usize) -> usize {
        self.channels[(res.trailing_zeros() as usize).saturating_sub(2).min(self.channels.len() - 1)]
    }
}

impl GeneratorConfig {
    pub fn family(&self) -> Family {
        match self {
            Self::StyleGan3(_) => Family::StyleGan3,
            Self::StyleGan2(_) => Family::StyleGan2,
            Self::StyleGan1(_) => Family::StyleGan1,
        }
    }

    pub fn from_init_kwargs(family: Family, value: &Value) -> Result<Self, ConfigError> {
        Ok(match family {
            Family::StyleGan3 => Self::StyleGan3(Sg3Config::from_init_kwargs(value)?),
            Family::StyleGan2 => Self::StyleGan2(Sg2Config::from_init_kwargs(value)?),
            Family::StyleGan1 => Self::StyleGan1(Sg1Config::from_init_kwargs(value)?),
        })
    }

    pub fn z_dim(&self) -> usize {
        match self {
            Self::StyleGan3(c) => c.z_dim,
            Self::StyleGan2(c) => c.z_dim,
            Self::StyleGan1(c) => c.z_dim,
        }
    }

    pub fn c_dim(&self) -> usize {
        match self {
            Self::StyleGan3(c) => c.c_dim,
            Self::StyleGan2(c) => c.c_dim,
            Self::StyleGan1(_) => 0,
        }
    }

    pub fn w_dim(&self) -> usize {
        match self {
            Self::StyleGan3(c) => c.w_dim,
            Self::StyleGan2(c) => c.w_dim,
            Self::StyleGan1(c) => c.w_dim,
        }
    }

    pub fn img_resolution(&self) -> usize {
        match self {
            Self::StyleGan3(c) => c.img_resolution,
            Self::StyleGan2(c) => c.img_resolution,
            Self::StyleGan1(c) => c.img_resolution,
        }
    }

    pub fn img_channels(&self) -> usize {
        match self {
            Self::StyleGan3(c) => c.img_channels,
            Self::StyleGan2(c) => c.img_channels,
            Self::StyleGan1(c) => c.img_channels,
        }
    }

    pub fn num_ws(&self) -> usize {
        match self {
            Self::StyleGan3(c) => c.num_ws(),
            Self::StyleGan2(c) => c.num_ws(),
            Self::StyleGan1(c) => c.num_ws(),
        }
    }

    pub fn mapping(&self) -> &MappingConfig {
        match self {
            Self::StyleGan3(c) => &c.mapping,
            Self::StyleGan2(c) => &c.mapping,
            Self::StyleGan1(c) => &c.mapping,
        }
    }
}

impl DiscriminatorConfig {
    /// From the pickled `_init_kwargs` of a networks_stylegan2.Discriminator.
    pub fn from_init_kwargs(value: &Value) -> Result<Self, ConfigError> {
        let kw = Kwargs::new(value, "Discriminator")?;
        let architecture = kw.str_or("architecture", "resnet")?;
        if architecture != "resnet" {
            return Err(ConfigError::Unsupported(format!(
                "discriminator architecture '{architecture}' (only 'resnet', the official default, is implemented)"
            )));
        }
        let epilogue = kw.sub("epilogue_kwargs")?;
        let mapping = kw.sub("mapping_kwargs")?;
        let img_resolution = kw.usize_req("img_resolution")?;
        check_resolution(img_resolution)?;
        let channel_base = kw.usize_or("channel_base", 32768)?;
        let channel_max = kw.usize_or("channel_max", 512)?;
        let c_dim = kw.usize_or("c_dim", 0)?;
        let ch4 = (channel_base / 4).min(channel_max);
        let cmap_dim = if c_dim == 0 { 0 } else { kw.usize_or("cmap_dim", ch4)? };
        let mbstd_group_size = match &epilogue {
            Some(e) => e.usize_or("mbstd_group_size", 4)?,
            None => 4,
        };
        let mbstd_num_channels = match &epilogue {
            Some(e) => e.usize_or("mbstd_num_channels", 1)?,
            None => 1,
        };
        let mapping_layers = match &mapping {
            Some(m) => m.usize_or("num_layers", 8)?,
            None => 8,
        };
        let mapping_lr_multiplier = match &mapping {
            Some(m) => m.f64_or("lr_multiplier", 0.01)?,
            None => 0.01,
        };
        Ok(Self {
            c_dim,
            img_resolution,
            img_channels: kw.usize_or("img_channels", 3)?,
            channel_base,
            channel_max,
            conv_clamp: kw.opt_f64("conv_clamp", Some(256.0))?,
            cmap_dim,
            mbstd_group_size,
            mbstd_num_channels,
            mapping_layers,
            mapping_lr_multiplier,
        })
    }

    pub fn channels_at(&self, res: usize) -> usize {
        (self.channel_base / res).min(self.channel_max)
    }

    /// Blocks b{res} .. b8 (the epilogue b4 is separate).
    pub fn blocks(&self) -> Vec<DBlockSpec> {
        let mut out = Vec::new();
        let mut res = self.img_resolution;
        while res >= 8 {
            out.push(DBlockSpec {
                name: format!("b{res}"),
                resolution: res,
                in_channels: if res < self.img_resolution { self.channels_at(res) } else { 0 },
                tmp_channels: self.channels_at(res),
                out_channels: self.channels_at(res / 2),
            });
            res /= 2;
        }
        out
    }
}

/// Official architectures built with random weights, for benchmarks and a first look without a
/// trained model: `stylegan3-t-1024`, `stylegan3-r-256`, `stylegan2-1024`, ...
pub fn preset(name: &str) -> Result<GeneratorConfig, ConfigError> {
    let unknown = || {
        ConfigError::Invalid(format!(
            "unknown preset '{name}'; try stylegan3-t-256|512|1024, stylegan3-r-256|512|1024, stylegan2-256|512|1024"
        ))
    };
    let (kind, res) = name.rsplit_once('-').ok_or_else(unknown)?;
    let res: usize = res.parse().map_err(|_| unknown())?;
    let base = serde_json::json!({ "z_dim": 512, "w_dim": 512, "c_dim": 0, "img_resolution": res, "img_channels": 3 });
    let mut kw = base.as_object().cloned().unwrap_or_default();
    match kind {
        "stylegan3-t" => {
            kw.insert("mapping_kwargs".into(), serde_json::json!({ "num_layers": 2 }));
            Ok(GeneratorConfig::StyleGan3(Sg3Config::from_init_kwargs(&Value::Object(kw))?))
        }
        "stylegan3-r" => {
            kw.insert("mapping_kwargs".into(), serde_json::json!({ "num_layers": 2 }));
            kw.insert("channel_base".into(), 65536.into());
            kw.insert("channel_max".into(), 1024.into());
            kw.insert("conv_kernel".into(), 1.into());
            kw.insert("use_radial_filters".into(), true.into());
            Ok(GeneratorConfig::StyleGan3(Sg3Config::from_init_kwargs(&Value::Object(kw))?))
        }
        "stylegan2" => {
            kw.insert("mapping_kwargs".into(), serde_json::json!({ "num_layers": 8 }));
            Ok(GeneratorConfig::StyleGan2(Sg2Config::from_init_kwargs(&Value::Object(kw))?))
        }
        _ => Err(unknown()),
    }
}
