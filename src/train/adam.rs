//! The optimiser and the generator's moving average, on the host, exactly as the official loop
//! runs them: torch's single-tensor Adam (β1 = 0, per-parameter step counts, parameters that got
//! no gradient skipped), `nan_to_num` of the gradients, and `G_ema ← lerp(G, G_ema, β)`.
//!
//! Weights live on the host between phases (`StateDict`), so an optimiser step is plain f32
//! arithmetic in torch's order, and a snapshot is the state itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::model::layers::lerp;
use crate::weights::HostTensor;

/// A network's parameters and buffers under their official state_dict names.
pub type StateDict = BTreeMap<String, HostTensor>;

/// One phase's gradients per parameter name (flattened like the parameter).
pub type Grads = BTreeMap<String, Vec<f32>>;

/// `torch.nan_to_num(nan=0, posinf=1e5, neginf=-1e5)`, as the loop applies to every gradient.
pub fn nan_to_num(g: &mut [f32]) {
    for v in g {
        if v.is_nan() {
            *v = 0.0;
        } else if *v == f32::INFINITY {
            *v = 1e5;
        } else if *v == f32::NEG_INFINITY {
            *v = -1e5;
        }
    }
}

/// Adam's state of one parameter.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AdamSlot {
    pub exp_avg: Vec<f32>,
    pub exp_avg_sq: Vec<f32>,
    pub step: u64,
}

/// `torch.optim.Adam(lr, betas, eps)` with its per-parameter state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Adam {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub state: BTreeMap<String, AdamSlot>,
}

impl Adam {
    pub fn new(lr: f64, betas: (f64, f64), eps: f64) -> Self {
        Self { lr, betas, eps, state: BTreeMap::new() }
    }

    /// The official optimiser of a network with lazy regularisation every `interval` steps
    /// (`None`: none): lr·r and betas^r with r = interval/(interval+1).
    pub fn lazy(lr: f64, betas: (f64, f64), eps: f64, interval: Option<u32>) -> Self {
        match interval {
            Some(i) => {
                let r = i as f64 / (i as f64 + 1.0);
                Self::new(lr * r, (betas.0.powf(r), betas.1.powf(r)), eps)
            }
            None => Self::new(lr, betas, eps),
        }
    }

    /// One step over every parameter that has a gradient in `grads` (others keep their value and
    /// state, like torch's `p.grad is None`). Gradients are used as given (apply [`nan_to_num`]
    /// first, as the loop does).
    pub fn step(&mut self, params: &mut StateDict, grads: &Grads) {
        // torch turns each Python scalar into f32 on its own: β2 and 1 − β2 (computed in f64)
        // round separately.
        let beta2 = self.betas.1 as f32;
        let (one_minus_beta1, one_minus_beta2) = ((1.0 - self.betas.0) as f32, (1.0 - self.betas.1) as f32);
        let eps = self.eps as f32;
        for (name, g) in grads {
            let Some(p) = params.get_mut(name) else { continue };
            if p.data.len() != g.len() {
                continue;
            }
            let slot = self.state.entry(name.clone()).or_insert_with(|| AdamSlot {
                exp_avg: vec![0.0; g.len()],
                exp_avg_sq: vec![0.0; g.len()],
                step: 0,
            });
            slot.step += 1;
            let t = slot.step as f64;
            let bias_correction1 = 1.0 - self.betas.0.powf(t);
            let bias_correction2 = 1.0 - self.betas.1.powf(t);
            let step_size = (self.lr / bias_correction1) as f32;
            let bc2_sqrt = bias_correction2.sqrt() as f32;
            // Zipped slices (indexing four vectors kept a bounds check per value and the loop
            // scalar); the same operations in the same order per value.
            for (((pi, m), v), &gi) in p.data.iter_mut().zip(&mut slot.exp_avg).zip(&mut slot.exp_avg_sq).zip(g.iter()) {
                *m = lerp(*m, gi, one_minus_beta1);
                *v = *v * beta2 + one_minus_beta2 * gi * gi;
                let denom = v.sqrt() / bc2_sqrt + eps;
                *pi += -step_size * (*m / denom);
            }
        }
    }
}

