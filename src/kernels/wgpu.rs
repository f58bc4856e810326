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
//! - [`to_rgba8_wgpu`]: the window's pixel conversion into a texture-ready buffer
//!   (`shaders/to_rgba8.wgsl`), so frames go from the generator to the screen on the GPU.
//!
//! On an autodiff wgpu device `upfirdn2d` and `filtered_lrelu` record their backward (the
//! transposed kernels, [`backward`]), so training runs on them too. They return `None` unless the
//! input lives on a wgpu device as f32, so callers fall back to the reference elsewhere.
//! Numbers and gradients are the reference's up to float rounding (tests/wgsl_kernels.rs).

mod backward;

use std::ops::Range;

use burn::backend::wgpu::{into_contiguous, CubeBackend, CubeTensor, KernelSource, SourceKernel, SourceTemplate};
use burn::tensor::{DType, Shape, Tensor};
use cubecl::prelude::KernelId;
use cubecl::server::KernelArguments;
use cubecl::{CubeCount, CubeDim, RuntimeId};

pub use crate::kernels::cpu::Taps as FirHost;

/// Workgroup size of the kernels (x = output column, y = output row).
const WG_X: u32 = 16;
const WG_Y: u32 = 16;

/// One of `shaders/*.wgsl` with its template variables: the workgroup size (every kernel) and
/// any others the shader declares.
struct Wgsl {
    /// The shader's file name (part of the kernel's cache id).
    name: &'static str,
    source: &'static str,
    vars: Vec<(&'static str, String)>,
}

impl Wgsl {
    fn new(name: &'static str, source: &'static str) -> Self {
        Self { name, source, vars: vec![("workgroup_size_x", WG_X.to_string()), ("workgroup_size_y", WG_Y.to_string())] }
    }

