//! Winograd convolution for training on the CPU: the forward, input gradient and weight gradient
//! of the stride-1 3x3 convolutions (StyleGAN3-T's modulated layers, D's blocks, R1's and path
//! length's passes through them) as F(2x2, 3x3), 16 multiplies per 2x2 output tile and channel
//! pair instead of 36, and of the 2x2 ones (D's stride-2 convolutions on the input's pixel
//! phases) as F(3x3, 2x2), 16 per 3x3 tile instead of 36 (Lavin & Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2016). Both read 4x4 input windows through the same input
//! transform `Bᵀ d B` (interpolation points 0, 1, −1, ∞).
//!
//! Not the inference path's F(6x6, 3x3) (`kernels::winograd`): its transforms amplify rounding
//! ~100x, which moved the fixtures' path-length gradients by 8e-4. These transforms only add,
//! subtract and halve, and the sums over channels they leave are as long as the direct form's,
//! so they round like the direct convolution (F(2x2, 3x3) measured against a float64
//! convolution at 16–256 input channels: max error 0.4–0.8x the direct form's).
//!
//! One matrix per transformed element `e` (16 of them), each product one of `kernels::tiles`'
//! GEMMs:
//! - forward: `Y[e][o][t] = Σᵢ U[e][i][o] · X[e][i][t]`, `X = Bᵀ d B` of the 4x4 input window of
//!   tile `t` (eight tiles of a tile row at a time, one per SIMD lane, read straight from the
//!   padded planes, whose rows are stored phase by phase so each window column is eight
//!   consecutive values), `U = G g Gᵀ` of the filter, then `y = Aᵀ Y A` (eight tiles at a time,
//!   written as whole row segments of the output planes);
//! - weight gradient: `M[e][i][o] = Σₜ X[e][i][t] · D[e][t][o]` with `D = A dy Aᵀ` of each tile's
//!   output gradient (eight channels at a time, from the gradient in pixel-major order), then
//!   `∂W = Gᵀ M G` (the dual form: `Σ dy · y` is bilinear in `g` and `d` through the same
//!   element-wise product);
//! - input gradient: the forward on the output gradient with the weights transposed and flipped
//!   (the caller's, as for the direct form).
//!
//! The batch's tiles run together, tile row after tile row across samples, in bands small enough
//! that a band's transformed tiles stay in cache between their transform and their product
//! (bands of 24 MiB made the transforms memory-bound: a quarter slower per convolution). Where
//! the batch has bands enough for every thread, the forward runs fused ([`conv_fused`]): a thread
//! takes a band of 64 tiles through all three steps, its transformed tiles a block of channels at
//! a time, so nothing 4x the input's size goes through memory or between cores (8 x 256 x 32² →
//! 256: 34 ms against 41 ms banded; 8 x 128 x 64²: 40 against 49). Twins:
//! `kernels::cpu::conv2d_direct` and a float64 weight gradient from the definition; the tests
//! below hold them together on ragged shapes.

use crate::kernels::cpu::{self, gemm_strided, grow, par_items, par_jobs, par_planes, SharedMut};
use crate::kernels::tiles;
use crate::kernels::winograd::{copy_lanes, copy_n, LANES};

/// Transformed tile side (the 4x4 input window of a 2x2 tile of a 3x3 kernel or of a 3x3 tile
/// of a 2x2 kernel) and elements.
const WIN: usize = 4;
const E: usize = WIN * WIN;
/// Tiles (or channels) per transform step (`LANES`, as in `kernels::winograd`): one per SIMD lane.
type Lanes = [f32; LANES];

/// Target size of one band's transformed tiles (the larger of its two buffers).
const BAND_BYTES: usize = 4 << 20;
/// [`BAND_BYTES`] for the weight gradient, whose products sum into all of `M` (`16·in·out`
/// values) once per band: fewer, larger bands ran faster despite the transformed tiles leaving
/// L2 (8 x 256 x 32² → 256: 39.7 ms in bands of 4 MiB, 36.0 in 8 or 16, 50.8 in 32; 8 x 128 x 64²:
/// 50.7, 46.9, 44.6, 60.0; 8 x 256 x 16²: 11.6, 12.1, 9.7, 9.4, interleaved in one process).
const GRAD_BAND_BYTES: usize = 16 << 20;
/// Fewest tiles per band, whatever the channel count: fewer leave the products' 64-wide register
/// tiles mostly empty (2048 channels at 9x9 ran 3x slower than the direct form in bands of 30).
const MIN_BAND_TILES: usize = 128;

/// Whether [`conv`] runs a training convolution of this shape (forward or input gradient): a 3x3
/// kernel with padding at most 2, the register tiles present (its products), and channels enough
/// that the transforms pay. (Its F(3x3, 2x2) form was slower than the direct tiles at D's 2x2
/// shapes: 512–2048 input channels at 33x33 down to 9x9, the transformed filters 4x the weights.)
pub fn conv_applies(k: usize, pad: usize, in_ch: usize, out_ch: usize) -> bool {
    k == 3 && pad <= 2 && in_ch >= 8 && out_ch >= 8 && tiles::available()
}

