//! Every fast kernel against the pure-tensor reference, on random inputs covering each layer shape
//! of the official StyleGAN3 T and R schedules (small channel counts).

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use stylescope::kernels::cpu::{FilteredLrelu, Taps};
use stylescope::kernels::reference::{filtered_lrelu, Fir};
use stylescope::model::config::{preset, GeneratorConfig, Sg3LayerSpec};
use stylescope::model::filters::{design_lowpass_filter, DesignedFilter};

fn cpu_vs_reference(spec: &Sg3LayerSpec, channels: usize) -> f64 {
    let device = Device::flex();
    device.seed(spec.idx as u64 + 7);
    let in_size = spec.in_size + spec.conv_kernel - 1; // the modulated conv's output
    let x = Tensor::<4>::random([2, channels, in_size, in_size], Distribution::Normal(0.0, 1.0), &device);
    let b = Tensor::<1>::random([channels], Distribution::Normal(0.0, 0.3), &device);
    let fu = design_lowpass_filter(spec.up_taps, spec.in_cutoff, 2.0 * spec.in_half_width, spec.tmp_sampling_rate, false);
    let fd = design_lowpass_filter(spec.down_taps, spec.out_cutoff, 2.0 * spec.out_half_width, spec.tmp_sampling_rate, spec.down_radial);
    let (gain, slope) = if spec.is_torgb { (1.0, 1.0) } else { (std::f64::consts::SQRT_2, 0.2) };
    let to_fir = |f: &DesignedFilter| match f {
        DesignedFilter::Separable(v) => Fir::Separable(Tensor::from_data(TensorData::new(v.clone(), [v.len()]), &device)),
        DesignedFilter::Radial { taps, data } => Fir::Full(Tensor::from_data(TensorData::new(data.clone(), [*taps, *taps]), &device)),
    };
    let reference = filtered_lrelu(
        x.clone(),
        fu.as_ref().map(to_fir).as_ref(),
        fd.as_ref().map(to_fir).as_ref(),
        Some(b.clone()),
        spec.up_factor,
        spec.down_factor,
        spec.padding,
        gain,
        slope,
        Some(256.0),
    );
    let op = FilteredLrelu {
        up: spec.up_factor,
        down: spec.down_factor,
        padding: spec.padding,
        gain: gain as f32,
        slope: slope as f32,
        clamp: Some(256.0),
        fu: fu.map(|f| f.data().to_vec()),
        fd: fd.map(|f| match f {
            DesignedFilter::Separable(v) => Taps::Separable(v),
            DesignedFilter::Radial { taps, data } => Taps::Full { n: taps, k: data },
        }),
    };
    let data: Vec<f32> = x.into_data().try_to_vec().unwrap();
    let bias: Vec<f32> = b.into_data().try_to_vec().unwrap();
    let (oh, ow) = op.output_size(in_size, in_size);
    assert_eq!([2, channels, oh, ow], reference.dims(), "{}", spec.name);
    assert_eq!(oh, spec.out_size, "{}", spec.name);
    let ours = op.run(&data, 2 * channels, in_size, in_size, &bias);
    let want: Vec<f32> = reference.into_data().try_to_vec().unwrap();
    ours.iter().zip(&want).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max)
}

#[test]
fn cpu_filtered_lrelu_matches_reference_on_official_schedules() {
    for name in ["stylegan3-t-256", "stylegan3-r-256", "stylegan3-t-1024", "stylegan3-r-1024"] {
        let GeneratorConfig::StyleGan3(cfg) = preset(name).unwrap() else { panic!() };
        for spec in cfg.layers() {
            // The 1024 schedules repeat the 256 shapes at larger sizes: cover the new sizes only.
            if name.ends_with("1024") && spec.out_size < 500 {
                continue;
            }
            let err = cpu_vs_reference(&spec, 2);
            assert!(err < 2e-5, "{name} {}: max abs error {err:e}", spec.name);
        }
    }
}

#[test]
fn cpu_conv2d_matches_burn_conv2d() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    let device = Device::flex();
    device.seed(3);
    for (i, o, h, k) in [(5, 7, 9, 3), (3, 4, 6, 1), (16, 9, 38, 3), (4, 130, 5, 3)] {
        let pad = k - 1;
        let x = Tensor::<4>::random([1, i, h, h + 1], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random([o, i, k, k], Distribution::Normal(0.0, 1.0), &device);
        let want: Vec<f32> = conv2d(x.clone(), w.clone(), None, ConvOptions::new([1, 1], [pad, pad], [1, 1], 1)).into_data().try_to_vec().unwrap();
        let xs: Vec<f32> = x.into_data().try_to_vec().unwrap();
        let ws: Vec<f32> = w.into_data().try_to_vec().unwrap();
        let (got, ho, wo) = stylescope::kernels::cpu::conv2d(&xs, i, h, h + 1, &ws, o, k, pad);
        assert_eq!((ho, wo), (h + 2 * pad - k + 1, h + 1 + 2 * pad - k + 1));
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err < 1e-4, "conv {i}->{o} {h} k{k}: {err:e}");
    }
}
