//! `stylescope train`'s options: train.py's flags under the same names and defaults, and what
//! train.py derives from them (network constructor arguments, learning rates, loss settings,
//! EMA and ADA parameters), so a pasted official command means the same run.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::backend::BackendChoice;
use crate::train::loss::LossOptions;

/// `--cfg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Cfg {
    #[value(name = "stylegan3-t")]
    #[serde(rename = "stylegan3-t")]
    StyleGan3T,
    #[value(name = "stylegan3-r")]
    #[serde(rename = "stylegan3-r")]
    StyleGan3R,
    #[value(name = "stylegan2")]
    #[serde(rename = "stylegan2")]
    StyleGan2,
}

impl Cfg {
    pub fn name(self) -> &'static str {
        match self {
            Self::StyleGan3T => "stylegan3-t",
            Self::StyleGan3R => "stylegan3-r",
            Self::StyleGan2 => "stylegan2",
        }
    }
}

/// `--aug`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AugMode {
    Ada,
    Noaug,
    Fixed,
}

/// train.py's options (plus `--backend`).
#[derive(clap::Args, Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainOptions {
    /// Where to save the results (a numbered run folder is made inside).
    #[arg(long)]
    pub outdir: PathBuf,
    /// Base configuration.
    #[arg(long, value_enum)]
    pub cfg: Cfg,
    /// Training data: a folder or zip (the output of `stylescope dataset`, or plain images).
    #[arg(long)]
    pub data: PathBuf,
    /// Number of GPUs to use (one device per run for now: 1).
    #[arg(long)]
    pub gpus: usize,
    /// Total batch size.
    #[arg(long)]
    pub batch: usize,
    /// R1 regularization weight.
    #[arg(long)]
    pub gamma: f64,
    /// Train conditional model.
    #[arg(long, default_value = "false", value_parser = BoolishValueParser::new(), num_args = 1)]
    pub cond: bool,
    /// Enable dataset x-flips.
    #[arg(long, default_value = "false", value_parser = BoolishValueParser::new(), num_args = 1)]
    pub mirror: bool,
    /// Augmentation mode.
    #[arg(long, value_enum, default_value_t = AugMode::Ada)]
    pub aug: AugMode,
    /// Resume from given network pickle / .safetensors snapshot (fine-tuning, in a new run
    /// folder), or continue a run exactly: `latest` (the newest run in --outdir) or a run folder.
    #[arg(long)]
    pub resume: Option<String>,
    /// Freeze first layers of D.
    #[arg(long, default_value_t = 0)]
    pub freezed: usize,
    /// Probability for --aug=fixed.
    #[arg(long, default_value_t = 0.2)]
    pub p: f64,
    /// Target value for --aug=ada.
    #[arg(long, default_value_t = 0.6)]
    pub target: f64,
    /// Limit batch size per GPU (gradient accumulation).
    #[arg(long)]
    pub batch_gpu: Option<usize>,
    /// Capacity multiplier.
    #[arg(long, default_value_t = 32768)]
    pub cbase: usize,
    /// Max. feature maps.
    #[arg(long, default_value_t = 512)]
    pub cmax: usize,
    /// G learning rate [default: varies].
    #[arg(long)]
    pub glr: Option<f64>,
    /// D learning rate.
    #[arg(long, default_value_t = 0.002)]
    pub dlr: f64,
    /// Mapping network depth [default: varies].
    #[arg(long)]
    pub map_depth: Option<usize>,
    /// Minibatch std group size.
    #[arg(long, default_value_t = 4)]
    pub mbstd_group: usize,
    /// String to include in result dir name.
    #[arg(long)]
    pub desc: Option<String>,
    /// Quality metrics (only `none` is computed here; others are reported as skipped).
    #[arg(long, default_value = "fid50k_full")]
    pub metrics: String,
    /// Total training duration.
    #[arg(long, default_value_t = 25000.0)]
    pub kimg: f64,
    /// How often to print progress.
    #[arg(long, default_value_t = 4.0)]
    pub tick: f64,
    /// How often to save snapshots (in ticks).
    #[arg(long, default_value_t = 50)]
    pub snap: u64,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Disable mixed-precision: as in train.py, turns conv_clamp off in G and D (StyleScope
    /// always trains in float32).
    #[arg(long, default_value = "false", value_parser = BoolishValueParser::new(), num_args = 1)]
    pub fp32: bool,
    /// Disable cuDNN benchmarking (accepted; no effect here).
    #[arg(long, default_value = "false", value_parser = BoolishValueParser::new(), num_args = 1)]
    pub nobench: bool,
    /// DataLoader worker processes (accepted; images are decoded on the training thread).
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// Print training options and exit.
    #[arg(short = 'n', long, default_value_t = false)]
    pub dry_run: bool,
    /// Where the networks run.
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    pub backend: BackendChoice,
}