/// Whether [`weight_grad`] runs a training convolution's weight gradient of this shape (`n`
/// samples of `h x w`): a 3x3 kernel as for [`conv_applies`], or a 2x2 one with padding at most 1
/// and enough tiles for the products to outweigh the transforms (measured: 1.3–1.5x faster than
/// the direct tiles at 288 tiles and more, slower at 72).
pub fn weight_grad_applies(k: usize, pad: usize, in_ch: usize, out_ch: usize, (n, h, w): (usize, usize, usize)) -> bool {
    if conv_applies(k, pad, in_ch, out_ch) {
        return true;
    }
    let g = Geometry::new(n, h, w, 2, pad);
    k == 2 && pad <= 1 && in_ch >= 8 && out_ch >= 8 && n * g.ty * g.tx >= 256 && tiles::available()
}

/// The geometry of a batch convolved in `m x m` output tiles (`m = 5 − k`: 2 for a 3x3 kernel,
/// 3 for a 2x2 one).
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    /// Output tile side.
    m: usize,
    ho: usize,
    wo: usize,
    /// Tile rows and columns per sample.
    ty: usize,
    tx: usize,
    /// The padded input every window reads: `m·ty + k − 1` rows, `m·(tx + 1)` columns (each row
    /// stored as its `m` column phases of `tx + 1` values), zeros beyond the image.
    hp: usize,
    wp: usize,
}

impl Geometry {
    /// Whether the transforms take 16 tiles of a tile row a step (AVX-512, rows of 12 tiles or
    /// more) rather than eight.
    fn wide(&self) -> bool {
        self.tx >= 12 && crate::kernels::simd::avx512()
    }

    fn new(n: usize, h: usize, w: usize, k: usize, pad: usize) -> Self {
        let m = WIN + 1 - k;
        let (ho, wo) = ((h + 2 * pad + 1).saturating_sub(k), (w + 2 * pad + 1).saturating_sub(k));
        let (ty, tx) = (ho.div_ceil(m), wo.div_ceil(m));
        Self { n, m, ho, wo, ty, tx, hp: m * ty + k - 1, wp: m * (tx + 1) }
    }

    /// Tile rows of the whole batch (sample after sample).
    fn tile_rows(&self) -> usize {
        self.n * self.ty
    }

    /// Tile rows per band, for `per_tile` bytes of transformed data a tile: `band_bytes` of them,
    /// but at least [`MIN_BAND_TILES`] tiles (the products' columns or reduction).
    fn band_rows(&self, per_tile: usize, band_bytes: usize) -> usize {
        let tx = self.tx.max(1);
        (band_bytes / (per_tile * tx)).max(MIN_BAND_TILES.div_ceil(tx)).clamp(1, self.tile_rows().max(1))
    }

    /// The tile rows `a0..a1` of sample `s` that lie in the band of tile rows `q0..q0 + rows`.
    fn rows_in(&self, s: usize, (q0, rows): (usize, usize)) -> std::ops::Range<usize> {
        let first = s * self.ty;
        q0.max(first) - first..(q0 + rows).min(first + self.ty) - first
    }
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
    by_piece_strided(buf, pieces, piece, slab(pieces * piece))
}

/// [`by_piece`] with the matrices `stride` apart.
fn by_piece_strided(buf: &mut [f32], pieces: usize, piece: usize, stride: usize) -> Vec<Vec<&mut [f32]>> {
    let mut out: Vec<Vec<&mut [f32]>> = (0..pieces).map(|_| Vec::with_capacity(E)).collect();
    for matrix in buf.chunks_mut(stride) {
        for (p, chunk) in matrix[..pieces * piece].chunks_mut(piece).enumerate() {
            out[p].push(chunk);
        }
    }
    out
}

/// `G g` of one `K`-tap filter (points 0, 1, −1, ∞; `K` 3 or 2).
#[inline(always)]
fn g_side<const K: usize>(g: [f32; K]) -> [f32; WIN] {
    let (first, last) = (g[0], g[K - 1]);
    // The middle tap of a 3-tap filter; a 2-tap one has none.
    let mid = if K == 3 { g[1] } else { 0.0 };
    let (plus, minus) = if K == 3 { (first + mid + last, first - mid + last) } else { (first + last, first - last) };
    [first, 0.5 * plus, 0.5 * minus, last]
}

/// The filters' transform: `U[e][i][o] = (G g Gᵀ)[e]` of `g = weight[o, i]` (`[out, in, k, k]`),
/// input channel by input channel on the threads, from the weights regrouped by input channel
/// first (read down a column of `[out, in]` instead, every filter was a cache miss: at 2048 input
/// channels the transform took longer than the products).
fn filter_transform(weight: &[f32], out_ch: usize, in_ch: usize, k: usize, threads: usize) -> Vec<f32> {
    let kk = k * k;
    let by_input = swap_channels(weight, out_ch, in_ch, kk);
    let mut u = vec![0f32; E * in_ch * out_ch];
    let jobs = by_piece_strided(&mut u, in_ch, out_ch, in_ch * out_ch).into_iter().enumerate().collect();
    let by_input = &by_input;
    par_items(jobs, threads, |(i, dst)| filter_channel(&by_input[i * out_ch * kk..(i + 1) * out_ch * kk], k, dst));
    u
}

