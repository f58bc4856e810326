//! Winograd F(2x2, 3x3) for training on the CPU: the forward, input gradient and weight gradient
//! of the stride-1 3x3 convolutions (StyleGAN3-T's modulated layers, D's blocks, R1's and path
//! length's passes through them) with 16 multiplies per 2x2 output tile and channel pair instead
//! of 36 (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
//!
//! Not the inference path's F(6x6, 3x3) (`kernels::winograd`): its transforms amplify rounding
//! ~100x, which moved the fixtures' path-length gradients by 8e-4. F(2x2)'s transforms only add,
//! subtract and halve (interpolation points 0, ±1, ∞), and the sums over channels it leaves are
//! as long as the direct form's, so it rounds like the direct convolution (measured against a
//! float64 convolution at 16–256 input channels: max error 0.4–0.8x the direct form's).
//!
//! One matrix per transformed element `e` (16 of them), each product one of `kernels::tiles`'
//! GEMMs:
//! - forward: `Y[e][o][t] = Σᵢ U[e][i][o] · X[e][i][t]`, `X = Bᵀ d B` of the 4x4 input window of
//!   tile `t` (eight tiles of a tile row at a time, one per SIMD lane, read straight from the
//!   padded planes), `U = G g Gᵀ` of the filter, then `y = Aᵀ Y A` (eight tiles at a time, written
//!   as whole row segments of the output planes);
//! - weight gradient: `M[e][i][o] = Σₜ X[e][i][t] · D[e][t][o]` with `D = A dy Aᵀ` of each tile's
//!   2x2 output gradient (eight channels at a time, from the gradient in pixel-major order), then
//!   `∂W = Gᵀ M G` (the dual form: `Σ dy · y` is bilinear in `g` and `d` through the same
//!   element-wise product);
//! - input gradient: the forward on the output gradient with the weights transposed and flipped
//!   (the caller's, as for the direct form).
//!
//! The batch's tiles run together, tile row after tile row across samples, in bands small enough
//! that a band's transformed tiles stay in cache between their transform and their product
//! (bands of 24 MiB made the transforms memory-bound: a quarter slower per convolution). Twins:
//! `kernels::cpu::conv2d_direct` and a float64 weight gradient from the definition; the tests
//! below hold them together on ragged shapes.

use crate::kernels::cpu::{gemm_strided, grow, par_items, par_jobs, par_planes, SharedMut};

/// Transformed tile side (4x4 input window of a 2x2 output tile) and elements.
const WIN: usize = 4;
const E: usize = WIN * WIN;
/// Tiles (or channels) per transform step: one per SIMD lane.
const LANES: usize = 8;
type Lanes = [f32; LANES];

/// Target size of one band's transformed tiles (the larger of its two buffers).
const BAND_BYTES: usize = 2 << 20;

/// Whether the F(2x2) form takes a convolution of this shape: a 3x3 kernel, padding at most 2,
/// the register tiles present (its products), and channels enough that the transforms pay.
pub fn applies(k: usize, pad: usize, in_ch: usize, out_ch: usize) -> bool {
    k == 3 && pad <= 2 && in_ch >= 8 && out_ch >= 8 && super::tiles::available()
}

/// The geometry of a batch convolved in 2x2 output tiles.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    ho: usize,
    wo: usize,
    /// Tile rows and columns per sample.
    ty: usize,
    tx: usize,
    /// The padded input every window reads: `2·ty + 2` rows, `2·tx + 2` columns, zeros beyond the
    /// image.
    hp: usize,
    wp: usize,
}

impl Geometry {
    fn new(n: usize, h: usize, w: usize, pad: usize) -> Self {
        let (ho, wo) = ((h + 2 * pad).saturating_sub(2), (w + 2 * pad).saturating_sub(2));
        let (ty, tx) = (ho.div_ceil(2), wo.div_ceil(2));
        Self { n, ho, wo, ty, tx, hp: 2 * ty + 2, wp: 2 * tx + 2 }
    }

    /// Tile rows of the whole batch (sample after sample).
    fn tile_rows(&self) -> usize {
        self.n * self.ty
    }

    /// Tile rows per band, for `per_tile` bytes of transformed data a tile.
    fn band_rows(&self, per_tile: usize, band_bytes: usize) -> usize {
        (band_bytes / (per_tile * self.tx.max(1))).clamp(1, self.tile_rows().max(1))
    }

