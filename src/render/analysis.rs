//! Analyses the render thread runs between frames for the Equivariance panel: the live EQ-T,
//! EQ-T_frac and EQ-R of the current latent (with the masked difference images), sweeps of PSNR
//! against sub-pixel translation or angle, and the average spectrum of the current network. A
//! job goes one synthesis at a time, so a new frame request is served between its steps and a
//! newer job (or a cancel) replaces it at once.

use std::sync::Arc;

use crate::metrics::eq_sampling::{synthesize, IDENTITY};
use crate::metrics::equivariance::{fractional_pseudo_rotation, fractional_rotation, fractional_translation, integer_translation, masked_sums, psnr, transform_buffer, EqKind};
use crate::metrics::spectrum::{heatmap, SpectrumAccumulator};
use crate::metrics::spectrum_plot::heatmap_rgba;
use crate::model::Generator;

use super::compose::{compose_w, LatentParams};
use super::pixels::viridis;
use crate::backend::BackendChoice;

/// One measurement: a kind and its translation (fraction of the image) or angle (radians).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EqPoint {
    pub kind: EqKind,
    pub t: [f64; 2],
    pub angle: f64,
}

/// What to compute.
#[derive(Clone, Debug, PartialEq)]
pub enum Analysis {
    /// The PSNR of each point for the latent; `heatmaps`: also the masked |ref − img| images.
    Equivariance { points: Vec<EqPoint>, heatmaps: bool },
    /// The average spectrum of `num` images (seeds 0..num, the latent's psi and class).
    Spectrum { num: usize },
    /// Stop the running job.
    Cancel,
}

/// A job for the render thread.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisRequest {
    /// Chosen by the window, echoed in the results.
    pub id: u64,
    pub network: String,
    pub backend: BackendChoice,
    pub latent: LatentParams,
    pub what: Analysis,
}

/// An RGBA image for the window.
#[derive(Clone, Debug, PartialEq)]
pub struct Rgba {
    pub width: usize,
    pub height: usize,
    pub pixels: Arc<Vec<u8>>,
}

/// Progress and results of a job (sent after each step of a sweep, and at the end).
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisResult {
    pub id: u64,
    pub done: usize,
    pub total: usize,
    /// PSNR in dB of each finished point, in order.
    pub psnr: Vec<f64>,
    /// The masked difference image of each finished point (when asked).
    pub heatmaps: Vec<Rgba>,
    /// The spectrum heatmap, when finished.
    pub spectrum: Option<Rgba>,
    pub error: Option<String>,
}

impl AnalysisResult {
    pub fn finished(&self) -> bool {
        self.done >= self.total || self.error.is_some()
    }
}

/// A job in progress.
pub struct Job {
    pub request: AnalysisRequest,
    ws: Option<burn::tensor::Tensor<3>>,
    orig: Option<Vec<f32>>,
    spectrum: Option<SpectrumAccumulator>,
    pub result: AnalysisResult,
}

impl Job {
    /// `None` for a cancel.
    pub fn new(request: AnalysisRequest) -> Option<Self> {
        let total = match &request.what {
            Analysis::Equivariance { points, .. } => points.len() + 1,
            Analysis::Spectrum { num } => *num,
            Analysis::Cancel => return None,
        };
        let result = AnalysisResult { id: request.id, done: 0, total, psnr: Vec::new(), heatmaps: Vec::new(), spectrum: None, error: None };
        Some(Self { request, ws: None, orig: None, spectrum: None, result })
    }

    /// One synthesis; true when the job is over (finished or failed).
    pub fn step(&mut self, g: &Generator) -> bool {
        if let Err(e) = self.try_step(g) {
            self.result.error = Some(e);
        }
        self.result.finished()
    }

