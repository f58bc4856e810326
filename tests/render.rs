//! The render worker's latent composition reproduces the official visualizer (`viz/w`, `viz/img`):
//! fractional seed blending, per-seed truncation with cutoff, style mixing, the input transform,
//! and per-seed random classes for conditional networks.

mod common;

use burn::tensor::Device;
use common::*;
use stylescope::model::layers::Trace;
use stylescope::render::compose::{render_with, LatentParams};
use stylescope::source::open_generator;
use stylescope::weights::Which;

#[test]
fn visualizer_semantics_match_the_official_renderer() {
    let device = Device::flex();
    for name in ["sg3t_64", "sg3t_64_cond4", "sg2_64"] {
        let g = open_generator(fixtures().join(format!("{name}.pkl")).to_str().unwrap(), Which::GEma, &device).unwrap().generator;
        let exp = expected(name);
        let viz = &fixture_json(name)["fixture_spec"]["viz"];
        let w0: Vec<(u32, f64)> = viz["w0_seeds"].as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap())).collect();
        let p = LatentParams {
            psi: viz["trunc_psi"].as_f64().unwrap(),
            cutoff: viz["trunc_cutoff"].as_u64().map(|c| c as usize),
            stylemix_seed: viz["stylemix_seed"].as_u64().unwrap() as u32,
            stylemix: viz["stylemix_idx"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect(),
            ..Default::default()
        };
        let mut m = [[0.0; 3]; 3];
        if let Some(t) = viz.get("input_transform").and_then(|t| t.as_array()) {
            for (i, row) in t.iter().enumerate() {
                for (j, v) in row.as_array().unwrap().iter().enumerate() {
                    m[i][j] = v.as_f64().unwrap();
                }
            }
        } else {
            m = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        }
        let mut trace = Trace::default();
        let img = render_with(&g, &device, &w0, &p, m, Some(&mut trace)).unwrap();
        assert_close(img, &exp, "viz/img", 1e-4);
    }
}