    /// The tile rows `a0..a1` of sample `s` that lie in the band of tile rows `q0..q0 + rows`.
    fn rows_in(&self, s: usize, (q0, rows): (usize, usize)) -> std::ops::Range<usize> {
        let first = s * self.ty;
        q0.max(first) - first..(q0 + rows).min(first + self.ty) - first
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |t| t.get())
}

/// The distance between consecutive elements' matrices in a band buffer holding `len` values
/// each: one cache line more, so the 16 matrices a transform reads or writes together do not
/// all fall on the same cache sets (at 256 channels they are whole multiples of 4 KiB apart).
const fn slab(len: usize) -> usize {
    len + 16
}

/// A band buffer laid out `[16][pieces][piece]` (matrices [`slab`] apart) as each piece's 16
/// slices, one per element `e`, so a thread can fill a whole piece (a channel, a tile row) of
/// every element at once.
fn by_piece(buf: &mut [f32], pieces: usize, piece: usize) -> Vec<Vec<&mut [f32]>> {
    let mut out: Vec<Vec<&mut [f32]>> = (0..pieces).map(|_| Vec::with_capacity(E)).collect();
    for slab in buf.chunks_mut(slab(pieces * piece)) {
        for (p, chunk) in slab[..pieces * piece].chunks_mut(piece).enumerate() {
            out[p].push(chunk);
        }
    }
    out
}

/// The batch `x` (`[n, c, h, w]`) as padded pixel-major planes `[n][hp][wp][cp]` (`cp ≥ c`
/// channels a pixel, the extra ones zero): the image at offset `(pad, pad)` of each sample,
/// zeros around it. Row by padded row on the threads.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pixel_major(x: &[f32], (n, c, h, w): (usize, usize, usize, usize), pad: usize, (hp, wp): (usize, usize), cp: usize, threads: usize, dst: &mut [f32]) {
    assert!(x.len() == n * c * h * w && dst.len() == n * hp * wp * cp && hp >= h + pad && wp >= w + pad, "pixel-major layout of another shape");
    par_planes(dst, wp * cp, threads, || (), |_, q, row| {
        row.fill(0.0);
        let (s, y) = (q / hp, q % hp);
        if y < pad || y >= pad + h {
            return;
        }
        // Eight channels at a time: each pixel's eight values are one contiguous store.
        let src = |ch: usize| &x[((s * c + ch) * h + y - pad) * w..((s * c + ch) * h + y - pad + 1) * w];
        for c0 in (0..c).step_by(LANES) {
            let cn = LANES.min(c - c0);
            for xx in 0..w {
                for (j, v) in row[(pad + xx) * cp + c0..(pad + xx) * cp + c0 + cn].iter_mut().enumerate() {
                    *v = src(c0 + j)[xx];
                }
            }
        }
    });
}

/// `G g` of one 3-tap filter (points 0, 1, −1, ∞).
#[inline(always)]
fn g_side(g: [f32; 3]) -> [f32; WIN] {
    [g[0], 0.5 * (g[0] + g[1] + g[2]), 0.5 * (g[0] - g[1] + g[2]), g[2]]
}

/// The filters' transform: `U[e][i][o] = (G g Gᵀ)[e]` of `g = weight[o, i]` (`[out, in, 3, 3]`),
/// input channel by input channel on the threads.
fn filter_transform(weight: &[f32], out_ch: usize, in_ch: usize, threads: usize) -> Vec<f32> {
    let mut u = vec![0f32; E * in_ch * out_ch];
    let per_channel: Vec<(usize, Vec<&mut [f32]>)> = u.chunks_mut(in_ch * out_ch).map(|m| m.chunks_mut(out_ch)).fold((0..in_ch).map(|_| Vec::with_capacity(E)).collect::<Vec<Vec<&mut [f32]>>>(), |mut acc, rows| {
        for (i, row) in rows.enumerate() {
            acc[i].push(row);
        }
        acc
    }).into_iter().enumerate().collect();
    par_items(per_channel, threads, |(i, mut dst)| {
        for o in 0..out_ch {
            let g = &weight[(o * in_ch + i) * 9..(o * in_ch + i + 1) * 9];
            // G g down the columns, then along the rows.
            let cols = [0, 1, 2].map(|k| g_side([g[k], g[3 + k], g[6 + k]]));
            for a in 0..WIN {
                for (b, v) in g_side([cols[0][a], cols[1][a], cols[2][a]]).iter().enumerate() {
                    dst[a * WIN + b][o] = *v;
                }
            }
        }
    });
    u
}

