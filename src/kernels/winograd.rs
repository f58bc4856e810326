//! Winograd F(6x6, 3x3) convolution for the CPU path: StyleGAN3's 3x3 modulated convolutions
//! are most of a CPU image's time, and this form needs 64 multiplies per 6x6 output tile and
//! input channel instead of 324 (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016). F(4x4, 3x3) (36 per 4x4 tile) was 13% slower per SG3-T 256 image: 26% more
//! GEMM work and more transformed data to stream.
//!
//! Every 3x3 filter is transformed once (`G g Gᵀ` into `U[out][64][in]`: `transform_filters`,
//! kept between images by `kernels::WinogradCache`); then, a band of tile rows at a time (so the
//! buffers stay bounded at 1024² and are reused between layers), three passes, each laid out so
//! every thread streams through its own contiguous block:
//! 1. transform every 8x8 input tile (`Bᵀ d B`, stride 6) into `V[in][64][tiles]`, threads over
//!    channels;
//! 2. 64 GEMMs `M[·][e] = U[·][e] · V[·][e]` (`[out, in] x [in, tiles]`), threads taking whole
//!    GEMMs or splitting the tiles;
//! 3. transform back (`Aᵀ m A`) into 6x6 output tiles, threads over output channels.
//!
//! The transforms work on eight tiles at a time, one per SIMD lane, and run as AVX2 code where
//! the CPU has it (`kernels::simd`). A batch ([`conv3x3_batch`]) runs as many whole samples per
//! band as fit, their tiles side by side as the GEMMs' columns.
//!
//! Twin: `kernels::cpu::conv2d_direct` (the k² GEMMs over shifted views); tests/kernels.rs holds
//! the two together. The transforms amplify float rounding (~2e-5 of the output range at 512
//! channels, ~100x direct), still far below the parity tolerance: the whole-network CPU parity
//! tests run through this path, and an untrained 256² SG3-T differs from the reference path by
//! 2e-6.

use crate::kernels::cpu::{gemm_strided, grow, pad_plane, par_jobs, par_planes, ChannelScales, SharedMut};

/// `out[o, y, x] = Σ_{i, ky, kx} w[o, i, ky, kx] · xpad[i, y + ky, x + kx]` for a 3x3 kernel with
/// zero padding `pad` on every side and `scales` folded in (the input's when it is padded, the
/// output's when tiles are transformed back); returns `(out, ho, wo)`.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3(x: &[f32], in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, pad: usize, scales: ChannelScales) -> (Vec<f32>, usize, usize) {
    let threads = super::cpu::threads();
    conv3x3_threads(x, in_ch, h, w, weight, out_ch, pad, scales, threads)
}

/// [`conv3x3`] on `threads` threads (the tests cover both ways of splitting the GEMMs).
#[allow(clippy::too_many_arguments)]
pub fn conv3x3_threads(x: &[f32], in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, pad: usize, scales: ChannelScales, threads: usize) -> (Vec<f32>, usize, usize) {
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        let Scratch { xp, u, v, m } = &mut *scratch;
        // (The buffers are only grown: shrinking and re-growing them would zero them again.)
        grow(u, E * out_ch * in_ch);
        let u = &mut u[..E * out_ch * in_ch];
        transform_filters_into(weight, in_ch, u, threads);
        conv3x3_with(x, in_ch, h, w, u, out_ch, pad, scales, threads, (xp, v, m))
    })
}

/// The filter transform [`conv3x3_transformed`] takes: `G g Gᵀ` of every 3x3 filter of `weight`
/// (`[out, in, 3, 3]`), laid out `U[out][64][in]` (64/9 of the weights' size). It depends on the
/// weights only, so a caller that convolves with the same weights again can keep it
/// (`kernels::WinogradCache`).
pub fn transform_filters(weight: &[f32], out_ch: usize, in_ch: usize) -> Vec<f32> {
    let threads = super::cpu::threads();
    let mut u = vec![0f32; E * out_ch * in_ch];
    transform_filters_into(weight, in_ch, &mut u, threads);
    u
}

