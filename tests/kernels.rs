//! Every fast kernel against the pure-tensor reference, on random inputs covering each layer shape
//! of the official StyleGAN3 T and R schedules (small channel counts).

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use stylescope::kernels::cpu::{FilteredLrelu, Taps};
use stylescope::kernels::reference::{filtered_lrelu, Fir};
use stylescope::model::config::{preset, GeneratorConfig, Sg3LayerSpec};
use stylescope::model::filters::{design_lowpass_filter, DesignedFilter};

/// A schedule layer's `filtered_lrelu`: the CPU kernel op, the reference's filters on `device`,
/// and its gain and slope.
struct LayerCase {
    op: FilteredLrelu,
    fu: Option<Fir>,
    fd: Option<Fir>,
    gain: f64,
    slope: f64,
}

fn layer_case(spec: &Sg3LayerSpec, clamp: Option<f32>, device: &Device) -> LayerCase {
    let fu = design_lowpass_filter(spec.up_taps, spec.in_cutoff, 2.0 * spec.in_half_width, spec.tmp_sampling_rate, false);
    let fd = design_lowpass_filter(spec.down_taps, spec.out_cutoff, 2.0 * spec.out_half_width, spec.tmp_sampling_rate, spec.down_radial);
    let (gain, slope) = if spec.is_torgb { (1.0, 1.0) } else { (std::f64::consts::SQRT_2, 0.2) };
    let to_fir = |f: &DesignedFilter| match f {
        DesignedFilter::Separable(v) => Fir::Separable(Tensor::from_data(TensorData::new(v.clone(), [v.len()]), device)),
        DesignedFilter::Radial { taps, data } => Fir::Full(Tensor::from_data(TensorData::new(data.clone(), [*taps, *taps]), device)),
    };
    let op = FilteredLrelu {
        up: spec.up_factor,
        down: spec.down_factor,
        padding: spec.padding,
        gain: gain as f32,
        slope: slope as f32,
        clamp,
        fu: fu.as_ref().map(|f| f.data().to_vec()),
        fd: fd.as_ref().map(|f| match f {
            DesignedFilter::Separable(v) => Taps::Separable(v.clone()),
            DesignedFilter::Radial { taps, data } => Taps::Full { n: *taps, k: data.clone() },
        }),
    };
    LayerCase { fu: fu.as_ref().map(to_fir), fd: fd.as_ref().map(to_fir), op, gain, slope }
}

fn cpu_vs_reference(spec: &Sg3LayerSpec, channels: usize) -> f64 {
    let device = Device::flex();
    device.seed(spec.idx as u64 + 7);
    let in_size = spec.in_size + spec.conv_kernel - 1; // the modulated conv's output
    let x = Tensor::<4>::random([2, channels, in_size, in_size], Distribution::Normal(0.0, 1.0), &device);
    let b = Tensor::<1>::random([channels], Distribution::Normal(0.0, 0.3), &device);
    let LayerCase { op, fu, fd, gain, slope } = layer_case(spec, Some(256.0), &device);
    let reference = filtered_lrelu(x.clone(), fu.as_ref(), fd.as_ref(), Some(b.clone()), spec.up_factor, spec.down_factor, spec.padding, gain, slope, Some(256.0));
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

/// Beyond the official schedules: every pair of factors in {1, 2, 4} (the CPU kernel keeps rows
/// phase-major when `down` divides `up` and deinterleaves them otherwise), separable and 2-D
/// down filters (symmetric top to bottom or not: symmetric ones are folded), odd and even sizes,
/// padding and cropping.
#[test]
fn cpu_filtered_lrelu_matches_reference_on_every_factor_pair() {
    let device = Device::flex();
    let mut case = 0u64;
    for up in [1usize, 2, 4] {
        for down in [1usize, 2, 4] {
            for (radial, size, padding) in [(false, 17, [3i64, 5, 4, 2]), (true, 18, [2, -1, 1, 3]), (false, 19, [-2, 1, 0, -1])] {
                case += 1;
                device.seed(case);
                let (tu, td) = (2 * up + 1, if radial { 3 * down } else { 2 * down + 2 });
                let x = Tensor::<4>::random([1, 3, size, size + 3], Distribution::Normal(0.0, 1.0), &device);
                let b = Tensor::<1>::random([3], Distribution::Normal(0.0, 0.3), &device);
                let fu: Vec<f32> = Tensor::<1>::random([tu], Distribution::Uniform(0.0, 1.0), &device).into_data().try_to_vec().unwrap();
                let n = if radial { td * td } else { td };
                let mut fd: Vec<f32> = Tensor::<1>::random([n], Distribution::Uniform(-0.2, 1.0), &device).into_data().try_to_vec().unwrap();
                if radial && up != down {
                    // Symmetric top to bottom, as radial filters are (the kernel folds such rows).
                    for ky in 0..td / 2 {
                        let (top, bottom) = fd.split_at_mut((td - 1 - ky) * td);
                        bottom[..td].copy_from_slice(&top[ky * td..(ky + 1) * td]);
                    }
                }
                let fir_u = Fir::Separable(Tensor::from_data(TensorData::new(fu.clone(), [tu]), &device));
                let fir_d = if radial {
                    Fir::Full(Tensor::from_data(TensorData::new(fd.clone(), [td, td]), &device))
                } else {
                    Fir::Separable(Tensor::from_data(TensorData::new(fd.clone(), [td]), &device))
                };
                let reference = filtered_lrelu(x.clone(), Some(&fir_u), Some(&fir_d), Some(b.clone()), up, down, padding, 1.4, 0.2, Some(3.0));
                let op = FilteredLrelu {
                    up,
                    down,
                    padding,
                    gain: 1.4,
                    slope: 0.2,
                    clamp: Some(3.0),
                    fu: Some(fu),
                    fd: Some(if radial { Taps::Full { n: td, k: fd } } else { Taps::Separable(fd) }),
                };
                let what = format!("up {up} down {down} radial {radial} size {size} padding {padding:?}");
                let (oh, ow) = op.output_size(size, size + 3);
                assert_eq!([1, 3, oh, ow], reference.dims(), "{what}");
                assert!(oh > 0 && ow > 0, "{what}: empty output");
                let data: Vec<f32> = x.into_data().try_to_vec().unwrap();
                let bias: Vec<f32> = b.into_data().try_to_vec().unwrap();
                let ours = op.run(&data, 3, size, size + 3, &bias);
                let want: Vec<f32> = reference.into_data().try_to_vec().unwrap();
                let err = ours.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                // The random filters are not normalised (outputs up to ~100): relative to the range,
                // a few float roundings (folded rows are added before their taps multiply).
                let range = want.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(err < 2e-6 * range.max(1.0), "{what}: max abs error {err:e} (output range {range})");
            }
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
        let (got, ho, wo) = stylescope::kernels::cpu::conv2d(&xs, i, h, h + 1, &ws, o, k, pad, Default::default());
        assert_eq!((ho, wo), (h + 2 * pad - k + 1, h + 1 + 2 * pad - k + 1));
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err < 1e-4, "conv {i}->{o} {h} k{k}: {err:e}");
    }
}

/// Channel scales folded into the CPU convolution (StyleGAN's modulation on the activations)
/// equal the convolution with the scaled weights `out[o] · in[i] · w[o, i]`: on the Winograd
/// path (3x3, 16+ channels) and the direct one (1x1, few channels), with and without each side.
#[test]
fn cpu_conv2d_channel_scales_equal_scaled_weights() {
    use stylescope::kernels::cpu::{conv2d, ChannelScales};
    let device = Device::flex();
    device.seed(11);
    let host = |t: Tensor<1>| -> Vec<f32> { t.into_data().try_to_vec().unwrap() };
    for (i, o, h, k) in [(24, 20, 13, 3), (5, 3, 9, 1), (4, 6, 7, 3)] {
        let pad = k - 1;
        let xs = host(Tensor::random([i * h * h], Distribution::Normal(0.0, 1.0), &device));
        let ws = host(Tensor::random([o * i * k * k], Distribution::Normal(0.0, 1.0), &device));
        let si = host(Tensor::random([i], Distribution::Uniform(-2.0, 2.0), &device));
        let so = host(Tensor::random([o], Distribution::Uniform(0.1, 3.0), &device));
        for (input, output) in [(&si[..], &so[..]), (&si[..], &[][..]), (&[][..], &so[..])] {
            let scaled: Vec<f32> = ws
                .iter()
                .enumerate()
                .map(|(j, v)| {
                    let (oc, ic) = (j / (i * k * k), j / (k * k) % i);
                    v * input.get(ic).unwrap_or(&1.0) * output.get(oc).unwrap_or(&1.0)
                })
                .collect();
            let (want, ..) = conv2d(&xs, i, h, h, &scaled, o, k, pad, ChannelScales::default());
            let (got, ..) = conv2d(&xs, i, h, h, &ws, o, k, pad, ChannelScales { input, output });
            let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max) / scale;
            assert!(err < 4e-5, "{i}->{o} k{k} (in {}, out {}): rel. error {err:e}", input.len(), output.len());
        }
    }
}