    fn var(mut self, key: &'static str, value: usize) -> Self {
        self.vars.push((key, value.to_string()));
        self
    }
}

impl KernelSource for Wgsl {
    fn source(&self) -> SourceTemplate {
        self.vars.iter().fold(SourceTemplate::new(self.source), |t, (k, v)| t.register(*k, v.clone()))
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((self.name, self.vars.clone()))
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

fn upfirdn2d_kernel() -> Wgsl {
    Wgsl::new("upfirdn2d.wgsl", include_str!("../../shaders/upfirdn2d.wgsl"))
}

/// The fused kernel with its tile capacities ((48² + 32²) · 4 B = 13 KiB of workgroup memory,
/// under WebGPU's 16 KiB minimum).
fn filtered_lrelu_kernel() -> Wgsl {
    Wgsl::new("filtered_lrelu.wgsl", include_str!("../../shaders/filtered_lrelu.wgsl")).var("mid_cap_sq", MID_CAP * MID_CAP).var("in_cap_sq", IN_CAP * IN_CAP)
}

fn to_rgba8_kernel() -> Wgsl {
    Wgsl::new("to_rgba8.wgsl", include_str!("../../shaders/to_rgba8.wgsl"))
}

/// Largest mid (up-sampled) tile side the fused kernel's workgroup memory holds.
const MID_CAP: usize = 48;
/// Largest input tile side the fused kernel's workgroup memory holds.
const IN_CAP: usize = 32;

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
    launch_kernel(upfirdn2d_kernel(), x, bias, &p.filt, &p.words(), out_shape)
}

/// Launches a kernel with the bindings both shaders share (`x`, `bias`, `filt`, `params`, `out`)
/// over a `(ceil(ow / WG_X), ceil(oh / WG_Y), planes)` grid into a new `[n, c, oh, ow]` tensor.
fn launch_kernel(kernel: Wgsl, x: &CubeTensor, bias: Option<&CubeTensor>, filt: &[f32], words: &[u32], out_shape: [usize; 4]) -> CubeTensor {
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
/// On an autodiff wgpu device it records its backward (the transposed op, the same kernel).
/// `None` unless `x` is an f32 tensor on a wgpu device.
pub fn upfirdn2d_wgpu(x: Tensor<4>, f: Option<&FirHost>, up: usize, down: usize, padding: [i64; 4], gain: f32) -> Option<Tensor<4>> {
    let [n, c, _, _] = x.dims();
    if n * c > MAX_GRID {
        return None;
    }
    match wgpu_primitive(&x) {
        Some(xt) => Some(Tensor::from_primitive::<CubeBackend>(upfirdn2d_cube(&xt, f, up, down, padding, gain))),
        None => backward::upfirdn2d_tracked(x, f, up, down, padding, gain),
    }
}

/// `upfirdn2d` on a contiguous `[n, c, h, w]` primitive.
fn upfirdn2d_cube(xt: &CubeTensor, f: Option<&FirHost>, up: usize, down: usize, padding: [i64; 4], gain: f32) -> CubeTensor {
    let [n, c, h, w] = dims4(xt);
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
    launch(xt, None, &p, [n, c, oh, ow])
}

/// The shape of a 4-D primitive.
fn dims4(t: &CubeTensor) -> [usize; 4] {
    let d = t.meta.shape();
    [d[0], d[1], d[2], d[3]]
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
    let [n, c, _, _] = x.dims();
    if n * c > MAX_GRID {
        return None;
    }
    let op = FilteredLreluOp { fu: fu.map(|t| FirHost::Separable(t.to_vec())), fd: fd.cloned(), up, down, padding, gain, slope, clamp };
    let Some(xt) = wgpu_primitive(&x) else {
        return backward::filtered_lrelu_tracked(strategy, &op, x, bias);
    };
    let bt = match &bias {
        Some(b) => Some(wgpu_primitive(b)?),
        None => None,
    };
    op.forward(strategy, &xt, bt.as_ref()).map(Tensor::from_primitive::<CubeBackend>)
}

/// One `filtered_lrelu` call's parameters (filters as stored: raw taps, not flipped).
#[derive(Clone, Debug)]
struct FilteredLreluOp {
    fu: Option<FirHost>,
    fd: Option<FirHost>,
    up: usize,
    down: usize,
    padding: [i64; 4],
    gain: f32,
    slope: f32,
    clamp: Option<f32>,
}

impl FilteredLreluOp {
    /// The up-sampled (mid) size for an `h x w` input.
    fn mid_size(&self, h: usize, w: usize) -> (usize, usize) {
        let [x0, x1, y0, y1] = self.padding;
        let tu = shader_filter(self.fu.as_ref(), 1.0).1;
        (out_len(h, self.up, y0, y1, tu, 1), out_len(w, self.up, x0, x1, tu, 1))
    }

    /// The blocks of an input `x` whose mid (f32) tensors fit `limit` bytes each.
    fn mid_blocks(&self, x: &CubeTensor, limit: u64) -> Blocks {
        let [n, c, h, w] = dims4(x);
        let (mh, mw) = self.mid_size(h, w);
        Blocks::new(n, c, (mh * mw * 4) as u64, limit)
    }

    /// Pass 1 of the two-pass strategy: bias, up-sampling (gain up²) and, with `activate`,
    /// the activation -> mid `[n, c, mh, mw]`.
    fn up_pass(&self, xt: &CubeTensor, bt: Option<&CubeTensor>, activate: bool) -> CubeTensor {
        let [n, c, h, w] = dims4(xt);
        let [x0, _, y0, _] = self.padding;
        let (fu_filt, tu, _, _) = shader_filter(self.fu.as_ref(), (self.up * self.up) as f32);
        let (mh, mw) = self.mid_size(h, w);
        let p = Params {
            channels: c as u32,
            h: h as u32,
            w: w as u32,
            oh: mh as u32,
            ow: mw as u32,
            up: self.up as u32,
            down: 1,
            px0: x0 as i32,
            py0: y0 as i32,
            filt: fu_filt,
            tw: tu,
            th: tu,
            mode: MODE_SEPARABLE,
            flags: self.flags(bt.is_some(), activate),
            gain: self.gain,
            slope: self.slope,
            clamp: self.clamp.unwrap_or(0.0),
        };
        launch(xt, bt, &p, [n, c, mh, mw])
    }

    fn flags(&self, bias: bool, activate: bool) -> u32 {
        let mut flags = 0;
        if bias {
            flags |= FLAG_BIAS;
        }
        if activate {
            flags |= FLAG_ACT;
            if self.clamp.is_some() {
                flags |= FLAG_CLAMP;
            }
        }
        flags
    }

    /// The forward on contiguous primitives; `None` when [`Strategy::Fused`] was asked for and
    /// the layer's tiles do not fit.
    fn forward(&self, strategy: Strategy, xt: &CubeTensor, bt: Option<&CubeTensor>) -> Option<CubeTensor> {
        let [n, c, h, w] = dims4(xt);
        let (up, down) = (self.up, self.down);
        let [x0, _, y0, _] = self.padding;
        let (fu_filt, tu, _, _) = shader_filter(self.fu.as_ref(), (up * up) as f32);
        let (fd_filt, td, _, fd_mode) = shader_filter(self.fd.as_ref(), 1.0);
        let (mh, mw) = self.mid_size(h, w);
        let (oh, ow) = (out_len(mh, 1, 0, 0, td, down), out_len(mw, 1, 0, 0, td, down));

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
                self.flags(bt.is_some(), true),
                self.gain.to_bits(),
                self.slope.to_bits(),
                self.clamp.unwrap_or(0.0).to_bits(),
                fd_off,
            ];
            return Some(launch_kernel(filtered_lrelu_kernel(), xt, bt, &filt, &words, [n, c, oh, ow]));
        }

        Some(self.two_pass(xt, bt, max_buffer_bytes(xt)))
    }

