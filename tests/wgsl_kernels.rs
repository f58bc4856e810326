//! The WGSL kernels (`kernels::wgpu`) against the pure-tensor reference, on random inputs covering
//! every layer shape of the official StyleGAN3 T and R 256² schedules and StyleGAN2's resampling
//! calls (2 channels, batch 2). The reference runs on the CPU backend with the same numbers; the
//! kernels on burn's wgpu backend (Mesa's lavapipe in CI, hence the small channel counts).

use burn::tensor::{Device, DeviceKind, Distribution, Tensor, TensorData};
use stylescope::kernels::reference::{filtered_lrelu, upfirdn2d, Fir};
use stylescope::kernels::wgpu::{filtered_lrelu_wgpu, filtered_lrelu_wgpu_with, upfirdn2d_wgpu, FirHost, Strategy};
use stylescope::model::config::{preset, GeneratorConfig, Sg3LayerSpec};
use stylescope::model::filters::{design_lowpass_filter, DesignedFilter};

fn wgpu() -> Device {
    Device::wgpu(DeviceKind::DefaultDevice)
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec().unwrap()
}

/// The same numbers on another device.
fn copy_to<const D: usize>(t: &Tensor<D>, device: &Device) -> Tensor<D> {
    Tensor::from_data(t.to_data(), device)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    // `f64::max` would skip NaN: count a non-finite value as an infinite error.
    if a.iter().chain(b).any(|v| !v.is_finite()) {
        return f64::INFINITY;
    }
    a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64).fold(0.0, f64::max)
}

fn fir(f: &FirHost, device: &Device) -> Fir {
    match f {
        FirHost::Separable(v) => Fir::Separable(Tensor::from_data(TensorData::new(v.clone(), [v.len()]), device)),
        FirHost::Full { n, k } => Fir::Full(Tensor::from_data(TensorData::new(k.clone(), [*n, *n]), device)),
    }
}

fn host(f: DesignedFilter) -> FirHost {
    match f {
        DesignedFilter::Separable(v) => FirHost::Separable(v),
        DesignedFilter::Radial { taps, data } => FirHost::Full { n: taps, k: data },
    }
}

/// Max abs error of the WGSL filtered_lrelu (run with `strategy`) against the reference for one
/// layer.
fn sg3_layer_error(spec: &Sg3LayerSpec, channels: usize, gpu: &Device, strategy: Strategy) -> f64 {
    let cpu = Device::flex();
    cpu.seed(spec.idx as u64 + 11);
    let in_size = spec.in_size + spec.conv_kernel - 1; // the modulated conv's output
    // Amplitude 4 so the clamp (256 · √2 gain after up-sampling) stays out of the way, while
    // the leaky ReLU sees both signs.
    let x = Tensor::<4>::random([2, channels, in_size, in_size], Distribution::Normal(0.0, 4.0), &cpu);
    let b = Tensor::<1>::random([channels], Distribution::Normal(0.0, 0.3), &cpu);
    let fu = design_lowpass_filter(spec.up_taps, spec.in_cutoff, 2.0 * spec.in_half_width, spec.tmp_sampling_rate, false).map(host);
    let fd = design_lowpass_filter(spec.down_taps, spec.out_cutoff, 2.0 * spec.out_half_width, spec.tmp_sampling_rate, spec.down_radial).map(host);
    let (gain, slope) = if spec.is_torgb { (1.0, 1.0) } else { (std::f64::consts::SQRT_2, 0.2) };
    let clamp = 256.0;
    let reference = filtered_lrelu(
        x.clone(),
        fu.as_ref().map(|f| fir(f, &cpu)).as_ref(),
        fd.as_ref().map(|f| fir(f, &cpu)).as_ref(),
        Some(b.clone()),
        spec.up_factor,
        spec.down_factor,
        spec.padding,
        gain,
        slope,
        Some(clamp),
    );
    let fu_taps = fu.as_ref().map(|f| match f {
        FirHost::Separable(v) => v.as_slice(),
        FirHost::Full { .. } => panic!("{}: the up filter is always separable", spec.name),
    });
    let ours = filtered_lrelu_wgpu_with(
        strategy,
        copy_to(&x, gpu),
        fu_taps,
        fd.as_ref(),
        Some(copy_to(&b, gpu)),
        spec.up_factor,
        spec.down_factor,
        spec.padding,
        gain as f32,
        slope as f32,
        Some(clamp as f32),
    )
    .unwrap_or_else(|| panic!("{}: {strategy:?} declined a wgpu tensor", spec.name));
    assert_eq!(ours.dims(), reference.dims(), "{}", spec.name);
    assert_eq!(ours.dims()[2], spec.out_size, "{}", spec.name);
    max_abs_diff(&to_vec(ours), &to_vec(reference))
}

