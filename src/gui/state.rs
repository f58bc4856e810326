//! What the explorer remembers between runs (serde + ron), and the `stylescope gen` line that
//! reproduces the current image.
//!
//! One file, `$XDG_CONFIG_HOME/stylescope/state.ron`, holds every setting; "Save view…" writes the
//! same struct anywhere, so a view is reopened with exactly the same controls.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::BackendChoice;
use crate::render::NoiseMode;
use crate::render::{LatentParams, LayerView, ModelInfo};

/// How many networks the "Recent" list keeps.
pub const RECENT_MAX: usize = 12;

/// The explorer's persisted settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Path or `preset:NAME` of the shown network.
    pub network: String,
    /// The backend the user picked (`None` = the machine's default).
    pub backend: Option<BackendChoice>,
    pub recent: Vec<String>,
    pub latent: LatentParams,
    pub view: LayerView,
    /// Latent animation: x advances by `anim_speed` seeds per second.
    pub anim_latent: bool,
    pub anim_speed: f64,
    /// Style-mix seed + 1 every frame.
    pub anim_stylemix: bool,
    /// Noise seed + 1 every frame.
    pub anim_noise: bool,
    /// Circular translation, `translate_speed` image widths per second.
    pub anim_translate: bool,
    pub translate_speed: f64,
    /// Rotation, `rotate_speed` turns per second.
    pub anim_rotate: bool,
    pub rotate_speed: f64,
    /// Snap the translation to whole output pixels.
    pub round_translate: bool,
    /// Where "Save image" and "Save window" write.
    pub capture_dir: PathBuf,
    /// GUI frame-rate limit while animating.
    pub fps_cap: f64,
    /// Titles of the control sections that are expanded.
    pub open_sections: Vec<String>,
    /// The Training panel's form.
    pub train: crate::runs::TrainForm,
    /// The run the Training panel showed last (shown again when the window reopens).
    pub train_run: Option<PathBuf>,
    /// Equivariance metrics: the live readout, on a drawn sample, with difference images.
    pub eq_live: bool,
    pub eq_drawn: bool,
    pub eq_differences: bool,
    /// The Export panel's timeline, its file (once saved or opened), fps and output.
    pub timeline: crate::export::video::timeline::Timeline,
    pub timeline_path: Option<PathBuf>,
    pub video_fps: f64,
    pub video_output: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            network: String::new(),
            backend: None,
            recent: Vec::new(),
            latent: LatentParams::default(),
            view: LayerView::default(),
            anim_latent: false,
            anim_speed: 0.25,
            anim_stylemix: false,
            anim_noise: false,
            anim_translate: false,
            translate_speed: 1e-2,
            anim_rotate: false,
            rotate_speed: 5e-3,
            round_translate: false,
            capture_dir: PathBuf::from("captures"),
            fps_cap: 60.0,
            open_sections: ["Model", "Latent", "Truncation", "Style mixing"].map(String::from).to_vec(),
            train: crate::runs::TrainForm::default(),
            train_run: None,
            eq_live: false,
            eq_drawn: false,
            eq_differences: false,
            timeline: Default::default(),
            timeline_path: None,
            video_fps: 30.0,
            video_output: PathBuf::from("video.mp4"),
        }
    }
}

impl Settings {
    /// Puts `network` first in the recent list.
    pub fn remember(&mut self, network: &str) {
        self.recent.retain(|r| r != network);
        self.recent.insert(0, network.to_string());
        self.recent.truncate(RECENT_MAX);
    }

    /// The latent controls as rendered: translation rounded to whole pixels when asked.
    pub fn effective_latent(&self, resolution: Option<usize>) -> LatentParams {
        let mut p = self.latent.clone();
        if let (true, Some(res)) = (self.round_translate, resolution) {
            let r = res as f64;
            p.translate = ((p.translate.0 * r).round() / r, (p.translate.1 * r).round() / r);
        }
        p
    }
}

/// `$XDG_CONFIG_HOME/stylescope/state.ron` (or `~/.config/...`).
pub fn default_state_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("stylescope").join("state.ron"))
}

/// Loads settings; a missing file gives the defaults, an unreadable one the defaults and a message.
pub fn load(path: &Path) -> (Settings, Option<String>) {
    match std::fs::read_to_string(path) {
        Ok(text) => match ron::from_str(&text) {
            Ok(s) => (s, None),
            Err(e) => (Settings::default(), Some(format!("{}: ignored unreadable settings: {e}", path.display()))),
        },
        Err(_) => (Settings::default(), None),
    }
}