multiversion! {
    /// `G g Gᵀ` of one input channel's filters (`filters` `[out][k][k]`) into `dst` (the channel's
    /// `[out]` row of `U[e]` for each `e`), eight output channels at a time.
    fn filter_channel(filters: &[f32], k: usize, dst: Vec<&mut [f32]>) {
        if k == 3 {
            filter_tiles::<3>(filters, dst);
        } else {
            filter_tiles::<2>(filters, dst);
        }
    }
}

/// [`filter_channel`] for `K x K` filters.
#[inline(always)]
fn filter_tiles<const K: usize>(filters: &[f32], mut dst: Vec<&mut [f32]>) {
    let out_ch = filters.len() / (K * K);
    let mut g = [[[0f32; LANES]; K]; K];
    for o0 in (0..out_ch).step_by(LANES) {
        let lanes = LANES.min(out_ch - o0);
        for (r, gr) in g.iter_mut().enumerate() {
            for (c, gc) in gr.iter_mut().enumerate() {
                for (j, v) in gc.iter_mut().enumerate().take(lanes) {
                    *v = filters[(o0 + j) * K * K + r * K + c];
                }
            }
        }
        for (out, v) in dst.iter_mut().zip(tile2d(&g, g_side::<K>).iter().flatten()) {
            copy_lanes(&mut out[o0..], v, lanes);
        }
    }
}

// The 1-D transforms on one lane's values (points 0, 1, −1, ∞: F(2, 3) with `M = 2`, F(3, 2)
// with `M = 3`); [`tile2d`] applies one along both axes of every lane's tile.

/// `Bᵀ d` along one axis (both forms).
#[inline(always)]
fn bt(d: [f32; WIN]) -> [f32; WIN] {
    [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]
}

/// `Aᵀ m` along one axis: `M` outputs.
#[inline(always)]
fn at<const M: usize>(m: [f32; WIN]) -> [f32; M] {
    let out = if M == 2 { [m[0] + m[1] + m[2], m[1] - m[2] - m[3], 0.0] } else { [m[0] + m[1] + m[2], m[1] - m[2], m[1] + m[2] - m[3]] };
    std::array::from_fn(|i| out[i])
}

/// `A dy` along one axis (the weight gradient's transform of an `M x M` output-gradient tile).
#[inline(always)]
fn a_side<const M: usize>(d: [f32; M]) -> [f32; WIN] {
    if M == 2 {
        [d[0], d[0] + d[1], d[0] - d[1], -d[1]]
    } else {
        let (first, mid, last) = (d[0], d[1], d[M - 1]);
        [first, first + mid + last, first - mid + last, -last]
    }
}