// The 1-D transforms of F(2, 3) (points 0, 1, −1, ∞) on one lane's values; [`tile2d`] applies
// one along both axes of every lane's tile.

/// `Bᵀ d` along one axis.
#[inline(always)]
fn bt(d: [f32; WIN]) -> [f32; WIN] {
    [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]
}

/// `Aᵀ m` along one axis.
#[inline(always)]
fn at(m: [f32; WIN]) -> [f32; 2] {
    [m[0] + m[1] + m[2], m[1] - m[2] - m[3]]
}

/// `A dy` along one axis (the weight gradient's transform of a 2x2 output-gradient tile).
#[inline(always)]
fn a_side(d: [f32; 2]) -> [f32; WIN] {
    [d[0], d[0] + d[1], d[0] - d[1], -d[1]]
}

/// `Gᵀ m` along one axis (the weight gradient's way back to 3 taps).
#[inline(always)]
fn gt_side(m: [f32; WIN]) -> [f32; 3] {
    let (s, d) = (m[1] + m[2], m[1] - m[2]);
    [m[0] + 0.5 * s, 0.5 * d, 0.5 * s + m[3]]
}

/// A 1-D transform `t` (`I` → `O`) along both axes of every lane's `I x I` tile (`x[i][k][lane]`):
/// `T x Tᵀ`, columns first. One loop over the lanes whose body is straight-line code on one
/// lane's tile, which the compiler vectorises across the lanes (a transform written on whole lane
/// groups instead stayed scalar: the lane loops inside the 2-D passes were not unrolled).
#[inline(always)]
fn tile2d<const I: usize, const O: usize>(x: &[[Lanes; I]; I], t: fn([f32; I]) -> [f32; O]) -> [[Lanes; O]; O] {
    let mut out = [[[0f32; LANES]; O]; O];
    for j in 0..LANES {
        let mut cols = [[0f32; I]; O];
        for k in 0..I {
            let c = t(std::array::from_fn(|i| x[i][k][j]));
            for a in 0..O {
                cols[a][k] = c[a];
            }
        }
        for a in 0..O {
            let r = t(cols[a]);
            for b in 0..O {
                out[a][b][j] = r[b];
            }
        }
    }
    out
}

/// `dst[..lanes] = src[..lanes]`; a full group of lanes is a fixed-size copy (vector moves, not a
/// `memcpy` call per tile group).
#[inline(always)]
fn copy_lanes(dst: &mut [f32], src: &[f32], lanes: usize) {
    if lanes == LANES {
        dst[..LANES].copy_from_slice(&src[..LANES]);
    } else {
        for (d, s) in dst[..lanes].iter_mut().zip(src) {
            *d = *s;
        }
    }
}

multiversion! {
    /// `Bᵀ d B` of the 4x4 windows of input channel `c`'s tiles in the band (tile rows
    /// `q0..q0 + rows`; `xpad` the batch's padded planes `[n][in][hp][wp]` with each row's even
    /// then odd columns, [`pad_phases`]) into `dst` (this channel's `[tiles]` row of `X[e]` for
    /// each `e`), eight tiles of a tile row at a time: window column `k` of tiles `b0..b0 + 8` is
    /// eight consecutive values of one phase (`k = 0, 2`: even columns from `b0`, `b0 + 1`;
    /// `k = 1, 3`: odd ones).
    fn input_channel(xpad: &[f32], g: Geometry, in_ch: usize, c: usize, band: (usize, usize), dst: Vec<&mut [f32]>) {
        let mut dst = dst;
        let (q0, rows) = band;
        let half = g.wp / 2;
        // In a short last group the unused lanes keep old values, which are transformed but
        // never stored.
        let mut d = [[[0f32; LANES]; WIN]; WIN];
        for r in 0..rows {
            let (s, a) = ((q0 + r) / g.ty, (q0 + r) % g.ty);
            let plane = &xpad[(s * in_ch + c) * g.hp * g.wp..(s * in_ch + c + 1) * g.hp * g.wp];
            for b0 in (0..g.tx).step_by(LANES) {
                let lanes = LANES.min(g.tx - b0);
                for (i, di) in d.iter_mut().enumerate() {
                    let row = &plane[(2 * a + i) * g.wp..(2 * a + i + 1) * g.wp];
                    let (even, odd) = row.split_at(half);
                    for (k, dk) in di.iter_mut().enumerate() {
                        let phase = if k % 2 == 0 { even } else { odd };
                        copy_lanes(dk, &phase[b0 + k / 2..], lanes);
                    }
                }
                let t0 = r * g.tx + b0;
                for (out, v) in dst.iter_mut().zip(tile2d(&d, bt).iter().flatten()) {
                    copy_lanes(&mut out[t0..], v, lanes);
                }
            }
        }
    }
}

