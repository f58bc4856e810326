use burn::tensor::{Device, Int, Tensor, TensorData};
use stylescope::kernels::{self, cpu::Taps, reference::Fir, KernelChoice, ResampleFilter};

fn v(t: Tensor<4>) -> Vec<f32> { t.into_data().convert::<f32>().to_vec().unwrap() }
fn rnd(n: usize, seed: u32) -> Vec<f32> { let mut s = stylescope::rng::RandomState::new(seed); (0..n).map(|_| s.gauss() as f32).collect() }

fn grad_of(device: &Device, which: usize, shape: [usize; 4], ntaps: usize) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let x: Tensor<4> = Tensor::from_data(TensorData::new(rnd(n, 1), shape), device).require_grad();
    let taps: Vec<f32> = (0..ntaps).map(|i| 0.1 + 0.05 * i as f32 - if i == 3 { 0.3 } else { 0.0 }).collect();
    let f = ResampleFilter { fir: Fir::Separable(Tensor::from_data(TensorData::new(taps.clone(), [ntaps]), device)), host: Taps::Separable(taps) };
    let y = match which {
        0 => { let idx: Tensor<1, Int> = Tensor::from_data(TensorData::new(vec![2i64, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 8, 7], [14]), device); x.clone().select(3, idx) }
        1 => kernels::upsample2d(x.clone(), &f, 2, KernelChoice::Auto),
        2 => kernels::upfirdn2d(x.clone(), Some(&f), 1, 2, [-1, -1, -1, -1], 1.0, KernelChoice::Auto),
        4 => { let idx: Tensor<1, Int> = Tensor::from_data(TensorData::new((0..4000i64).map(|i| (i * 7) % 50).collect::<Vec<_>>(), [4000]), device);
               let r: Tensor<2> = x.clone().reshape([200, 3]).select(0, idx); r.reshape([2, 3, 20, 100]) }
        5 => { let idx: Tensor<1, Int> = Tensor::from_data(TensorData::new((0..4000i64).map(|i| if i % 3 == 0 { 0 } else { (i * 7) % 200 }).collect::<Vec<_>>(), [4000]), device);
               let r: Tensor<2> = x.clone().reshape([200, 3]).select(0, idx); r.reshape([2, 3, 20, 100]) }
        _ => { let idx: Tensor<1, Int> = Tensor::from_data(TensorData::new((0..400i64).map(|i| (i * 7) % 600).collect::<Vec<_>>(), [400]), device);
               let r: Tensor<2> = x.clone().reshape([600, 1]).select(0, idx); r.reshape([2, 2, 10, 10]) }
    };
    let d = y.dims();
    let r: Tensor<4> = Tensor::from_data(TensorData::new(rnd(d.iter().product(), 2), d), device);
    let g = (y * r).sum().backward();
    v(x.grad(&g).unwrap())
}