/// `Gᵀ m` along one axis (the weight gradient's way back to `K = 5 − M` taps).
#[inline(always)]
fn gt_side<const K: usize>(m: [f32; WIN]) -> [f32; K] {
    let (s, d) = (m[1] + m[2], m[1] - m[2]);
    let out = if K == 3 { [m[0] + 0.5 * s, 0.5 * d, 0.5 * s + m[3]] } else { [m[0] + 0.5 * s, 0.5 * d + m[3], 0.0] };
    std::array::from_fn(|i| out[i])
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

/// A 1-D transform `t` (`I` → `O`) of `L` tiles (or channels) at once: `t` per lane, a loop
/// over the lanes the compiler vectorises (each lane's values are `L`-lane rows' elements).
#[inline(always)]
fn side_lanes<const I: usize, const O: usize, const L: usize>(x: [&[f32; L]; I], t: impl Fn([f32; I]) -> [f32; O]) -> [[f32; L]; O] {
    let mut out = [[0f32; L]; O];
    for j in 0..L {
        let r = t(std::array::from_fn(|i| x[i][j]));
        for (o, v) in out.iter_mut().zip(r) {
            o[j] = v;
        }
    }
    out
}

/// [`input_channel`]'s work, `L` tiles of a tile row per step: the window's 16 columns loaded
/// as `L`-lane rows, `Bᵀ` along the window's rows then along its columns, each transformed
/// element stored as `L` consecutive values of its matrix (lanes past the row's last tile are
/// zeros, transformed, and never stored).
#[inline(always)]
fn input_tiles<const L: usize>(xpad: &[f32], g: Geometry, in_ch: usize, c: usize, (q0, rows): (usize, usize), dst: &mut [&mut [f32]]) {
    let phase_len = g.wp / g.m;
    for r in 0..rows {
        let (s, a) = ((q0 + r) / g.ty, (q0 + r) % g.ty);
        let plane = &xpad[(s * in_ch + c) * g.hp * g.wp..(s * in_ch + c + 1) * g.hp * g.wp];
        for b0 in (0..g.tx).step_by(L) {
            let lanes = L.min(g.tx - b0);
            let mut d = [[[0f32; L]; WIN]; WIN];
            for (i, di) in d.iter_mut().enumerate() {
                let row = &plane[(g.m * a + i) * g.wp..(g.m * a + i + 1) * g.wp];
                for (k, dk) in di.iter_mut().enumerate() {
                    let at = (k % g.m) * phase_len + b0 + k / g.m;
                    copy_n::<L>(dk, &row[at..], lanes);
                }
            }
            // As `tile2d(d, bt)`: window column k transformed along the rows (cols[k][a]),
            // then row a of that along the columns (out[a][b], element e = 4a + b).
            let cols: [[[f32; L]; WIN]; WIN] = std::array::from_fn(|k| side_lanes([&d[0][k], &d[1][k], &d[2][k], &d[3][k]], bt));
            let t0 = r * g.tx + b0;
            for a in 0..WIN {
                let out = side_lanes([&cols[0][a], &cols[1][a], &cols[2][a], &cols[3][a]], bt);
                for (dst, v) in dst[a * WIN..(a + 1) * WIN].iter_mut().zip(&out) {
                    copy_n::<L>(&mut dst[t0..], v, lanes);
                }
            }
        }
    }
}

multiversion! {
    /// `Bᵀ d B` of the 4x4 windows of input channel `c`'s tiles in the band (tile rows
    /// `q0..q0 + rows`; `xpad` the batch's padded planes `[n][in][hp][wp]`, each row stored as its
    /// `m` column phases, [`pad_phases`]) into `dst` (this channel's `[tiles]` row of `X[e]` for
    /// each `e`), 16 tiles of a tile row at a time with AVX-512 where rows have 12 or more (else
    /// eight): window column `k` of tiles `b0..b0 + 16` is 16 consecutive values of phase
    /// `k mod m`, from `b0 + k / m` on. (Eight tiles a step through per-lane transforms ran
    /// through the stack: a fifth of the Winograd weight gradient's time.)
    fn input_channel(xpad: &[f32], g: Geometry, in_ch: usize, c: usize, band: (usize, usize), dst: Vec<&mut [f32]>) {
        let mut dst = dst;
        if g.wide() {
            input_tiles::<16>(xpad, g, in_ch, c, band, &mut dst);
        } else {
            input_tiles::<LANES>(xpad, g, in_ch, c, band, &mut dst);
        }
    }
}

multiversion! {
    /// One `hp x wp` padded plane of [`padded`]: the `h x w` image `src` at offset `(pad, pad)`,
    /// zeros around it, each row stored as its `m` column phases (`wp / m` values each: padded
    /// column `x` at `(x mod m)·wp/m + x / m`).
    fn pad_phases(src: &[f32], w: usize, pad: usize, m: usize, wp: usize, plane: &mut [f32]) {
        let h = src.len() / w.max(1);
        let phase_len = wp / m;
        for (y, row) in plane.chunks_mut(wp).enumerate() {
            if y < pad || y >= pad + h {
                row.fill(0.0);
                continue;
            }
            // Only the padding columns zeroed (each slot is one column's: `wp` is a multiple of
            // `m`); the image's columns are written below.
            for x in (0..pad).chain(pad + w..wp) {
                row[(x % m) * phase_len + x / m] = 0.0;
            }
            let line = &src[(y - pad) * w..(y - pad + 1) * w];
            if m == 2 {
                // Padded column x = pad + j: pairs (j, j + 1) land in one even and one odd slot
                // (a loop the compiler vectorises).
                let (even, odd) = row.split_at_mut(phase_len);
                let (first, second) = if pad.is_multiple_of(2) { (&mut even[pad / 2..], &mut odd[pad / 2..]) } else { (&mut odd[pad / 2..], &mut even[pad / 2 + 1..]) };
                for ((a, b), pair) in first.iter_mut().zip(second.iter_mut()).zip(line.chunks_exact(2)) {
                    *a = pair[0];
                    *b = pair[1];
                }
                if w % 2 == 1 {
                    let x = pad + w - 1;
                    row[(x % 2) * phase_len + x / 2] = line[w - 1];
                }
                continue;
            }
            for (j, v) in line.iter().enumerate() {
                let x = pad + j;
                row[(x % m) * phase_len + x / m] = *v;
            }
        }
    }
}

/// `Aᵀ Y A` of output channel `o`'s `M x M` tiles of sample `s` in the band (`y` the band's
/// `Y[e][o][t]`, matrices `slab(out·tiles)` apart) into `plane`, its `ho x wo` output plane
/// (cropped at the right and bottom edges), `L` tiles at a time.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn output_tiles<const M: usize, const L: usize>(y: &[f32], g: Geometry, out_ch: usize, o: usize, s: usize, band: (usize, usize), (plane, row0): (&mut [f32], usize)) {
    let tiles = band.1 * g.tx;
    let mut m = [[[0f32; L]; WIN]; WIN];
    for a in g.rows_in(s, band) {
        let t_row = (s * g.ty + a - band.0) * g.tx;
        for b0 in (0..g.tx).step_by(L) {
            let lanes = L.min(g.tx - b0);
            // As in `input_tiles`, unused lanes of a short group are never stored.
            for (e, v) in m.iter_mut().flatten().enumerate() {
                let at = e * slab(out_ch * tiles) + o * tiles + t_row + b0;
                copy_n::<L>(v, &y[at..], lanes);
            }
            // Aᵀ along the rows of each column k (cols[k][r]), then along each row r's columns.
            let cols: [[[f32; L]; M]; WIN] = std::array::from_fn(|k| side_lanes([&m[0][k], &m[1][k], &m[2][k], &m[3][k]], at::<M>));
            for r in 0..M.min(g.ho - M * a) {
                let yr: [[f32; L]; M] = side_lanes([&cols[0][r], &cols[1][r], &cols[2][r], &cols[3][r]], at::<M>);
                let row = &mut plane[(M * a + r - row0) * g.wo..(M * a + r + 1 - row0) * g.wo];
                let c0 = M * b0;
                if M == 2 {
                    if let Some(seg) = row.get_mut(c0..c0 + 2 * L) {
                        // A whole segment: the interleave compiles to vector shuffles.
                        for (j, pair) in seg.chunks_exact_mut(2).enumerate() {
                            pair[0] = yr[0][j];
                            pair[1] = yr[M - 1][j];
                        }
                        continue;
                    }
                }
                for j in 0..lanes {
                    for (k, v) in yr.iter().enumerate().take(g.wo - M * (b0 + j)) {
                        row[M * (b0 + j) + k] = v[j];
                    }
                }
            }
        }
    }
}