/// Winograd F(6x6, 3x3) against the direct GEMM convolution: sizes that are and are not
/// multiples of the 6x6 tile, padding 0..2, the channel counts of real layers.
#[test]
fn winograd_conv3x3_matches_direct() {
    use stylescope::kernels::cpu::conv2d_direct;
    use stylescope::kernels::winograd::{conv3x3, conv3x3_threads};
    let device = Device::flex();
    device.seed(5);
    // The last shape spans two bands of tile rows (256 channels: 512 tiles per band).
    for (i, o, h, w, pad) in [(16, 16, 9, 10, 2), (3, 5, 4, 4, 0), (32, 24, 36, 36, 2), (20, 40, 17, 23, 1), (64, 16, 3, 7, 2), (8, 8, 1, 1, 2), (12, 6, 12, 18, 1), (512, 8, 14, 14, 1), (256, 16, 1830, 8, 1)] {
        // Activations of StyleGAN3's size (up to ~256 before the clamp) and unit-variance weights.
        let x = Tensor::<1>::random([i * h * w], Distribution::Normal(0.0, 30.0), &device);
        let wt = Tensor::<1>::random([o * i * 9], Distribution::Normal(0.0, 1.0), &device);
        let xs: Vec<f32> = x.into_data().try_to_vec().unwrap();
        let ws: Vec<f32> = wt.into_data().try_to_vec().unwrap();
        let (want, ho, wo) = conv2d_direct(&xs, i, h, w, &ws, o, 3, pad, Default::default());
        let (got, gho, gwo) = conv3x3(&xs, i, h, w, &ws, o, pad, Default::default());
        assert_eq!((gho, gwo), (ho, wo));
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max) / scale;
        // Its transforms amplify fp32 rounding: ~5e-6 of the output range at 32 channels and
        // ~2e-5 at 256-512 (direct: ~1e-7). Whole networks stay far inside the 1e-4 image parity:
        // an untrained stylegan3-t-256 differs from the reference path by 2.0e-6 (F(4x4): 1.7e-6).
        assert!(err < 4e-5, "winograd {i}->{o} {h}x{w} pad {pad}: rel. error {err:e}");
        // Threads that divide the 64 GEMMs take whole ones; others split each GEMM's columns.
        for threads in [1, 3, 5] {
            let (other, ..) = conv3x3_threads(&xs, i, h, w, &ws, o, pad, Default::default(), threads);
            assert_eq!(other, got, "{threads} threads: {i}->{o} {h}x{w}");
        }
    }
}