multiversion! {
    /// One `hp x wp` padded plane of [`padded`]: the `h x w` image `src` at offset `(pad, pad)`,
    /// zeros around it, each row stored as its even columns then its odd ones (`wp / 2` each).
    fn pad_phases(src: &[f32], w: usize, pad: usize, wp: usize, plane: &mut [f32]) {
        let h = src.len() / w.max(1);
        let half = wp / 2;
        for (y, row) in plane.chunks_mut(wp).enumerate() {
            row.fill(0.0);
            if y < pad || y >= pad + h {
                continue;
            }
            let line = &src[(y - pad) * w..(y - pad + 1) * w];
            let (even, odd) = row.split_at_mut(half);
            // Padded column x = pad + j: pairs (j, j + 1) land in one even and one odd slot.
            let (first, second) = if pad % 2 == 0 { (&mut even[pad / 2..], &mut odd[pad / 2..]) } else { (&mut odd[pad / 2..], &mut even[pad / 2 + 1..]) };
            for ((a, b), pair) in first.iter_mut().zip(second.iter_mut()).zip(line.chunks_exact(2)) {
                *a = pair[0];
                *b = pair[1];
            }
            if w % 2 == 1 {
                let x = pad + w - 1;
                let phase = if x % 2 == 0 { &mut *even } else { &mut *odd };
                phase[x / 2] = line[w - 1];
            }
        }
    }
}

multiversion! {
    /// `Aᵀ Y A` of output channel `o`'s tiles of sample `s` in the band (`y` the band's
    /// `Y[e][o][t]`, matrices `slab(out·tiles)` apart) into `plane`, its `ho x wo` output plane
    /// (cropped at the right and bottom edges), eight tiles at a time.
    #[allow(clippy::too_many_arguments)]
    fn output_plane(y: &[f32], g: Geometry, out_ch: usize, o: usize, s: usize, band: (usize, usize), plane: &mut [f32]) {
        let tiles = band.1 * g.tx;
        let mut m = [[[0f32; LANES]; WIN]; WIN];
        for a in g.rows_in(s, band) {
            let t_row = (s * g.ty + a - band.0) * g.tx;
            for b0 in (0..g.tx).step_by(LANES) {
                let lanes = LANES.min(g.tx - b0);
                // As in `input_channel`, unused lanes of a short group are never stored.
                for (e, v) in m.iter_mut().flatten().enumerate() {
                    let at = e * slab(out_ch * tiles) + o * tiles + t_row + b0;
                    copy_lanes(v, &y[at..], lanes);
                }
                let out = tile2d(&m, at);
                for (r, yr) in out.iter().enumerate().take(g.ho - 2 * a) {
                    let row = &mut plane[(2 * a + r) * g.wo..(2 * a + r + 1) * g.wo];
                    let c0 = 2 * b0;
                    if let Ok(seg) = <&mut [f32; 2 * LANES]>::try_from(row.get_mut(c0..c0 + 2 * LANES).unwrap_or_default()) {
                        // Fixed bounds: the interleave compiles to vector shuffles.
                        for j in 0..LANES {
                            seg[2 * j] = yr[0][j];
                            seg[2 * j + 1] = yr[1][j];
                        }
                        continue;
                    }
                    for j in 0..lanes {
                        for (k, v) in yr.iter().enumerate().take(g.wo - 2 * (b0 + j)) {
                            row[2 * (b0 + j) + k] = v[j];
                        }
                    }
                }
            }
        }
    }
}