multiversion! {
    /// [`output_tiles`] for the geometry's tile size, 16 tiles a step with AVX-512 where rows
    /// have 12 or more (else eight); `plane` holds the output plane's rows from `row0` on (at
    /// least those of the band's tiles).
    #[allow(clippy::too_many_arguments)]
    fn output_plane(y: &[f32], g: Geometry, out_ch: usize, o: usize, s: usize, band: (usize, usize), plane: (&mut [f32], usize)) {
        match (g.m, g.wide()) {
            (2, true) => output_tiles::<2, 16>(y, g, out_ch, o, s, band, plane),
            (2, false) => output_tiles::<2, LANES>(y, g, out_ch, o, s, band, plane),
            (_, true) => output_tiles::<3, 16>(y, g, out_ch, o, s, band, plane),
            (_, false) => output_tiles::<3, LANES>(y, g, out_ch, o, s, band, plane),
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
    par_planes(xpad, g.hp * g.wp, threads, || (), |_, j, plane| pad_phases(&x[j * h * w..(j + 1) * h * w], w, pad, g.m, g.wp, plane));
    xpad
}

/// The input transform of the band's tiles into `xt` (`X[e][i][t]`, matrices `slab(in·tiles)`
/// apart), channel by channel on the threads.
fn transform_inputs(xpad: &[f32], g: Geometry, in_ch: usize, band: (usize, usize), threads: usize, xt: &mut [f32]) {
    let jobs = by_piece(xt, in_ch, band.1 * g.tx).into_iter().enumerate().collect();
    par_items(jobs, threads, |(c, dst)| input_channel(xpad, g, in_ch, c, band, dst));
}

/// The filters' transform `U[e]ᵀ` ([`filter_transform`]) packed for the products
/// ([`tiles::pack`], `[out, in]` each), once per convolution for the products of every band.
fn packed_filters(weight: &[f32], out_ch: usize, in_ch: usize, k: usize, threads: usize) -> Vec<Vec<f32>> {
    let u = filter_transform(weight, out_ch, in_ch, k, threads);
    let mut packed: Vec<Vec<f32>> = vec![Vec::new(); E];
    par_items(packed.iter_mut().enumerate().collect(), threads, |(e, dst): (usize, &mut Vec<f32>)| {
        // SAFETY: U[e] read transposed: rows (output channels) 1 apart, columns (input channels)
        // `out` apart, inside `u`'s `16·in·out` values.
        *dst = unsafe { tiles::pack(out_ch, in_ch, (u.as_ptr().add(e * in_ch * out_ch), 1, out_ch as isize)) };
    });
    packed
}

/// The stride-1 correlation of every sample of `x` (`[n, in, h, w]`) with `weight` (`[out, in,
/// k, k]`, `k` 3 or 2), zero padding `pad < k` → `([n, out, ho, wo], ho, wo)`.
#[allow(clippy::too_many_arguments)]
pub fn conv(x: &[f32], n: usize, in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, k: usize, pad: usize) -> (Vec<f32>, usize, usize) {
    if let Some(done) = conv_fused(x, n, in_ch, h, w, weight, out_ch, k, pad, (FUSED_TILES, FUSED_CHANNELS)) {
        return done;
    }
    conv_banded(x, n, in_ch, h, w, weight, out_ch, k, pad, BAND_BYTES)
}

#[allow(clippy::too_many_arguments)]
fn conv_banded(x: &[f32], n: usize, in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, k: usize, pad: usize, band_bytes: usize) -> (Vec<f32>, usize, usize) {
    assert!(matches!(k, 2 | 3) && pad < k && x.len() == n * in_ch * h * w && weight.len() == out_ch * in_ch * k * k, "Winograd convolution of another shape");
    let g = Geometry::new(n, h, w, k, pad);
    let mut out = vec![0f32; n * out_ch * g.ho * g.wo];
    if out.is_empty() || in_ch == 0 {
        return (out, g.ho, g.wo);
    }
    let threads = cpu::threads();
    let packed = packed_filters(weight, out_ch, in_ch, k, threads);
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
            let (xt, packed) = (&*xt, &packed);
            par_jobs(E, threads, |e| {
                let yp = yp;
                // SAFETY: dst is Y[e] ([out, tiles], rows `tiles` apart), written by job e only;
                // lhs U[e]ᵀ packed ([out, in]), rhs X[e] ([in, tiles], rows `tiles` apart): all
                // inside their buffers.
                unsafe { tiles::gemm_packed((out_ch, tiles, in_ch), yp.0.add(e * slab(out_ch * tiles)), tiles as isize, false, &packed[e], (xt.as_ptr().add(e * slab(in_ch * tiles)), tiles as isize)) };
            });
            // The band's output planes: those of every sample it touches.
            let yt = &*yt;
            let (s0, s1) = (q0 / g.ty, (q0 + rows - 1) / g.ty);
            par_planes(&mut out[s0 * out_ch * plane..(s1 + 1) * out_ch * plane], plane, threads, || (), |_, j, dst| {
                output_plane(yt, g, out_ch, j % out_ch, s0 + j / out_ch, (q0, rows), (dst, 0));
            });
        }
    });
    (out, g.ho, g.wo)
}