/// [`conv3x3`] with the weights already transformed by [`transform_filters`].
#[allow(clippy::too_many_arguments)]
pub fn conv3x3_transformed(x: &[f32], in_ch: usize, h: usize, w: usize, u: &[f32], out_ch: usize, pad: usize, scales: ChannelScales) -> (Vec<f32>, usize, usize) {
    assert_eq!(u.len(), E * out_ch * in_ch, "transformed weights of another shape");
    let threads = super::cpu::threads();
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        let Scratch { xp, v, m, .. } = &mut *scratch;
        conv3x3_with(x, in_ch, h, w, u, out_ch, pad, scales, threads, (xp, v, m))
    })
}

/// Filter transform into `u` (`U[out][64][in]`), threads over output channels.
fn transform_filters_into(weight: &[f32], in_ch: usize, u: &mut [f32], threads: usize) {
    par_planes(u, E * in_ch, threads.max(1), || (), |_, o, dst| filter_transform(&weight[o * in_ch * 9..(o + 1) * in_ch * 9], in_ch, dst));
}

/// Padded input, transform and GEMM buffers, kept between calls on a thread: every element is
/// written before it is read, so they are only grown (no zeroing, no page faults at every layer).
#[derive(Default)]
struct Scratch {
    xp: Vec<f32>,
    u: Vec<f32>,
    v: Vec<f32>,
    m: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

#[allow(clippy::too_many_arguments)]
fn conv3x3_with(
    x: &[f32],
    in_ch: usize,
    h: usize,
    w: usize,
    u: &[f32],
    out_ch: usize,
    pad: usize,
    scales: ChannelScales,
    threads: usize,
    (xp, v, m): (&mut Vec<f32>, &mut Vec<f32>, &mut Vec<f32>),
) -> (Vec<f32>, usize, usize) {
    let threads = threads.max(1);
    let (ho, wo) = ((h + 2 * pad).saturating_sub(2), (w + 2 * pad).saturating_sub(2));
    if ho == 0 || wo == 0 || out_ch == 0 || in_ch == 0 {
        return (vec![0.0; out_ch * ho * wo], ho, wo);
    }
    let (ty, tx) = (ho.div_ceil(TILE), wo.div_ceil(TILE));
    let (hp, wp) = (ty * TILE + 2, tx * TILE + 2);
    // Padded input covering every tile (8x8 windows at stride 6), threads over channels.
    grow(xp, in_ch * hp * wp);
    let xp = &mut xp[..in_ch * hp * wp];
    par_planes(xp, hp * wp, threads, || (), |_, c, plane| pad_plane(&x[c * h * w..(c + 1) * h * w], w, pad, wp, scales.input(c), plane));
    let xp = &*xp;

    // Bands of tile rows, so the transformed tiles (V, M) stay bounded whatever the image size,
    // with enough tiles per band for efficient GEMMs.
    let per_tile = E * 4 * in_ch.max(out_ch);
    let band_tiles = (BAND_BYTES / per_tile).max(MIN_BAND_TILES);
    let band_rows = (band_tiles / tx).clamp(1, ty);
    grow(v, E * in_ch * band_rows * tx);
    grow(m, E * out_ch * band_rows * tx);
    let mut out = vec![0f32; out_ch * ho * wo];
    for band0 in (0..ty).step_by(band_rows) {
        let rows = band_rows.min(ty - band0);
        let tiles = rows * tx;
        let (v, m) = (&mut v[..E * in_ch * tiles], &mut m[..E * out_ch * tiles]);

        // 1. Input transform V[in][64][tiles], threads over channels.
        par_planes(v, E * tiles, threads, || (), |_, c, dst| input_transform(&xp[c * hp * wp..(c + 1) * hp * wp], wp, band0, rows, tx, (tiles, 0), dst));

        // 2. 64 GEMMs M[·][e] = U[·][e] · V[·][e].
        products(u, v, m, (out_ch, in_ch, tiles), threads);

        // 3. Inverse transform into the band's output rows, threads over output channels.
        let m = &*m;
        par_planes(&mut out, ho * wo, threads, || (), |_, o, plane| output_transform(&m[o * E * tiles..(o + 1) * E * tiles], band0, rows, tx, (tiles, 0), ho, wo, scales.output(o), plane));
    }
    (out, ho, wo)
}

/// The 64 GEMMs `M[·][e] = U[·][e] · V[·][e]` (`[out, in] x [in, tiles]`, rows 64 slots apart),
/// as jobs for the threads: whole GEMMs when the thread count divides the 64 evenly (each GEMM
/// then has all the band's tiles as columns), else every GEMM's columns in `threads` parts.
fn products(u: &[f32], v: &[f32], m: &mut [f32], (out_ch, in_ch, tiles): (usize, usize, usize), threads: usize) {
    assert!(u.len() >= E * out_ch * in_ch && v.len() >= E * in_ch * tiles && m.len() >= E * out_ch * tiles, "Winograd buffers too small");
    let parts = if E % threads == 0 { 1 } else { threads };
    let per = tiles.div_ceil(parts);
    let mp = SharedMut(m.as_mut_ptr());
    let row = (E * tiles) as isize;
    par_jobs(E * parts, threads, |job| {
        let mp = mp;
        let (e, t0) = (job / parts, job % parts * per);
        let cols = per.min(tiles.saturating_sub(t0));
        if cols == 0 {
            return;
        }
        // SAFETY: dst is columns t0..t0+cols of the [out_ch, tiles] matrix at M[0][e] (row
        // stride E·tiles), written by this job only (jobs are distinct `(e, part)` pairs); lhs
        // is the [out_ch, in_ch] matrix at U[0][e] (row stride E·in_ch); rhs is columns
        // t0..t0+cols of the [in_ch, tiles] matrix at V[0][e] (row stride E·tiles); every
        // element addressed lies inside its buffer (the sizes asserted above).
        unsafe {
            gemm_strided(
                (out_ch, cols, in_ch),
                mp.0.add(e * tiles + t0),
                (row, 1),
                false,
                (u.as_ptr().add(e * in_ch), (E * in_ch) as isize, 1),
                (v.as_ptr().add(e * tiles + t0), row, 1),
            );
        }
    });
}

/// [`conv3x3_transformed`] over a batch (`x` `[n, in, h, w]`, the scales `[n·in]` and `[n·out]`)
/// → `[n, out, ho, wo]`: the samples' tiles side by side as the GEMMs' columns, as many samples
/// per band as fit, so a small layer's products (36 tiles a sample at 36x36) fill the 64-wide
/// register tile instead of running per sample with most lanes masked (a sample too large for one
/// band goes alone, in bands of tile rows). The same sums in the same order as per sample.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3_batch(x: &[f32], n: usize, in_ch: usize, h: usize, w: usize, u: &[f32], out_ch: usize, pad: usize, in_scale: &[f32], out_scale: &[f32]) -> (Vec<f32>, usize, usize) {
    assert_eq!(u.len(), E * out_ch * in_ch, "transformed weights of another shape");
    assert!(x.len() == n * in_ch * h * w && in_scale.len() == n * in_ch && out_scale.len() == n * out_ch, "batch of another shape");
    let threads = super::cpu::threads();
    let (ho, wo) = ((h + 2 * pad).saturating_sub(2), (w + 2 * pad).saturating_sub(2));
    if n == 0 || ho == 0 || wo == 0 || out_ch == 0 || in_ch == 0 {
        return (vec![0.0; n * out_ch * ho * wo], ho, wo);
    }
    let (ty, tx) = (ho.div_ceil(TILE), wo.div_ceil(TILE));
    let (hp, wp) = (ty * TILE + 2, tx * TILE + 2);
    let per_sample = ty * tx;
    let band_tiles = (BAND_BYTES / (E * 4 * in_ch.max(out_ch))).max(MIN_BAND_TILES);
    if per_sample > band_tiles {
        // A sample needs several bands (large images): one at a time, in bands of tile rows.
        let mut out = Vec::with_capacity(n * out_ch * ho * wo);
        for s in 0..n {
            let scales = ChannelScales { input: &in_scale[s * in_ch..(s + 1) * in_ch], output: &out_scale[s * out_ch..(s + 1) * out_ch] };
            out.extend(conv3x3_transformed(&x[s * in_ch * h * w..(s + 1) * in_ch * h * w], in_ch, h, w, u, out_ch, pad, scales).0);
        }
        return (out, ho, wo);
    }
    let band = (band_tiles / per_sample).clamp(1, n);
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        let Scratch { xp, v, m, .. } = &mut *scratch;
        // Every sample's padded planes ([n, in, hp, wp]), its input scales folded in.
        grow(xp, n * in_ch * hp * wp);
        let xp = &mut xp[..n * in_ch * hp * wp];
        par_planes(xp, hp * wp, threads, || (), |_, j, plane| pad_plane(&x[j * h * w..(j + 1) * h * w], w, pad, wp, in_scale[j], plane));
        let xp = &*xp;
        grow(v, E * in_ch * band * per_sample);
        grow(m, E * out_ch * band * per_sample);
        let mut out = vec![0f32; n * out_ch * ho * wo];
        for s0 in (0..n).step_by(band) {
            let samples = band.min(n - s0);
            let tiles = samples * per_sample;
            let (v, m) = (&mut v[..E * in_ch * tiles], &mut m[..E * out_ch * tiles]);
            // 1. Input transform V[in][64][tiles], sample after sample, threads over channels.
            par_planes(v, E * tiles, threads, || (), |_, c, dst| {
                for s in 0..samples {
                    let plane = &xp[((s0 + s) * in_ch + c) * hp * wp..((s0 + s) * in_ch + c + 1) * hp * wp];
                    input_transform(plane, wp, 0, ty, tx, (tiles, s * per_sample), dst);
                }
            });
            // 2. The products.
            products(u, v, m, (out_ch, in_ch, tiles), threads);
            // 3. Inverse transform into the band's output planes, threads over (sample, channel).
            let m = &*m;
            let planes = &mut out[s0 * out_ch * ho * wo..(s0 + samples) * out_ch * ho * wo];
            par_planes(planes, ho * wo, threads, || (), |_, j, plane| {
                let (s, o) = (j / out_ch, j % out_ch);
                output_transform(&m[o * E * tiles..(o + 1) * E * tiles], 0, ty, tx, (tiles, s * per_sample), ho, wo, out_scale[(s0 + s) * out_ch + o], plane);
            });
        }
        (out, ho, wo)
    })
}