/// The batched Winograd convolution (the samples' tiles side by side in the products) gives the
/// very values of one call per sample with its own scales: one band and several (84x84 at 256
/// channels is two samples a band), ragged tile counts, 1 sample, samples larger than a band
/// (160x160 at 256 channels: 729 tiles).
#[test]
fn winograd_batch_equals_per_sample() {
    use stylescope::kernels::cpu::ChannelScales;
    use stylescope::kernels::winograd::{conv3x3_batch, conv3x3_transformed, transform_filters};
    let device = Device::flex();
    device.seed(6);
    for (n, i, o, h, pad) in [(3, 16, 24, 34, 2), (5, 256, 8, 82, 2), (1, 8, 8, 9, 1), (4, 12, 20, 13, 0), (2, 256, 4, 160, 1)] {
        let v = |len: usize, std: f64| -> Vec<f32> { Tensor::<1>::random([len], Distribution::Normal(0.0, std), &device).into_data().try_to_vec().unwrap() };
        let (xs, ws, si, so) = (v(n * i * h * h, 1.0), v(o * i * 9, 1.0), v(n * i, 1.0), v(n * o, 1.0));
        let u = transform_filters(&ws, o, i);
        let (got, ho, wo) = conv3x3_batch(&xs, n, i, h, h, &u, o, pad, &si, &so);
        let mut want = Vec::new();
        for s in 0..n {
            let scales = ChannelScales { input: &si[s * i..(s + 1) * i], output: &so[s * o..(s + 1) * o] };
            let (y, yh, yw) = conv3x3_transformed(&xs[s * i * h * h..(s + 1) * i * h * h], i, h, h, &u, o, pad, scales);
            assert_eq!((yh, yw), (ho, wo));
            want.extend(y);
        }
        assert!(got == want, "batch of {n}, {i}->{o} {h}x{h} pad {pad}");
    }
}

/// The stored 4x4 `resample_filter` of StyleGAN2 and the discriminator is recognised as the outer
/// product of its 1-D taps (so the kernels filter separably); anything else stays 2-D.
#[test]
fn resample_filters_split_into_separable_taps_only_when_exact() {
    use stylescope::kernels::separable_taps;
    let k = [1.0f32, 3.0, 3.0, 1.0];
    let outer: Vec<f32> = k.iter().flat_map(|a| k.iter().map(move |b| a * b / 64.0)).collect();
    match separable_taps(&outer, 4) {
        Some(Taps::Separable(t)) => {
            for (got, want) in t.iter().zip([0.125f32, 0.375, 0.375, 0.125]) {
                assert!((got - want).abs() < 1e-7, "{t:?}");
            }
        }
        other => panic!("not split: {other:?}"),
    }
    let mut skewed = outer.clone();
    skewed[5] += 0.01;
    assert!(separable_taps(&skewed, 4).is_none());
    let asym: Vec<f32> = [1.0f32, 2.0].iter().flat_map(|a| [1.0f32, 3.0].iter().map(move |b| a * b)).collect();
    assert!(separable_taps(&asym, 2).is_none(), "row and column taps differ");
    assert!(separable_taps(&[0.0; 4], 2).is_none());
}

/// StyleGAN2's and the discriminator's resampling calls through the CPU dispatch (the polyphase
/// kernel) against the reference.
#[test]
fn cpu_upfirdn2d_matches_reference_on_sg2_calls() {
    use stylescope::kernels::{upfirdn2d, KernelChoice, ResampleFilter};
    let device = Device::flex();
    let k = [1.0f32, 3.0, 3.0, 1.0];
    let f = ResampleFilter::new(k.iter().flat_map(|a| k.iter().map(move |b| a * b / 64.0)).collect(), 4, &device);
    // (what, size, up, down, padding, gain), as conv2d_resample / upsample2d issue them.
    let cases = [
        ("upsample2d x2 (toRGB skip)", 9, 2, 1, [2, 1, 2, 1], 4.0),
        ("blur after the transposed conv", 17, 1, 1, [1, 1, 1, 1], 4.0),
        ("D blur before the strided conv", 16, 1, 1, [2, 2, 2, 2], 1.0),
        ("D skip 1x1 down x2", 16, 1, 2, [1, 1, 1, 1], 1.0),
        ("D skip 1x1 down x2 (odd)", 15, 1, 2, [1, 1, 1, 1], 1.0),
    ];
    for (i, (what, size, up, down, padding, gain)) in cases.into_iter().enumerate() {
        device.seed(40 + i as u64);
        let x = Tensor::<4>::random([2, 3, size, size + 2], Distribution::Normal(0.0, 1.0), &device);
        let want = upfirdn2d(x.clone(), Some(&f), up, down, padding, gain, KernelChoice::Reference);
        let got = upfirdn2d(x, Some(&f), up, down, padding, gain, KernelChoice::Auto);
        assert_eq!(got.dims(), want.dims(), "{what}");
        let (a, b): (Vec<f32>, Vec<f32>) = (got.into_data().try_to_vec().unwrap(), want.into_data().try_to_vec().unwrap());
        let err = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(err < 1e-5, "{what}: max abs error {err:e}");
    }
}

/// Gradient of Σ(f(x)·r) w.r.t. `x` (and `b`) under autodiff on the CPU.
fn grads_of(f: impl Fn(Tensor<4>, Tensor<1>) -> Tensor<4>, x: &Tensor<4>, b: &Tensor<1>, r: &Tensor<4>) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (x, b) = (x.clone().require_grad(), b.clone().require_grad());
    let y = f(x.clone(), b.clone());
    let grads = (y.clone() * r.clone()).sum().backward();
    let v = |t: Option<Tensor<4>>| t.map(|t| t.into_data().try_to_vec::<f32>().unwrap()).unwrap_or_default();
    let gb = b.grad(&grads).map(|t| t.into_data().try_to_vec::<f32>().unwrap()).unwrap_or_default();
    (y.into_data().try_to_vec().unwrap(), v(x.grad(&grads)), gb)
}