/// Tiles per band of the fused form ([`conv_fused`]): one register tile's columns.
const FUSED_TILES: usize = 64;
/// Input channels transformed at a time in the fused form: a block of an element's transformed
/// tiles (128 x 64 values, 32 KiB) stays in L1 through its product (8 x 256 x 32² → 256: 34 ms
/// against 36 ms in blocks of 64 and 44 ms in blocks of 32).
const FUSED_CHANNELS: usize = 128;

/// Per-thread buffers of the fused form (a band's transformed tiles and its products' sums).
#[derive(Default)]
struct FusedScratch {
    xt: Vec<f32>,
    yt: Vec<f32>,
}

thread_local! {
    static FUSED: std::cell::RefCell<FusedScratch> = std::cell::RefCell::new(FusedScratch::default());
}

/// [`conv`] fused band by band: each thread takes a band of about [`FUSED_TILES`] tiles and
/// runs all of it — the input transform a block of [`FUSED_CHANNELS`] channels at a time, each
/// block's 16 products added into the band's sums `Y[e][o][t]`, then `Aᵀ Y A` into the output —
/// so the transformed tiles (4x the input) and the sums live in the thread's own cache instead
/// of going through memory and across cores between three passes. `None` where the batch has
/// too few bands to keep every thread busy (the banded form splits the products instead).
#[allow(clippy::too_many_arguments)]
fn conv_fused(x: &[f32], n: usize, in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, k: usize, pad: usize, (band_tiles, block): (usize, usize)) -> Option<(Vec<f32>, usize, usize)> {
    let g = Geometry::new(n, h, w, k, pad);
    let threads = cpu::threads();
    let rows = band_tiles.div_ceil(g.tx.max(1)).max(1);
    let bands = g.tile_rows().div_ceil(rows);
    if bands < 2 * threads || in_ch == 0 || out_ch == 0 || !tiles::available() {
        return None;
    }
    let packed = packed_filters(weight, out_ch, in_ch, k, threads);
    let plane = g.ho * g.wo;
    let mut out = vec![0f32; n * out_ch * plane];
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        let xpad = padded(x, g, in_ch, (h, w, pad), threads, &mut scratch.pad);
        let op = SharedMut(out.as_mut_ptr());
        let packed = &packed;
        par_jobs(bands, threads, |b| {
            let op = op;
            let band = (b * rows, rows.min(g.tile_rows() - b * rows));
            FUSED.with(|cell| {
                let FusedScratch { xt, yt } = &mut *cell.borrow_mut();
                let tiles = band.1 * g.tx;
                grow(xt, E * slab(block.min(in_ch) * tiles));
                grow(yt, E * slab(out_ch * tiles));
                for c0 in (0..in_ch).step_by(block) {
                    let cb = block.min(in_ch - c0);
                    let xt = &mut xt[..E * slab(cb * tiles)];
                    for (c, dst) in by_piece(xt, cb, tiles).into_iter().enumerate() {
                        input_channel(xpad, g, in_ch, c0 + c, band, dst);
                    }
                    for (e, pe) in packed.iter().enumerate() {
                        // SAFETY: dst is this band's Y[e] ([out, tiles], in this thread's buffer);
                        // lhs the packed U[e]ᵀ's columns c0..c0+cb, rhs this block's X[e] ([cb,
                        // tiles]): all inside their buffers.
                        unsafe { tiles::gemm_packed_part((out_ch, tiles, in_ch), (c0, cb), yt.as_mut_ptr().add(e * slab(out_ch * tiles)), tiles as isize, c0 > 0, pe, (xt.as_ptr().add(e * slab(cb * tiles)), tiles as isize)) };
                    }
                }
                let yt = &yt[..E * slab(out_ch * tiles)];
                let (s0, s1) = (band.0 / g.ty, (band.0 + band.1 - 1) / g.ty);
                for s in s0..=s1 {
                    let a = g.rows_in(s, band);
                    let (r0, r1) = (g.m * a.start, (g.m * a.end).min(g.ho));
                    for o in 0..out_ch {
                        // SAFETY: rows r0..r1 of output plane (s, o): written by this band only (the
                        // bands' tile rows are disjoint), inside `out`.
                        let dst = unsafe { std::slice::from_raw_parts_mut(op.0.add((s * out_ch + o) * plane + r0 * g.wo), (r1 - r0) * g.wo) };
                        output_plane(yt, g, out_ch, o, s, band, (dst, r0));
                    }
                }
            });
        });
    });
    Some((out, g.ho, g.wo))
}