/// Target size of one band's transformed tiles (V or M).
const BAND_BYTES: usize = 32 << 20;
/// Fewest tiles per band (GEMM columns), whatever the channel count.
const MIN_BAND_TILES: usize = 512;

/// The transforms run on `LANES` tiles (or input channels) at once, one per SIMD lane: every
/// formula below is element-wise over the lanes, so it compiles to vector arithmetic.
pub(crate) const LANES: usize = 8;
type Lanes = [f32; LANES];

/// Output tile side: F(TILE x TILE, 3x3).
const TILE: usize = 6;
/// Input tile side (the window a tile's outputs read).
const WIN: usize = TILE + 2;
/// Elements of a transformed tile: one GEMM each.
const E: usize = WIN * WIN;

multiversion! {
    /// `G g Gᵀ` of one output channel's 3x3 filters `w[in][3][3]` into `dst[E][in]`.
    fn filter_transform(w: &[f32], in_ch: usize, dst: &mut [f32]) {
        let mut g = [[[0f32; LANES]; 3]; 3];
        for i0 in (0..in_ch).step_by(LANES) {
            let lanes = LANES.min(in_ch - i0);
            for (r, gr) in g.iter_mut().enumerate() {
                for (k, gk) in gr.iter_mut().enumerate() {
                    // Unused lanes of a short last group are never stored.
                    for (j, v) in gk.iter_mut().enumerate().take(lanes) {
                        *v = w[(i0 + j) * 9 + r * 3 + k];
                    }
                }
            }
            for (e, val) in tile2d(&g, gt).iter().flatten().enumerate() {
                copy_lanes(&mut dst[e * in_ch + i0..], val, lanes);
            }
        }
    }
}

