//! The WGSL kernels for StyleGAN's resampling ops on burn's wgpu backend.
//!
//! The reference (`kernels::reference`) builds `upfirdn2d` and `filtered_lrelu` from zero
//! insertion, padding and depthwise convolutions, materialising every intermediate (the
//! zero-inserted tensor is `up²` times the input) and running generic convolution kernels. Here
//! the same ops are hand-written WGSL compute shaders (`shaders/*.wgsl`) launched through burn's
//! custom-kernel support (`template` feature: [`SourceTemplate`], [`KernelSource`],
//! [`SourceKernel`]) on the tensors' own buffers, reached with the backend-extension primitive
//! conversion (`Tensor::try_into_primitive` / `Tensor::from_primitive`).
//!
//! - [`upfirdn2d_wgpu`]: one polyphase dispatch (`shaders/upfirdn2d.wgsl`).
//! - [`filtered_lrelu_wgpu`]: one fused dispatch (`shaders/filtered_lrelu.wgsl`): each workgroup
//!   stages its input tile and the up-sampled, activated mid tile in workgroup memory, so the
//!   up-sampled tensor never reaches global memory. Layers whose tiles would not fit run
//!   [`Strategy::TwoPass`]: `upfirdn2d.wgsl` twice (bias + up-sampling + activation into a
//!   temporary buffer, then the down-sampling filter).
//!
//! Both are forward only and return `None` unless the input lives on a plain (non-autodiff) wgpu
//! device as f32, so callers fall back to the reference (which autodiff differentiates).
//! Numbers are the reference's up to float rounding (tests/wgsl_kernels.rs: max abs error 1e-5).

use burn::backend::wgpu::{into_contiguous, CubeBackend, CubeTensor, KernelSource, SourceKernel, SourceTemplate};
use burn::tensor::{DType, Shape, Tensor};
use cubecl::prelude::KernelId;
use cubecl::server::KernelArguments;
use cubecl::{CubeCount, CubeDim, RuntimeId};

pub use crate::kernels::cpu::Taps as FirHost;

/// Workgroup size of the kernels (x = output column, y = output row).
const WG_X: u32 = 16;
const WG_Y: u32 = 16;

/// `shaders/upfirdn2d.wgsl`, with the workgroup size filled in.
struct Upfirdn2dKernel;