    /// [`Strategy::TwoPass`]: bias, up-sampling and activation into a mid tensor, then the
    /// down-sampling (gain 1, no padding); in blocks whose mid tensor fits `limit` bytes.
    fn two_pass(&self, xt: &CubeTensor, bt: Option<&CubeTensor>, limit: u64) -> CubeTensor {
        self.mid_blocks(xt, limit).assemble(|ns, cs| {
            let (xb, bb) = (block(xt, ns, cs.clone()), bt.map(|b| bias_block(b, cs)));
            let mid = self.up_pass(&xb, bb.as_ref(), true);
            upfirdn2d_cube(&mid, self.fd.as_ref(), 1, self.down, [0, 0, 0, 0], 1.0)
        })
    }
}

/// The largest buffer the device of `t` can allocate (and bind) in one piece.
fn max_buffer_bytes(t: &CubeTensor) -> u64 {
    t.client.properties().memory.max_page_size
}

/// How an op whose intermediates hold `plane_bytes` per (sample, channel) plane walks an
/// `[n, c, ..]` tensor so that no intermediate exceeds one buffer: whole samples at a time where
/// one sample fits, else channels of one sample. A 256-channel up-sampled intermediate of
/// StyleGAN3 at batch 8 is past lavapipe's 128 MiB binding limit; at large resolutions it is past
/// a real GPU's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Blocks {
    n: usize,
    c: usize,
    /// Samples per block.
    samples: usize,
    /// Channels per block.
    channels: usize,
}

impl Blocks {
    fn new(n: usize, c: usize, plane_bytes: u64, limit: u64) -> Self {
        let planes = (limit / plane_bytes.max(1)).max(1) as usize;
        let (samples, channels) = if planes >= c { ((planes / c.max(1)).clamp(1, n.max(1)), c) } else { (1, planes) };
        Self { n, c, samples, channels }
    }

    /// `f(samples, channels)` on every block, the results put back together along the batch and
    /// channel axes (one call on the whole range when everything fits).
    fn assemble(&self, mut f: impl FnMut(Range<usize>, Range<usize>) -> CubeTensor) -> CubeTensor {
        let (n, c) = (self.n, self.c);
        if self.samples >= n && self.channels >= c {
            return f(0..n, 0..c);
        }
        let rows = (0..n)
            .step_by(self.samples)
            .map(|n0| {
                let ns = n0..(n0 + self.samples).min(n);
                let parts = (0..c).step_by(self.channels).map(|c0| Tensor::<4>::from_primitive::<CubeBackend>(f(ns.clone(), c0..(c0 + self.channels).min(c)))).collect();
                Tensor::cat(parts, 1)
            })
            .collect();
        cube(Tensor::cat(rows, 0))
    }
}

/// A contiguous primitive of a tensor known to live on the cube backend.
fn cube<const D: usize>(t: Tensor<D>) -> CubeTensor {
    into_contiguous(t.try_into_primitive::<CubeBackend>().expect("a cube tensor stays one"))
}

/// Samples `ns` and channels `cs` of a contiguous `[n, c, h, w]` primitive (itself when whole).
fn block(t: &CubeTensor, ns: Range<usize>, cs: Range<usize>) -> CubeTensor {
    let [n, c, _, _] = dims4(t);
    if ns == (0..n) && cs == (0..c) {
        return t.clone();
    }
    cube(Tensor::<4>::from_primitive::<CubeBackend>(t.clone()).slice([ns, cs]))
}

/// Channels `cs` of a bias `[c]` primitive.
fn bias_block(b: &CubeTensor, cs: Range<usize>) -> CubeTensor {
    if cs == (0..b.meta.shape()[0]) {
        return b.clone();
    }
    cube(Tensor::<1>::from_primitive::<CubeBackend>(b.clone()).slice([cs]))
}

/// Texels per row of a packed RGBA8 image: `width` rounded up so a row is a multiple of wgpu's
/// 256-byte copy alignment (`wgpu::COPY_BYTES_PER_ROW_ALIGNMENT`).
pub fn rgba8_pitch(width: usize) -> usize {
    let per_row = wgpu::COPY_BYTES_PER_ROW_ALIGNMENT as usize / 4;
    width.div_ceil(per_row) * per_row
}