fn rel_max(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12) as f64;
    a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64).fold(0.0, f64::max) / scale
}

/// The CPU kernels' backward under autodiff (training on the CPU) against the reference's
/// gradients: StyleGAN2's and D's upfirdn2d calls.
#[test]
fn cpu_upfirdn2d_backward_matches_reference() {
    use stylescope::kernels::{cpu_autodiff, upfirdn2d, KernelChoice, ResampleFilter};
    let device = Device::flex().autodiff();
    let k = [1.0f32, 3.0, 3.0, 1.0];
    let f = ResampleFilter::new(k.iter().flat_map(|a| k.iter().map(move |b| a * b / 64.0)).collect(), 4, &device);
    let cases = [(9, 2, 1, [2i64, 1, 2, 1], 4.0), (17, 1, 1, [1, 1, 1, 1], 4.0), (16, 1, 1, [2, 2, 2, 2], 1.0), (16, 1, 2, [1, 1, 1, 1], 1.0)];
    for (i, (size, up, down, padding, gain)) in cases.into_iter().enumerate() {
        device.seed(60 + i as u64);
        let x = Tensor::<4>::random([2, 3, size, size], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<1>::zeros([3], &device);
        let probe = cpu_autodiff::upfirdn2d_tracked(x.clone(), Some(&f.host), up, down, padding, gain);
        let r = Tensor::<4>::random(probe.expect("the CPU kernel takes this call").dims(), Distribution::Normal(0.0, 1.0), &device);
        let (y1, g1, _) = grads_of(|x, _| upfirdn2d(x, Some(&f), up, down, padding, gain, KernelChoice::Auto), &x, &b, &r);
        let (y2, g2, _) = grads_of(|x, _| upfirdn2d(x, Some(&f), up, down, padding, gain, KernelChoice::Reference), &x, &b, &r);
        assert!(rel_max(&y1, &y2) < 1e-5, "case {i}: forward");
        let err = rel_max(&g1, &g2);
        assert!(err < 1e-5, "case {i}: gradient relative error {err:e}");
    }
}

/// `filtered_lrelu`'s CPU backward against the reference's gradients (x and bias) on every layer
/// shape of the official StyleGAN3-T schedule (R's 2-D down filters keep the reference), and
/// against finite differences.
#[test]
fn cpu_filtered_lrelu_backward_matches_reference() {
    use stylescope::kernels::cpu_autodiff::filtered_lrelu_tracked;
    let device = Device::flex().autodiff();
    for name in ["stylegan3-t-256", "stylegan3-r-256"] {
        let GeneratorConfig::StyleGan3(cfg) = preset(name).unwrap() else { panic!() };
        for spec in cfg.layers() {
            device.seed(spec.idx as u64 + 70);
            let channels = 2;
            let in_size = spec.in_size + spec.conv_kernel - 1;
            let x = Tensor::<4>::random([2, channels, in_size, in_size], Distribution::Normal(0.0, 1.0), &device);
            let b = Tensor::<1>::random([channels], Distribution::Normal(0.0, 0.3), &device);
            let LayerCase { op, fu, fd, gain, slope } = layer_case(&spec, Some(1.5), &device);
            let Some(probe) = filtered_lrelu_tracked(&op, x.clone(), b.clone()) else {
                assert!(spec.down_radial, "{name} {}: the CPU backward should take this layer", spec.name);
                continue;
            };
            let r = Tensor::<4>::random(probe.dims(), Distribution::Normal(0.0, 1.0), &device);
            let ours = grads_of(|x, b| filtered_lrelu_tracked(&op, x, b).unwrap(), &x, &b, &r);
            let reference = grads_of(|x, b| filtered_lrelu(x, fu.as_ref(), fd.as_ref(), Some(b), spec.up_factor, spec.down_factor, spec.padding, gain, slope, Some(1.5)), &x, &b, &r);
            assert!(rel_max(&ours.0, &reference.0) < 2e-5, "{name} {}: forward", spec.name);
            let (ex, eb) = (rel_max(&ours.1, &reference.1), rel_max(&ours.2, &reference.2));
            // The bias gradient is one float32 sum over up to 2·276² values per channel, in an
            // order that follows the threads: its rounding alone reached 2.5e-5 (a wrong mask or
            // filter is off by O(1)).
            assert!(ex < 2e-5 && eb < 1e-4, "{name} {}: gradient relative errors x {ex:e}, bias {eb:e}", spec.name);
        }
    }
    // Finite differences on one layer, the loss accumulated in f64: exact for a linear
    // activation, within the kinks' share for the leaky ReLU.
    let GeneratorConfig::StyleGan3(cfg) = preset("stylegan3-t-256").unwrap() else { panic!() };
    let spec = &cfg.layers()[3];
    let in_size = spec.in_size + spec.conv_kernel - 1;
    device.seed(99);
    let x = Tensor::<4>::random([1, 2, in_size, in_size], Distribution::Normal(0.0, 1.0), &device);
    let v = Tensor::<4>::random([1, 2, in_size, in_size], Distribution::Normal(0.0, 1.0), &device);
    let b = Tensor::<1>::zeros([2], &device);
    let vv: Vec<f32> = v.clone().into_data().try_to_vec().unwrap();
    for (gain, slope, tol) in [(1.0f32, 1.0f32, 1e-4), (std::f32::consts::SQRT_2, 0.2, 2e-2)] {
        let LayerCase { mut op, .. } = layer_case(spec, None, &device);
        (op.gain, op.slope) = (gain, slope);
        let y = filtered_lrelu_tracked(&op, x.clone(), b.clone()).unwrap();
        let r = Tensor::<4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device);
        let rr: Vec<f32> = r.clone().into_data().try_to_vec().unwrap();
        let (_, gx, _) = grads_of(|x, b| filtered_lrelu_tracked(&op, x, b).unwrap(), &x, &b, &r);
        let predicted: f64 = gx.iter().zip(&vv).map(|(a, b)| *a as f64 * *b as f64).sum();
        let loss = |t: Tensor<4>| -> f64 {
            let y: Vec<f32> = filtered_lrelu_tracked(&op, t, b.clone()).unwrap().into_data().try_to_vec().unwrap();
            y.iter().zip(&rr).map(|(a, b)| *a as f64 * *b as f64).sum()
        };
        let eps = 1e-2;
        let fd = (loss(x.clone() + v.clone().mul_scalar(eps)) - loss(x.clone() - v.clone().mul_scalar(eps))) / (2.0 * eps);
        let err = (fd - predicted).abs() / predicted.abs();
        assert!(err < tol, "gain {gain}, slope {slope}: finite difference {fd}, gradient {predicted} (relative error {err:e})");
    }
}