/// Scratch buffers kept between calls on a thread (grown, never shrunk; every element used is
/// written first).
#[derive(Default)]
struct Scratch {
    pad: Vec<f32>,
    xt: Vec<f32>,
    yt: Vec<f32>,
    pm: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// The batch's padded planes `[n][in][hp][wp]` in `buf`, rows split by column phase
/// ([`pad_phases`]).
fn padded<'a>(x: &[f32], g: Geometry, in_ch: usize, (h, w, pad): (usize, usize, usize), threads: usize, buf: &'a mut Vec<f32>) -> &'a [f32] {
    let len = g.n * in_ch * g.hp * g.wp;
    grow(buf, len);
    let xpad = &mut buf[..len];
    par_planes(xpad, g.hp * g.wp, threads, || (), |_, j, plane| pad_phases(&x[j * h * w..(j + 1) * h * w], w, pad, g.wp, plane));
    xpad
}

/// The input transform of the band's tiles into `xt` (`X[e][i][t]`, matrices `slab(in·tiles)`
/// apart), channel by channel on the threads.
fn transform_inputs(xpad: &[f32], g: Geometry, in_ch: usize, band: (usize, usize), threads: usize, xt: &mut [f32]) {
    let jobs = by_piece(xt, in_ch, band.1 * g.tx).into_iter().enumerate().collect();
    par_items(jobs, threads, |(c, dst)| input_channel(xpad, g, in_ch, c, band, dst));
}

/// The stride-1 correlation of every sample of `x` (`[n, in, h, w]`) with `weight` (`[out, in,
/// 3, 3]`), zero padding `pad ≤ 2` → `([n, out, ho, wo], ho, wo)`.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3(x: &[f32], n: usize, in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, pad: usize) -> (Vec<f32>, usize, usize) {
    conv3x3_banded(x, n, in_ch, h, w, weight, out_ch, pad, BAND_BYTES)
}

#[allow(clippy::too_many_arguments)]
fn conv3x3_banded(x: &[f32], n: usize, in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, pad: usize, band_bytes: usize) -> (Vec<f32>, usize, usize) {
    assert!(pad <= 2 && x.len() == n * in_ch * h * w && weight.len() == out_ch * in_ch * 9, "3x3 convolution of another shape");
    let g = Geometry::new(n, h, w, pad);
    let mut out = vec![0f32; n * out_ch * g.ho * g.wo];
    if out.is_empty() || in_ch == 0 {
        return (out, g.ho, g.wo);
    }
    let threads = threads();
    let u = filter_transform(weight, out_ch, in_ch, threads);
    SCRATCH.with(|cell| {
        let Scratch { pad: pad_buf, xt, yt, .. } = &mut *cell.borrow_mut();
        let xpad = padded(x, g, in_ch, (h, w, pad), threads, pad_buf);
        let band = g.band_rows(E * 4 * in_ch.max(out_ch), band_bytes);
        grow(xt, E * slab(band * g.tx * in_ch));
        grow(yt, E * slab(band * g.tx * out_ch));
        let plane = g.ho * g.wo;
        for q0 in (0..g.tile_rows()).step_by(band) {
            let rows = band.min(g.tile_rows() - q0);
            let tiles = rows * g.tx;
            let (xt, yt) = (&mut xt[..E * slab(in_ch * tiles)], &mut yt[..E * slab(out_ch * tiles)]);
            transform_inputs(xpad, g, in_ch, (q0, rows), threads, xt);
            // 16 GEMMs Y[e] = U[e]ᵀ · X[e], output channels as rows, tiles as columns.
            let yp = SharedMut(yt.as_mut_ptr());
            let (xt, u) = (&*xt, &u);
            par_jobs(E, threads, |e| {
                let yp = yp;
                // SAFETY: dst is Y[e] ([out, tiles], rows `tiles` apart), written by job e only;
                // lhs U[e] read transposed ([out, in]: rows 1 apart, columns `out` apart), rhs
                // X[e] ([in, tiles], rows `tiles` apart): all inside their buffers.
                unsafe { gemm_strided((out_ch, tiles, in_ch), yp.0.add(e * slab(out_ch * tiles)), (tiles as isize, 1), false, (u.as_ptr().add(e * in_ch * out_ch), 1, out_ch as isize), (xt.as_ptr().add(e * slab(in_ch * tiles)), tiles as isize, 1)) };
            });
            // The band's output planes: those of every sample it touches.
            let yt = &*yt;
            let (s0, s1) = (q0 / g.ty, (q0 + rows - 1) / g.ty);
            par_planes(&mut out[s0 * out_ch * plane..(s1 + 1) * out_ch * plane], plane, threads, || (), |_, j, dst| {
                output_plane(yt, g, out_ch, j % out_ch, s0 + j / out_ch, (q0, rows), dst);
            });
        }
    });
    (out, g.ho, g.wo)
}

