//! Winograd F(4x4, 3x3) convolution for the CPU path: StyleGAN3's 3x3 modulated convolutions
//! are most of a CPU image's time, and this form needs 36 multiplies per 4x4 output tile and
//! input channel instead of 144 (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016).
//!
//! Every 3x3 filter is transformed once (`G g Gᵀ` into `U[36][out][in]`); then, a band of tile
//! rows at a time (so the buffers stay bounded at 1024² and are reused between layers), three
//! passes, each laid out so memory is streamed, not scattered:
//! 1. transform every 6x6 input tile (`Bᵀ d B`) into `V[36][in][tiles]` (per channel, tiles in
//!    order, so each of the 36 planes is written sequentially);
//! 2. 36 GEMMs `M[e] = U[e] · V[e]` (`[out, in] x [in, tiles]`), threads splitting the tiles;
//! 3. transform back (`Aᵀ m A`) into 4x4 output tiles.
//!
//! Twin: `kernels::cpu::conv2d_direct` (the k² GEMMs over shifted views); tests/kernels.rs holds
//! the two together. The transforms amplify float rounding by at most ~10x, far below the
//! parity tolerance (the whole-network CPU parity tests run through this path).

/// `out[o, y, x] = Σ_{i, ky, kx} w[o, i, ky, kx] · xpad[i, y + ky, x + kx]` for a 3x3 kernel with
/// zero padding `pad` on every side; returns `(out, ho, wo)`.
pub fn conv3x3(x: &[f32], in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, pad: usize) -> (Vec<f32>, usize, usize) {
    let (ho, wo) = ((h + 2 * pad).saturating_sub(2), (w + 2 * pad).saturating_sub(2));
    if ho == 0 || wo == 0 || out_ch == 0 || in_ch == 0 {
        return (vec![0.0; out_ch * ho * wo], ho, wo);
    }
    let (ty, tx) = (ho.div_ceil(4), wo.div_ceil(4));
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());

    // Padded input covering every tile (6x6 windows at stride 4).
    let (hp, wp) = (ty * 4 + 2, tx * 4 + 2);
    let mut xp = vec![0f32; in_ch * hp * wp];
    for c in 0..in_ch {
        for r in 0..h {
            let dst = (c * hp + r + pad) * wp + pad;
            xp[dst..dst + w].copy_from_slice(&x[(c * h + r) * w..(c * h + r + 1) * w]);
        }
    }

    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        let Scratch { u, v, m } = &mut *scratch;
        conv3x3_with(&xp, (hp, wp), in_ch, (ho, wo), (ty, tx), weight, out_ch, threads, u, v, m)
    })
}