/// `f(x, w)` under autodiff and the gradients of `⟨f(x, w), r⟩` (`y` must have `r`'s shape):
/// `(y, ∂x, ∂w)` as flat values, for the convolution tests.
fn conv_grads(f: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>, x: &Tensor<4>, w: &Tensor<4>, r: &Tensor<4>) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (x, w) = (x.clone().require_grad(), w.clone().require_grad());
    let y = f(x.clone(), w.clone());
    assert_eq!(y.dims(), r.dims());
    let g = (y.clone() * r.clone()).sum().backward();
    let v = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
    (v(y), v(x.grad(&g).unwrap()), v(w.grad(&g).unwrap()))
}

/// The stride-2 convolution of D's down-sampling blocks through the phase split on the CPU
/// kernels: output, input and weight gradients against burn's strided `conv2d` under autodiff,
/// on even and odd sizes (D's conv1 input after its filter padding: res + 3) and ragged channels.
#[test]
fn cpu_stride2_conv_matches_reference() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use stylescope::kernels::cpu_autodiff::conv2d_stride2_tracked;
    let device = Device::flex().autodiff();
    let mut cases = vec![(3usize, 5usize, 9usize, 3usize), (4, 6, 10, 3), (7, 3, 8, 2), (5, 4, 12, 4)];
    for res in [8, 16, 32, 64, 128, 256] {
        cases.push((2, 2, res + 3, 3));
    }
    for (i, &(cin, cout, size, k)) in cases.iter().enumerate() {
        device.seed(400 + i as u64);
        let x = Tensor::<4>::random([2, cin, size, size], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random([cout, cin, k, k], Distribution::Normal(0.0, 1.0), &device);
        let out = (size - k) / 2 + 1;
        let r = Tensor::<4>::random([2, cout, out, out], Distribution::Normal(0.0, 1.0), &device);
        let run = |f: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>| conv_grads(f, &x, &w, &r);
        let ours = run(&|x, w| conv2d_stride2_tracked(x, w).expect("the phase split takes this call"));
        let reference = run(&|x, w| conv2d(x, w, None, ConvOptions::new([2, 2], [0, 0], [1, 1], 1)));
        let (ey, ex, ew) = (rel_max(&ours.0, &reference.0), rel_max(&ours.1, &reference.1), rel_max(&ours.2, &reference.2));
        assert!(ey < 1e-5 && ex < 1e-5 && ew < 1e-4, "case {i} {:?}: relative errors y {ey:e}, dx {ex:e}, dw {ew:e}", cases[i]);
    }
}