    fn try_step(&mut self, g: &Generator) -> Result<(), String> {
        let device = g.device();
        let cfg = &g.config;
        let (c, r) = (cfg.img_channels(), cfg.img_resolution());
        let p = &self.request.latent;
        match &self.request.what {
            Analysis::Equivariance { points, heatmaps } => {
                if self.orig.is_none() {
                    if g.family() != crate::model::config::Family::StyleGan3 {
                        return Err("equivariance needs a StyleGAN3 network (its input transform)".into());
                    }
                    let ws = compose_w(g, &device, &super::compose::w0_seeds(p.x, p.y), p)?;
                    self.orig = Some(synthesize(g, &ws, IDENTITY, Default::default()).map_err(|e| e.to_string())?);
                    self.ws = Some(ws);
                    self.result.done = 1;
                    return Ok(());
                }
                let (Some(ws), Some(orig)) = (&self.ws, &self.orig) else { return Err("no reference image".into()) };
                let pt = points[self.result.done - 1];
                let img = synthesize(g, ws, transform_buffer(pt.kind, pt.t, pt.angle), Default::default()).map_err(|e| e.to_string())?;
                let (reference, compared, mask) = match pt.kind {
                    EqKind::TranslateInt => {
                        let (rf, m) = integer_translation(orig, c, r, r, pt.t[0], pt.t[1]);
                        (rf, img, m)
                    }
                    EqKind::TranslateFrac => {
                        let (rf, m) = fractional_translation(orig, c, r, r, pt.t[0], pt.t[1]);
                        (rf, img, m)
                    }
                    EqKind::Rotate => {
                        let (rf, rm) = fractional_rotation(orig, c, r, r, pt.angle);
                        let (ps, pm) = fractional_pseudo_rotation(&img, c, r, r, pt.angle);
                        (rf, ps, rm.iter().zip(&pm).map(|(a, b)| a * b).collect())
                    }
                };
                let (e, m) = masked_sums(&reference, &compared, &mask, c);
                self.result.psnr.push(psnr(e, m));
                if *heatmaps {
                    self.result.heatmaps.push(difference_rgba(&reference, &compared, &mask, c, r));
                }
                self.result.done += 1;
            }
            Analysis::Spectrum { num } => {
                let acc = self.spectrum.get_or_insert_with(|| SpectrumAccumulator::new(r, 8.0, 4));
                let seed = self.result.done as u32;
                let params = LatentParams { stylemix: Vec::new(), translate: (0.0, 0.0), rotate_turns: 0.0, ..p.clone() };
                let ws = compose_w(g, &device, &[(seed, 1.0)], &params)?;
                let img = synthesize(g, &ws, IDENTITY, Default::default()).map_err(|e| e.to_string())?;
                acc.add(&crate::export::quantize_chw(&img, c, r, r), c);
                self.result.done += 1;
                if self.result.done == *num {
                    let (mean, std) = acc.mean_std();
                    let s = acc.spectrum(mean, std.max(1e-12));
                    let h = heatmap(&s, acc.size, acc.image_size, 1.25);
                    let n = acc.size + 1;
                    self.result.spectrum = Some(Rgba { width: n, height: n, pixels: Arc::new(heatmap_rgba(&h, n)) });
                }
            }
            Analysis::Cancel => {}
        }
        Ok(())
    }
}

/// |ref − img| averaged over channels where the mask is 1 (viridis, 0…0.25), grey elsewhere.
fn difference_rgba(reference: &[f32], img: &[f32], mask: &[f32], c: usize, r: usize) -> Rgba {
    let hw = r * r;
    let mut out = vec![255u8; hw * 4];
    for p in 0..hw {
        let o = p * 4;
        if mask[p] == 0.0 {
            out[o..o + 3].copy_from_slice(&[96, 96, 96]);
            continue;
        }
        let d = (0..c).map(|ch| (reference[ch * hw + p] - img[ch * hw + p]).abs() as f64).sum::<f64>() / c as f64;
        out[o..o + 3].copy_from_slice(&viridis(d / 0.25));
    }
    Rgba { width: r, height: r, pixels: Arc::new(out) }
}