/// `A dy Aᵀ` of tile row `q`'s `M x M` output-gradient tiles (`pm` the gradient in pixel-major
/// order `[n][M·ty][M·tx][op]`, zeros past the edges) into `dst` (the row's `[tx][op]` slice of
/// `D[e]` for each `e`), eight channels at a time.
#[inline(always)]
fn grad_tiles<const M: usize>(pm: &[f32], g: Geometry, op: usize, q: usize, mut dst: Vec<&mut [f32]>) {
    let (s, a) = (q / g.ty, q % g.ty);
    let mut d = [[[0f32; LANES]; M]; M];
    for b in 0..g.tx {
        for o0 in (0..op).step_by(LANES) {
            for (i, di) in d.iter_mut().enumerate() {
                for (k, dk) in di.iter_mut().enumerate() {
                    let at = ((s * M * g.ty + M * a + i) * M * g.tx + M * b + k) * op + o0;
                    copy_lanes(dk, &pm[at..], LANES);
                }
            }
            for (out, v) in dst.iter_mut().zip(tile2d(&d, a_side::<M>).iter().flatten()) {
                copy_lanes(&mut out[b * op + o0..], v, LANES);
            }
        }
    }
}

multiversion! {
    /// [`grad_tiles`] for the geometry's tile size.
    fn grad_row(pm: &[f32], g: Geometry, op: usize, q: usize, dst: Vec<&mut [f32]>) {
        if g.m == 2 {
            grad_tiles::<2>(pm, g, op, q, dst);
        } else {
            grad_tiles::<3>(pm, g, op, q, dst);
        }
    }
}

/// `∂W[o, i, ky, kx] = Σₙ Σ_{y, x} dy[n, o, y, x] · x_pad[n, i, y + ky, x + kx]` of the
/// convolution [`conv`] computed with a `k x k` kernel and padding `pad` (`x` `[n, in, h, w]`,
/// `dy` `[n, out, ho, wo]`) → `[out, in, k, k]`.
#[allow(clippy::too_many_arguments)]
pub fn weight_grad(x: &[f32], dy: &[f32], n: usize, in_ch: usize, h: usize, w: usize, out_ch: usize, k: usize, pad: usize) -> Vec<f32> {
    weight_grad_banded(x, dy, n, in_ch, h, w, out_ch, k, pad, GRAD_BAND_BYTES)
}