/// StyleGAN2's up-sampling convolution (stride-2 transposed, no padding) through the adjoint phase
/// split on the CPU kernels: output, input and weight gradients against burn's
/// `conv_transpose2d` under autodiff, on every input size of the generator's up-sampling layers
/// (4 to 128), odd sizes, ragged channels and 2x2 / 4x4 kernels; and finite differences.
#[test]
fn cpu_transposed_stride2_conv_matches_reference() {
    use burn::tensor::module::conv_transpose2d;
    use burn::tensor::ops::ConvTransposeOptions;
    use stylescope::kernels::cpu_autodiff::conv_transpose2d_stride2_tracked;
    let device = Device::flex().autodiff();
    // (in, out, size, k)
    let mut cases = vec![(3usize, 5usize, 5usize, 3usize), (6, 4, 7, 3), (7, 3, 6, 2), (5, 4, 9, 4), (16, 24, 8, 3)];
    for res in [4, 8, 16, 32, 64, 128] {
        cases.push((2, 2, res, 3));
    }
    for (i, &(cin, cout, size, k)) in cases.iter().enumerate() {
        device.seed(500 + i as u64);
        let x = Tensor::<4>::random([2, cin, size, size], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random([cin, cout, k, k], Distribution::Normal(0.0, 1.0), &device);
        let out = 2 * (size - 1) + k;
        let r = Tensor::<4>::random([2, cout, out, out], Distribution::Normal(0.0, 1.0), &device);
        let run = |f: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>| conv_grads(f, &x, &w, &r);
        let ours = run(&|x, w| conv_transpose2d_stride2_tracked(x, w).expect("the adjoint phase split takes this call"));
        let reference = run(&|x, w| conv_transpose2d(x, w, None, ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1)));
        let (ey, ex, ew) = (rel_max(&ours.0, &reference.0), rel_max(&ours.1, &reference.1), rel_max(&ours.2, &reference.2));
        assert!(ey < 1e-5 && ex < 1e-5 && ew < 1e-4, "case {i} {:?}: relative errors y {ey:e}, dx {ex:e}, dw {ew:e}", cases[i]);
    }
    // The inference form (no graph; grouped, as the fused modulated convolution calls it)
    // against burn's grouped transposed convolution.
    let plain = Device::flex();
    for (i, &(groups, in_g, out_g, size, k)) in [(1usize, 5usize, 3usize, 7usize, 3usize), (3, 4, 6, 8, 3), (2, 3, 2, 5, 2), (8, 16, 8, 16, 3)].iter().enumerate() {
        plain.seed(550 + i as u64);
        let x = Tensor::<4>::random([2, groups * in_g, size, size], Distribution::Normal(0.0, 1.0), &plain);
        let w = Tensor::<4>::random([groups * in_g, out_g, k, k], Distribution::Normal(0.0, 1.0), &plain);
        let ours = stylescope::kernels::conv_transpose2d_cpu(x.clone(), w.clone(), groups);
        let reference = conv_transpose2d(x, w, None, ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], groups));
        assert_eq!(ours.dims(), reference.dims());
        let e = rel_max(&ours.into_data().try_to_vec::<f32>().unwrap(), &reference.into_data().try_to_vec::<f32>().unwrap());
        assert!(e < 1e-5, "grouped case {i}: relative error {e:e}");
    }
    // Finite differences of <y, r> along random directions of x and w (bilinear: exact up to
    // rounding), the loss accumulated in f64.
    device.seed(599);
    let x = Tensor::<4>::random([1, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
    let w = Tensor::<4>::random([4, 3, 3, 3], Distribution::Normal(0.0, 1.0), &device);
    let r = Tensor::<4>::random([1, 3, 13, 13], Distribution::Normal(0.0, 1.0), &device);
    let (vx, vw) = (Tensor::<4>::random(x.dims(), Distribution::Normal(0.0, 1.0), &device), Tensor::<4>::random(w.dims(), Distribution::Normal(0.0, 1.0), &device));
    let flat = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
    let rr = flat(r.clone());
    let loss = |x: Tensor<4>, w: Tensor<4>| -> f64 { flat(conv_transpose2d_stride2_tracked(x, w).unwrap()).iter().zip(&rr).map(|(a, b)| *a as f64 * *b as f64).sum() };
    let (xg, wg) = (x.clone().require_grad(), w.clone().require_grad());
    let g = (conv_transpose2d_stride2_tracked(xg.clone(), wg.clone()).unwrap() * r.clone()).sum().backward();
    let dot = |a: Vec<f32>, b: Vec<f32>| a.iter().zip(&b).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>();
    let predicted = dot(flat(xg.grad(&g).unwrap()), flat(vx.clone())) + dot(flat(wg.grad(&g).unwrap()), flat(vw.clone()));
    let eps = 1e-2;
    let fd = (loss(x.clone() + vx.clone().mul_scalar(eps), w.clone() + vw.clone().mul_scalar(eps)) - loss(x.clone() - vx.mul_scalar(eps), w.clone() - vw.mul_scalar(eps))) / (2.0 * eps);
    let err = (fd - predicted).abs() / predicted.abs();
    assert!(err < 1e-4, "finite difference {fd}, gradient {predicted} (relative error {err:e})");
}

/// The stride-1 convolution's CPU backward under autodiff (input and weight gradients) against
/// burn's own `conv2d` gradients, on the shapes training uses (3x3 with padding 1 and 2, on the
/// direct and the Winograd paths, 1x1), and against finite differences.
#[test]
fn cpu_conv2d_backward_matches_reference() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use stylescope::kernels::cpu_autodiff::conv2d_tracked;
    let device = Device::flex().autodiff();
    // (in, out, size, k, pad): SG2 conv1 / D conv0, SG3-T conv, Winograd channel counts, 1x1 ...
    let mut cases = vec![(3, 5, 9, 3, 1), (4, 6, 11, 3, 2), (16, 24, 13, 3, 1), (32, 16, 10, 3, 2), (12, 7, 8, 1, 0), (20, 3, 6, 1, 0), (5, 4, 7, 3, 0)];
    // ... and every convolution shape of the official schedules at 256² (2 channels): each
    // StyleGAN3-T / -R layer's (input size, kernel, padding k − 1), StyleGAN2's 3x3 (padding 1) and
    // 1x1 layers and D's at every resolution.
    for name in ["stylegan3-t-256", "stylegan3-r-256"] {
        let GeneratorConfig::StyleGan3(cfg) = preset(name).unwrap() else { panic!() };
        for spec in cfg.layers() {
            cases.push((2, 2, spec.in_size, spec.conv_kernel, spec.conv_kernel - 1));
        }
    }
    for res in [4, 8, 16, 32, 64, 128, 256] {
        cases.push((2, 2, res, 3, 1));
        cases.push((2, 3, res, 1, 0));
    }
    for (i, &(cin, cout, size, k, pad)) in cases.iter().enumerate() {
        device.seed(200 + i as u64);
        let size: usize = size;
        let x = Tensor::<4>::random([2, cin, size, size], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random([cout, cin, k, k], Distribution::Normal(0.0, 1.0), &device);
        let out = size + 2 * pad + 1 - k;
        let r = Tensor::<4>::random([2, cout, out, out], Distribution::Normal(0.0, 1.0), &device);
        let run = |f: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>| conv_grads(f, &x, &w, &r);
        let ours = run(&|x, w| conv2d_tracked(x, w, pad).expect("the CPU kernel takes this call"));
        let reference = run(&|x, w| conv2d(x, w, None, ConvOptions::new([1, 1], [pad, pad], [1, 1], 1)));
        let (ey, ex, ew) = (rel_max(&ours.0, &reference.0), rel_max(&ours.1, &reference.1), rel_max(&ours.2, &reference.2));
        // The weight gradient sums over every pixel of the batch (up to 1.5e5 terms at 256²), in
        // another order than burn's: f32 rounding of such sums is ~√N·2⁻²⁴, hence 1e-4 there.
        assert!(ey < 1e-5 && ex < 1e-5 && ew < 1e-4, "case {i} {:?}: relative errors y {ey:e}, dx {ex:e}, dw {ew:e}", cases[i]);
    }
    // Finite differences along a random direction of both the input and the weights.
    device.seed(300);
    let (x, w) = (Tensor::<4>::random([1, 16, 9, 9], Distribution::Normal(0.0, 1.0), &device), Tensor::<4>::random([16, 16, 3, 3], Distribution::Normal(0.0, 1.0), &device));
    let (vx, vw) = (Tensor::<4>::random([1, 16, 9, 9], Distribution::Normal(0.0, 1.0), &device), Tensor::<4>::random([16, 16, 3, 3], Distribution::Normal(0.0, 1.0), &device));
    let r = Tensor::<4>::random([1, 16, 9, 9], Distribution::Normal(0.0, 1.0), &device);
    let rr: Vec<f32> = r.clone().into_data().try_to_vec().unwrap();
    let loss = |x: Tensor<4>, w: Tensor<4>| -> f64 {
        let y: Vec<f32> = conv2d_tracked(x, w, 1).unwrap().into_data().try_to_vec().unwrap();
        y.iter().zip(&rr).map(|(a, b)| *a as f64 * *b as f64).sum()
    };
    let (xg, wg) = (x.clone().require_grad(), w.clone().require_grad());
    let g = (conv2d_tracked(xg.clone(), wg.clone(), 1).unwrap() * r.clone()).sum().backward();
    let dot = |a: Tensor<4>, b: &Tensor<4>| -> f64 {
        let (a, b): (Vec<f32>, Vec<f32>) = (a.into_data().try_to_vec().unwrap(), b.clone().into_data().try_to_vec().unwrap());
        a.iter().zip(&b).map(|(p, q)| *p as f64 * *q as f64).sum()
    };
    let predicted = dot(xg.grad(&g).unwrap(), &vx) + dot(wg.grad(&g).unwrap(), &vw);
    let eps = 1e-2;
    let fd = (loss(x.clone() + vx.clone().mul_scalar(eps), w.clone() + vw.clone().mul_scalar(eps)) - loss(x.clone() - vx.clone().mul_scalar(eps), w.clone() - vw.clone().mul_scalar(eps))) / (2.0 * eps);
    // The loss is quadratic along the joint direction (x·w): central differences are exact up to rounding.
    let err = (fd - predicted).abs() / predicted.abs();
    assert!(err < 1e-3, "finite difference {fd}, gradient {predicted} (relative error {err:e})");
}

/// `bias_act`'s fused CPU op under autodiff against the reference's output and gradients (x and
/// bias) on D's and the mapping network's shapes, every activation, gain and clamp, and against
/// finite differences.
#[test]
fn cpu_bias_act_backward_matches_reference() {
    use stylescope::kernels::cpu_autodiff::bias_act_tracked;
    use stylescope::kernels::reference::{bias_act, Activation};
    let device = Device::flex().autodiff();
    let grads2 = |f: &dyn Fn(Tensor<4>, Tensor<1>) -> Tensor<4>, x: &Tensor<4>, b: &Tensor<1>, r: &Tensor<4>| grads_of(f, x, b, r);
    let acts = [(Activation::LeakyRelu(0.2), std::f64::consts::SQRT_2), (Activation::Linear, 1.0), (Activation::LeakyRelu(0.2), 0.5f64.sqrt() * std::f64::consts::SQRT_2)];
    for (i, shape) in [[2usize, 3, 9, 9], [4, 5, 64, 64], [8, 7, 1, 1]].into_iter().enumerate() {
        for (j, (act, gain)) in acts.into_iter().enumerate() {
            for clamp in [None, Some(0.75)] {
                device.seed((10 * i + j) as u64 + 200);
                let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                let b = Tensor::<1>::random([shape[1]], Distribution::Normal(0.0, 0.5), &device);
                let r = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                let ours = grads2(&|x, b| bias_act_tracked(x, b, act.slope(), gain, clamp).expect("the CPU op takes this call"), &x, &b, &r);
                let reference = grads2(&|x, b| bias_act(x, Some(b), act, gain, clamp), &x, &b, &r);
                let what = format!("{shape:?} {act:?} gain {gain} clamp {clamp:?}");
                assert!(rel_max(&ours.0, &reference.0) < 1e-6, "{what}: forward");
                let (ex, eb) = (rel_max(&ours.1, &reference.1), rel_max(&ours.2, &reference.2));
                assert!(ex < 1e-6 && eb < 1e-5, "{what}: gradient relative errors x {ex:e}, bias {eb:e}");
            }
        }
    }
    // FC layers' [n, c] through the dispatcher.
    let x = Tensor::<2>::random([8, 16], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let b = Tensor::<1>::random([16], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let run = |choice| {
        let y = stylescope::kernels::bias_act(x.clone(), Some(b.clone()), Activation::LeakyRelu(0.2), 2f64.sqrt(), None, choice);
        let g = (y.clone() * y.clone()).sum().backward();
        let v = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
        (v(y), v(x.grad(&g).unwrap()), b.grad(&g).unwrap().into_data().try_to_vec::<f32>().unwrap())
    };
    let (ours, reference) = (run(stylescope::kernels::KernelChoice::Auto), run(stylescope::kernels::KernelChoice::Reference));
    assert!(rel_max(&ours.0, &reference.0) < 1e-6 && rel_max(&ours.1, &reference.1) < 1e-6 && rel_max(&ours.2, &reference.2) < 1e-6, "[n, c]");
    // Finite differences along a random direction, the loss in f64 (a step small enough that no
    // element crosses the activation's or the clamp's kink).
    device.seed(7);
    let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let b = Tensor::<1>::random([3], Distribution::Normal(0.0, 1.0), &device);
    let (v, vb) = (Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device), Tensor::<1>::random([3], Distribution::Normal(0.0, 1.0), &device));
    let r = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let flat = |t: &Tensor<4>| t.clone().into_data().try_to_vec::<f32>().unwrap();
    let (vv, vbv, rr) = (flat(&v), vb.clone().into_data().try_to_vec::<f32>().unwrap(), flat(&r));
    for clamp in [None, Some(1.0)] {
        let f = |x: Tensor<4>, b: Tensor<1>| bias_act_tracked(x, b, Some(0.2), 2f64.sqrt(), clamp).unwrap();
        let (_, gx, gb) = grads_of(f, &x, &b, &r);
        let predicted: f64 = gx.iter().zip(&vv).chain(gb.iter().zip(&vbv)).map(|(a, b)| *a as f64 * *b as f64).sum();
        let loss = |e: f64| -> f64 { flat(&f(x.clone() + v.clone().mul_scalar(e), b.clone() + vb.clone().mul_scalar(e))).iter().zip(&rr).map(|(a, b)| *a as f64 * *b as f64).sum() };
        let eps = 1e-4;
        let fd = (loss(eps) - loss(-eps)) / (2.0 * eps);
        let err = (fd - predicted).abs() / predicted.abs();
        assert!(err < 2e-3, "clamp {clamp:?}: finite difference {fd}, gradient {predicted} (relative error {err:e})");
    }
}

/// `bias_act`'s forward-mode derivative through the fused op (R1's and path length's tangent
/// passes) against the reference: `y`, `ẏ` and the gradients of `Σ y·r + Σ ẏ·q` w.r.t. `x`, `ẋ`
/// and the bias, with and without the clamp.
#[test]
fn cpu_bias_act_tangent_matches_reference() {
    use stylescope::kernels::reference::Activation;
    use stylescope::kernels::{bias_act_tangent, cpu_autodiff::bias_act_tangent_tracked};
    let device = Device::flex().autodiff();
    let flat = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
    for (i, (act, gain, clamp)) in [(Activation::LeakyRelu(0.2), 2f64.sqrt(), None), (Activation::LeakyRelu(0.2), 2f64.sqrt() * 0.5f64.sqrt(), Some(0.9)), (Activation::Linear, 1.0, Some(0.6))].into_iter().enumerate() {
        device.seed(300 + i as u64);
        let shape = [3, 4, 11, 11];
        let rand = |std: f64| Tensor::<4>::random(shape, Distribution::Normal(0.0, std), &device);
        let (x, xt, r, q) = (rand(1.0), rand(1.0), rand(1.0), rand(1.0));
        let b = Tensor::<1>::random([4], Distribution::Normal(0.0, 0.5), &device);
        let run = |fused: bool| {
            let (x, xt, b) = (x.clone().require_grad(), xt.clone().require_grad(), b.clone().require_grad());
            let (y, yt) = if fused {
                bias_act_tangent_tracked(x.clone(), xt.clone(), b.clone(), act.slope(), gain, clamp).expect("the CPU op takes this call")
            } else {
                stylescope::kernels::reference::bias_act_tangent(x.clone(), xt.clone(), Some(b.clone()), act, gain, clamp)
            };
            let g = ((y.clone() * r.clone()).sum() + (yt.clone() * q.clone()).sum()).backward();
            let gb = b.grad(&g).unwrap().into_data().try_to_vec::<f32>().unwrap();
            [flat(y), flat(yt), flat(x.grad(&g).unwrap()), flat(xt.grad(&g).unwrap()), gb]
        };
        let (ours, reference) = (run(true), run(false));
        for (k, what) in ["y", "ẏ", "∂x", "∂ẋ", "∂b"].iter().enumerate() {
            let err = rel_max(&ours[k], &reference[k]);
            assert!(err < 1e-5, "{act:?} gain {gain} clamp {clamp:?}: {what} relative error {err:e}");
        }
        // The dispatcher takes the fused op here.
        let (y, yt) = bias_act_tangent(x.clone(), xt.clone(), Some(b.clone()), act, gain, clamp);
        assert!(rel_max(&flat(y), &ours[0]) == 0.0 && rel_max(&flat(yt), &ours[1]) == 0.0);
    }
}

/// The per-sample, per-channel scale of the training convolutions' non-fused modulation through
/// the fused CPU op against burn's broadcast product: output and gradients w.r.t. both factors.
#[test]
fn cpu_scale_channels_matches_broadcast_product() {
    use stylescope::kernels::cpu_autodiff::scale_channels_tracked;
    let device = Device::flex().autodiff();
    let flat = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
    for (i, shape) in [[2usize, 3, 5, 7], [8, 64, 36, 36], [3, 130, 1, 1]].into_iter().enumerate() {
        device.seed(500 + i as u64);
        let [n, c, _, _] = shape;
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let s = Tensor::<2>::random([n, c], Distribution::Normal(0.0, 1.0), &device);
        let r = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let run = |fused: bool| {
            let (x, s) = (x.clone().require_grad(), s.clone().require_grad());
            let y = if fused { scale_channels_tracked(x.clone(), s.clone()).expect("the CPU op takes this call") } else { x.clone() * s.clone().reshape([n, c, 1, 1]) };
            let g = (y.clone() * r.clone()).sum().backward();
            [flat(y), flat(x.grad(&g).unwrap()), s.grad(&g).unwrap().into_data().try_to_vec::<f32>().unwrap()]
        };
        let (ours, reference) = (run(true), run(false));
        for (k, what) in ["y", "∂x", "∂s"].iter().enumerate() {
            let err = rel_max(&ours[k], &reference[k]);
            assert!(err < 1e-5, "{shape:?}: {what} relative error {err:e}");
        }
    }
}