/// What train.py derives from the options for a dataset of `resolution`² × `channels` with
/// `c_dim` label dimensions.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Derived {
    pub g_class: String,
    pub g_kwargs: serde_json::Value,
    pub d_kwargs: serde_json::Value,
    pub g_lr: f64,
    pub d_lr: f64,
    pub g_reg_interval: Option<u32>,
    pub d_reg_interval: u32,
    pub loss: LossOptions,
    pub ema_kimg: f64,
    pub ema_rampup: Option<f64>,
    pub ada_kimg: f64,
    pub ada_target: Option<f64>,
    pub augment_p: f64,
    pub batch_gpu: usize,
}

impl TrainOptions {
    /// The defaults of every optional flag (the required ones set to placeholders), as the
    /// command line parses them.
    pub fn defaults() -> Option<Self> {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            o: TrainOptions,
        }
        use clap::Parser;
        Wrapper::try_parse_from(["train", "--outdir=.", "--cfg=stylegan2", "--data=.", "--gpus=1", "--batch=1", "--gamma=0"]).ok().map(|w| w.o)
    }

    /// train.py's checks, as one-line errors.
    pub fn validate(&self) -> Result<(), String> {
        if self.gpus != 1 {
            return Err(format!("--gpus {}: StyleScope trains on one device per run (use --gpus 1)", self.gpus));
        }
        if self.batch < 1 {
            return Err("--batch must be at least 1".into());
        }
        let batch_gpu = self.batch_gpu.unwrap_or(self.batch / self.gpus.max(1));
        if batch_gpu < 1 || self.batch % (self.gpus * batch_gpu) != 0 {
            return Err(format!("--batch {} must be a multiple of --gpus times --batch-gpu ({batch_gpu})", self.batch));
        }
        if batch_gpu < self.mbstd_group {
            return Err(format!("--batch-gpu {batch_gpu} cannot be smaller than --mbstd-group {}", self.mbstd_group));
        }
        if !(self.gamma >= 0.0) {
            return Err("--gamma must be non-negative".into());
        }
        if self.kimg <= 0.0 || self.tick <= 0.0 {
            return Err("--kimg and --tick must be positive".into());
        }
        if self.snap < 1 {
            return Err("--snap must be at least 1".into());
        }
        Ok(())
    }

    /// The constructor arguments and hyperparameters train.py builds.
    pub fn derive(&self, resolution: usize, channels: usize, c_dim: usize, resuming: bool) -> Derived {
        let batch_gpu = self.batch_gpu.unwrap_or(self.batch / self.gpus.max(1));
        let sg2 = self.cfg == Cfg::StyleGan2;
        let map_depth = self.map_depth.unwrap_or(if sg2 { 8 } else { 2 });
        let (mut cbase, mut cmax) = (self.cbase, self.cmax);
        let mut g = json!({
            "z_dim": 512, "w_dim": 512,
            "mapping_kwargs": {"num_layers": map_depth},
            "c_dim": c_dim, "img_resolution": resolution, "img_channels": channels,
        });
        let conv_clamp = if self.fp32 { serde_json::Value::Null } else { json!(256) };
        let g_class = if sg2 {
            g["fused_modconv_default"] = json!("inference_only");
            "Generator".to_string()
        } else {
            g["magnitude_ema_beta"] = json!(0.5f64.powf(self.batch as f64 / (20.0 * 1e3)));
            if self.cfg == Cfg::StyleGan3R {
                g["conv_kernel"] = json!(1);
                g["use_radial_filters"] = json!(true);
                cbase *= 2;
                cmax *= 2;
            }
            "Generator".to_string()
        };
        g["channel_base"] = json!(cbase);
        g["channel_max"] = json!(cmax);
        g["conv_clamp"] = conv_clamp.clone();
        let d = json!({
            "block_kwargs": {"freeze_layers": self.freezed},
            "mapping_kwargs": {},
            "epilogue_kwargs": {"mbstd_group_size": self.mbstd_group},
            "channel_base": self.cbase, "channel_max": self.cmax,
            "c_dim": c_dim, "img_resolution": resolution, "img_channels": channels,
            "conv_clamp": conv_clamp,
        });
        let blur = self.cfg == Cfg::StyleGan3R && !resuming;
        let loss = LossOptions {
            r1_gamma: self.gamma,
            style_mixing_prob: if sg2 { 0.9 } else { 0.0 },
            pl_weight: if sg2 { 2.0 } else { 0.0 },
            pl_batch_shrink: 2,
            pl_decay: 0.01,
            pl_no_weight_grad: sg2,
            blur_init_sigma: if blur { 10.0 } else { 0.0 },
            blur_fade_kimg: if self.cfg == Cfg::StyleGan3R { self.batch as f64 * 200.0 / 32.0 } else { 0.0 },
        };
        Derived {
            g_class,
            g_kwargs: g,
            d_kwargs: d,
            g_lr: self.glr.unwrap_or(if sg2 { 0.002 } else { 0.0025 }),
            d_lr: self.dlr,
            g_reg_interval: if sg2 { Some(4) } else { None },
            d_reg_interval: 16,
            loss,
            ema_kimg: self.batch as f64 * 10.0 / 32.0,
            ema_rampup: if resuming { None } else { Some(0.05) },
            ada_kimg: if resuming { 100.0 } else { 500.0 },
            ada_target: (self.aug == AugMode::Ada).then_some(self.target),
            augment_p: if self.aug == AugMode::Fixed { self.p } else { 0.0 },
            batch_gpu,
        }
    }

    /// The run folder's description: `{cfg}-{data}-gpus{g}-batch{b}-gamma{γ}[-desc]`.
    pub fn run_desc(&self) -> String {
        let data = self.data.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
        let mut d = format!("{}-{}-gpus{}-batch{}-gamma{}", self.cfg.name(), data, self.gpus, self.batch, fmt_g(self.gamma));
        if let Some(extra) = &self.desc {
            d.push('-');
            d.push_str(extra);
        }
        d
    }
}