#[allow(clippy::too_many_arguments)]
fn weight_grad_banded(x: &[f32], dy: &[f32], n: usize, in_ch: usize, h: usize, w: usize, out_ch: usize, k: usize, pad: usize, band_bytes: usize) -> Vec<f32> {
    assert!(matches!(k, 2 | 3) && pad < k && x.len() == n * in_ch * h * w, "Winograd weight gradient of another shape");
    let g = Geometry::new(n, h, w, k, pad);
    assert_eq!(dy.len(), n * out_ch * g.ho * g.wo, "Winograd weight gradient of another shape");
    let kk = k * k;
    if dy.is_empty() || in_ch == 0 {
        return vec![0f32; out_ch * in_ch * kk];
    }
    let threads = cpu::threads();
    // Output channels in whole lanes.
    let op = out_ch.div_ceil(LANES) * LANES;
    // M[e][i][o], summed over the bands.
    let mut m = vec![0f32; E * in_ch * op];
    SCRATCH.with(|cell| {
        let Scratch { pad: pad_buf, xt, yt: dt, pm } = &mut *cell.borrow_mut();
        let xpad = padded(x, g, in_ch, (h, w, pad), threads, pad_buf);
        let pm_len = n * g.m * g.ty * g.m * g.tx * op;
        grow(pm, pm_len);
        let pm = &mut pm[..pm_len];
        cpu::pixel_major(dy, (n, out_ch, g.ho, g.wo), 0, (g.m * g.ty, g.m * g.tx), op, threads, pm);
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
    // ∂W = Gᵀ M G, input channel by input channel ([in][out][k][k]), then regrouped by output
    // channel.
    let mut dwt = vec![0f32; in_ch * out_ch * kk];
    par_planes(&mut dwt, out_ch * kk, threads, || (), |_, i, dst| filter_grad(&m, in_ch, op, out_ch, k, i, dst));
    swap_channels(&dwt, in_ch, out_ch, kk)
}

/// Filters `[a][b][kk]` regrouped as `[b][a][kk]` (the same taps, the two channel axes swapped).
fn swap_channels(filters: &[f32], a: usize, b: usize, kk: usize) -> Vec<f32> {
    let mut out = vec![0f32; filters.len()];
    for (i, row) in filters.chunks_exact(b * kk).enumerate() {
        for (j, taps) in row.chunks_exact(kk).enumerate() {
            out[(j * a + i) * kk..(j * a + i + 1) * kk].copy_from_slice(taps);
        }
    }
    out
}

/// `Gᵀ M G` of input channel `i`'s slots of `m` (`[16][in][op]`) into its `[out][K][K]` weight
/// gradients, eight output channels at a time.
#[inline(always)]
fn filter_grad_tiles<const K: usize>(m: &[f32], in_ch: usize, op: usize, out_ch: usize, i: usize, dst: &mut [f32]) {
    let mut t = [[[0f32; LANES]; WIN]; WIN];
    for o0 in (0..out_ch).step_by(LANES) {
        for (e, v) in t.iter_mut().flatten().enumerate() {
            copy_lanes(v, &m[(e * in_ch + i) * op + o0..], LANES);
        }
        let taps = tile2d(&t, gt_side::<K>);
        for j in 0..LANES.min(out_ch - o0) {
            for (ky, row) in taps.iter().enumerate() {
                for (kx, v) in row.iter().enumerate() {
                    dst[(o0 + j) * K * K + ky * K + kx] = v[j];
                }
            }
        }
    }
}

multiversion! {
    /// [`filter_grad_tiles`] for a `k x k` kernel.
    fn filter_grad(m: &[f32], in_ch: usize, op: usize, out_ch: usize, k: usize, i: usize, dst: &mut [f32]) {
        if k == 3 {
            filter_grad_tiles::<3>(m, in_ch, op, out_ch, i, dst);
        } else {
            filter_grad_tiles::<2>(m, in_ch, op, out_ch, i, dst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::{conv2d_direct, ChannelScales};
    use crate::kernels::tiles::tests::values;

    /// Per sample on the direct form.
    #[allow(clippy::too_many_arguments)]
    fn direct(x: &[f32], n: usize, c: usize, h: usize, w: usize, wt: &[f32], o: usize, k: usize, pad: usize) -> Vec<f32> {
        (0..n).flat_map(|s| conv2d_direct(&x[s * c * h * w..(s + 1) * c * h * w], c, h, w, wt, o, k, pad, ChannelScales::default()).0).collect()
    }

    /// In float64, straight from the definition.
    #[allow(clippy::too_many_arguments)]
    fn weight_grad_naive(x: &[f32], dy: &[f32], n: usize, c: usize, h: usize, w: usize, o: usize, k: usize, pad: usize) -> Vec<f32> {
        let (ho, wo) = (h + 2 * pad + 1 - k, w + 2 * pad + 1 - k);
        let mut dw = vec![0f32; o * c * k * k];
        for oc in 0..o {
            for i in 0..c {
                for tap in 0..k * k {
                    let (ky, kx) = (tap / k, tap % k);
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
                    dw[(oc * c + i) * k * k + tap] = acc as f32;
                }
            }
        }
        dw
    }

    fn max_rel(a: &[f32], b: &[f32]) -> f32 {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-20);
        a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// Ragged channel counts, odd sizes, every padding of both kernel sizes; rows of 19, 32 and
    /// 14 tiles (the input transform's 16-tile steps, whole and ragged).
    const SHAPES: [(usize, usize, usize, usize, usize, usize, usize); 10] = [
        (3, 9, 13, 7, 5, 3, 2),
        (2, 16, 8, 10, 11, 3, 1),
        (1, 24, 17, 6, 6, 3, 0),
        (4, 8, 8, 3, 4, 3, 2),
        (3, 9, 13, 7, 8, 2, 0),
        (2, 16, 11, 10, 5, 2, 1),
        (1, 12, 8, 2, 2, 2, 0),
        (2, 9, 7, 5, 37, 3, 1),
        (1, 8, 8, 3, 64, 3, 1),
        (1, 8, 6, 4, 40, 2, 1),
    ];

    #[test]
    fn forward_matches_the_direct_form() {
        if !crate::kernels::tiles::available() {
            return;
        }
        let mut fused = 0;
        for (n, c, o, h, w, k, pad) in SHAPES {
            let x = values(n * c * h * w, 1);
            let wt = values(o * c * k * k, 2);
            let want = direct(&x, n, c, h, w, &wt, o, k, pad);
            // Bands of one tile row (across samples) as well as whole batches.
            for band in [1, BAND_BYTES] {
                let (got, ho, wo) = conv_banded(&x, n, c, h, w, &wt, o, k, pad, band);
                assert_eq!((ho, wo), (h + 2 * pad + 1 - k, w + 2 * pad + 1 - k));
                let err = max_rel(&got, &want);
                assert!(err < 1e-6, "{n}x{c}x{h}x{w} → {o} k {k} pad {pad} band {band}: {err:e}");
            }
            // Fused in bands of 4 tiles and blocks of 5 channels: several bands per thread, a
            // ragged last band and channel block.
            if let Some((got, _, _)) = conv_fused(&x, n, c, h, w, &wt, o, k, pad, (4, 5)) {
                let err = max_rel(&got, &want);
                assert!(err < 1e-6, "fused {n}x{c}x{h}x{w} → {o} k {k} pad {pad}: {err:e}");
                fused += 1;
            }
        }
        // Every shape with four bands or more ran fused.
        assert!(fused >= 4, "the fused form ran on {fused} shapes");
    }

    #[test]
    fn weight_gradient_matches_the_definition() {
        if !crate::kernels::tiles::available() {
            return;
        }
        for (n, c, o, h, w, k, pad) in SHAPES {
            let (ho, wo) = (h + 2 * pad + 1 - k, w + 2 * pad + 1 - k);
            let x = values(n * c * h * w, 3);
            let dy = values(n * o * ho * wo, 4);
            let want = weight_grad_naive(&x, &dy, n, c, h, w, o, k, pad);
            for band in [1, GRAD_BAND_BYTES] {
                let got = weight_grad_banded(&x, &dy, n, c, h, w, o, k, pad, band);
                let err = max_rel(&got, &want);
                assert!(err < 2e-6, "{n}x{c}x{h}x{w} → {o} k {k} pad {pad} band {band}: {err:e}");
            }
        }
    }
}
