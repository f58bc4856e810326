//! What the explorer remembers between runs (serde + ron), and the `stylescope gen` line that
//! reproduces the current image.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::backend::BackendChoice;
use crate::model::NoiseMode;
use crate::render::{LatentParams, LayerView};

/// The explorer's persisted settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub network: String,
    pub backend: Option<BackendChoice>,
    pub recent: Vec<String>,
    pub latent: LatentParams,
    pub view: LayerView,
    pub anim_latent: bool,
    pub anim_speed: f64,
    pub anim_translate: bool,
    pub anim_rotate: bool,
    pub anim_eq_speed: f64,
    pub round_translate: bool,
    pub capture_dir: PathBuf,
    pub fps_cap: f64,
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
            anim_translate: false,
            anim_rotate: false,
            anim_eq_speed: 0.1,
            round_translate: false,
            capture_dir: PathBuf::from("captures"),
            fps_cap: 60.0,
        }
    }
}

/// `$XDG_CONFIG_HOME/stylescope/state.ron` (or `~/.config/...`).
pub fn default_state_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("stylescope").join("state.ron"))
}

/// Loads settings; a missing or unreadable file gives the defaults (and a message for the latter).
pub fn load(path: &std::path::Path) -> (Settings, Option<String>) {
    match std::fs::read_to_string(path) {
        Ok(text) => match ron::from_str(&text) {
            Ok(s) => (s, None),
            Err(e) => (Settings::default(), Some(format!("{}: ignored unreadable settings: {e}", path.display()))),
        },
        Err(_) => (Settings::default(), None),
    }
}

pub fn save(path: &std::path::Path, settings: &Settings) -> Result<(), String> {
    let text = ron::ser::to_string_pretty(settings, ron::ser::PrettyConfig::default()).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The `stylescope gen` command that renders exactly the current image, or why there is none.
pub fn gen_command(s: &Settings, c_dim: usize, is_sg3: bool) -> Result<String, String> {
    let p = &s.latent;
    if p.x.fract() != 0.0 || p.y.fract() != 0.0 {
        return Err("the latent sits between seeds (press Snap first)".into());
    }
    if !p.stylemix.is_empty() {
        return Err("style mixing has no gen_images.py flag".into());
    }
    if s.view.layer.is_some() {
        return Err("an inner layer is shown; gen writes the output image".into());
    }
    if c_dim > 0 && p.class.is_none() {
        return Err("pick a class: per-seed random classes have no gen flag".into());
    }
    if p.noise.gain != 1.0 || (p.noise.mode == NoiseMode::Random) {
        return Err("noise gain / random noise seeds have no gen flag".into());
    }
    let quote = |v: &str| if v.contains(' ') { format!("'{v}'") } else { v.to_string() };
    let mut cmd = format!("stylescope gen --network {} --seeds {} --trunc {}", quote(&s.network), p.seed(), p.psi);
    if let Some(c) = p.cutoff {
        cmd += &format!(" --trunc-cutoff {c}");
    }
    if let Some(c) = p.class {
        cmd += &format!(" --class {c}");
    }
    if p.noise.mode == NoiseMode::None {
        cmd += " --noise-mode none";
    }
    if is_sg3 && (p.translate != (0.0, 0.0) || p.rotate_turns != 0.0) {
        // gen_images.py's make_transform is the visualizer's input transform with degrees for turns.
        cmd += &format!(" --translate {},{} --rotate {}", p.translate.0, p.translate.1, p.rotate_turns * 360.0);
    }
    if let Some(b) = s.backend {
        cmd += &format!(" --backend {}", b.name());
    }
    cmd += " --outdir out";
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_roundtrip_through_ron() {
        let mut s = Settings::default();
        s.network = "a b.pkl".into();
        s.latent.x = 3.0;
        s.latent.stylemix = vec![1, 2];
        let text = ron::ser::to_string(&s).unwrap();
        assert_eq!(ron::from_str::<Settings>(&text).unwrap(), s);
    }

    #[test]
    fn gen_command_only_when_reproducible() {
        let mut s = Settings { network: "net.pkl".into(), ..Default::default() };
        s.latent.x = 42.0;
        s.latent.psi = 0.7;
        assert_eq!(gen_command(&s, 0, true).unwrap(), "stylescope gen --network net.pkl --seeds 42 --trunc 0.7 --outdir out");
        s.latent.x = 42.5;
        assert!(gen_command(&s, 0, true).is_err());
    }
}