/// Transform and GEMM buffers, kept between calls on a thread: every element is written before
/// it is read, so they are only resized (no zeroing, no page faults at every layer).
#[derive(Default)]
struct Scratch {
    u: Vec<f32>,
    v: Vec<f32>,
    m: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

#[allow(clippy::too_many_arguments)]
fn conv3x3_with(
    xp: &[f32],
    (hp, wp): (usize, usize),
    in_ch: usize,
    (ho, wo): (usize, usize),
    (ty, tx): (usize, usize),
    weight: &[f32],
    out_ch: usize,
    threads: usize,
    u: &mut Vec<f32>,
    v: &mut Vec<f32>,
    m: &mut Vec<f32>,
) -> (Vec<f32>, usize, usize) {
    // Filter transform, once: U[36][out][in], threads over output channels.
    u.resize(36 * out_ch * in_ch, 0.0);
    let up = SharedMut(u.as_mut_ptr());
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let up = up;
                for o in (t..out_ch).step_by(threads) {
                    for i in 0..in_ch {
                        let out = filter_tile(&weight[(o * in_ch + i) * 9..(o * in_ch + i + 1) * 9]);
                        for (e, val) in out.iter().enumerate() {
                            // SAFETY: index (e, o, i) < 36·out_ch·in_ch = u.len(); output channel
                            // `o` belongs to this thread only.
                            unsafe { *up.0.add((e * out_ch + o) * in_ch + i) = *val };
                        }
                    }
                }
            });
        }
    });

    // Bands of tile rows, so the transformed tiles (V, M) stay bounded whatever the image size,
    // with enough tiles per band for efficient GEMMs.
    let per_tile = 36 * 4 * in_ch.max(out_ch);
    let band_tiles = (BAND_BYTES / per_tile).max(MIN_BAND_TILES);
    let band_rows = (band_tiles / tx).clamp(1, ty);
    v.resize(36 * in_ch * band_rows * tx, 0.0);
    m.resize(36 * out_ch * band_rows * tx, 0.0);
    let mut out = vec![0f32; out_ch * ho * wo];
    for band0 in (0..ty).step_by(band_rows) {
        let rows = band_rows.min(ty - band0);
        let tiles = rows * tx;
        // 1. Input transform V[36][in][tiles], threads over channels.
        let vp = SharedMut(v.as_mut_ptr());
        std::thread::scope(|s| {
            for t in 0..threads {
                    s.spawn(move || {
                    let vp = vp;
                    for c in (t..in_ch).step_by(threads) {
                        let plane = &xp[c * hp * wp..(c + 1) * hp * wp];
                        for (tile, (r0, c0)) in (band0..band0 + rows).flat_map(|a| (0..tx).map(move |b| (a * 4, b * 4))).enumerate() {
                            let mut d = [[0f32; 6]; 6];
                            for (i, row) in d.iter_mut().enumerate() {
                                row.copy_from_slice(&plane[(r0 + i) * wp + c0..(r0 + i) * wp + c0 + 6]);
                            }
                            for (e, val) in input_tile(&d).iter().enumerate() {
                                // SAFETY: index (e, c, tile) < 36·in_ch·tiles <= v.len();
                                // channel `c` belongs to this thread only.
                                unsafe { *vp.0.add((e * in_ch + c) * tiles + tile) = *val };
                            }
                        }
                    }
                });
            }
        });

        // 2. 36 GEMMs M[e] = U[e] · V[e]; threads split the tiles (GEMM columns) and share each
        // U[e], as in `conv2d_direct`.
        let mp = SharedMut(m.as_mut_ptr());
        std::thread::scope(|s| {
            let per = tiles.div_ceil(threads);
            for t in 0..threads {
                let (u, v) = (&*u, &*v);
                let t0 = t * per;
                let cols = per.min(tiles.saturating_sub(t0));
                if cols == 0 {
                    continue;
                }
                s.spawn(move || {
                    let mp = mp;
                    for e in 0..36 {
                        // SAFETY: dst is columns t0..t0+cols of M[e] ([out_ch, tiles] row-major),
                        // written by this thread only; lhs is U[e] ([out_ch, in_ch]); rhs is
                        // columns t0..t0+cols of V[e] ([in_ch, tiles]); all inside their buffers.
                        unsafe {
                            gemm::gemm(
                                out_ch,
                                cols,
                                in_ch,
                                mp.0.add(e * out_ch * tiles + t0),
                                1,
                                tiles as isize,
                                false,
                                u.as_ptr().add(e * out_ch * in_ch),
                                1,
                                in_ch as isize,
                                v.as_ptr().add(e * in_ch * tiles + t0),
                                1,
                                tiles as isize,
                                1.0,
                                1.0,
                                false,
                                false,
                                false,
                                gemm::Parallelism::None,
                            );
                        }
                    }
                });
            }
        });

        // 3. Inverse transform into the band's output rows, threads over output channels.
        std::thread::scope(|s| {
            let per = out_ch.div_ceil(threads);
            for (chunk, dst) in out.chunks_mut(per * ho * wo).enumerate() {
                let m = &*m;
                s.spawn(move || {
                    for (k, plane) in dst.chunks_mut(ho * wo).enumerate() {
                        let o = chunk * per + k;
                        for (tile, (r0, c0)) in (band0..band0 + rows).flat_map(|a| (0..tx).map(move |b| (a * 4, b * 4))).enumerate() {
                            let mut t = [[0f32; 6]; 6];
                            for (e, val) in t.iter_mut().flatten().enumerate() {
                                *val = m[(e * out_ch + o) * tiles + tile];
                            }
                            let n = 4.min(wo - c0);
                            for (i, row) in output_tile(&t).iter().enumerate().take(ho - r0) {
                                plane[(r0 + i) * wo + c0..(r0 + i) * wo + c0 + n].copy_from_slice(&row[..n]);
                            }
                        }
                    }
                });
            }
        });
    }
    (out, ho, wo)
}