multiversion! {
    /// `Bᵀ d B` of every `WIN`x`WIN` input tile (stride `TILE`) of one channel's band of tile rows
    /// `band0..band0 + rows` into `dst[E][tiles]` from column `first` on (`columns = (tiles,
    /// first)`).
    fn input_transform(plane: &[f32], wp: usize, band0: usize, rows: usize, tx: usize, columns: (usize, usize), dst: &mut [f32]) {
        let (tiles, first) = columns;
        // d[i][k][lane j] = plane[r0 + i][TILE·(b0 + j) + k]. One array for every group (a fresh
        // one would cost a memset call per group); in a short last group the unused lanes keep
        // old values, which are transformed but never stored.
        let mut d = [[[0f32; LANES]; WIN]; WIN];
        for TileGroup { r0, b0, lanes, tile0 } in tile_groups(band0, rows, tx) {
            for (i, di) in d.iter_mut().enumerate() {
                let row = &plane[(r0 + i) * wp + TILE * b0..];
                if lanes == LANES {
                    let row = &row[..TILE * LANES + 2];
                    for (k, dk) in di.iter_mut().enumerate() {
                        for (j, v) in dk.iter_mut().enumerate() {
                            *v = row[TILE * j + k];
                        }
                    }
                    continue;
                }
                for (k, dk) in di.iter_mut().enumerate() {
                    for (j, v) in dk.iter_mut().enumerate().take(lanes) {
                        *v = row[TILE * j + k];
                    }
                }
            }
            for (e, val) in tile2d(&d, bt).iter().flatten().enumerate() {
                copy_lanes(&mut dst[e * tiles + first + tile0..], val, lanes);
            }
        }
    }
}

