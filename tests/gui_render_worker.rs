//! The render worker reproduces the official visualizer: `fixture_spec.viz` of each fixture
//! network (four-seed blend, style mixing, truncation with cutoff, input transform), rendered
//! through the `render` thread on the CPU backend, must match `viz/img` (and the composed `w`
//! must match `viz/w`) within 1e-4. Guards issue 4 ("every control ... compared with the
//! official semantics").

mod common;

use std::time::Duration;

use stylescope::backend::block_on;
use stylescope::backend::BackendChoice;
use stylescope::render::{compose, LatentParams, LayerView, Queued, RenderEvent, RenderHandle, RenderRequest};

use common::fixtures;

/// The viz spec as a request: `w0_seeds` become the fractional latent position they encode.
fn viz_request(name: &str) -> (RenderRequest, Vec<(u32, f64)>) {
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join(format!("{name}.json"))).unwrap()).unwrap();
    let viz = &json["fixture_spec"]["viz"];
    let w0: Vec<(u32, f64)> = viz["w0_seeds"].as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap())).collect();
    // x = Σ seed·weight reproduces 1-D blends of neighbouring seeds (all the fixtures use).
    let x: f64 = w0.iter().map(|(s, w)| *s as f64 * w).sum();
    assert_eq!(stylescope::render::w0_seeds(x, 0.0), w0, "{name}: the spec's blend is not a latent position");
    let latent = LatentParams {
        x,
        y: 0.0,
        psi: viz["trunc_psi"].as_f64().unwrap(),
        cutoff: viz["trunc_cutoff"].as_u64().map(|c| c as usize),
        stylemix_seed: viz["stylemix_seed"].as_u64().unwrap() as u32,
        stylemix: viz["stylemix_idx"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect(),
        ..Default::default()
    };
    let input_transform = viz.get("input_transform").map(|m| {
        let mut out = [[0.0; 3]; 3];
        for (i, row) in m.as_array().unwrap().iter().enumerate() {
            for (j, v) in row.as_array().unwrap().iter().enumerate() {
                out[i][j] = v.as_f64().unwrap();
            }
        }
        out
    });
    let req = RenderRequest {
        network: fixtures().join(format!("{name}.pkl")).display().to_string(),
        backend: BackendChoice::Cpu,
        latent,
        view: LayerView::default(),
        input_transform,
    };
    (req, w0)
}

fn expected(name: &str, key: &str) -> Vec<f64> {
    let all = stylescope::weights::safetensors::read_all_f64(&fixtures().join(format!("{name}.expected.safetensors"))).unwrap();
    all.get(key).unwrap_or_else(|| panic!("{name}: no {key}")).1.clone()
}

fn max_abs(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (*x as f64 - y).abs()).fold(0.0, f64::max)
}

/// Sends one request through the worker thread and returns the frame's float output.
fn render_through_worker(req: RenderRequest) -> Vec<f32> {
    let worker = RenderHandle::spawn(Box::new(|| ())).unwrap();
    assert_eq!(worker.request(req), Queued::Sent);
    loop {
        match worker.wait_event(Duration::from_secs(300)).expect("the worker answered nothing in 300 s") {
            RenderEvent::Frame(f) => return f.output.expect("output floats").get().unwrap().to_vec(),
            RenderEvent::Error { message, .. } => panic!("render failed: {message}"),
            _ => {}
        }
    }
}

fn check(name: &str) {
    let (req, w0) = viz_request(name);
    // The composed w (host side of the renderer).
    let device = BackendChoice::Cpu.device();
    let opened = stylescope::source::open_generator(&req.network, stylescope::weights::Which::GEma, &device).unwrap();
    let w = compose::compose_w(&opened.generator, &device, &w0, &req.latent).unwrap();
    let w: Vec<f32> = w.into_data().convert::<f32>().try_to_vec().unwrap();
    let err_w = max_abs(&w, &expected(name, "viz/w"));
    assert!(err_w <= 1e-4, "{name}: viz/w max abs error {err_w:e}");
    // The image, through the render thread.
    let img = render_through_worker(req);
    let err = max_abs(&img, &expected(name, "viz/img"));
    assert!(err <= 1e-4, "{name}: viz/img max abs error {err:e}");
}