/// Python's `{:g}` for the values a gamma takes (8.2 → "8.2", 2.0 → "2").
fn fmt_g(v: f64) -> String {
    let s = format!("{v}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        o: TrainOptions,
    }

    #[test]
    fn official_command_parses_with_official_defaults() {
        let p = P::try_parse_from(["x", "--outdir=runs", "--cfg=stylegan3-t", "--data=d.zip", "--gpus=1", "--batch=32", "--gamma=8.2", "--mirror=1"]).unwrap();
        let o = p.o;
        assert!(o.mirror && !o.cond);
        assert_eq!((o.aug, o.kimg, o.tick, o.snap, o.cbase, o.cmax, o.mbstd_group), (AugMode::Ada, 25000.0, 4.0, 50, 32768, 512, 4));
        assert_eq!(o.run_desc(), "stylegan3-t-d-gpus1-batch32-gamma8.2");
        let d = o.derive(256, 3, 0, false);
        assert_eq!(d.g_lr, 0.0025);
        assert_eq!(d.ema_kimg, 10.0);
        assert_eq!(d.g_kwargs["mapping_kwargs"]["num_layers"], 2);
        assert!((d.g_kwargs["magnitude_ema_beta"].as_f64().unwrap() - 0.5f64.powf(32.0 / 20000.0)).abs() < 1e-15);
        let mut r = o.clone();
        r.cfg = Cfg::StyleGan3R;
        let d = r.derive(256, 3, 0, false);
        assert_eq!((d.g_kwargs["channel_base"].as_u64(), d.loss.blur_init_sigma, d.loss.blur_fade_kimg), (Some(65536), 10.0, 200.0));
        assert_eq!(r.derive(256, 3, 0, true).loss.blur_init_sigma, 0.0);
        let mut s = o.clone();
        s.cfg = Cfg::StyleGan2;
        let d = s.derive(256, 3, 0, false);
        assert_eq!((d.g_lr, d.g_reg_interval, d.loss.pl_weight, d.loss.style_mixing_prob), (0.002, Some(4), 2.0, 0.9));
        let mut bad = o.clone();
        bad.gpus = 2;
        assert!(bad.validate().unwrap_err().contains("one device"));
    }
}