/// Target size of one band's transformed tiles (V or M).
const BAND_BYTES: usize = 32 << 20;
/// Fewest tiles per band (GEMM columns), whatever the channel count.
const MIN_BAND_TILES: usize = 512;

/// A raw pointer handed to scoped threads that write disjoint indices.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: used only inside `conv3x3`'s scoped threads, each writing indices no other writes.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

/// `Bᵀ d` along one axis.
#[inline(always)]
fn bt(d: [f32; 6]) -> [f32; 6] {
    [
        4.0 * d[0] - 5.0 * d[2] + d[4],
        -4.0 * (d[1] + d[2]) + d[3] + d[4],
        4.0 * (d[1] - d[2]) - d[3] + d[4],
        2.0 * (d[3] - d[1]) - d[2] + d[4],
        2.0 * (d[1] - d[3]) - d[2] + d[4],
        4.0 * d[1] - 5.0 * d[3] + d[5],
    ]
}

/// `Aᵀ m` along one axis.
#[inline(always)]
fn at(m: [f32; 6]) -> [f32; 4] {
    let (s12, d12, s34, d34) = (m[1] + m[2], m[1] - m[2], m[3] + m[4], m[3] - m[4]);
    [m[0] + s12 + s34, d12 + 2.0 * d34, s12 + 4.0 * s34, d12 + 8.0 * d34 + m[5]]
}

const SIXTH: f32 = 1.0 / 6.0;

/// `G g` along one axis.
#[inline(always)]
fn gt(g: [f32; 3]) -> [f32; 6] {
    [
        g[0] * 0.25,
        -(g[0] + g[1] + g[2]) * SIXTH,
        -(g[0] - g[1] + g[2]) * SIXTH,
        (g[0] * 0.25 + g[1] * 0.5 + g[2]) * SIXTH,
        (g[0] * 0.25 - g[1] * 0.5 + g[2]) * SIXTH,
        g[2],
    ]
}

/// `Bᵀ d B`, row-major 36 values.
fn input_tile(d: &[[f32; 6]; 6]) -> [f32; 36] {
    let mut cols = [[0f32; 6]; 6];
    for j in 0..6 {
        let c = bt([d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j]]);
        for a in 0..6 {
            cols[a][j] = c[a];
        }
    }
    let mut out = [0f32; 36];
    for a in 0..6 {
        out[a * 6..a * 6 + 6].copy_from_slice(&bt(cols[a]));
    }
    out
}

/// `G g Gᵀ` of a row-major 3x3 filter, row-major 36 values.
fn filter_tile(g: &[f32]) -> [f32; 36] {
    let mut cols = [[0f32; 3]; 6];
    for j in 0..3 {
        let c = gt([g[j], g[3 + j], g[6 + j]]);
        for a in 0..6 {
            cols[a][j] = c[a];
        }
    }
    let mut out = [0f32; 36];
    for a in 0..6 {
        out[a * 6..a * 6 + 6].copy_from_slice(&gt(cols[a]));
    }
    out
}

/// `Aᵀ m A` of a 6x6 tile: the 4x4 outputs.
fn output_tile(m: &[[f32; 6]; 6]) -> [[f32; 4]; 4] {
    let mut cols = [[0f32; 6]; 4];
    for j in 0..6 {
        let c = at([m[0][j], m[1][j], m[2][j], m[3][j], m[4][j], m[5][j]]);
        for a in 0..4 {
            cols[a][j] = c[a];
        }
    }
    let mut out = [[0f32; 4]; 4];
    for a in 0..4 {
        out[a] = at(cols[a]);
    }
    out
}
