//! The architecture computed from init kwargs equals the official one: StyleGAN3 layer schedules
//! (sizes, sampling rates, cutoffs, half widths, channels, taps, paddings), designed filters, and
//! the StyleGAN2 block table.

mod common;

use common::*;
use stylescope::model::config::{GeneratorConfig, Sg3Config};
use stylescope::model::filters::design_lowpass_filter;

fn close(a: f64, b: &serde_json::Value, what: &str) {
    let b = b.as_f64().unwrap_or_else(|| panic!("{what}: not a number"));
    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{what}: {a} vs {b}");
}

#[test]
fn stylegan3_schedules_match_the_official_ones() {
    for name in ["sg3t_64", "sg3r_64", "sg3t_64_cond4"] {
        let j = fixture_json(name);
        let cfg = Sg3Config::from_init_kwargs(&j["G_init_kwargs"]).unwrap();
        assert_eq!(cfg.num_ws() as u64, j["num_ws"].as_u64().unwrap());
        let layers = cfg.layers();
        let want = j["synthesis"]["layers"].as_array().unwrap();
        assert_eq!(layers.len(), want.len());
        let weights = stylescope::weights::safetensors::read_all_f64(&fixtures().join(format!("{name}.G_ema.safetensors"))).unwrap();
        for (l, w) in layers.iter().zip(want) {
            let n = &l.name;
            assert_eq!(n, w["name"].as_str().unwrap());
            assert_eq!(l.is_torgb, w["is_torgb"].as_bool().unwrap(), "{n}");
            assert_eq!(l.is_critically_sampled, w["is_critically_sampled"].as_bool().unwrap(), "{n}");
            assert_eq!(l.in_channels as u64, w["in_channels"].as_u64().unwrap(), "{n}");
            assert_eq!(l.out_channels as u64, w["out_channels"].as_u64().unwrap(), "{n}");
            assert_eq!(l.in_size as u64, w["in_size"][0].as_u64().unwrap(), "{n}");
            assert_eq!(l.out_size as u64, w["out_size"][0].as_u64().unwrap(), "{n}");
            close(l.in_sampling_rate, &w["in_sampling_rate"], n);
            close(l.out_sampling_rate, &w["out_sampling_rate"], n);
            close(l.tmp_sampling_rate, &w["tmp_sampling_rate"], n);
            close(l.in_cutoff, &w["in_cutoff"], n);
            close(l.out_cutoff, &w["out_cutoff"], n);
            close(l.in_half_width, &w["in_half_width"], n);
            close(l.out_half_width, &w["out_half_width"], n);
            assert_eq!(l.conv_kernel as u64, w["conv_kernel"].as_u64().unwrap(), "{n}");
            assert_eq!(l.up_factor as u64, w["up_factor"].as_u64().unwrap(), "{n}");
            assert_eq!(l.down_factor as u64, w["down_factor"].as_u64().unwrap(), "{n}");
            assert_eq!(l.up_taps as u64, w["up_taps"].as_u64().unwrap(), "{n}");
            assert_eq!(l.down_taps as u64, w["down_taps"].as_u64().unwrap(), "{n}");
            assert_eq!(l.down_radial, w["down_radial"].as_bool().unwrap(), "{n}");
            let pad: Vec<i64> = w["padding"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            assert_eq!(l.padding.to_vec(), pad, "{n}");
            // Designed filters equal the stored buffers.
            let up = design_lowpass_filter(l.up_taps, l.in_cutoff, 2.0 * l.in_half_width, l.tmp_sampling_rate, false);
            let down = design_lowpass_filter(l.down_taps, l.out_cutoff, 2.0 * l.out_half_width, l.tmp_sampling_rate, l.down_radial);
            for (kind, f) in [("up_filter", up), ("down_filter", down)] {
                let key = format!("synthesis.{n}.{kind}");
                match (f, weights.get(&key)) {
                    (None, None) => {}
                    (Some(f), Some((shape, stored))) => {
                        assert_eq!(f.shape(), *shape, "{key}");
                        let err = max_abs(f.data(), stored);
                        assert!(err < 1e-7, "{key}: designed filter differs by {err:e}");
                    }
                    (f, s) => panic!("{key}: designed {:?} vs stored {:?}", f.is_some(), s.is_some()),
                }
            }
        }
    }
}

#[test]
fn official_1024_schedule_matches_the_reference_table() {
    // From the reference digest's table for config T at 1024.
    let GeneratorConfig::StyleGan3(t) = stylescope::model::config::preset("stylegan3-t-1024").unwrap() else { panic!() };
    let names: Vec<String> = t.layers().iter().map(|l| l.name.clone()).collect();
    assert_eq!(
        names,
        [
            "L0_36_512", "L1_36_512", "L2_52_512", "L3_52_512", "L4_84_512", "L5_148_512", "L6_148_512", "L7_276_323",
            "L8_276_203", "L9_532_128", "L10_1044_81", "L11_1044_51", "L12_1044_32", "L13_1024_32", "L14_1024_3"
        ]
    );
    let pads: Vec<[i64; 4]> = t.layers().iter().map(|l| l.padding).collect();
    assert_eq!(pads[0], [9, 8, 9, 8]);
    assert_eq!(pads[2], [-6, -9, -6, -9]);
    assert_eq!(pads[13], [-11, -12, -11, -12]);
    let GeneratorConfig::StyleGan3(r) = stylescope::model::config::preset("stylegan3-r-1024").unwrap() else { panic!() };
    let ch: Vec<usize> = r.layers().iter().map(|l| l.out_channels).collect();
    assert_eq!(ch, [1024, 1024, 1024, 1024, 1024, 1024, 1024, 645, 406, 256, 161, 102, 64, 64, 3]);
    let l0 = &r.layers()[0];
    assert_eq!(l0.padding, [11, 10, 11, 10]);
    assert!(l0.down_radial && !r.layers()[12].down_radial);
}

#[test]
fn stylegan2_blocks_match_the_official_ones() {
    let j = fixture_json("sg2_64");
    let GeneratorConfig::StyleGan2(cfg) = GeneratorConfig::from_init_kwargs(stylescope::model::config::Family::StyleGan2, &j["G_init_kwargs"]).unwrap() else {
        panic!()
    };
    assert_eq!(cfg.num_ws() as u64, j["num_ws"].as_u64().unwrap());
    let want = j["synthesis"]["blocks"].as_array().unwrap();
    let blocks = cfg.blocks();
    assert_eq!(blocks.len(), want.len());
    for (b, w) in blocks.iter().zip(want) {
        assert_eq!(b.name, w["name"].as_str().unwrap());
        assert_eq!(b.in_channels as u64, w["in_channels"].as_u64().unwrap());
        assert_eq!(b.out_channels as u64, w["out_channels"].as_u64().unwrap());
        assert_eq!(b.num_conv as u64, w["num_conv"].as_u64().unwrap());
    }
}