/// An RGBA8 image in a wgpu buffer of burn's memory pool, pinned in place while this lives, so
/// it can be copied into a texture on the same device (`copy_buffer_to_texture`).
#[derive(Clone)]
pub struct PackedRgba8 {
    pub width: usize,
    pub height: usize,
    /// Texels per row (see [`rgba8_pitch`]).
    pub pitch: usize,
    /// The buffer page holding the image, and the image's byte offset in it.
    pub buffer: wgpu::Buffer,
    pub offset: u64,
    /// The tensor owning the memory, to read the pixels back on demand.
    tensor: CubeTensor,
    /// cubecl's binding of the memory: while held, the pool neither reuses nor moves it.
    _pin: std::sync::Arc<std::sync::Mutex<Box<dyn std::any::Any + Send>>>,
}

impl std::fmt::Debug for PackedRgba8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedRgba8").field("width", &self.width).field("height", &self.height).field("pitch", &self.pitch).field("offset", &self.offset).finish()
    }
}

impl PackedRgba8 {
    /// Records the copy of the image into `texture` (`Rgba8Unorm`, `width x height`, usage
    /// `COPY_DST`). The texture must belong to the device burn runs on.
    pub fn copy_to_texture(&self, encoder: &mut wgpu::CommandEncoder, texture: &wgpu::Texture) {
        encoder.copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo {
                buffer: &self.buffer,
                layout: wgpu::TexelCopyBufferLayout { offset: self.offset, bytes_per_row: Some(self.pitch as u32 * 4), rows_per_image: Some(self.height as u32) },
            },
            texture.as_image_copy(),
            wgpu::Extent3d { width: self.width as u32, height: self.height as u32, depth_or_array_layers: 1 },
        );
    }

    /// The pixels read back to the host, tightly packed RGBA8 (`height x width x 4`).
    pub fn read(&self) -> Result<Vec<u8>, String> {
        let bytes = self.tensor.client.read_one(self.tensor.handle.clone()).map_err(|e| format!("reading the image back from the GPU failed: {e:?}"))?;
        let row = self.width * 4;
        Ok(bytes.chunks(self.pitch * 4).take(self.height).flat_map(|r| r[..row].iter().copied()).collect())
    }
}

/// Packs `x [n, h, w]` (n = 1 or 3 shown channels) into RGBA8 with per-channel `scale [n]` on a
/// plain wgpu device, in a buffer the window can copy into a texture without a trip through the
/// CPU. Twin of [`crate::render::pixels::to_rgba`]. `None` on other backends, or when cubecl's
/// buffer cannot be reached.
pub fn to_rgba8_wgpu(x: Tensor<3>, scale: Tensor<1>) -> Option<PackedRgba8> {
    let [n, h, w] = x.dims();
    if !(n == 1 || n == 3) || scale.dims()[0] != n || h == 0 || w == 0 || h > MAX_GRID * WG_Y as usize {
        return None;
    }
    let xt = wgpu_primitive(&x)?;
    let st = wgpu_primitive(&scale)?;
    let client = &xt.client;
    let pitch = rgba8_pitch(w);
    let handle = client.empty(h * pitch * 4);
    let params = client.create_from_slice(&bytes_u32(&[n as u32, h as u32, w as u32, pitch as u32]));
    let count = CubeCount::Static((w as u32).div_ceil(WG_X), (h as u32).div_ceil(WG_Y), 1);
    client.launch(
        Box::new(SourceKernel::new(to_rgba8_kernel(), CubeDim::new_2d(WG_X, WG_Y))),
        count,
        KernelArguments::new().with_buffers(vec![xt.handle.clone().binding(), st.handle.clone().binding(), params.binding(), handle.clone().binding()]),
    );
    // Submit now, from the thread that launched, so a copy queued later on the shared wgpu
    // queue sees the pixels.
    client.flush().ok()?;
    let managed = client.get_resource::<cubecl::wgpu::WgpuServer<cubecl::wgpu::AutoCompiler>>(handle.clone()).ok()?;
    let (buffer, offset) = (managed.resource().buffer.clone(), managed.resource().offset);
    let tensor = CubeTensor::new_contiguous(client.clone(), xt.device.clone(), Shape::from(vec![h * pitch]), handle, DType::U32);
    Some(PackedRgba8 { width: w, height: h, pitch, buffer, offset, tensor, _pin: std::sync::Arc::new(std::sync::Mutex::new(Box::new(managed))) })
}