fn sg3_schedule(name: &str) {
    let gpu = wgpu();
    let GeneratorConfig::StyleGan3(cfg) = preset(name).unwrap() else { panic!("{name} is not StyleGAN3") };
    for spec in cfg.layers() {
        // The 1024 schedules repeat the 256 shapes at larger sizes: cover the new sizes only.
        if name.ends_with("1024") && spec.out_size < 500 {
            continue;
        }
        // Every 256² layer fits the fused kernel's tiles; the two-pass path is the fallback.
        for strategy in [Strategy::Fused, Strategy::TwoPass] {
            let err = sg3_layer_error(&spec, 2, &gpu, strategy);
            println!(
                "{name} {} ({strategy:?}): up {} down {} pad {:?} radial {} -> max abs error {err:e}",
                spec.name, spec.up_factor, spec.down_factor, spec.padding, spec.down_radial
            );
            assert!(err <= 1e-5, "{name} {} ({strategy:?}): max abs error {err:e}", spec.name);
        }
    }
}

#[test]
fn wgsl_filtered_lrelu_matches_reference_on_sg3_t_256() {
    sg3_schedule("stylegan3-t-256");
}

#[test]
fn wgsl_filtered_lrelu_matches_reference_on_sg3_r_256() {
    sg3_schedule("stylegan3-r-256");
}

/// ~2 min on the 2-core CI machines (mostly the CPU reference): `cargo test --test wgsl_kernels -- --ignored`.
#[test]
#[ignore = "slow: the 1024² layers on lavapipe and the CPU reference"]
fn wgsl_filtered_lrelu_matches_reference_on_sg3_1024_large_layers() {
    sg3_schedule("stylegan3-t-1024");
    sg3_schedule("stylegan3-r-1024");
}

#[test]
fn wgsl_filtered_lrelu_clamps_and_skips_bias() {
    // Large inputs hit the clamp; no bias; identity filters (the `None` paths).
    let (cpu, gpu) = (Device::flex(), wgpu());
    cpu.seed(5);
    let x = Tensor::<4>::random([2, 3, 9, 11], Distribution::Normal(0.0, 50.0), &cpu);
    let fd = FirHost::Separable(vec![0.25, 0.5, 0.25]);
    for (fu, up, down, padding) in [(None, 1, 1, [0, 0, 0, 0]), (None, 2, 2, [1, 2, -1, 0]), (Some(vec![0.5f32, 1.0, 0.5]), 2, 1, [3, 2, 1, 4])] {
        let fu_fir = fu.clone().map(FirHost::Separable);
        let want = filtered_lrelu(
            x.clone(),
            fu_fir.as_ref().map(|f| fir(f, &cpu)).as_ref(),
            Some(&fir(&fd, &cpu)),
            None,
            up,
            down,
            padding,
            std::f64::consts::SQRT_2,
            0.2,
            Some(30.0),
        );
        let want_dims = want.dims();
        let want = to_vec(want);
        for strategy in [Strategy::Fused, Strategy::TwoPass] {
            // A non-contiguous view of the same numbers (the kernels make it contiguous first).
            let x_view = copy_to(&x.clone().swap_dims(2, 3), &gpu).swap_dims(2, 3);
            let got = filtered_lrelu_wgpu_with(strategy, x_view, fu.as_deref(), Some(&fd), None, up, down, padding, std::f32::consts::SQRT_2, 0.2, Some(30.0)).unwrap();
            assert_eq!(got.dims()[2..], [want_dims[2], want_dims[3]]);
            let err = max_abs_diff(&to_vec(got), &want);
            assert!(err <= 1e-5, "{strategy:?} up {up} down {down} {padding:?}: {err:e}");
        }
    }
}

#[test]
fn wgsl_kernels_decline_other_backends() {
    let cpu = Device::flex();
    let x = Tensor::<4>::zeros([1, 1, 4, 4], &cpu);
    assert!(upfirdn2d_wgpu(x.clone(), None, 1, 1, [0; 4], 1.0).is_none());
    assert!(filtered_lrelu_wgpu(x, None, None, None, 1, 1, [0; 4], 1.0, 0.2, None).is_none());
    // The CPU backend under autodiff neither.
    let x = Tensor::<4>::zeros([1, 1, 4, 4], &cpu.autodiff());
    assert!(upfirdn2d_wgpu(x, None, 1, 1, [0; 4], 1.0).is_none());
}