multiversion! {
    /// `A dy Aᵀ` of tile row `q`'s 2x2 output-gradient tiles (`pm` the gradient in pixel-major
    /// order `[n][2·ty][2·tx][op]`, zeros past the edges) into `dst` (the row's `[tx][op]` slice
    /// of `D[e]` for each `e`), eight channels at a time.
    fn grad_row(pm: &[f32], g: Geometry, op: usize, q: usize, dst: Vec<&mut [f32]>) {
        let mut dst = dst;
        let (s, a) = (q / g.ty, q % g.ty);
        let mut d = [[[0f32; LANES]; 2]; 2];
        for b in 0..g.tx {
            for o0 in (0..op).step_by(LANES) {
                for (i, di) in d.iter_mut().enumerate() {
                    for (k, dk) in di.iter_mut().enumerate() {
                        let at = ((s * 2 * g.ty + 2 * a + i) * 2 * g.tx + 2 * b + k) * op + o0;
                        if let Ok(v) = <&Lanes>::try_from(&pm[at..at + LANES]) {
                            *dk = *v;
                        }
                    }
                }
                for (out, v) in dst.iter_mut().zip(tile2d(&d, a_side).iter().flatten()) {
                    out[b * op + o0..b * op + o0 + LANES].copy_from_slice(v);
                }
            }
        }
    }
}

/// `∂W[o, i, ky, kx] = Σₙ Σ_{y, x} dy[n, o, y, x] · x_pad[n, i, y + ky, x + kx]` of the 3x3
/// convolution [`conv3x3`] computed with padding `pad` (`x` `[n, in, h, w]`, `dy` `[n, out, ho,
/// wo]`) → `[out, in, 3, 3]`.
#[allow(clippy::too_many_arguments)]
pub fn weight_grad(x: &[f32], dy: &[f32], n: usize, in_ch: usize, h: usize, w: usize, out_ch: usize, pad: usize) -> Vec<f32> {
    weight_grad_banded(x, dy, n, in_ch, h, w, out_ch, pad, BAND_BYTES)
}