#[test]
fn worker_reproduces_viz_sg3t_64() {
    check("sg3t_64");
}

#[test]
fn worker_reproduces_viz_sg2_64() {
    check("sg2_64");
}

#[test]
fn worker_reproduces_viz_sg3t_64_cond4_per_seed_class() {
    check("sg3t_64_cond4");
}

#[test]
fn worker_reports_a_bad_file_and_keeps_serving() {
    let dir = common::ScratchDir::new("gui-bad");
    let bad = dir.join("broken.pkl");
    std::fs::write(&bad, b"this is not a pickle").unwrap();
    let (mut req, _) = viz_request("sg3t_64");
    let good = req.clone();
    req.network = bad.display().to_string();
    let worker = RenderHandle::spawn(Box::new(|| ())).unwrap();
    assert_eq!(worker.request(req), Queued::Sent);
    let mut saw_error = false;
    while let Some(ev) = worker.wait_event(Duration::from_secs(60)) {
        if let RenderEvent::Error { message, during_load, .. } = ev {
            assert!(during_load);
            assert!(message.contains("broken.pkl"), "{message}");
            saw_error = true;
            break;
        }
    }
    assert!(saw_error);
    // The same worker still renders a good network afterwards.
    assert_eq!(worker.request(good), Queued::Sent);
    loop {
        match worker.wait_event(Duration::from_secs(300)).expect("no answer") {
            RenderEvent::Frame(f) => {
                assert_eq!(f.width, 64);
                break;
            }
            RenderEvent::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
}


/// The wgpu backend on a device the caller owns (as the window offers eframe's): the worker
/// registers it with burn and renders `viz/img` on it (lavapipe in CI: one 64x64 frame).
#[test]
fn worker_renders_on_a_shared_wgpu_device() {
    let instance = wgpu::Instance::default();
    let Ok(adapter) = block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())) else {
        eprintln!("no wgpu adapter on this machine: skipped");
        return;
    };
    // What the window asks for (gui::run): the adapter's limits and (non-experimental) features, as burn's own device does.
    let features = adapter.features().difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS | wgpu::Features::all_experimental_mask());
    let desc = wgpu::DeviceDescriptor { required_limits: adapter.limits(), required_features: features, ..Default::default() };
    let (device, queue) = block_on(adapter.request_device(&desc)).unwrap();
    let shared = stylescope::render::SharedGpu { instance, adapter, device: device.clone(), queue: queue.clone() };
    let (mut req, _) = viz_request("sg3t_64");
    req.backend = BackendChoice::Wgpu;
    let worker = RenderHandle::spawn_with(Box::new(|| ()), Some(shared)).unwrap();
    // The output, then one grey channel of an inner layer with normalisation and gain.
    let mut layer_req = req.clone();
    layer_req.view = LayerView { layer: Some("L5_52_16".into()), rgb: false, base_channel: 5, normalize: true, gain_db: 6.0, ..LayerView::default() };
    let mut frames = Vec::new();
    for r in [req, layer_req] {
        assert_eq!(worker.request(r), Queued::Sent);
        loop {
            match worker.wait_event(Duration::from_secs(300)).expect("no answer in 300 s") {
                RenderEvent::Loaded(info) => assert!(info.device.contains("sharing"), "{}", info.device),
                RenderEvent::Frame(f) => {
                    frames.push(f);
                    break;
                }
                RenderEvent::Error { message, .. } => panic!("{message}"),
                _ => {}
            }
        }
    }
    let out = frames[0].output.as_ref().unwrap().get().unwrap();
    let err = max_abs(&out, &expected("sg3t_64", "viz/img"));
    assert!(err <= 1e-3, "viz/img on the shared wgpu device: max abs error {err:e}");
    for f in &frames {
        // The frame stayed on the GPU: copy it into a texture there, as the window does, and
        // compare with the host conversion of the same floats.
        let gpu = f.gpu.as_ref().expect("the frame should stay on the shared GPU");
        assert!(!f.rgba.is_on_host(), "pixels were read back without being asked for");
        let on_texture = texture_roundtrip(&device, &queue, gpu);
        assert_eq!(on_texture, *f.rgba.get().unwrap(), "texture and buffer read-back differ");
        let want: Vec<u8> = match &f.layer {
            None => stylescope::render::pixels::to_rgba(&out, 3, 64, 64, &f.request.view).rgba,
            Some(_) => {
                // The same request through the CPU backend (host conversion of its floats).
                let mut cpu = f.request.clone();
                cpu.backend = BackendChoice::Cpu;
                let w = RenderHandle::spawn(Box::new(|| ())).unwrap();
                assert_eq!(w.request(cpu), Queued::Sent);
                loop {
                    match w.wait_event(Duration::from_secs(300)).expect("no answer from the CPU worker") {
                        RenderEvent::Frame(c) => {
                            assert_close_stats(&c.stats_all, &f.stats_all);
                            assert_close_stats(&c.stats_shown, &f.stats_shown);
                            break c.rgba.get().unwrap().to_vec();
                        }
                        RenderEvent::Error { message, .. } => panic!("{message}"),
                        _ => {}
                    }
                }
            }
        };
        let off = on_texture.iter().zip(&want).filter(|(a, b)| a.abs_diff(**b) > 1).count();
        assert_eq!(off, 0, "{:?}: GPU pixels differ from the host conversion by more than 1", f.layer);
    }
}