multiversion! {
    /// `Aᵀ m A` of one output channel's band, `src[E][tiles]` from column `first` on (`columns =
    /// (tiles, first)`), times
    /// `scale`, into the `TILE`x`TILE` tiles of its `[ho, wo]` output plane (cropped at the right
    /// and bottom edges).
    #[allow(clippy::too_many_arguments)]
    fn output_transform(src: &[f32], band0: usize, rows: usize, tx: usize, columns: (usize, usize), ho: usize, wo: usize, scale: f32, plane: &mut [f32]) {
        let (tiles, first) = columns;
        let mut t = [[[0f32; LANES]; WIN]; WIN];
        for TileGroup { r0, b0, lanes, tile0 } in tile_groups(band0, rows, tx) {
            // As in `input_transform`, unused lanes of a short group are never stored.
            for (e, val) in t.iter_mut().flatten().enumerate() {
                copy_lanes(val, &src[e * tiles + first + tile0..], lanes);
            }
            for (i, yi) in tile2d(&t, at).iter().enumerate().take(ho - r0) {
                let row = &mut plane[(r0 + i) * wo..(r0 + i + 1) * wo];
                let c0 = TILE * b0;
                if lanes == LANES && c0 + TILE * LANES <= wo {
                    // Fixed bounds: the interleave compiles to vector shuffles.
                    if let Ok(seg) = <&mut [f32; TILE * LANES]>::try_from(&mut row[c0..c0 + TILE * LANES]) {
                        for j in 0..LANES {
                            for k in 0..TILE {
                                seg[TILE * j + k] = yi[k][j] * scale;
                            }
                        }
                        continue;
                    }
                }
                for j in 0..lanes {
                    let c0 = TILE * (b0 + j);
                    for (k, yk) in yi.iter().enumerate().take(wo - c0) {
                        row[c0 + k] = yk[j] * scale;
                    }
                }
            }
        }
    }
}

/// Up to `LANES` consecutive tiles of one tile row of a band.
struct TileGroup {
    /// First pixel row of the tiles (in the padded input / the output plane).
    r0: usize,
    /// Tile column of the first tile.
    b0: usize,
    /// How many tiles (the rest of the lanes are padding).
    lanes: usize,
    /// Index of the first tile within the band.
    tile0: usize,
}

/// The band's tiles (`rows` tile rows from `band0`, `tx` per row) in groups of `LANES`.
#[inline(always)]
fn tile_groups(band0: usize, rows: usize, tx: usize) -> impl Iterator<Item = TileGroup> {
    (0..rows).flat_map(move |a| (0..tx).step_by(LANES).map(move |b0| TileGroup { r0: (band0 + a) * TILE, b0, lanes: LANES.min(tx - b0), tile0: a * tx + b0 }))
}

/// `dst[..lanes] = src[..lanes]`; a full group of lanes is a fixed-size copy (vector moves, not a
/// `memcpy` call per tile).
#[inline(always)]
pub(crate) fn copy_lanes(dst: &mut [f32], src: &[f32], lanes: usize) {
    copy_n::<LANES>(dst, src, lanes);
}

/// [`copy_lanes`] for groups of `L ≥ lanes` lanes.
#[inline(always)]
pub(crate) fn copy_n<const L: usize>(dst: &mut [f32], src: &[f32], lanes: usize) {
    if lanes == L {
        dst[..L].copy_from_slice(&src[..L]);
    } else {
        for (d, s) in dst[..lanes].iter_mut().zip(src) {
            *d = *s;
        }
    }
}