#[allow(clippy::too_many_arguments)]
fn weight_grad_banded(x: &[f32], dy: &[f32], n: usize, in_ch: usize, h: usize, w: usize, out_ch: usize, pad: usize, band_bytes: usize) -> Vec<f32> {
    let g = Geometry::new(n, h, w, pad);
    assert!(pad <= 2 && x.len() == n * in_ch * h * w && dy.len() == n * out_ch * g.ho * g.wo, "3x3 weight gradient of another shape");
    let mut dw = vec![0f32; out_ch * in_ch * 9];
    if dy.is_empty() || in_ch == 0 {
        return dw;
    }
    let threads = threads();
    // Output channels in whole lanes.
    let op = out_ch.div_ceil(LANES) * LANES;
    // M[e][i][o], summed over the bands.
    let mut m = vec![0f32; E * in_ch * op];
    SCRATCH.with(|cell| {
        let Scratch { pad: pad_buf, xt, yt: dt, pm } = &mut *cell.borrow_mut();
        let xpad = padded(x, g, in_ch, (h, w, pad), threads, pad_buf);
        grow(pm, n * 4 * g.ty * g.tx * op);
        let pm = &mut pm[..n * 4 * g.ty * g.tx * op];
        pixel_major(dy, (n, out_ch, g.ho, g.wo), 0, (2 * g.ty, 2 * g.tx), op, threads, pm);
        let pm = &*pm;
        let band = g.band_rows(E * 4 * in_ch.max(op), band_bytes);
        grow(xt, E * slab(band * g.tx * in_ch));
        grow(dt, E * slab(band * g.tx * op));
        for (bi, q0) in (0..g.tile_rows()).step_by(band).enumerate() {
            let rows = band.min(g.tile_rows() - q0);
            let tiles = rows * g.tx;
            let (xt, dt) = (&mut xt[..E * slab(in_ch * tiles)], &mut dt[..E * slab(tiles * op)]);
            transform_inputs(xpad, g, in_ch, (q0, rows), threads, xt);
            par_items(by_piece(dt, rows, g.tx * op).into_iter().enumerate().collect(), threads, |(r, dst)| grad_row(pm, g, op, q0 + r, dst));
            let mp = SharedMut(m.as_mut_ptr());
            let (xt, dt) = (&*xt, &*dt);
            par_jobs(E, threads, |e| {
                let mp = mp;
                // SAFETY: dst is M[e] ([in, out], rows op apart), written by job e only; lhs X[e]
                // ([in, tiles], rows `tiles` apart), rhs D[e] ([tiles, out], rows op apart): all
                // inside their buffers.
                unsafe { gemm_strided((in_ch, out_ch, tiles), mp.0.add(e * in_ch * op), (op as isize, 1), bi > 0, (xt.as_ptr().add(e * slab(in_ch * tiles)), tiles as isize, 1), (dt.as_ptr().add(e * slab(tiles * op)), op as isize, 1)) };
            });
        }
    });
    // ∂W = Gᵀ M G, input channel by input channel ([in][out][3][3]), then transposed.
    let mut dwt = vec![0f32; in_ch * out_ch * 9];
    par_planes(&mut dwt, out_ch * 9, threads, || (), |_, i, dst| filter_grad(&m, in_ch, op, out_ch, i, dst));
    for (o, dst) in dw.chunks_mut(in_ch * 9).enumerate() {
        for (i, taps) in dst.chunks_mut(9).enumerate() {
            taps.copy_from_slice(&dwt[(i * out_ch + o) * 9..(i * out_ch + o + 1) * 9]);
        }
    }
    dw
}