fn assert_close_stats(a: &stylescope::render::Stats, b: &stylescope::render::Stats) {
    for (x, y) in [(a.mean, b.mean), (a.std, b.std), (a.max_abs, b.max_abs)] {
        assert!((x - y).abs() <= 1e-3 * (1.0 + x.abs()), "stats differ: {a:?} vs {b:?}");
    }
}

/// Copies a packed frame into a new `Rgba8Unorm` texture on `device` and reads the texture back.
fn texture_roundtrip(device: &wgpu::Device, queue: &wgpu::Queue, gpu: &stylescope::render::PackedRgba8) -> Vec<u8> {
    let (w, h) = (gpu.width as u32, gpu.height as u32);
    let size = wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 };
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: None,
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::COPY_SRC | wgpu::TextureUsages::TEXTURE_BINDING,
        view_formats: &[],
    });
    let pitch = (w * 4).div_ceil(256) * 256;
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (pitch * h) as u64,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    gpu.copy_to_texture(&mut encoder, &texture);
    encoder.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo { buffer: &staging, layout: wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(pitch), rows_per_image: Some(h) } },
        size,
    );
    queue.submit([encoder.finish()]);
    let slice = staging.slice(..);
    slice.map_async(wgpu::MapMode::Read, |r| r.unwrap());
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    let data = slice.get_mapped_range().unwrap();
    data.chunks(pitch as usize).flat_map(|r| r[..(w * 4) as usize].to_vec()).collect()
}

/// "Untransform" re-aligns a rotated StyleGAN3-R output with the unrotated one (away from the
/// borders, where the rotated image has no content).
#[test]
fn untransform_view_realigns_a_rotated_image() {
    let (base, _) = viz_request("sg3r_64");
    let plain = RenderRequest { latent: LatentParams::default(), input_transform: None, ..base };
    let mut rotated = plain.clone();
    rotated.latent.rotate_turns = 0.06;
    let mut realigned = rotated.clone();
    realigned.view.untransform = true;
    let [orig, rot, back] = [plain, rotated, realigned].map(render_through_worker);
    let central_mse = |a: &[f32], b: &[f32]| {
        let mut s = 0.0;
        let mut n = 0.0;
        for ch in 0..3 {
            for y in 16..48 {
                for x in 16..48 {
                    let i = (ch * 64 + y) * 64 + x;
                    s += ((a[i] - b[i]) as f64).powi(2);
                    n += 1.0;
                }
            }
        }
        s / n
    };
    let before = central_mse(&rot, &orig);
    let after = central_mse(&back, &orig);
    assert!(after < 0.01 * before, "untransform did not re-align: mse {after:e} vs {before:e} rotated");
}
