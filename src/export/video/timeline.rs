//! Keyframe timelines: each keyframe is a full set of the explorer's latent controls
//! ([`LatentParams`]: seed x/y with the visualizer's blending, psi and cutoff, style-mix seed and
//! layers, noise, translate, rotate, class) with the time to the next keyframe and how to get
//! there (linear, cubic ease in/out, or a spherical interpolation of z between two seeds). Saved
//! as RON or JSON (by extension), the same struct the window's Export panel edits.

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::model::Generator;
use crate::render::compose::{compose_w, input_transform, w0_seeds, LatentParams};

/// How a segment moves from its keyframe to the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Easing {
    #[default]
    Linear,
    /// Smooth start and stop (3u² − 2u³).
    Cubic,
    /// Spherical interpolation of z between the two keyframes' seeds (other controls linear).
    Slerp,
}

/// One keyframe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keyframe {
    pub latent: LatentParams,
    /// Seconds from this keyframe to the next (ignored on the last one unless the timeline loops).
    #[serde(default = "default_duration")]
    pub duration: f64,
    #[serde(default)]
    pub easing: Easing,
}

fn default_duration() -> f64 {
    2.0
}

/// A timeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    pub keyframes: Vec<Keyframe>,
    /// Go from the last keyframe back to the first.
    #[serde(default, rename = "loop")]
    pub looping: bool,
}

impl Timeline {
    /// Reads a `.ron` or `.json` timeline; errors name the file, the line and the field.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let t: Self = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("json") => serde_json::from_str(&text).map_err(|e| format!("{}: line {}, column {}: {e}", path.display(), e.line(), e.column()))?,
            _ => ron::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?,
        };
        t.check().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(t)
    }

    /// Writes it as RON or JSON (by extension), atomically.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("json") => serde_json::to_string_pretty(self).map_err(|e| e.to_string())?,
            _ => ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default()).map_err(|e| e.to_string())?,
        };
        crate::weights::safetensors::write_atomic(path, text.as_bytes()).map_err(|e| e.to_string())
    }

    fn check(&self) -> Result<(), String> {
        if self.keyframes.is_empty() {
            return Err("the timeline has no keyframes".into());
        }
        for (i, k) in self.keyframes.iter().enumerate() {
            if !(k.duration.is_finite() && k.duration > 0.0) {
                return Err(format!("keyframe {i}: duration must be a positive number of seconds (got {})", k.duration));
            }
            if !k.latent.psi.is_finite() {
                return Err(format!("keyframe {i}: psi must be a number"));
            }
        }
        Ok(())
    }

    /// Why `network` (of family `family`) cannot play this timeline: StyleGAN2 has no input
    /// transform to translate or rotate.
    pub fn check_family(&self, family: crate::model::config::Family) -> Result<(), String> {
        if family == crate::model::config::Family::StyleGan3 {
            return Ok(());
        }
        match self.keyframes.iter().position(|k| k.latent.translate != (0.0, 0.0) || k.latent.rotate_turns != 0.0) {
            Some(i) => Err(format!("keyframe {i} translates or rotates, but a StyleGAN2 or StyleGAN (v1) network has no input transform (set translate and rotate_turns to 0)")),
            None => Ok(()),
        }
    }

    fn segments(&self) -> usize {
        if self.looping {
            self.keyframes.len()
        } else {
            self.keyframes.len().saturating_sub(1)
        }
    }

    /// Frames at `fps`: every segment's duration, plus the last keyframe itself when not looping.
    pub fn num_frames(&self, fps: f64) -> usize {
        if self.keyframes.is_empty() {
            return 0;
        }
        let secs: f64 = self.keyframes.iter().take(self.segments()).map(|k| k.duration).sum();
        (secs * fps).round() as usize + usize::from(!self.looping)
    }

    /// Where frame `idx` is: the segment's keyframes, the eased position u ∈ [0, 1] and the easing.
    fn locate(&self, idx: usize, fps: f64) -> (&Keyframe, &Keyframe, f64) {
        let n = self.keyframes.len();
        let mut t = idx as f64 / fps;
        for s in 0..self.segments() {
            let k = &self.keyframes[s];
            if t < k.duration {
                return (k, &self.keyframes[(s + 1) % n], t / k.duration);
            }
            t -= k.duration;
        }
        let last = &self.keyframes[if self.looping { 0 } else { n - 1 }];
        (last, last, 0.0)
    }

    /// The controls of frame `idx`, and (for a slerp segment between two seeds) the seeds and the
    /// position between them.
    pub fn at(&self, idx: usize, fps: f64) -> (LatentParams, Option<(u32, u32, f64)>) {
        let (a, b, u) = self.locate(idx, fps);
        let e = match a.easing {
            Easing::Cubic => u * u * (3.0 - 2.0 * u),
            _ => u,
        };
        let lerp = |x: f64, y: f64| x + (y - x) * e;
        let (pa, pb) = (&a.latent, &b.latent);
        // Discrete controls switch half way.
        let discrete = if e < 0.5 { pa } else { pb };
        let p = LatentParams {
            x: lerp(pa.x, pb.x),
            y: lerp(pa.y, pb.y),
            psi: lerp(pa.psi, pb.psi),
            translate: (lerp(pa.translate.0, pb.translate.0), lerp(pa.translate.1, pb.translate.1)),
            rotate_turns: lerp(pa.rotate_turns, pb.rotate_turns),
            noise: crate::render::compose::NoiseParams { gain: lerp(pa.noise.gain, pb.noise.gain), ..discrete.noise },
            ..discrete.clone()
        };
        let slerp = (a.easing == Easing::Slerp && e > 0.0 && e < 1.0 && pa.seed() != pb.seed()).then(|| (pa.seed(), pb.seed(), e));
        (p, slerp)
    }
}