pub fn save(path: &Path, settings: &Settings) -> Result<(), String> {
    let text = ron::ser::to_string_pretty(settings, ron::ser::PrettyConfig::default()).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The `stylescope gen` command that writes exactly the current image, or why there is none.
pub fn gen_command(s: &Settings, model: &ModelInfo, backend: BackendChoice) -> Result<String, String> {
    let p = s.effective_latent(Some(model.resolution));
    if p.x.fract() != 0.0 || p.y.fract() != 0.0 {
        return Err("the latent sits between seeds (press Snap first)".into());
    }
    if p.stylemix.iter().any(|&i| i < model.num_ws) {
        return Err("style mixing has no `gen` flag (untick the style-mix boxes)".into());
    }
    if s.view.untransform && model.is_stylegan3() {
        return Err("the untransform view resamples the image; `gen` writes it as rendered".into());
    }
    if s.view.layer.is_some() || s.view.normalize || s.view.gain_db != 0.0 {
        return Err("the view shows an inner layer or a scaled image; `gen` writes the plain output".into());
    }
    let sg2 = !model.is_stylegan3();
    if sg2 && p.noise.mode == NoiseMode::Random {
        return Err("random noise draws from the device RNG; `gen` cannot reproduce it (use const or none)".into());
    }
    if sg2 && p.noise.gain != 1.0 && p.noise.mode != NoiseMode::None {
        return Err("a noise strength other than 1 has no `gen` flag".into());
    }
    let seed = p.seed();
    let class = match (model.c_dim, p.class) {
        (0, _) => None,
        (_, Some(c)) => Some(c),
        // The visualizer draws the class after z from the seed's stream: name it explicitly.
        (c_dim, None) => {
            let mut rng = crate::rng::RandomState::new(seed);
            let _ = rng.randn(model.z_dim);
            Some(rng.randint(c_dim as u32) as usize)
        }
    };
    let quote = |v: &str| {
        if v.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:+,=@".contains(c)) {
            v.to_string()
        } else {
            format!("'{}'", v.replace('\'', r"'\''"))
        }
    };
    let mut cmd = format!("stylescope gen --network {} --seeds {seed} --trunc {}", quote(&s.network), p.psi);
    if let Some(c) = p.cutoff.filter(|&c| c < model.num_ws) {
        cmd += &format!(" --trunc-cutoff {c}");
    }
    if let Some(c) = class {
        cmd += &format!(" --class {c}");
    }
    if sg2 && p.noise.mode == NoiseMode::None {
        cmd += " --noise-mode none";
    }
    if !sg2 && (p.translate != (0.0, 0.0) || p.rotate_turns != 0.0) {
        // gen_images.py's make_transform(translate, degrees) is the visualizer's matrix with
        // the angle in degrees instead of turns.
        cmd += &format!(" --translate {},{} --rotate {}", p.translate.0, p.translate.1, p.rotate_turns * 360.0);
    }
    if backend != BackendChoice::Cpu {
        cmd += &format!(" --backend {}", backend.name());
    }
    cmd += " --outdir out";
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Family;

    fn model(c_dim: usize) -> ModelInfo {
        ModelInfo {
            network: "net.pkl".into(),
            origin: "net.pkl".into(),
            family: Family::StyleGan3,
            untrained: false,
            description: None,
            z_dim: 64,
            w_dim: 64,
            num_ws: 16,
            c_dim,
            resolution: 64,
            summary: String::new(),
            device: "cpu".into(),
            backend: BackendChoice::Cpu,
            load_ms: 0.0,
        }
    }

    #[test]
    fn settings_roundtrip_through_ron() {
        let mut s = Settings { network: "a b.pkl".into(), ..Default::default() };
        s.latent.x = 3.0;
        s.latent.stylemix = vec![1, 2];
        s.view.layer = Some("L3_36_16".into());
        let text = ron::ser::to_string(&s).unwrap();
        assert_eq!(ron::from_str::<Settings>(&text).unwrap(), s);
        // Old or partial files load with defaults for the rest.
        let partial: Settings = ron::from_str("(network: \"x.pkl\")").unwrap();
        assert_eq!(partial.network, "x.pkl");
        assert_eq!(partial.fps_cap, 60.0);
    }

    #[test]
    fn gen_command_only_when_reproducible() {
        let mut s = Settings { network: "net.pkl".into(), ..Default::default() };
        s.latent.x = 42.0;
        s.latent.psi = 0.7;
        let m = model(0);
        assert_eq!(gen_command(&s, &m, BackendChoice::Cpu).unwrap(), "stylescope gen --network net.pkl --seeds 42 --trunc 0.7 --outdir out");
        s.latent.translate = (0.25, 0.0);
        s.latent.rotate_turns = 0.125;
        s.latent.cutoff = Some(8);
        assert_eq!(
            gen_command(&s, &m, BackendChoice::Wgpu).unwrap(),
            "stylescope gen --network net.pkl --seeds 42 --trunc 0.7 --trunc-cutoff 8 --translate 0.25,0 --rotate 45 --backend wgpu --outdir out"
        );
        s.latent.x = 42.5;
        assert!(gen_command(&s, &m, BackendChoice::Cpu).is_err());
        s.latent.x = 42.0;
        s.latent.stylemix = vec![3];
        assert!(gen_command(&s, &m, BackendChoice::Cpu).is_err());
    }

    #[test]
    fn gen_command_names_the_class_the_visualizer_draws() {
        let mut s = Settings { network: "c.pkl".into(), ..Default::default() };
        s.latent.x = 3.0;
        let cmd = gen_command(&s, &model(4), BackendChoice::Cpu).unwrap();
        let mut rng = crate::rng::RandomState::new(3);
        let _ = rng.randn(64);
        assert!(cmd.contains(&format!("--class {}", rng.randint(4))), "{cmd}");
    }

    #[test]
    fn rounding_snaps_translation_to_pixels() {
        let mut s = Settings { round_translate: true, ..Default::default() };
        s.latent.translate = (0.0101, -0.26);
        let p = s.effective_latent(Some(64));
        assert_eq!(p.translate, (1.0 / 64.0, -17.0 / 64.0));
    }
}