#[test]
fn dbg() {
    for (which, shape, nt) in [(1, [4, 3, 110, 105], 12), (2, [4, 3, 140, 140], 12), (1, [4, 3, 40, 40], 12), (2, [4, 3, 40, 40], 12), (1, [1, 1, 110, 105], 12), (1, [4,3,30,30], 5)] {
        let a = grad_of(&Device::flex().autodiff(), which, shape, nt);
        let b = grad_of(&stylescope::backend::BackendChoice::Wgpu.device().autodiff(), which, shape, nt);
        let err = a.iter().zip(&b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        eprintln!("case {which} {shape:?} {nt}: max diff {err}");
    }
}

fn pipe_grad(device: &Device, geom: bool, shape: [usize; 4]) -> Vec<f32> {
    use stylescope::train::augment::*;
    let pipe = AugmentPipe { p: 1.0, ..AugmentPipe::bgc() };
    let params = pipe.draw(shape[0], shape[2], shape[3], &mut SeededRng::new(4));
    let n: usize = shape.iter().product();
    let x: Tensor<4> = Tensor::from_data(TensorData::new(rnd(n, 1), shape), device).require_grad();
    let y = if geom { params.apply_geometric(x.clone()) } else { params.apply_color(x.clone(), true) };
    let d = y.dims();
    let r: Tensor<4> = Tensor::from_data(TensorData::new(rnd(d.iter().product(), 2), d), device);
    let g = (y * r).sum().backward();
    v(x.grad(&g).unwrap())
}

#[test]
fn dbg_pipe() {
    for (geom, shape) in [(false, [4, 3, 64, 64]), (true, [1, 3, 16, 16]), (true, [4, 3, 16, 16]), (true, [4, 3, 64, 64])] {
        let a = pipe_grad(&Device::flex().autodiff(), geom, shape);
        let b = pipe_grad(&stylescope::backend::BackendChoice::Wgpu.device().autodiff(), geom, shape);
        let err = a.iter().zip(&b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let m = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        eprintln!("pipe geom={geom} {shape:?}: max diff {err} (max {m})");
    }
}

fn sel_grad(device: &Device, rows: usize, n: usize, dup: usize) -> Vec<f32> {
    let x: Tensor<2> = Tensor::from_data(TensorData::new(rnd(rows * 3, 1), [rows, 3]), device).require_grad();
    let idx: Vec<i64> = (0..n as i64).map(|i| if dup > 0 && i % dup as i64 == 0 { 0 } else { (i * 7919) % rows as i64 }).collect();
    let idx: Tensor<1, Int> = Tensor::from_data(TensorData::new(idx, [n]), device);
    let y = x.clone().select(0, idx);
    let r: Tensor<2> = Tensor::from_data(TensorData::new(rnd(n * 3, 2), [n, 3]), device);
    let g = (y * r).sum().backward();
    x.grad(&g).unwrap().into_data().convert::<f32>().to_vec().unwrap()
}

#[test]
fn dbg_sel() {
    for (rows, n, dup) in [(10000, 65535, 0), (10000, 65536, 0), (10000, 65537, 0), (10000, 40000, 0), (100, 65537, 0)] {
        let a = sel_grad(&Device::flex().autodiff(), rows, n, dup);
        let b = sel_grad(&stylescope::backend::BackendChoice::Wgpu.device().autodiff(), rows, n, dup);
        let err = a.iter().zip(&b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        eprintln!("sel {rows} {n} {dup}: max diff {err}");
    }
}

fn gat_grad(device: &Device, rows: usize, n: usize) -> Vec<f32> {
    let x: Tensor<2> = Tensor::from_data(TensorData::new(rnd(rows * 3, 1), [rows, 3]), device).require_grad();
    let idx: Vec<i64> = (0..n as i64).flat_map(|i| { let j = if i % 3 == 0 { 0 } else { (i * 7919) % rows as i64 }; [j, j, j] }).collect();
    let idx: Tensor<2, Int> = Tensor::from_data(TensorData::new(idx, [n, 3]), device);
    let y = x.clone().gather(0, idx);
    let r: Tensor<2> = Tensor::from_data(TensorData::new(rnd(n * 3, 2), [n, 3]), device);
    let g = (y * r).sum().backward();
    x.grad(&g).unwrap().into_data().convert::<f32>().to_vec().unwrap()
}

#[test]
fn dbg_gat() {
    for (rows, n) in [(10000, 65537), (144400, 313600)] {
        let t = std::time::Instant::now();
        let a = gat_grad(&Device::flex().autodiff(), rows, n);
        let t1 = t.elapsed();
        let t = std::time::Instant::now();
        let b = gat_grad(&stylescope::backend::BackendChoice::Wgpu.device().autodiff(), rows, n);
        let err = a.iter().zip(&b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        eprintln!("gat {rows} {n}: max diff {err} cpu {t1:?} wgpu {:?}", t.elapsed());
    }
}
