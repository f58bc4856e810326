//! Whole-network parity on burn's wgpu backend (Mesa's lavapipe in CI): the same official numbers
//! as on the CPU. Tiny 64² fixture networks only; software Vulkan is slow.

mod common;

use burn::tensor::{Tensor, TensorData};
use common::*;
use stylescope::backend::BackendChoice;
use stylescope::model::{NoiseMode, SynthesisOptions};
use stylescope::rng::z_from_seed;
use stylescope::source::open_generator;
use stylescope::weights::Which;

#[test]
fn fixture_networks_match_on_wgpu() {
    let device = BackendChoice::Wgpu.device();
    for name in ["sg3t_64", "sg3r_64", "sg2_64"] {
        let path = fixtures().join(format!("{name}.pkl"));
        let g = open_generator(path.to_str().unwrap(), Which::GEma, &device).unwrap().generator;
        let exp = expected(name);
        let z: Vec<f32> = z_from_seed(42, g.config.z_dim()).into_iter().map(|v| v as f32).collect();
        let z = Tensor::<2>::from_data(TensorData::new(z, [1, g.config.z_dim()]), &device);
        let ws = g.mapping(z, None, 0.5, None, None);
        assert_close(ws.clone(), &exp, "ws/seed42/psi0.5", 1e-4);
        let opts = SynthesisOptions { noise_mode: NoiseMode::Const, ..Default::default() };
        assert_close(g.synthesis(ws, &opts, None), &exp, "img/seed42/psi0.5/const", 1e-4);
    }
}

/// The discriminator on wgpu: its blur and down-sampling go through `upfirdn2d.wgsl`.
#[test]
fn discriminator_logits_match_on_wgpu() {
    use stylescope::model::discriminator::Discriminator;
    use stylescope::weights::NetworkFile;
    let device = BackendChoice::Wgpu.device();
    let name = "sg2_64";
    let exp = expected(name);
    let file = NetworkFile::read(&fixtures().join(format!("{name}.pkl")), Which::D).unwrap();
    let cfg = file.discriminator_config().unwrap();
    let mut w = file.into_weights();
    let d = Discriminator::load(&cfg, &mut w, &device).unwrap();
    let (shape, input) = get(&exp, "D/input");
    let input = Tensor::<4>::from_data(
        TensorData::new(input.iter().map(|v| *v as f32).collect::<Vec<_>>(), [shape[0], shape[1], shape[2], shape[3]]),
        &device,
    );
    assert_close(d.forward(input, None), &exp, "D/logits_batch4", 1e-4);
}