/// `loss = Σ op(x) · r` for a fixed random `r`; returns the gradients of `x` and of `bias`.
fn grads_of(op: &dyn Fn(Tensor<4>, Tensor<1>) -> Tensor<4>, x: &Tensor<4>, b: &Tensor<1>, device: &Device, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let x = copy_to(x, device).require_grad();
    let b = copy_to(b, device).require_grad();
    let y = op(x.clone(), b.clone());
    // The cotangent from a local generator: the backend's seeded RNG is shared by the tests
    // running in parallel, so a draw after `seed` could differ between the two calls compared.
    let dims = y.dims();
    let r = Tensor::<4>::from_data(TensorData::new(fixed_normal(dims.iter().product(), seed), dims), &Device::flex());
    let grads = (y * copy_to(&r, device)).sum().backward();
    (to_vec(x.grad(&grads).expect("no gradient for x")), b.grad(&grads).map(to_vec).unwrap_or_default())
}

/// `len` standard-normal values from `seed` alone (splitmix64, Box–Muller).
fn fixed_normal(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut uniform = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..len)
        .map(|_| {
            let (u, v) = (uniform().max(1e-300), uniform());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect()
}

/// Max abs difference relative to the reference's largest value (which must not vanish: a zero
/// gradient would compare equal to anything).
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    assert!(scale > 1e-3, "the reference gradient is (nearly) zero");
    max_abs_diff(a, b) / scale
}

/// The kernels under burn's Autodiff on wgpu: their backward (the transposed kernels) gives the
/// reference's gradients (reference under autodiff on the CPU backend).
#[test]
fn wgsl_upfirdn2d_gradients_match_reference() {
    let (cpu, gpu) = (Device::flex().autodiff(), wgpu().autodiff());
    let f4 = FirHost::Separable(vec![1.0 / 8.0, 3.0 / 8.0, 3.0 / 8.0, 1.0 / 8.0]);
    let radial = FirHost::Full { n: 3, k: vec![0.0, 0.1, 0.05, 0.1, 0.4, 0.1, 0.02, 0.1, 0.03] };
    let cases: Vec<(&str, Option<&FirHost>, usize, usize, usize, [i64; 4], f32)> = vec![
        ("upsample2d x2", Some(&f4), 8, 2, 1, [2, 1, 2, 1], 4.0),
        ("D blur", Some(&f4), 16, 1, 1, [2, 2, 2, 2], 1.0),
        ("D down x2 (odd)", Some(&f4), 15, 1, 2, [1, 1, 1, 1], 1.0),
        ("full 2-D, up 2 down 3, crop", Some(&radial), 12, 2, 3, [-1, 2, 3, -2], 2.0),
        ("identity, up 3, pad", None, 7, 3, 1, [1, 0, 2, 3], 9.0),
    ];
    for (i, (what, f, size, up, down, padding, gain)) in cases.into_iter().enumerate() {
        let plain = Device::flex();
        plain.seed(300 + i as u64);
        let x = Tensor::<4>::random([2, 2, size, size + 1], Distribution::Normal(0.0, 1.0), &plain);
        let b = Tensor::<1>::zeros([2], &plain);
        let fir_cpu = f.map(|f| fir(f, &cpu));
        let reference = |x: Tensor<4>, _b: Tensor<1>| upfirdn2d(x, fir_cpu.as_ref(), up, down, padding, false, gain as f64);
        let kernel = |x: Tensor<4>, _b: Tensor<1>| upfirdn2d_wgpu(x, f, up, down, padding, gain).expect("declined an autodiff wgpu tensor");
        let (want, _) = grads_of(&reference, &x, &b, &cpu, 900 + i as u64);
        let (got, _) = grads_of(&kernel, &x, &b, &gpu, 900 + i as u64);
        let err = rel_err(&got, &want);
        println!("{what}: gradient rel. error {err:e}");
        assert!(err <= 1e-5, "{what}: gradient rel. error {err:e}");
    }
}