impl KernelSource for Upfirdn2dKernel {
    fn source(&self) -> SourceTemplate {
        SourceTemplate::new(include_str!("../../shaders/upfirdn2d.wgsl"))
            .register("workgroup_size_x", WG_X.to_string())
            .register("workgroup_size_y", WG_Y.to_string())
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((WG_X, WG_Y))
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

/// Largest mid (up-sampled) tile side the fused kernel's workgroup memory holds.
const MID_CAP: usize = 48;
/// Largest input tile side the fused kernel's workgroup memory holds.
const IN_CAP: usize = 32;

/// `shaders/filtered_lrelu.wgsl`, with the workgroup size and tile capacities filled in
/// ((48² + 32²) · 4 B = 13 KiB of workgroup memory, under WebGPU's 16 KiB minimum).
struct FilteredLreluKernel;

impl KernelSource for FilteredLreluKernel {
    fn source(&self) -> SourceTemplate {
        SourceTemplate::new(include_str!("../../shaders/filtered_lrelu.wgsl"))
            .register("workgroup_size_x", WG_X.to_string())
            .register("workgroup_size_y", WG_Y.to_string())
            .register("mid_cap_sq", (MID_CAP * MID_CAP).to_string())
            .register("in_cap_sq", (IN_CAP * IN_CAP).to_string())
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((WG_X, WG_Y, MID_CAP, IN_CAP))
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

const MODE_SEPARABLE: u32 = 0;
const MODE_FULL: u32 = 1;
const FLAG_BIAS: u32 = 1;
const FLAG_ACT: u32 = 2;
const FLAG_CLAMP: u32 = 4;

/// One launch of `upfirdn2d.wgsl`; field order is the shader's `P_*` indices.
struct Params {
    channels: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    up: u32,
    down: u32,
    px0: i32,
    py0: i32,
    /// Correlation taps (flipped, gain folded in), see the shader header.
    filt: Vec<f32>,
    tw: u32,
    th: u32,
    mode: u32,
    flags: u32,
    gain: f32,
    slope: f32,
    clamp: f32,
}

impl Params {
    fn words(&self) -> Vec<u32> {
        vec![
            self.channels,
            self.h,
            self.w,
            self.oh,
            self.ow,
            self.up,
            self.down,
            self.px0 as u32,
            self.py0 as u32,
            self.tw,
            self.th,
            self.mode,
            self.flags,
            self.gain.to_bits(),
            self.slope.to_bits(),
            self.clamp.to_bits(),
        ]
    }
}

fn bytes_u32(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Reversed taps times `scale` (true convolution -> correlation, as the reference's `flip`).
fn flipped(v: &[f32], scale: f32) -> Vec<f32> {
    v.iter().rev().map(|x| x * scale).collect()
}

/// A filter as the shader takes it: `(filt, tw, th, mode)`. `None` = identity, scaled by `gain`.
/// Separable taps are scaled by `√gain` per axis, a full kernel by `gain` (reference semantics).
fn shader_filter(f: Option<&FirHost>, gain: f32) -> (Vec<f32>, u32, u32, u32) {
    match f {
        None => (vec![gain, 1.0], 1, 1, MODE_SEPARABLE),
        Some(FirHost::Separable(t)) => {
            let k = flipped(t, gain.sqrt());
            let n = k.len() as u32;
            let mut filt = k.clone();
            filt.extend_from_slice(&k);
            (filt, n, n, MODE_SEPARABLE)
        }
        // Reversing a row-major square kernel flips both axes.
        Some(FirHost::Full { n, k }) => (flipped(k, gain), *n as u32, *n as u32, MODE_FULL),
    }
}

/// Output length of upfirdn2d along one axis (as `reference::upfirdn_len`).
fn out_len(len: usize, up: usize, p0: i64, p1: i64, taps: u32, down: usize) -> usize {
    let n = ((len * up) as i64 + p0 + p1 - (taps as i64 - 1) + (down as i64 - 1)).div_euclid(down as i64);
    n.max(0) as usize
}

/// Most workgroups one dispatch dimension may have (WebGPU's minimum limit); planes are the z grid.
const MAX_GRID: usize = 65_535;

/// The contiguous f32 wgpu primitive of `x`, or `None` (other backend, autodiff, other dtype).
fn wgpu_primitive<const D: usize>(x: &Tensor<D>) -> Option<CubeTensor> {
    let t = x.clone().try_into_primitive::<CubeBackend>().ok()?;
    if t.device.runtime() != RuntimeId::Wgpu || t.dtype != DType::F32 {
        return None;
    }
    Some(into_contiguous(t))
}

/// Launches `upfirdn2d.wgsl` on `x [planes, h, w]` (contiguous) into a new `[n, c, oh, ow]` tensor.
fn launch(x: &CubeTensor, bias: Option<&CubeTensor>, p: &Params, out_shape: [usize; 4]) -> CubeTensor {
    launch_kernel(Upfirdn2dKernel, x, bias, &p.filt, &p.words(), out_shape)
}

/// Launches a kernel with the bindings both shaders share (`x`, `bias`, `filt`, `params`, `out`)
/// over a `(ceil(ow / WG_X), ceil(oh / WG_Y), planes)` grid into a new `[n, c, oh, ow]` tensor.
fn launch_kernel<K: KernelSource>(kernel: K, x: &CubeTensor, bias: Option<&CubeTensor>, filt: &[f32], words: &[u32], out_shape: [usize; 4]) -> CubeTensor {
    let client = &x.client;
    let planes = out_shape[0] * out_shape[1];
    let out_elems = out_shape.iter().product::<usize>();
    // Empty buffers cannot be bound: keep at least one element.
    let out_handle = client.empty(out_elems.max(1) * 4);
    let output = CubeTensor::new_contiguous(client.clone(), x.device.clone(), Shape::from(out_shape.to_vec()), out_handle, DType::F32);
    if out_elems == 0 {
        return output;
    }
    let bias_handle = match bias {
        Some(b) => b.handle.clone(),
        None => client.create_from_slice(&bytes_f32(&[0.0])),
    };
    let filt = client.create_from_slice(&bytes_f32(filt));
    let params = client.create_from_slice(&bytes_u32(words));
    let [_, _, oh, ow] = out_shape;
    let count = CubeCount::Static((ow as u32).div_ceil(WG_X), (oh as u32).div_ceil(WG_Y), planes as u32);
    client.launch(
        Box::new(SourceKernel::new(kernel, CubeDim::new_2d(WG_X, WG_Y))),
        count,
        KernelArguments::new().with_buffers(vec![
            x.handle.clone().binding(),
            bias_handle.binding(),
            filt.binding(),
            params.binding(),
            output.handle.clone().binding(),
        ]),
    );
    output
}

/// `upfirdn2d(x, f, up, down, padding, flip_filter = false, gain)` on the wgpu backend; twin of
/// [`crate::kernels::reference::upfirdn2d`]. `padding` is `[x0, x1, y0, y1]` (negative = crop).
/// `None` unless `x` is an f32 tensor on a plain wgpu device.
pub fn upfirdn2d_wgpu(x: Tensor<4>, f: Option<&FirHost>, up: usize, down: usize, padding: [i64; 4], gain: f32) -> Option<Tensor<4>> {
    let [n, c, h, w] = x.dims();
    if n * c > MAX_GRID {
        return None;
    }
    let xt = wgpu_primitive(&x)?;
    let (filt, tw, th, mode) = shader_filter(f, gain);
    let [x0, x1, y0, y1] = padding;
    let (oh, ow) = (out_len(h, up, y0, y1, th, down), out_len(w, up, x0, x1, tw, down));
    let p = Params {
        channels: c as u32,
        h: h as u32,
        w: w as u32,
        oh: oh as u32,
        ow: ow as u32,
        up: up as u32,
        down: down as u32,
        px0: x0 as i32,
        py0: y0 as i32,
        filt,
        tw,
        th,
        mode,
        flags: 0,
        gain: 1.0,
        slope: 1.0,
        clamp: 0.0,
    };
    let out = launch(&xt, None, &p, [n, c, oh, ow]);
    Some(Tensor::from_primitive::<CubeBackend>(out))
}

/// How [`filtered_lrelu_wgpu_with`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Fused when the layer's tiles fit the workgroup memory, otherwise two passes.
    #[default]
    Auto,
    /// Always the fused kernel (`None` when the tiles do not fit).
    Fused,
    /// Always two `upfirdn2d.wgsl` passes through a temporary buffer.
    TwoPass,
}

/// `filtered_lrelu` on the wgpu backend; twin of [`crate::kernels::reference::filtered_lrelu`]:
/// `bias` per channel, up-sampling by `up` with the separable `fu` (gain `up²`, `padding`
/// `[x0, x1, y0, y1]`), `clamp(gain · lrelu(·, slope), ±clamp)`, down-sampling by `down` with `fd`
/// (separable or a full 2-D radial kernel). Filters are the raw taps as stored in the network
/// (not flipped). `None` unless `x` (and `bias`) are f32 tensors on a plain wgpu device.
#[allow(clippy::too_many_arguments)]
pub fn filtered_lrelu_wgpu(
    x: Tensor<4>,
    fu: Option<&[f32]>,
    fd: Option<&FirHost>,
    bias: Option<Tensor<1>>,
    up: usize,
    down: usize,
    padding: [i64; 4],
    gain: f32,
    slope: f32,
    clamp: Option<f32>,
) -> Option<Tensor<4>> {
    filtered_lrelu_wgpu_with(Strategy::Auto, x, fu, fd, bias, up, down, padding, gain, slope, clamp)
}

/// [`filtered_lrelu_wgpu`] with an explicit [`Strategy`] (tests and benchmarks).
#[allow(clippy::too_many_arguments)]
pub fn filtered_lrelu_wgpu_with(
    strategy: Strategy,
    x: Tensor<4>,
    fu: Option<&[f32]>,
    fd: Option<&FirHost>,
    bias: Option<Tensor<1>>,
    up: usize,
    down: usize,
    padding: [i64; 4],
    gain: f32,
    slope: f32,
    clamp: Option<f32>,
) -> Option<Tensor<4>> {
    let [n, c, h, w] = x.dims();
    if n * c > MAX_GRID {
        return None;
    }
    let xt = wgpu_primitive(&x)?;
    let bt = match &bias {
        Some(b) => Some(wgpu_primitive(b)?),
        None => None,
    };
    let [x0, x1, y0, y1] = padding;
    let fu = fu.map(|t| FirHost::Separable(t.to_vec()));
    let (fu_filt, tu, _, _) = shader_filter(fu.as_ref(), (up * up) as f32);
    let (fd_filt, td, _, fd_mode) = shader_filter(fd, 1.0);
    let (mh, mw) = (out_len(h, up, y0, y1, tu, 1), out_len(w, up, x0, x1, tu, 1));
    let (oh, ow) = (out_len(mh, 1, 0, 0, td, down), out_len(mw, 1, 0, 0, td, down));
    let mut flags = FLAG_ACT;
    if bt.is_some() {
        flags |= FLAG_BIAS;
    }
    if clamp.is_some() {
        flags |= FLAG_CLAMP;
    }

    // The fused kernel's tiles: mid side MT, input side bound (see the shader header).
    let mt = (WG_X as usize - 1) * down + td as usize;
    let it = (mt + tu as usize - 2).div_ceil(up) + 1;
    let fits = WG_X == WG_Y && mt <= MID_CAP && it <= IN_CAP;
    let fused = match strategy {
        Strategy::Auto => fits,
        Strategy::Fused if !fits => return None,
        Strategy::Fused => true,
        Strategy::TwoPass => false,
    };

    if fused {
        let mut filt = fu_filt;
        let fd_off = filt.len() as u32;
        filt.extend_from_slice(&fd_filt);
        let words = [
            c as u32,
            h as u32,
            w as u32,
            oh as u32,
            ow as u32,
            up as u32,
            down as u32,
            x0 as i32 as u32,
            y0 as i32 as u32,
            tu,
            td,
            fd_mode,
            flags,
            gain.to_bits(),
            slope.to_bits(),
            clamp.unwrap_or(0.0).to_bits(),
            fd_off,
        ];
        let out = launch_kernel(FilteredLreluKernel, &xt, bt.as_ref(), &filt, &words, [n, c, oh, ow]);
        return Some(Tensor::from_primitive::<CubeBackend>(out));
    }

    // Pass 1: bias, up-sampling (gain up²), activation -> mid [n, c, mh, mw].
    let p1 = Params {
        channels: c as u32,
        h: h as u32,
        w: w as u32,
        oh: mh as u32,
        ow: mw as u32,
        up: up as u32,
        down: 1,
        px0: x0 as i32,
        py0: y0 as i32,
        filt: fu_filt,
        tw: tu,
        th: tu,
        mode: MODE_SEPARABLE,
        flags,
        gain,
        slope,
        clamp: clamp.unwrap_or(0.0),
    };
    let mid = launch(&xt, bt.as_ref(), &p1, [n, c, mh, mw]);

    // Pass 2: down-sampling (gain 1, no padding) -> [n, c, oh, ow].
    let p2 = Params {
        channels: c as u32,
        h: mh as u32,
        w: mw as u32,
        oh: oh as u32,
        ow: ow as u32,
        up: 1,
        down: down as u32,
        px0: 0,
        py0: 0,
        filt: fd_filt,
        tw: td,
        th: td,
        mode: fd_mode,
        flags: 0,
        gain: 1.0,
        slope: 1.0,
        clamp: 0.0,
    };
    let out = launch(&mid, None, &p2, [n, c, oh, ow]);
    Some(Tensor::from_primitive::<CubeBackend>(out))
}
