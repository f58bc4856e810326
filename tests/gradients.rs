//! Gradients under burn's autodiff match the official ones (`grad_Gmain/*`, `grad_Dmain/*`,
//! `loss/r1_grads`): through the reference ops on the CPU backend, and through the WGSL kernels
//! and their backward on the wgpu backend (lavapipe in CI). The ground work for training.

mod common;

use burn::tensor::activation::softplus;
use burn::tensor::{Device, Tensor, TensorData};
use common::*;
use stylescope::model::discriminator::Discriminator;
use stylescope::model::{Generator, SynthesisOptions};
use stylescope::weights::{NetworkFile, Which};

fn load(name: &str, device: &Device) -> (Generator, Discriminator) {
    let pkl = fixtures().join(format!("{name}.pkl"));
    let g = NetworkFile::read(&pkl, Which::GEma).unwrap();
    let gcfg = g.generator_config().unwrap();
    let g = Generator::load(&gcfg, &mut g.into_weights(), device).unwrap();
    let d = NetworkFile::read(&pkl, Which::D).unwrap();
    let dcfg = d.discriminator_config().unwrap();
    let d = Discriminator::load(&dcfg, &mut d.into_weights(), device).unwrap();
    (g, d)
}

fn tensor2(exp: &Expected, key: &str, device: &Device) -> Option<Tensor<2>> {
    let (shape, v) = get(exp, key);
    if shape[1] == 0 {
        return None;
    }
    Some(Tensor::from_data(TensorData::new(v.iter().map(|x| *x as f32).collect::<Vec<_>>(), [shape[0], shape[1]]), device))
}

/// Relative error of a gradient: max |a − b| / max(max |b|, 1e-6).
fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-6);
    max_abs(got, want) / scale
}

#[test]
fn generator_and_discriminator_gradients_match() {
    check_gradients(&Device::flex().autodiff());
}

/// On wgpu, StyleGAN3's `filtered_lrelu` and StyleGAN2's / D's `upfirdn2d` run as WGSL kernels
/// whose backward is the transposed kernels (`kernels::wgpu::backward`).
#[test]
fn gradients_match_through_the_wgsl_kernels() {
    check_gradients(&stylescope::backend::BackendChoice::Wgpu.device().autodiff());
}

fn check_gradients(device: &Device) {
    let device = device.clone();
    for name in networks() {
        let name = name.as_str();
        let exp = expected(name);
        if !exp.contains_key("loss/loss_Gmain") {
            continue;
        }
        let (g, d) = load(name, &device);
        let z = tensor2(&exp, "loss/z", &device).unwrap();
        let c = tensor2(&exp, "loss/c", &device);

        // Gmain: mean(softplus(-D(G(z)))) w.r.t. G's stored parameters.
        let img = g.synthesis(g.mapping(z, c.clone(), 1.0, None, None), &SynthesisOptions::default(), None);
        assert_close(img.clone(), &exp, "loss/gen_img", 1e-4);
        let logits = d.forward(img, c.clone());
        assert_close(logits.clone(), &exp, "loss/gen_logits", 1e-4);
        let loss = softplus(logits.neg(), 1.0).mean();
        let grads = loss.backward();
        let mut compared = 0;
        for (key, p) in g.named_params() {
            let Some((_, want)) = exp.get(&format!("grad_Gmain/{key}")) else { continue };
            let got = to_vec(p.grad_flat(&grads).unwrap_or_else(|| panic!("{name}: no gradient for {key}")));
            let err = rel_err(&got, want);
            assert!(err < 5e-4, "{name} grad_Gmain/{key}: relative error {err:e}");
            compared += 1;
        }
        let expected_count = exp.keys().filter(|k| k.starts_with("grad_Gmain/")).count();
        assert_eq!(compared, expected_count, "{name}: compared {compared} of {expected_count} G gradients");

        // Dmain: mean(softplus(D(fake))) + mean(softplus(-D(real))) w.r.t. D's parameters.
        let (gs, gv) = get(&exp, "loss/gen_img");
        let fake = Tensor::<4>::from_data(TensorData::new(gv.iter().map(|x| *x as f32).collect::<Vec<_>>(), [gs[0], gs[1], gs[2], gs[3]]), &device);
        let (rs, rv) = get(&exp, "loss/reals");
        let reals = Tensor::<4>::from_data(TensorData::new(rv.iter().map(|x| *x as f32).collect::<Vec<_>>(), [rs[0], rs[1], rs[2], rs[3]]), &device);
        let loss = softplus(d.forward(fake, c.clone()), 1.0).mean() + softplus(d.forward(reals.clone(), c.clone()).neg(), 1.0).mean();
        let grads = loss.backward();
        let mut compared = 0;
        for (key, p) in d.named_params() {
            let Some((_, want)) = exp.get(&format!("grad_Dmain/{key}")) else { continue };
            let got = to_vec(p.grad_flat(&grads).unwrap_or_else(|| panic!("{name}: no gradient for {key}")));
            let err = rel_err(&got, want);
            assert!(err < 5e-4, "{name} grad_Dmain/{key}: relative error {err:e}");
            compared += 1;
        }
        let expected_count = exp.keys().filter(|k| k.starts_with("grad_Dmain/")).count();
        assert_eq!(compared, expected_count, "{name}: compared {compared} of {expected_count} D gradients");

        // R1's first half: ∂ΣD(real)/∂real.
        let reals = reals.require_grad();
        let grads = d.forward(reals.clone(), c).sum().backward();
        let r1 = reals.grad(&grads).expect("gradient w.r.t. the reals");
        let (_, want) = get(&exp, "loss/r1_grads");
        let err = rel_err(&to_vec(r1), want);
        assert!(err < 5e-4, "{name} r1_grads: relative error {err:e}");
    }
}