#[test]
fn wgsl_filtered_lrelu_gradients_match_reference() {
    let (cpu, gpu) = (Device::flex().autodiff(), wgpu().autodiff());
    for name in ["stylegan3-t-256", "stylegan3-r-256"] {
        let GeneratorConfig::StyleGan3(cfg) = preset(name).unwrap() else { panic!() };
        let layers = cfg.layers();
        // The first layer, one in the middle (a different up/down schedule), the last feature
        // layer, ToRGB.
        let picks = [0, layers.len() / 2, layers.len() - 2, layers.len() - 1];
        for &i in &picks {
            let spec = &layers[i];
            let plain = Device::flex();
            plain.seed(500 + i as u64);
            let in_size = spec.in_size + spec.conv_kernel - 1;
            let x = Tensor::<4>::random([2, 2, in_size, in_size], Distribution::Normal(0.0, 3.0), &plain);
            let b = Tensor::<1>::random([2], Distribution::Normal(0.0, 0.3), &plain);
            let fu = design_lowpass_filter(spec.up_taps, spec.in_cutoff, 2.0 * spec.in_half_width, spec.tmp_sampling_rate, false).map(host);
            let fd = design_lowpass_filter(spec.down_taps, spec.out_cutoff, 2.0 * spec.out_half_width, spec.tmp_sampling_rate, spec.down_radial).map(host);
            let (gain, slope) = if spec.is_torgb { (1.0, 1.0) } else { (std::f64::consts::SQRT_2, 0.2) };
            // A low clamp, so its zero gradient is exercised too.
            let clamp = 3.0;
            let (fu_cpu, fd_cpu) = (fu.as_ref().map(|f| fir(f, &cpu)), fd.as_ref().map(|f| fir(f, &cpu)));
            let reference = |x: Tensor<4>, b: Tensor<1>| {
                filtered_lrelu(x, fu_cpu.as_ref(), fd_cpu.as_ref(), Some(b), spec.up_factor, spec.down_factor, spec.padding, gain, slope, Some(clamp))
            };
            let fu_taps = fu.as_ref().map(|f| match f {
                FirHost::Separable(v) => v.as_slice(),
                FirHost::Full { .. } => panic!("the up filter is always separable"),
            });
            let kernel = |x: Tensor<4>, b: Tensor<1>| {
                filtered_lrelu_wgpu(x, fu_taps, fd.as_ref(), Some(b), spec.up_factor, spec.down_factor, spec.padding, gain as f32, slope as f32, Some(clamp as f32))
                    .expect("declined an autodiff wgpu tensor")
            };
            let (want_x, want_b) = grads_of(&reference, &x, &b, &cpu, 700 + i as u64);
            let (got_x, got_b) = grads_of(&kernel, &x, &b, &gpu, 700 + i as u64);
            let (ex, eb) = (rel_err(&got_x, &want_x), rel_err(&got_b, &want_b));
            println!("{name} {}: gradient rel. error x {ex:e}, bias {eb:e}", spec.name);
            assert!(ex <= 1e-4 && eb <= 1e-4, "{name} {}: gradient rel. error x {ex:e}, bias {eb:e}", spec.name);
        }
    }
}

#[test]
fn wgsl_upfirdn2d_matches_reference_on_sg2_calls() {
    let (cpu, gpu) = (Device::flex(), wgpu());
    let f4 = FirHost::Separable(vec![1.0 / 8.0, 3.0 / 8.0, 3.0 / 8.0, 1.0 / 8.0]);
    let radial = FirHost::Full { n: 3, k: vec![0.0, 0.1, 0.05, 0.1, 0.4, 0.1, 0.02, 0.1, 0.03] };
    // (what, filter, size, up, down, padding, gain)
    let cases: Vec<(&str, Option<&FirHost>, usize, usize, usize, [i64; 4], f32)> = vec![
        ("upsample2d x2 (toRGB skip)", Some(&f4), 8, 2, 1, [2, 1, 2, 1], 4.0),
        ("upsample2d x2 (toRGB skip)", Some(&f4), 33, 2, 1, [2, 1, 2, 1], 4.0),
        ("conv up x2: blur after transposed conv", Some(&f4), 17, 1, 1, [1, 1, 1, 1], 4.0),
        ("D conv down x2: blur before strided conv", Some(&f4), 32, 1, 1, [2, 2, 2, 2], 1.0),
        ("D skip 1x1 down x2", Some(&f4), 32, 1, 2, [1, 1, 1, 1], 1.0),
        ("D skip 1x1 down x2 (odd)", Some(&f4), 31, 1, 2, [1, 1, 1, 1], 1.0),
        ("full 2-D kernel, up 2 down 3, crop", Some(&radial), 20, 2, 3, [-1, 2, 3, -2], 2.0),
        ("identity, up 3, pad", None, 7, 3, 1, [1, 0, 2, 3], 9.0),
        ("identity, down 2", None, 9, 1, 2, [0, 0, 0, 0], 1.0),
    ];
    for (i, (what, f, size, up, down, padding, gain)) in cases.into_iter().enumerate() {
        cpu.seed(100 + i as u64);
        let x = Tensor::<4>::random([2, 2, size, size + 1], Distribution::Normal(0.0, 1.0), &cpu);
        let want = upfirdn2d(x.clone(), f.map(|f| fir(f, &cpu)).as_ref(), up, down, padding, false, gain as f64);
        let got = upfirdn2d_wgpu(copy_to(&x, &gpu), f, up, down, padding, gain).unwrap();
        assert_eq!(got.dims(), want.dims(), "{what}");
        let err = max_abs_diff(&to_vec(got), &to_vec(want));
        println!("{what} size {size}: max abs error {err:e}");
        assert!(err <= 1e-5, "{what} size {size}: max abs error {err:e}");
    }
}