/// `slerp(a, b, t)` of two vectors (linear when they are parallel).
fn slerp(a: &[f64], b: &[f64], t: f64) -> Vec<f64> {
    let (na, nb) = (a.iter().map(|v| v * v).sum::<f64>().sqrt(), b.iter().map(|v| v * v).sum::<f64>().sqrt());
    let cos = (a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / (na * nb)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    if omega.abs() < 1e-6 {
        return a.iter().zip(b).map(|(x, y)| x + (y - x) * t).collect();
    }
    let (sa, sb) = (((1.0 - t) * omega).sin() / omega.sin(), (t * omega).sin() / omega.sin());
    a.iter().zip(b).map(|(x, y)| sa * x + sb * y).collect()
}

/// Renders frame `idx` of `timeline` → HWC uint8 `(pixels, height, width, channels)`, exactly as
/// the explorer renders those controls (so a frame on a whole seed equals `stylescope gen`).
pub fn render_frame(g: &Generator, timeline: &Timeline, idx: usize, fps: f64) -> Result<(Vec<u8>, usize, usize, usize), String> {
    let device = g.device();
    let cfg = &g.config;
    let (p, slerp_seeds) = timeline.at(idx, fps);
    let img = match slerp_seeds {
        None => crate::render::compose::render_with(g, &device, &w0_seeds(p.x, p.y), &p, input_transform(p.translate, p.rotate_turns), None)?,
        Some((sa, sb, t)) => {
            let za = crate::rng::z_from_seed(sa, cfg.z_dim());
            let zb = crate::rng::z_from_seed(sb, cfg.z_dim());
            let z: Vec<f32> = slerp(&za, &zb, t).into_iter().map(|v| v as f32).collect();
            let z = Tensor::<2>::from_data(TensorData::new(z, [1, cfg.z_dim()]), &device);
            let ws = g.mapping(z, crate::model::one_hot(p.class.unwrap_or(0), cfg.c_dim(), 1, &device), p.psi, p.cutoff, None);
            // Style mixing and the transform as the explorer applies them.
            let mixed = if p.stylemix.is_empty() { ws } else { mix(g, &device, ws, &p)? };
            let transform = crate::model::invert3(input_transform(p.translate, p.rotate_turns)).ok_or("the input transform is singular")?;
            let opts = crate::model::SynthesisOptions { noise_mode: p.noise.mode, noise_gain: p.noise.gain, transform: Some(transform), ..Default::default() };
            g.synthesis(mixed, &opts, None)
        }
    };
    let (res, ch) = (cfg.img_resolution(), cfg.img_channels());
    let data = crate::backend::read_f32(img).map_err(|e| e.to_string())?;
    Ok((super::super::quantize_chw(&data, ch, res, res), res, res, ch))
}

/// The style-mix seed's ws in the chosen layers.
fn mix(g: &Generator, device: &burn::tensor::Device, ws: Tensor<3>, p: &LatentParams) -> Result<Tensor<3>, String> {
    let other = compose_w(g, device, &[(p.stylemix_seed, 1.0)], &LatentParams { stylemix: Vec::new(), ..p.clone() })?;
    let n = g.config.num_ws();
    let parts: Vec<Tensor<3>> = (0..n).map(|i| if p.stylemix.contains(&i) { other.clone().narrow(1, i, 1) } else { ws.clone().narrow(1, i, 1) }).collect();
    Ok(Tensor::cat(parts, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kf(x: f64, duration: f64, easing: Easing) -> Keyframe {
        Keyframe { latent: LatentParams { x, ..Default::default() }, duration, easing }
    }

    #[test]
    fn frames_follow_durations_and_easing() {
        let t = Timeline { keyframes: vec![kf(0.0, 1.0, Easing::Linear), kf(4.0, 2.0, Easing::Cubic), kf(8.0, 1.0, Easing::Linear)], looping: false };
        assert_eq!(t.num_frames(10.0), 31);
        assert_eq!(t.at(0, 10.0).0.x, 0.0);
        assert!((t.at(5, 10.0).0.x - 2.0).abs() < 1e-12);
        assert_eq!(t.at(10, 10.0).0.x, 4.0);
        // Cubic: half way in time is half way in value, a quarter in is less than a quarter.
        assert!((t.at(20, 10.0).0.x - 6.0).abs() < 1e-12);
        assert!(t.at(15, 10.0).0.x < 5.0);
        assert_eq!(t.at(30, 10.0).0.x, 8.0);
        let looped = Timeline { looping: true, ..t };
        assert_eq!(looped.num_frames(10.0), 40);
        assert!((looped.at(35, 10.0).0.x - 4.0).abs() < 1e-12, "back towards the first keyframe");
    }

    #[test]
    fn bad_files_say_where() {
        let dir = std::env::temp_dir().join(format!("stylescope-timeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.json");
        std::fs::write(&p, "{\"keyframes\": [\n {\"latent\": {\"x\": 1}, \"duration\": 1, \"easing\": \"bounce\"}]}").unwrap();
        let e = Timeline::load(&p).unwrap_err();
        assert!(e.contains("t.json: line 2") && e.contains("bounce"), "{e}");
        std::fs::write(&p, "{\"keyframes\": [{\"latent\": {}, \"duration\": -1}]}").unwrap();
        assert!(Timeline::load(&p).unwrap_err().contains("keyframe 0: duration"));
        let ron_path = dir.join("t.ron");
        let t = Timeline { keyframes: vec![kf(3.0, 1.5, Easing::Slerp)], looping: true };
        t.save(&ron_path).unwrap();
        assert_eq!(Timeline::load(&ron_path).unwrap(), t);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