multiversion! {
    /// `Gᵀ M G` of input channel `i`'s slots of `m` (`[16][in][op]`) into its `[out][3][3]`
    /// weight gradients, eight output channels at a time.
    fn filter_grad(m: &[f32], in_ch: usize, op: usize, out_ch: usize, i: usize, dst: &mut [f32]) {
        let mut t = [[[0f32; LANES]; WIN]; WIN];
        for o0 in (0..out_ch).step_by(LANES) {
            for (e, v) in t.iter_mut().flatten().enumerate() {
                let at = (e * in_ch + i) * op + o0;
                if let Ok(s) = <&Lanes>::try_from(&m[at..at + LANES]) {
                    *v = *s;
                }
            }
            let k = tile2d(&t, gt_side);
            for j in 0..LANES.min(out_ch - o0) {
                for (ky, row) in k.iter().enumerate() {
                    for (kx, v) in row.iter().enumerate() {
                        dst[(o0 + j) * 9 + ky * 3 + kx] = v[j];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::{conv2d_direct, ChannelScales};

    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Per sample on the direct form.
    fn direct(x: &[f32], n: usize, c: usize, h: usize, w: usize, wt: &[f32], o: usize, pad: usize) -> Vec<f32> {
        (0..n).flat_map(|s| conv2d_direct(&x[s * c * h * w..(s + 1) * c * h * w], c, h, w, wt, o, 3, pad, ChannelScales::default()).0).collect()
    }

    /// In float64, straight from the definition.
    fn weight_grad_naive(x: &[f32], dy: &[f32], n: usize, c: usize, h: usize, w: usize, o: usize, pad: usize) -> Vec<f32> {
        let (ho, wo) = (h + 2 * pad - 2, w + 2 * pad - 2);
        let mut dw = vec![0f32; o * c * 9];
        for oc in 0..o {
            for i in 0..c {
                for tap in 0..9 {
                    let (ky, kx) = (tap / 3, tap % 3);
                    let mut acc = 0f64;
                    for s in 0..n {
                        for y in 0..ho {
                            for xx in 0..wo {
                                let (sy, sx) = ((y + ky) as isize - pad as isize, (xx + kx) as isize - pad as isize);
                                if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                                    continue;
                                }
                                acc += dy[((s * o + oc) * ho + y) * wo + xx] as f64 * x[((s * c + i) * h + sy as usize) * w + sx as usize] as f64;
                            }
                        }
                    }
                    dw[(oc * c + i) * 9 + tap] = acc as f32;
                }
            }
        }
        dw
    }

    fn max_rel(a: &[f32], b: &[f32]) -> f32 {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-20);
        a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    #[test]
    fn forward_matches_the_direct_form() {
        if !crate::kernels::tiles::available() {
            return;
        }
        // Ragged channel counts, odd sizes, every padding, and bands of one tile row (across
        // samples) as well as whole batches.
        for &(n, c, o, h, w, pad) in &[(3, 9, 13, 7, 5, 2), (2, 16, 8, 10, 11, 1), (1, 24, 17, 6, 6, 0), (4, 8, 8, 3, 4, 2)] {
            let x = values(n * c * h * w, 1);
            let wt = values(o * c * 9, 2);
            let want = direct(&x, n, c, h, w, &wt, o, pad);
            for band in [1, BAND_BYTES] {
                let (got, ho, wo) = conv3x3_banded(&x, n, c, h, w, &wt, o, pad, band);
                assert_eq!((ho, wo), (h + 2 * pad - 2, w + 2 * pad - 2));
                let err = max_rel(&got, &want);
                assert!(err < 1e-6, "{n}x{c}x{h}x{w} → {o} pad {pad} band {band}: {err:e}");
            }
        }
    }

    #[test]
    fn weight_gradient_matches_the_definition() {
        if !crate::kernels::tiles::available() {
            return;
        }
        for &(n, c, o, h, w, pad) in &[(3, 9, 13, 7, 5, 2), (2, 16, 8, 10, 11, 1), (1, 24, 17, 6, 6, 0)] {
            let (ho, wo) = (h + 2 * pad - 2, w + 2 * pad - 2);
            let x = values(n * c * h * w, 3);
            let dy = values(n * o * ho * wo, 4);
            let want = weight_grad_naive(&x, &dy, n, c, h, w, o, pad);
            for band in [1, BAND_BYTES] {
                let got = weight_grad_banded(&x, &dy, n, c, h, w, o, pad, band);
                let err = max_rel(&got, &want);
                assert!(err < 2e-6, "{n}x{c}x{h}x{w} → {o} pad {pad} band {band}: {err:e}");
            }
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    #[test]
    #[ignore]
    fn time_against_the_direct_tiles() {
        let (n, c, o, h, w, pad) = (8, 256, 256, 52, 52, 2);
        let x: Vec<f32> = (0..n * c * h * w).map(|i| (i % 97) as f32 * 0.01).collect();
        let wt: Vec<f32> = (0..o * c * 9).map(|i| (i % 89) as f32 * 0.01).collect();
        let (ho, wo) = (h + 2 * pad - 2, w + 2 * pad - 2);
        let dy: Vec<f32> = (0..n * o * ho * wo).map(|i| (i % 83) as f32 * 0.01).collect();
        for band in [1 << 20, 2 << 20, 4 << 20, 8 << 20, 24 << 20, 1 << 20, 2 << 20, 4 << 20, 8 << 20, 24 << 20] {
            let t = std::time::Instant::now();
            let a = conv3x3_banded(&x, n, c, h, w, &wt, o, pad, band);
            let t1 = t.elapsed();
            let t = std::time::Instant::now();
            let c1 = weight_grad_banded(&x, &dy, n, c, h, w, o, pad, band);
            let t3 = t.elapsed();
            eprintln!("band {band} forward f2 {t1:?} weight grad f2 {t3:?} ({} {})", a.0.len(), c1.len());
        }
        let t = std::time::Instant::now();
        let b = crate::kernels::cpu_autodiff::conv_samples_for_timing(&x, n, c, h, w, &wt, o, 3, pad);
        let t2 = t.elapsed();
        let t = std::time::Instant::now();
        let c2 = crate::kernels::cpu_autodiff::weight_grad_for_timing(&x, &dy, n, c, h, w, o, 3, pad);
        let t4 = t.elapsed();
        eprintln!("direct {t2:?} weight grad direct {t4:?} ({} {})", b.len(), c2.len());
    }
}
