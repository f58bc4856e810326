use std::time::Instant;
use burn::tensor::{Device, DeviceKind, Distribution, Tensor, TensorData};
use stylescope::kernels::reference::{filtered_lrelu, Fir};
use stylescope::kernels::wgpu::{filtered_lrelu_wgpu_with, FirHost, Strategy};
use stylescope::model::config::{preset, GeneratorConfig};
use stylescope::model::filters::{design_lowpass_filter, DesignedFilter};
#[test]
#[ignore]
fn prof_lavapipe() {
    let gpu = Device::wgpu(DeviceKind::DefaultDevice);
    let GeneratorConfig::StyleGan3(cfg) = preset("stylegan3-t-256").unwrap() else { panic!() };
    for idx in [8usize, 10, 13] {
        let spec = &cfg.layers()[idx];
        let h = spec.in_size + 2;
        let c = 32;
        let x = Tensor::<4>::random([1, c, h, h], Distribution::Normal(0.0, 1.0), &gpu);
        let b = Tensor::<1>::zeros([c], &gpu);
        let fu = design_lowpass_filter(spec.up_taps, spec.in_cutoff, 2.0 * spec.in_half_width, spec.tmp_sampling_rate, false);
        let fd = design_lowpass_filter(spec.down_taps, spec.out_cutoff, 2.0 * spec.out_half_width, spec.tmp_sampling_rate, spec.down_radial);
        let fu_v = match fu.clone().unwrap() { DesignedFilter::Separable(v) => v, _ => panic!() };
        let fd_h = match fd.clone().unwrap() { DesignedFilter::Separable(v) => FirHost::Separable(v), DesignedFilter::Radial { taps, data } => FirHost::Full { n: taps, k: data } };
        for strategy in [Strategy::Fused, Strategy::TwoPass, Strategy::Fused, Strategy::TwoPass] {
            let t = Instant::now();
            let y = filtered_lrelu_wgpu_with(strategy, x.clone(), Some(&fu_v), Some(&fd_h), Some(b.clone()), spec.up_factor, spec.down_factor, spec.padding, 1.4, 0.2, Some(256.0));
            let v: Vec<f32> = y.map(|y| y.into_data().try_to_vec().unwrap()).unwrap_or_default();
            println!("{} {:?}: {:.3}s ({})", spec.name, strategy, t.elapsed().as_secs_f64(), v.len());
        }
        let fir = |f: &DesignedFilter| match f { DesignedFilter::Separable(v) => Fir::Separable(Tensor::from_data(TensorData::new(v.clone(), [v.len()]), &gpu)), DesignedFilter::Radial { taps, data } => Fir::Full(Tensor::from_data(TensorData::new(data.clone(), [*taps, *taps]), &gpu)) };
        for _ in 0..2 {
            let t = Instant::now();
            let y = filtered_lrelu(x.clone(), fu.as_ref().map(fir).as_ref(), fd.as_ref().map(fir).as_ref(), Some(b.clone()), spec.up_factor, spec.down_factor, spec.padding, 1.4, 0.2, Some(256.0));
            let v: Vec<f32> = y.into_data().try_to_vec().unwrap();
            println!("{} reference: {:.3}s ({})", spec.name, t.elapsed().as_secs_f64(), v.len());
        }
    }
}