/// A 1-D transform `t` (length `I` → `O`) applied along both axes of an `I x I` tile:
/// `T x Tᵀ`, columns first.
#[inline(always)]
fn tile2d<const I: usize, const O: usize>(x: &[[Lanes; I]; I], t: fn(&[Lanes; I]) -> [Lanes; O]) -> [[Lanes; O]; O] {
    let mut cols = [[[0f32; LANES]; I]; O];
    for j in 0..I {
        let mut col = [[0f32; LANES]; I];
        for (i, c) in col.iter_mut().enumerate() {
            *c = x[i][j];
        }
        for (a, ca) in t(&col).iter().enumerate() {
            cols[a][j] = *ca;
        }
    }
    let mut out = [[[0f32; LANES]; O]; O];
    for (o, c) in out.iter_mut().zip(&cols) {
        *o = t(c);
    }
    out
}

// The 1-D transforms of F(6, 3) with the interpolation points 0, ±1, ±2, ±1/2 and ∞
// (Lavin & Gray's choice; `tests/kernels.rs` checks `Aᵀ[(G g) ⊙ (Bᵀ d)]` is the correlation of
// `d` with `g`), written with their common sub-expressions.

/// `Bᵀ d` along one axis.
#[inline(always)]
fn bt(d: &[Lanes; WIN]) -> [Lanes; WIN] {
    let mut o = [[0f32; LANES]; WIN];
    for j in 0..LANES {
        let d = |i: usize| d[i][j];
        o[0][j] = d(0) - d(6) + 5.25 * (d(4) - d(2));
        o[7][j] = d(7) - d(1) + 5.25 * (d(3) - d(5));
        let (t1, t2) = (d(2) + d(6) - 4.25 * d(4), d(1) + d(5) - 4.25 * d(3));
        o[1][j] = t1 + t2;
        o[2][j] = t1 - t2;
        let (t3, t4) = (d(6) + 0.25 * d(2) - 1.25 * d(4), 0.5 * d(1) - 2.5 * d(3) + 2.0 * d(5));
        o[3][j] = t3 + t4;
        o[4][j] = t3 - t4;
        let (t5, t6) = (d(6) + 4.0 * d(2) - 5.0 * d(4), 2.0 * d(1) - 2.5 * d(3) + 0.5 * d(5));
        o[5][j] = t5 + t6;
        o[6][j] = t5 - t6;
    }
    o
}

/// `Aᵀ m` along one axis.
#[inline(always)]
fn at(m: &[Lanes; WIN]) -> [Lanes; TILE] {
    let mut o = [[0f32; LANES]; TILE];
    for j in 0..LANES {
        let m = |i: usize| m[i][j];
        let (s12, d12, s34, d34, s56, d56) = (m(1) + m(2), m(1) - m(2), m(3) + m(4), m(3) - m(4), m(5) + m(6), m(5) - m(6));
        o[0][j] = m(0) + s12 + s34 + s56;
        o[1][j] = d12 + 2.0 * d34 + 0.5 * d56;
        o[2][j] = s12 + 4.0 * s34 + 0.25 * s56;
        o[3][j] = d12 + 8.0 * d34 + 0.125 * d56;
        o[4][j] = s12 + 16.0 * s34 + 0.0625 * s56;
        o[5][j] = d12 + 32.0 * d34 + 0.03125 * d56 + m(7);
    }
    o
}

/// `G g` along one axis.
#[inline(always)]
fn gt(g: &[Lanes; 3]) -> [Lanes; WIN] {
    let mut o = [[0f32; LANES]; WIN];
    for j in 0..LANES {
        let g = |i: usize| g[i][j];
        o[0][j] = g(0);
        o[1][j] = -2.0 / 9.0 * (g(0) + g(1) + g(2));
        o[2][j] = -2.0 / 9.0 * (g(0) - g(1) + g(2));
        o[3][j] = (g(0) + 2.0 * g(1) + 4.0 * g(2)) / 90.0;
        o[4][j] = (g(0) - 2.0 * g(1) + 4.0 * g(2)) / 90.0;
        o[5][j] = (4.0 * g(0) + 2.0 * g(1) + g(2)) * (8.0 / 45.0);
        o[6][j] = (4.0 * g(0) - 2.0 * g(1) + g(2)) * (8.0 / 45.0);
        o[7][j] = g(2);
    }
    o
}