/// The G_ema decay for a step at `cur_nimg` images: `0.5^(batch / max(ema_nimg, 1e-8))` with
/// `ema_nimg = ema_kimg·1000`, capped by `cur_nimg·rampup` when a ramp-up is set.
pub fn ema_beta(batch: usize, ema_kimg: f64, ema_rampup: Option<f64>, cur_nimg: u64) -> f64 {
    let mut ema_nimg = ema_kimg * 1000.0;
    if let Some(r) = ema_rampup {
        ema_nimg = ema_nimg.min(cur_nimg as f64 * r);
    }
    0.5f64.powf(batch as f64 / ema_nimg.max(1e-8))
}

/// `G_ema ← lerp(G, G_ema, β)` for every parameter named in `params`; every other entry (the
/// buffers) is copied from G.
pub fn update_ema(g_ema: &mut StateDict, g: &StateDict, params: &[String], beta: f64) {
    let beta = beta as f32;
    for (name, t) in g {
        let is_param = params.iter().any(|p| p == name);
        match g_ema.get_mut(name) {
            Some(e) if is_param && e.data.len() == t.data.len() => {
                for (pe, &p) in e.data.iter_mut().zip(&t.data) {
                    *pe = lerp(p, *pe, beta);
                }
            }
            _ => {
                g_ema.insert(name.clone(), t.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_adam_step_moves_by_lr_times_sign() {
        let mut p: StateDict = BTreeMap::new();
        p.insert("w".into(), HostTensor { shape: vec![3], data: vec![1.0, 1.0, 1.0] });
        let mut g: Grads = BTreeMap::new();
        g.insert("w".into(), vec![0.5, -2.0, 0.0]);
        let mut adam = Adam::new(0.01, (0.0, 0.99), 1e-8);
        adam.step(&mut p, &g);
        let d = &p["w"].data;
        assert!((d[0] - 0.99).abs() < 1e-6 && (d[1] - 1.01).abs() < 1e-6 && d[2] == 1.0, "{d:?}");
        assert_eq!(adam.state["w"].step, 1);
        // A parameter without a gradient is untouched and gets no state.
        p.insert("b".into(), HostTensor { shape: vec![1], data: vec![3.0] });
        adam.step(&mut p, &g);
        assert_eq!(p["b"].data, vec![3.0]);
        assert!(!adam.state.contains_key("b"));
    }

    #[test]
    fn lazy_regularisation_scales_lr_and_betas() {
        let a = Adam::lazy(0.002, (0.0, 0.99), 1e-8, Some(16));
        assert!((a.lr - 0.001882352941).abs() < 1e-12);
        assert!((a.betas.1 - 0.9905854573).abs() < 1e-9);
        assert_eq!(Adam::lazy(0.0025, (0.0, 0.99), 1e-8, None).lr, 0.0025);
    }

    #[test]
    fn ema_starts_as_a_copy_and_ramps_up() {
        assert_eq!(ema_beta(4, 1.25, Some(0.05), 0), 0.0);
        assert!((ema_beta(4, 1.25, Some(0.05), 4) - 2f64.powi(-20)).abs() < 1e-15);
        assert!((ema_beta(4, 1.25, Some(0.05), 20000) - 0.5f64.powf(0.004)).abs() < 1e-15);
        let mut e: StateDict = BTreeMap::new();
        e.insert("w".into(), HostTensor { shape: vec![1], data: vec![0.0] });
        let mut g: StateDict = BTreeMap::new();
        g.insert("w".into(), HostTensor { shape: vec![1], data: vec![1.0] });
        g.insert("buf".into(), HostTensor { shape: vec![1], data: vec![7.0] });
        update_ema(&mut e, &g, &["w".into()], 0.25);
        assert_eq!(e["w"].data, vec![0.75]);
        assert_eq!(e["buf"].data, vec![7.0]);
    }

    #[test]
    fn nan_to_num_like_torch() {
        let mut g = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 2.0];
        nan_to_num(&mut g);
        assert_eq!(g, vec![0.0, 1e5, -1e5, 2.0]);
    }
}
