//! Register-blocked AVX-512 and AVX2+FMA kernels for the stride-1 convolution and its weight
//! gradient, the GEMMs that dominate a training step on the CPU.
//!
//! The gemm crate ran the convolutions' products at ~100–145 GFLOP/s on the 2 cores of this
//! project's AVX-512 VMs (58–86 GFLOP/s on one core for a 2048³ product, where OpenBLAS's AVX2
//! kernel gives 245 on both), and the k² GEMM calls per convolution each pack their operands
//! again; the tiles here run the same convolutions at ~300 (benches/RESULTS.md). Every kernel here
//! is one microkernel, `acc[6][64] += a[6] ⊗ b[64]` per reduction step, fed straight from the
//! layouts the callers already have, with no packing of the large operand:
//!
//! - [`conv_wide`] (the forward convolution and its input gradient): `b` is 64 consecutive
//!   output pixels of the shifted view of one input plane (the padded-width layout of
//!   `cpu::conv2d_direct`), `a` six output channels' weights for that input channel and tap
//!   (packed once per call); the reduction runs over taps × input channels.
//! - [`weight_grad`] (`∂W = Σₚ dy · shift(x)ᵀ`): `b` is 64 input channels of one pixel of the
//!   input transposed to pixel-major order (one copy serves every tap: a tap is a shift in
//!   pixels), `a` six output channels' output gradient at that pixel; the reduction runs over
//!   pixels, in chunks that stay in L2, each worker summing into its own `∂W`.
//!
//! With AVX-512F the 6 × 64 tile is 24 zmm accumulators (4 loads and 6 broadcasts per 24 FMAs);
//! with AVX2+FMA (16 ymm registers) it runs as four 6 × 16 quarters of 12 accumulators each, the
//! reduction repeated per quarter. Each step asks L1 for the `b` row of the step
//! [`PREFETCH_AHEAD`] on (rows a plane apart, which the hardware prefetchers miss). Every output
//! element gets the same FMAs in the same order either way, so the two give the same bits (and a
//! run resumed on the other kind of CPU goes on identically). Lanes past a tile's end are masked (loads never touch memory outside the tile's
//! elements). [`gemm`] is the same tile for any product whose right operand and result have
//! contiguous rows (the Winograd convolution's per-position products): `cpu::gemm_strided` takes
//! it.
//!
//! Used where the CPU has AVX-512F or AVX2+FMA (see [`available`]); elsewhere the callers keep the
//! gemm crate. Twins: the gemm-crate paths in `cpu::conv2d_direct` and
//! `cpu_autodiff::conv2d_weight_grad` (unit tests below compare them on ragged shapes, and the two
//! instruction sets with each other) and burn's convolution under autodiff (tests/kernels.rs).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m256, __m256i, __m512, __mmask16, _mm256_cmpgt_epi32, _mm256_add_ps, _mm256_fmadd_ps, _mm256_maskload_ps, _mm256_maskstore_ps, _mm256_mul_ps, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi32, _mm256_setzero_ps,
    _mm512_add_ps, _mm512_broadcastss_ps, _mm512_fmadd_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_setzero_ps,
    _mm_cvtss_f32, _mm_load_ss,
};

use super::cpu::{par_jobs, SharedMut};

/// Output channels per microkernel call (callers pad their operands to whole blocks of these).
pub(crate) const ROWS: usize = 6;
/// Pixels (forward) or input channels (weight gradient) per microkernel call.
const COLS: usize = 64;
/// Columns per AVX2 quarter tile.
const QUARTER: usize = 16;
/// Reduction steps ahead whose `b` row a tile asks L1 for ([`prefetch`]). The rows of
/// consecutive steps are a channel plane (`conv_wide`) or a matrix row (`gemm`) apart, a
/// pattern the hardware prefetchers do not follow: without it the loads waited on L2 (D's
/// phase-split 1024 → 256 convolution 16.2–18.1 → 13.9–14.0 ms on AVX-512, 26.6–26.9 →
/// 23.6–24.2 on AVX2; a 256 x 256 x 1024 product 100–106 → 126–135 GFLOP/s on one core).
/// 2 to 16 steps measured alike for the convolution; 8 lost the product's gain.
const PREFETCH_AHEAD: usize = 4;

/// The instructions a tile runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    Avx512,
    Avx2Fma,
}

/// The instruction set the tiles run as on this machine: AVX-512F where the CPU has it and the
/// environment does not ask for AVX2 (`STYLESCOPE_SIMD=avx2`: what an AVX2-only CPU runs), else
/// AVX2+FMA where the CPU has both; `None` (the gemm crate everywhere) elsewhere or with
/// `STYLESCOPE_GEMM=crate` (to compare the two or rule these out when debugging).
/// `STYLESCOPE_SIMD=baseline` is about the loops (`kernels::simd`) and leaves the tiles as they
/// are: both instruction sets give the same bits. Decided once per process.
pub(crate) fn isa() -> Option<Isa> {
    #[cfg(target_arch = "x86_64")]
    {
        static ISA: std::sync::OnceLock<Option<Isa>> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            let simd = std::env::var("STYLESCOPE_SIMD").unwrap_or_default();
            if std::env::var("STYLESCOPE_GEMM").is_ok_and(|v| v == "crate") {
                None
            } else if supported(Isa::Avx512) && simd != "avx2" {
                Some(Isa::Avx512)
            } else if supported(Isa::Avx2Fma) {
                Some(Isa::Avx2Fma)
            } else {
                None
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// Whether this machine runs the kernels here (see [`isa`]).
pub fn available() -> bool {
    isa().is_some()
}

/// Whether `isa` can run on this CPU (the drivers check it, so the tests can run both).
fn supported(isa: Isa) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        match isa {
            Isa::Avx512 => has!("avx512f"),
            Isa::Avx2Fma => has!("avx2") && has!("fma"),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        false
    }
}

/// The lane masks of a row of `len ≤ 64` values split in four 16-lane vectors.
#[cfg(target_arch = "x86_64")]
fn masks(len: usize) -> [__mmask16; 4] {
    std::array::from_fn(|j| {
        let lanes = len.saturating_sub(16 * j).min(16);
        ((1u32 << lanes) - 1) as __mmask16
    })
}

/// Asks L1 for the `bytes ≤ 256` bytes from `p` (the lines of their first and last byte and
/// those between). A prefetch never faults, so `p` may point anywhere.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch(p: *const f32, bytes: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let p = p.cast::<i8>();
    if bytes == 0 {
        return;
    }
    // SAFETY: prefetching is a hint that never faults, whatever the address.
    unsafe {
        for at in (0..bytes).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(at));
        }
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(bytes - 1));
    }
}

/// One reduction step: `acc[r][j] += a[r · a_row] · b[16j .. 16j + 16]` (masked lanes read 0).
///
/// # Safety
/// AVX-512F is available; `a[r · a_row]` is readable for r < 6 and `b`'s unmasked lanes are.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn step(acc: &mut [[__m512; 4]; ROWS], a: *const f32, a_row: isize, b: *const f32, m: &[__mmask16; 4]) {
    // SAFETY: the caller's guarantees; masked lanes are not read, so `wrapping_add` pointers past
    // the buffer are never dereferenced.
    unsafe {
        let x = [
            _mm512_maskz_loadu_ps(m[0], b),
            _mm512_maskz_loadu_ps(m[1], b.wrapping_add(16)),
            _mm512_maskz_loadu_ps(m[2], b.wrapping_add(32)),
            _mm512_maskz_loadu_ps(m[3], b.wrapping_add(48)),
        ];
        for (r, row) in acc.iter_mut().enumerate() {
            // An intrinsic load: a raw-pointer read gets a debug-build alignment check whose
            // panic path made LLVM keep the accumulators in memory; so did the overflow check of
            // a plain `r · a_row` (the GEMM tile's variable row stride).
            let w = _mm512_broadcastss_ps(_mm_load_ss(a.wrapping_offset((r as isize).wrapping_mul(a_row))));
            for (v, xj) in row.iter_mut().zip(x) {
                *v = _mm512_fmadd_ps(w, xj, *v);
            }
        }
    }
}


/// The accumulators as a 6 x 64 array on the stack, for a tile's partial rows and columns:
/// storing them straight to the destination (rows up to `rows` only) made LLVM keep them in
/// memory and store all 24 every reduction step.
///
/// # Safety
/// AVX-512F is available (the callers are AVX-512F functions).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn spilled(acc: &[[__m512; 4]; ROWS]) -> [[f32; COLS]; ROWS] {
    // The registers' bits as the array (same size; a zeroed array filled by stores was a
    // `memset` call per tile, ~1% of a training step).
    // SAFETY: four 16-lane vectors are 64 f32 values, every bit pattern a valid f32.
    unsafe { std::mem::transmute::<[[__m512; 4]; ROWS], [[f32; COLS]; ROWS]>(*acc) }
}

/// The AVX2 `maskload` mask (sign bit set on live lanes) of an 8-lane vector holding the first
/// `len` (clamped to 8) values.
///
/// # Safety
/// AVX2 is available (the callers are AVX2 functions).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn mask8(len: usize) -> __m256i {
    // SAFETY: AVX2 (the caller's guarantee).
    unsafe { _mm256_cmpgt_epi32(_mm256_set1_epi32(len.min(8) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)) }
}

/// Eight values from `p` through the masked load with every lane on: `_mm256_loadu_ps` is a
/// `copy_nonoverlapping` whose debug-build precondition check ran every reduction step.
///
/// # Safety
/// AVX2 is available and `p[..8]` is readable.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn load8(p: *const f32) -> __m256 {
    // SAFETY: the caller's guarantees.
    unsafe { _mm256_maskload_ps(p, _mm256_set1_epi32(-1)) }
}

/// The masks of a quarter row of `len` values (clamped to 16) in two 8-lane vectors.
///
/// # Safety
/// AVX2 is available (the callers are AVX2 functions).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn masks8(len: usize) -> [__m256i; 2] {
    // SAFETY: AVX2 (the caller's guarantee).
    unsafe { [mask8(len), mask8(len.saturating_sub(8))] }
}

/// [`step`] on a 6 × 16 quarter tile: `acc[r][j] += a[r · a_row] · b[8j .. 8j + 8]` (masked lanes
/// read 0; a `FULL` quarter reads all 16 without masks, which also frees their registers); the
/// same FMA per element as the AVX-512 step.
///
/// # Safety
/// AVX2 and FMA are available; `a[r · a_row]` is readable for r < 6 and `b`'s unmasked lanes
/// are (all 16 when `FULL`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn step8<const FULL: bool>(acc: &mut [[__m256; 2]; ROWS], a: *const f32, a_row: isize, b: *const f32, m: &[__m256i; 2]) {
    // SAFETY: the caller's guarantees; masked lanes are not read.
    unsafe {
        // Two locals, not an array: an array of the two went through the stack every step.
        let (x0, x1) = if FULL { (load8(b), load8(b.wrapping_add(8))) } else { (_mm256_maskload_ps(b, m[0]), _mm256_maskload_ps(b.wrapping_add(8), m[1])) };
        for (r, [v0, v1]) in acc.iter_mut().enumerate() {
            // An intrinsic load, as in `step`.
            let w = _mm256_set1_ps(_mm_cvtss_f32(_mm_load_ss(a.wrapping_offset((r as isize).wrapping_mul(a_row)))));
            *v0 = _mm256_fmadd_ps(w, x0, *v0);
            *v1 = _mm256_fmadd_ps(w, x1, *v1);
        }
    }
}

/// A quarter tile's reduction over `steps` steps, step `k` reading `a_at(k)` (rows `a_row` apart)
/// and `b_at(k)`: unmasked when the quarter is full.
///
/// # Safety
/// As [`step8`] for every step.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn reduce8(live: usize, steps: usize, a_at: impl Fn(usize) -> *const f32, a_row: isize, b_at: impl Fn(usize) -> *const f32) -> [[__m256; 2]; ROWS] {
    // SAFETY: the caller's guarantees.
    unsafe {
        let m = masks8(live);
        let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
        if live == QUARTER {
            for k in 0..steps {
                if k + PREFETCH_AHEAD < steps {
                    prefetch(b_at(k + PREFETCH_AHEAD), 4 * QUARTER);
                }
                step8::<true>(&mut acc, a_at(k), a_row, b_at(k), &m);
            }
        } else {
            for k in 0..steps {
                if k + PREFETCH_AHEAD < steps {
                    prefetch(b_at(k + PREFETCH_AHEAD), 4 * live);
                }
                step8::<false>(&mut acc, a_at(k), a_row, b_at(k), &m);
            }
        }
        acc
    }
}

/// A quarter tile's accumulators as a 6 × 16 array on the stack (see [`spilled`]).
///
/// # Safety
/// AVX is available (the callers are AVX2 functions).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn spilled8(acc: &[[__m256; 2]; ROWS]) -> [[f32; QUARTER]; ROWS] {
    // SAFETY: as in `spilled`: two 8-lane vectors are 16 f32 values.
    unsafe { std::mem::transmute::<[[__m256; 2]; ROWS], [[f32; QUARTER]; ROWS]>(*acc) }
}

/// `wide[o, p] = scale[o] · Σ_tap Σ_i w[o, i, tap] · src[i · plane + offsets[tap] + p]` for
/// `o < out_ch`, `p < n`; `w` is `[out_ch, in_ch, taps]` and an empty `out_scale` means ones.
/// The caller guarantees `src.len() ≥ (in_ch − 1) · plane + max(offsets) + n`. `None` where the
/// tiles do not run ([`available`]).
#[allow(clippy::too_many_arguments)]
pub fn conv_wide(src: &[f32], plane: usize, in_ch: usize, offsets: &[usize], weight: &[f32], out_ch: usize, n: usize, out_scale: &[f32], threads: usize) -> Option<Vec<f32>> {
    let mut wide = vec![0f32; out_ch * n];
    conv_wide_into(src, plane, in_ch, offsets, weight, out_ch, n, out_scale, threads, &mut wide).then_some(wide)
}

/// [`conv_wide`] into `wide` (`out_ch · n` values, every one written): false, and nothing
/// written, where the tiles do not run or the sizes do not fit.
#[allow(clippy::too_many_arguments)]
pub fn conv_wide_into(src: &[f32], plane: usize, in_ch: usize, offsets: &[usize], weight: &[f32], out_ch: usize, n: usize, out_scale: &[f32], threads: usize, wide: &mut [f32]) -> bool {
    isa().is_some_and(|isa| conv_wide_as(isa, src, plane, in_ch, offsets, weight, out_ch, n, out_scale, threads, wide))
}

/// [`conv_wide_into`] as `isa` (false where the CPU lacks it).
#[allow(clippy::too_many_arguments)]
fn conv_wide_as(isa: Isa, src: &[f32], plane: usize, in_ch: usize, offsets: &[usize], weight: &[f32], out_ch: usize, n: usize, out_scale: &[f32], threads: usize, wide: &mut [f32]) -> bool {
    let taps = offsets.len();
    let last = offsets.iter().max().map(|m| in_ch.saturating_sub(1) * plane + m + n);
    if !supported(isa) || weight.len() != out_ch * in_ch * taps || last.is_none_or(|l| l > src.len()) || wide.len() != out_ch * n {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let blocks = out_ch.div_ceil(ROWS);
        // Each block of 6 output channels runs the reduction steps (tap, input channel),
        // tap-major, less those whose weights are zero for all 6: the phase-split kernels of
        // the stride-2 convolutions have 7 such taps in 16, for every output channel
        // (`cpu_autodiff::conv2d_stride2_tracked`) or for the blocks of one output phase (its
        // transposed twin and the gradients of both). Adding a zero product leaves a sum as it
        // was, so the result is the same either way (but for infinities and NaNs in the input's
        // skipped taps). Blocks with the same steps share one list of them.
        let mut lists: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut list_of = Vec::with_capacity(blocks);
        for b in 0..blocks {
            let rows = b * ROWS..((b + 1) * ROWS).min(out_ch);
            let live = |&(t, i): &(usize, usize)| rows.clone().any(|o| weight[(o * in_ch + i) * taps + t] != 0.0);
            let kept: Vec<(usize, usize)> = (0..taps).flat_map(|t| (0..in_ch).map(move |i| (t, i))).filter(live).collect();
            list_of.push(lists.iter().position(|l| *l == kept).unwrap_or_else(|| {
                lists.push(kept);
                lists.len() - 1
            }));
        }
        // Weights as [block][step][6] (each block its own list's steps), zero rows past out_ch.
        let mut starts = Vec::with_capacity(blocks);
        let mut packed = Vec::new();
        for (b, &l) in list_of.iter().enumerate() {
            starts.push(packed.len());
            for &(t, i) in &lists[l] {
                packed.extend((b * ROWS..(b + 1) * ROWS).map(|o| if o < out_ch { weight[(o * in_ch + i) * taps + t] } else { 0.0 }));
            }
        }
        let scale = |o: usize| out_scale.get(o).copied().unwrap_or(1.0);
        // Pixel blocks whose input views (every tap's) stay in L2 (~512 KiB) while all output
        // channel blocks sweep them.
        let span = offsets.iter().max().copied().unwrap_or(0);
        let fit = (512 * 1024 / 4 / in_ch.max(1)).saturating_sub(span);
        let cols = (fit / COLS).clamp(1, 16) * COLS;
        // Each reduction step's input view, in the packed weights' order.
        let views: Vec<Vec<usize>> = lists.iter().map(|l| l.iter().map(|&(t, i)| i * plane + offsets[t]).collect()).collect();
        let (views, list_of, starts) = (&views, &list_of, &starts);
        let dst = SharedMut(wide.as_mut_ptr());
        let packed = &packed;
        par_jobs(n.div_ceil(cols), threads, |j| {
            let dst = dst;
            let (c0, c1) = (j * cols, ((j + 1) * cols).min(n));
            for b in 0..blocks {
                let rows = ROWS.min(out_ch - b * ROWS);
                let scales: [f32; ROWS] = std::array::from_fn(|r| scale(b * ROWS + r));
                for p0 in (c0..c1).step_by(COLS) {
                    let len = COLS.min(c1 - p0);
                    // SAFETY: the CPU has `isa` (checked above); the tile's reads lie inside
                    // `src` (the length check above; masked lanes past `len` are not read) and
                    // `packed`; its writes are rows b·6..b·6+rows < out_ch, columns p0..p0+len
                    // < n of `wide` (out_ch·n values), which only this job writes.
                    unsafe { conv_tile(isa, src.as_ptr(), &views[list_of[b]], packed.as_ptr().add(starts[b]), p0, len, dst.0.add(b * ROWS * n), n, rows, &scales) };
                }
            }
        });
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One 6 × 64 output tile of [`conv_wide`] as `isa`.
///
/// # Safety
/// The CPU has `isa`; every `src[views[k] + p0 + l]` (l < len) and
/// `packed[0 .. views.len() · 6]` is readable; `dst[r · n + p0 + l]` (r < rows) is writable.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn conv_tile(isa: Isa, src: *const f32, views: &[usize], packed: *const f32, p0: usize, len: usize, dst: *mut f32, n: usize, rows: usize, scales: &[f32; ROWS]) {
    // SAFETY: the caller's guarantees.
    unsafe {
        match isa {
            Isa::Avx512 => conv_tile_512(src, views, packed, p0, len, dst, n, rows, scales),
            Isa::Avx2Fma => conv_tile_256(src, views, packed, p0, len, dst, n, rows, scales),
        }
    }
}

/// [`conv_tile`] in four 6 × 16 quarters, the reduction once per quarter.
///
/// # Safety
/// As [`conv_tile`], with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn conv_tile_256(src: *const f32, views: &[usize], packed: *const f32, p0: usize, len: usize, dst: *mut f32, n: usize, rows: usize, scales: &[f32; ROWS]) {
    for q0 in (0..len).step_by(QUARTER) {
        let live = QUARTER.min(len - q0);
        let src = src.wrapping_add(p0 + q0);
        // SAFETY: the caller's guarantees (lanes past `live` are masked).
        let acc = unsafe { reduce8(live, views.len(), |k| packed.wrapping_add(k * ROWS), 1, |k| src.wrapping_add(views[k])) };
        // SAFETY: AVX2 (this function's contract).
        let tile = unsafe { spilled8(&acc) };
        for (r, (out, scale)) in tile.iter().zip(scales).enumerate().take(rows) {
            // SAFETY: row r < rows, columns p0+q0..p0+q0+live ≤ p0+len (the caller's bounds).
            let dst = unsafe { std::slice::from_raw_parts_mut(dst.add(r * n + p0 + q0), live) };
            for (d, v) in dst.iter_mut().zip(out) {
                *d = v * scale;
            }
        }
    }
}

/// [`conv_tile`] as one 6 × 64 AVX-512 tile.
///
/// # Safety
/// As [`conv_tile`], with AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn conv_tile_512(src: *const f32, views: &[usize], packed: *const f32, p0: usize, len: usize, dst: *mut f32, n: usize, rows: usize, scales: &[f32; ROWS]) {
    let m = masks(len);
    let mut acc = [[_mm512_setzero_ps(); 4]; ROWS];
    // One loop over the reduction steps' input offsets (nested loops over taps and channels
    // made LLVM store all 24 accumulators every step).
    let src = src.wrapping_add(p0);
    for (k, &off) in views.iter().enumerate() {
        if let Some(&ahead) = views.get(k + PREFETCH_AHEAD) {
            prefetch(src.wrapping_add(ahead), 4 * len);
        }
        // SAFETY: the caller's guarantees.
        unsafe { step(&mut acc, packed.wrapping_add(k * ROWS), 1, src.wrapping_add(off), &m) };
    }
    // SAFETY: AVX-512F is available (this function's contract).
    let tile = unsafe { spilled(&acc) };
    for (r, (out, scale)) in tile.iter().zip(scales).enumerate().take(rows) {
        // SAFETY: row r < rows, columns p0..p0+len (the caller's bounds).
        let dst = unsafe { std::slice::from_raw_parts_mut(dst.add(r * n + p0), len) };
        for (d, v) in dst.iter_mut().zip(out) {
            *d = v * scale;
        }
    }
}

/// `dst = a · b` (`dst +=` when `accumulate`) on the calling thread: `a` is `[m, k]` with any
/// strides, `b` `[k, n]` and `dst` `[m, n]` with contiguous rows (`b_rs`, `dst_rs` apart).
/// Returns false (nothing done) where the tiles do not run.
///
/// # Safety
/// Every element the three views address lies inside a live buffer, and no other thread reads or
/// writes `dst`'s elements meanwhile.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm((m, n, k): (usize, usize, usize), dst: *mut f32, dst_rs: isize, accumulate: bool, a: (*const f32, isize, isize), b: (*const f32, isize)) -> bool {
    // SAFETY: the caller's guarantees.
    isa().is_some_and(|isa| unsafe { gemm_as(isa, (m, n, k), dst, dst_rs, accumulate, a, b) })
}

/// [`gemm`] as `isa` (false where the CPU lacks it).
///
/// # Safety
/// As [`gemm`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_as(isa: Isa, (m, n, k): (usize, usize, usize), dst: *mut f32, dst_rs: isize, accumulate: bool, (a, a_rs, a_cs): (*const f32, isize, isize), (b, b_rs): (*const f32, isize)) -> bool {
    if !supported(isa) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if a_cs != 1 {
            // SAFETY: the caller's guarantees.
            let packed = unsafe { pack(m, k, (a, a_rs, a_cs)) };
            // SAFETY: the CPU has `isa` (checked above); the caller's guarantees for `b` and `dst`.
            unsafe { gemm_packed_as(isa, (m, n, k), (0, k), dst, dst_rs, accumulate, &packed, (b, b_rs)) };
            return true;
        }
        // Rows of consecutive values: the tiles read whole blocks of six in place (six
        // sequential streams; packing them first cost more than it saved: 256 x 256 x 512
        // products 113 → 133–138 GFLOP/s, 128 x 128 x 512 99–101 → 132–141, with the pack;
        // the Winograd weight gradient of 8 x 256 x 32² 43.0–44.6 → 39.7–40.4 ms, of
        // 8 x 128 x 64² 50.1–52.4 → 44.0–46.2), and only a last block of fewer rows is packed
        // (a tile reads six).
        let full = m / ROWS;
        // SAFETY: rows full·6 .. m of `a` (the caller's guarantee).
        let tail = unsafe { pack(m - full * ROWS, k, (a.wrapping_offset(((full * ROWS) as isize).wrapping_mul(a_rs)), a_rs, 1)) };
        let block = |blk: usize| if blk < full { (a.wrapping_offset(((blk * ROWS) as isize).wrapping_mul(a_rs)), a_rs, 1) } else { (tail.as_ptr(), 1, ROWS as isize) };
        // SAFETY: the CPU has `isa` (checked above); the caller's guarantees for `a`, `b` and
        // `dst`; the tail block is `k` steps of six values.
        unsafe { gemm_blocks(isa, (m, n, k), dst, dst_rs, accumulate, block, (b, b_rs)) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `a` (`[m, k]`, any strides) packed as `[block][k][6]` for [`gemm_packed`], the last block's
/// missing rows zero: each reduction step reads its six values from one place, whatever `a`'s
/// strides (a left operand used in several products, or whose steps are far apart: read in
/// place with a step stride of 1 KiB or more, a long reduction overflowed L1 and the products
/// ran at a third of their speed), and every tile reads 6 valid rows. [`gemm`] reads rows of
/// consecutive values in place instead.
///
/// # Safety
/// `a[r·a_rs + c·a_cs]` is readable for r < m, c < k.
pub(crate) unsafe fn pack(m: usize, k: usize, (a, a_rs, a_cs): (*const f32, isize, isize)) -> Vec<f32> {
    let mut packed = vec![0f32; m.div_ceil(ROWS) * k * ROWS];
    if packed.is_empty() {
        return packed;
    }
    for (blk, block) in packed.chunks_exact_mut(k * ROWS).enumerate() {
        let live = ROWS.min(m - blk * ROWS);
        let rows: [*const f32; ROWS] = std::array::from_fn(|r| a.wrapping_offset(((blk * ROWS + r.min(live - 1)) as isize).wrapping_mul(a_rs)));
        // Step by step, the six values written together (row by row, with a stride of six,
        // packing was ~3% of a StyleGAN2 training step while `gemm` still packed the Winograd
        // weight gradient's inputs).
        for (c, step) in block.chunks_exact_mut(ROWS).enumerate() {
            let at = (c as isize).wrapping_mul(a_cs);
            for (v, row) in step.iter_mut().zip(rows).take(live) {
                // SAFETY: row blk·6 + r < m, column c < k of `a` (the caller's guarantee).
                *v = unsafe { *row.wrapping_offset(at) };
            }
        }
    }
    packed
}

/// [`gemm`] with `a` already [`pack`]ed (`m` rows, `k` columns), for a left operand used in
/// several products. Returns false (nothing done) where the tiles do not run.
///
/// # Safety
/// As [`gemm`] for `b` and `dst`.
pub(crate) unsafe fn gemm_packed((m, n, k): (usize, usize, usize), dst: *mut f32, dst_rs: isize, accumulate: bool, packed: &[f32], b: (*const f32, isize)) -> bool {
    assert_eq!(packed.len(), m.div_ceil(ROWS) * k * ROWS, "packed operand of another shape");
    // SAFETY: the caller's guarantees.
    isa().is_some_and(|isa| {
        unsafe { gemm_packed_as(isa, (m, n, k), (0, k), dst, dst_rs, accumulate, packed, b) };
        true
    })
}

/// [`gemm_packed`] over the reduction steps `k0..k0 + kb` only: `dst (+)= a[:, k0..k0 + kb] ·
/// b` with `a` packed whole (`m` rows, `k` columns) and `b` `[kb, n]` (a block of the reduction
/// whose operand is made a block at a time, as the fused Winograd products' transformed tiles).
/// Returns false (nothing done) where the tiles do not run.
///
/// # Safety
/// As [`gemm`] for `b` (`kb` rows) and `dst`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_packed_part((m, n, k): (usize, usize, usize), (k0, kb): (usize, usize), dst: *mut f32, dst_rs: isize, accumulate: bool, packed: &[f32], b: (*const f32, isize)) -> bool {
    assert!(packed.len() == m.div_ceil(ROWS) * k * ROWS && k0 + kb <= k, "packed operand of another shape");
    // SAFETY: the caller's guarantees.
    isa().is_some_and(|isa| {
        unsafe { gemm_packed_as(isa, (m, n, k), (k0, kb), dst, dst_rs, accumulate, packed, b) };
        true
    })
}

/// [`gemm_packed_part`] as `isa`.
///
/// # Safety
/// The CPU has `isa`; as [`gemm`] for `b` (`kb` rows) and `dst`; `packed` holds `⌈m/6⌉·k·6`
/// values and `k0 + kb ≤ k`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_packed_as(isa: Isa, (m, n, k): (usize, usize, usize), (k0, kb): (usize, usize), dst: *mut f32, dst_rs: isize, accumulate: bool, packed: &[f32], b: (*const f32, isize)) {
    let block = |blk: usize| (packed.as_ptr().wrapping_add((blk * k + k0) * ROWS), 1, ROWS as isize);
    // SAFETY: the caller's guarantees; block blk's steps k0..k0+kb lie inside `packed`.
    unsafe { gemm_blocks(isa, (m, n, kb), dst, dst_rs, accumulate, block, b) };
}

/// `dst (+)= a · b` over `k` steps, in 6 × 64 tiles, block `blk` of `a`'s rows (rows blk·6 ..
/// blk·6 + 6, the last block's past `m` zero or any readable values) read at `block(blk)` =
/// (first value, row stride, step stride).
///
/// # Safety
/// The CPU has `isa`; as [`gemm`] for `b` and `dst`; every block's six rows are readable for
/// `k` steps.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_blocks(isa: Isa, (m, n, k): (usize, usize, usize), dst: *mut f32, dst_rs: isize, accumulate: bool, block: impl Fn(usize) -> (*const f32, isize, isize), (b, b_rs): (*const f32, isize)) {
    #[cfg(target_arch = "x86_64")]
    {
        let row_blocks = m.div_ceil(ROWS);
        // The larger operand is streamed once: with `a` the taller (m > n: many rows, few
        // columns), each block of its rows meets every block of `b`'s columns while in cache;
        // otherwise each block of `b`'s columns meets every block of rows. The same tiles either way.
        let col_blocks = n.div_ceil(COLS);
        let order = |j: usize| if m > n { (j / col_blocks, j % col_blocks) } else { (j % row_blocks, j / row_blocks) };
        for (blk, cb) in (0..row_blocks * col_blocks).map(order) {
            let c0 = cb * COLS;
            let len = COLS.min(n - c0);
            let rows = ROWS.min(m - blk * ROWS);
            let (a, a_rs, a_cs) = block(blk);
            // SAFETY: the CPU has `isa`; block blk's rows for k steps, columns c0..c0+len of
            // `b` and rows blk·6..blk·6+rows of `dst` lie inside the views the caller vouches
            // for.
            unsafe { gemm_tile(isa, k, a, a_rs, a_cs, b.wrapping_add(c0), b_rs, dst.wrapping_offset((blk * ROWS) as isize * dst_rs).wrapping_add(c0), dst_rs, rows, len, accumulate) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, m, n, k, dst, dst_rs, accumulate, block, b, b_rs);
    }
}

/// One `rows × len` tile of [`gemm`] (6 rows of `a` read) as `isa`.
///
/// # Safety
/// The CPU has `isa`; `a[r·a_rs + c·a_cs]` (r < 6, c < k), `b[c·b_rs + l]` (l < len) are
/// readable and `dst[r·dst_rs + l]` (r < rows) writable.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_tile(isa: Isa, k: usize, a: *const f32, a_rs: isize, a_cs: isize, b: *const f32, b_rs: isize, dst: *mut f32, dst_rs: isize, rows: usize, len: usize, accumulate: bool) {
    // SAFETY: the caller's guarantees.
    unsafe {
        match isa {
            Isa::Avx512 => gemm_tile_512(k, a, a_rs, a_cs, b, b_rs, dst, dst_rs, rows, len, accumulate),
            Isa::Avx2Fma => gemm_tile_256(k, a, a_rs, a_cs, b, b_rs, dst, dst_rs, rows, len, accumulate),
        }
    }
}

/// [`gemm_tile`] in 6 × 16 quarters.
///
/// # Safety
/// As [`gemm_tile`], with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_tile_256(k: usize, a: *const f32, a_rs: isize, a_cs: isize, b: *const f32, b_rs: isize, dst: *mut f32, dst_rs: isize, rows: usize, len: usize, accumulate: bool) {
    for q0 in (0..len).step_by(QUARTER) {
        let live = QUARTER.min(len - q0);
        let b = b.wrapping_add(q0);
        // SAFETY: the caller's guarantees (lanes past `live` are masked).
        let acc = unsafe { reduce8(live, k, |c| a.wrapping_offset((c as isize).wrapping_mul(a_cs)), a_rs, |c| b.wrapping_offset((c as isize).wrapping_mul(b_rs))) };
        // SAFETY: AVX2 (this function's contract).
        let tile = unsafe { spilled8(&acc) };
        for (r, out) in tile.iter().enumerate().take(rows) {
            // SAFETY: row r < rows, columns q0..q0+live ≤ len (the caller's bounds).
            let dst = unsafe { std::slice::from_raw_parts_mut(dst.wrapping_offset(r as isize * dst_rs).wrapping_add(q0), live) };
            if accumulate {
                dst.iter_mut().zip(out).for_each(|(d, v)| *d += v);
            } else {
                dst.copy_from_slice(&out[..live]);
            }
        }
    }
}

/// [`gemm_tile`] as one 6 × 64 AVX-512 tile.
///
/// # Safety
/// As [`gemm_tile`], with AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_tile_512(k: usize, a: *const f32, a_rs: isize, a_cs: isize, b: *const f32, b_rs: isize, dst: *mut f32, dst_rs: isize, rows: usize, len: usize, accumulate: bool) {
    let m = masks(len);
    let mut acc = [[_mm512_setzero_ps(); 4]; ROWS];
    for c in 0..k {
        if c + PREFETCH_AHEAD < k {
            prefetch(b.wrapping_offset(((c + PREFETCH_AHEAD) as isize).wrapping_mul(b_rs)), 4 * len);
        }
        // SAFETY: the caller's guarantees (a_rs is a row stride: the step's `a_row`).
        unsafe { step(&mut acc, a.wrapping_offset((c as isize).wrapping_mul(a_cs)), a_rs, b.wrapping_offset((c as isize).wrapping_mul(b_rs)), &m) };
    }
    // SAFETY: AVX-512F is available (this function's contract).
    let tile = unsafe { spilled(&acc) };
    for (r, out) in tile.iter().enumerate().take(rows) {
        // SAFETY: row r < rows, columns 0..len (the caller's bounds).
        let dst = unsafe { std::slice::from_raw_parts_mut(dst.wrapping_offset(r as isize * dst_rs), len) };
        if accumulate {
            dst.iter_mut().zip(out).for_each(|(d, v)| *d += v);
        } else {
            dst.copy_from_slice(&out[..len]);
        }
    }
}

/// `out[o] = Σ f · src[off + o]` over the `(f, off)` taps in order, as `cpu::filter_sum`'s
/// loops compute it (a multiply then an add per tap, no FMA: bit-identical), 64 outputs at a time
/// in four AVX-512 or eight AVX2 vectors, the row's tail masked. False (nothing done) where the
/// loops run neither (`kernels::simd`) or a tap would read past `src`.
pub(crate) fn filter_sum(out: &mut [f32], src: &[f32], taps: &[(f32, usize)]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let n = out.len();
        if taps.iter().any(|&(_, off)| off + n > src.len()) {
            return false;
        }
        if crate::kernels::simd::avx512() {
            // SAFETY: AVX-512F is available (simd::avx512) and every tap's run lies inside `src`.
            unsafe { filter_sum_tiles(out, src, taps) };
        } else if crate::kernels::simd::avx2() {
            // SAFETY: AVX2 is available (simd::avx2) and every tap's run lies inside `src`.
            unsafe { filter_sum_tiles_256(out, src, taps) };
        } else {
            return false;
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (out, src, taps);
        false
    }
}

/// [`filter_sum`]'s vectors as AVX2: 64 outputs in eight vectors, unmasked but for a row's
/// last partial block.
///
/// # Safety
/// AVX2 is available and `off + out.len() ≤ src.len()` for every tap.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn filter_sum_tiles_256(out: &mut [f32], src: &[f32], taps: &[(f32, usize)]) {
    let n = out.len();
    let mut o = 0;
    while o < n {
        let live = (n - o).min(COLS);
        let mut acc = [_mm256_setzero_ps(); 8];
        if live == COLS {
            for &(f, off) in taps {
                let fv = _mm256_set1_ps(f);
                let p = src.as_ptr().wrapping_add(off + o);
                for (j, a) in acc.iter_mut().enumerate() {
                    // SAFETY: src[off + o + 8j .. + 8] with o + 64 ≤ n, inside `src` (the caller's
                    // guarantee).
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(fv, unsafe { load8(p.wrapping_add(8 * j)) }));
                }
            }
            for (j, a) in acc.iter().enumerate() {
                // SAFETY: out[o + 8j .. + 8] with o + 64 ≤ n (the masked store with every lane on,
                // as `load8`).
                unsafe { _mm256_maskstore_ps(out.as_mut_ptr().wrapping_add(o + 8 * j), _mm256_set1_epi32(-1), *a) };
            }
        } else {
            let vectors = live.div_ceil(8);
            // SAFETY: AVX2 (this function's contract).
            let m: [__m256i; 8] = std::array::from_fn(|j| unsafe { mask8(live.saturating_sub(8 * j)) });
            for &(f, off) in taps {
                let fv = _mm256_set1_ps(f);
                let p = src.as_ptr().wrapping_add(off + o);
                for (j, a) in acc.iter_mut().enumerate().take(vectors) {
                    // SAFETY: unmasked lanes are src[off + o + 8j + l] with o + 8j + l < n, inside
                    // `src`; masked lanes are not read.
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(fv, unsafe { _mm256_maskload_ps(p.wrapping_add(8 * j), m[j]) }));
                }
            }
            for (j, a) in acc.iter().enumerate().take(vectors) {
                // SAFETY: unmasked lanes are out[o + 8j + l] with o + 8j + l < n.
                unsafe { _mm256_maskstore_ps(out.as_mut_ptr().wrapping_add(o + 8 * j), m[j], *a) };
            }
        }
        o += COLS;
    }
}

/// [`filter_sum`]'s vectors.
///
/// # Safety
/// AVX-512F is available and `off + out.len() ≤ src.len()` for every tap.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn filter_sum_tiles(out: &mut [f32], src: &[f32], taps: &[(f32, usize)]) {
    let n = out.len();
    let mut o = 0;
    while o < n {
        let m = masks((n - o).min(COLS));
        let mut acc = [_mm512_setzero_ps(); 4];
        for &(f, off) in taps {
            let fv = _mm512_set1_ps(f);
            let p = src.as_ptr().wrapping_add(off + o);
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: unmasked lanes are src[off + o + 16j + l] with o + 16j + l < n, inside
                // `src` (the caller's guarantee); masked lanes are not read.
                let v = unsafe { _mm512_maskz_loadu_ps(m[j], p.wrapping_add(16 * j)) };
                *a = _mm512_add_ps(*a, _mm512_mul_ps(fv, v));
            }
        }
        for (j, a) in acc.iter().enumerate() {
            // SAFETY: unmasked lanes are out[o + 16j + l] with o + 16j + l < n.
            unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().wrapping_add(o + 16 * j), m[j], *a) };
        }
        o += COLS;
    }
}

/// Pixels per weight-gradient chunk: the chunk's output gradient (all output channels) and
/// transposed input stay in L2 while every tile sweeps them.
const CHUNK: usize = 256;
/// Groups of chunks summed separately (then in order): work for up to this many threads.
const GROUPS: usize = 8;

/// `∂W[o, i, t] = Σ_{p < npix} dy[o · plane + p] · xt[(p + offsets[t]) · in_ch + i]` as
/// `[out_ch, in_ch, taps]`: `dy` holds at least `⌈out_ch / 6⌉ · 6` rows `plane` apart (rows past
/// `out_ch` zero), `xt` is the input in pixel-major order with
/// `xt.len() ≥ (npix + max(offsets)) · in_ch`. `None` where the tiles do not run.
#[allow(clippy::too_many_arguments)]
pub fn weight_grad(dy: &[f32], plane: usize, out_ch: usize, xt: &[f32], in_ch: usize, offsets: &[usize], npix: usize, threads: usize) -> Option<Vec<f32>> {
    weight_grad_as(isa()?, dy, plane, out_ch, xt, in_ch, offsets, npix, threads)
}

/// [`weight_grad`] as `isa` (`None` where the CPU lacks it).
#[allow(clippy::too_many_arguments)]
fn weight_grad_as(isa: Isa, dy: &[f32], plane: usize, out_ch: usize, xt: &[f32], in_ch: usize, offsets: &[usize], npix: usize, threads: usize) -> Option<Vec<f32>> {
    let taps = offsets.len();
    let blocks = out_ch.div_ceil(ROWS);
    let span = offsets.iter().max().copied().unwrap_or(0);
    let fits = npix <= plane && dy.len() >= (blocks * ROWS).saturating_sub(1) * plane + npix && xt.len() >= (npix + span) * in_ch;
    if !supported(isa) || !fits || in_ch == 0 || out_ch == 0 || taps == 0 {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let col_blocks = in_ch.div_ceil(COLS);
        let size = taps * blocks * ROWS * in_ch;
        // A fixed number of groups of consecutive chunks, each summed in order into its own
        // [tap][out rows][in] buffer, and the groups added in order: the same sums in the same
        // order whichever thread takes which group, so training stays bit-reproducible (a resumed
        // run equals an uninterrupted one).
        let chunks = npix.div_ceil(CHUNK);
        let groups = chunks.min(GROUPS);
        let sums: Vec<std::sync::Mutex<Vec<f32>>> = (0..groups).map(|_| std::sync::Mutex::new(Vec::new())).collect();
        par_jobs(groups, threads, |g| {
            let mut acc = vec![0f32; size];
            for chunk in g * chunks / groups..(g + 1) * chunks / groups {
                let p0 = chunk * CHUNK;
                let len = CHUNK.min(npix - p0);
                for (t, &off) in offsets.iter().enumerate() {
                    for cb in 0..col_blocks {
                        let i0 = cb * COLS;
                        let cols = COLS.min(in_ch - i0);
                        for b in 0..blocks {
                            let at = (t * blocks * ROWS + b * ROWS) * in_ch + i0;
                            // SAFETY: the CPU has `isa` (checked above); reads: dy rows
                            // b·6..b·6+6 (< ⌈out/6⌉·6 rows), columns p0..p0+len ≤ npix, and xt
                            // rows p0+off..p0+off+len < npix+span, columns i0..i0+cols ≤ in_ch
                            // (the length checks above); writes rows b·6.. of tap t, columns
                            // i0..i0+cols of this group's own `acc`.
                            unsafe { grad_tile(isa, dy.as_ptr().add(b * ROWS * plane + p0), plane, xt.as_ptr().add((p0 + off) * in_ch + i0), in_ch, len, cols, acc.as_mut_ptr().add(at)) };
                        }
                    }
                }
            }
            // A poisoned lock only means another group panicked; `par_jobs` re-raises that.
            *sums[g].lock().unwrap_or_else(|e| e.into_inner()) = acc;
        });
        let parts: Vec<Vec<f32>> = sums.into_iter().map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner())).collect();
        let mut dw = vec![0f32; out_ch * in_ch * taps];
        let dst = SharedMut(dw.as_mut_ptr());
        let parts = &parts;
        par_jobs(out_ch, threads, |o| {
            let dst = dst;
            for i in 0..in_ch {
                for t in 0..taps {
                    let at = (t * blocks * ROWS + o) * in_ch + i;
                    let v: f32 = parts.iter().map(|p| p[at]).sum();
                    // SAFETY: row o of dw (in·taps values), written by this job only.
                    unsafe { *dst.0.add((o * in_ch + i) * taps + t) = v };
                }
            }
        });
        Some(dw)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// One 6 × 64 tile of [`weight_grad`] over `len` pixels, added into `out` (rows `in_ch` apart),
/// as `isa`.
///
/// # Safety
/// The CPU has `isa`; `dy[r · plane + p]` and `xt[p · in_ch + c]` (r < 6, p < len,
/// c < cols) are readable; `out[r · in_ch + c]` is writable.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn grad_tile(isa: Isa, dy: *const f32, plane: usize, xt: *const f32, in_ch: usize, len: usize, cols: usize, out: *mut f32) {
    // SAFETY: the caller's guarantees.
    unsafe {
        match isa {
            Isa::Avx512 => grad_tile_512(dy, plane, xt, in_ch, len, cols, out),
            Isa::Avx2Fma => grad_tile_256(dy, plane, xt, in_ch, len, cols, out),
        }
    }
}

/// [`grad_tile`] in 6 × 16 quarters, the pixels once per quarter.
///
/// # Safety
/// As [`grad_tile`], with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn grad_tile_256(dy: *const f32, plane: usize, xt: *const f32, in_ch: usize, len: usize, cols: usize, out: *mut f32) {
    for q0 in (0..cols).step_by(QUARTER) {
        let live = QUARTER.min(cols - q0);
        let xt = xt.wrapping_add(q0);
        // SAFETY: the caller's guarantees (lanes past `live` are masked).
        let acc = unsafe { reduce8(live, len, |p| dy.wrapping_add(p), plane as isize, |p| xt.wrapping_add(p * in_ch)) };
        // SAFETY: AVX2 (this function's contract).
        let tile = unsafe { spilled8(&acc) };
        for (r, row) in tile.iter().enumerate() {
            // SAFETY: row r < 6, columns q0..q0+live ≤ cols (the caller's bounds).
            let dst = unsafe { std::slice::from_raw_parts_mut(out.wrapping_add(r * in_ch + q0), live) };
            dst.iter_mut().zip(row).for_each(|(d, v)| *d += v);
        }
    }
}

/// [`grad_tile`] as one 6 × 64 AVX-512 tile.
///
/// # Safety
/// As [`grad_tile`], with AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn grad_tile_512(dy: *const f32, plane: usize, xt: *const f32, in_ch: usize, len: usize, cols: usize, out: *mut f32) {
    let m = masks(cols);
    let mut acc = [[_mm512_setzero_ps(); 4]; ROWS];
    for p in 0..len {
        // SAFETY: the caller's guarantees.
        unsafe { step(&mut acc, dy.wrapping_add(p), plane as isize, xt.wrapping_add(p * in_ch), &m) };
    }
    for (r, row) in acc.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let at = out.wrapping_add(r * in_ch + 16 * j);
            // SAFETY: row r < 6, unmasked lanes are columns < cols (the caller's bounds).
            unsafe { _mm512_mask_storeu_ps(at, m[j], _mm512_add_ps(_mm512_maskz_loadu_ps(m[j], at), *v)) };
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic values in [-1, 1] (an xorshift sequence from `seed`), for the kernels' unit tests.
    pub(crate) fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// The instruction sets this CPU runs.
    fn isas() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2Fma].into_iter().filter(|&i| supported(i)).collect()
    }

    /// Every instruction set's result the same bits as the first's.
    fn same_bits(results: &[Vec<f32>], what: &str) {
        for r in results.iter().skip(1) {
            assert!(r.iter().zip(&results[0]).all(|(a, b)| a.to_bits() == b.to_bits()), "{what}: the instruction sets differ");
        }
    }

    #[test]
    fn filter_sum_vectors_equal_the_scalar_loop() {
        let src = values(400, 9);
        let taps: Vec<(f32, usize)> = values(7, 10).into_iter().zip([0usize, 3, 5, 9, 12, 20, 33]).collect();
        for n in [1usize, 7, 8, 9, 17, 63, 64, 65, 130, 300] {
            let mut want = vec![0f32; n];
            for &(f, off) in &taps {
                for (o, w) in want.iter_mut().enumerate() {
                    *w += f * src[off + o];
                }
            }
            let mut kinds = Vec::new();
            if supported(Isa::Avx512) {
                let mut got = vec![f32::NAN; n];
                // SAFETY: AVX-512F checked; every tap's run lies inside `src` (33 + 300 < 400).
                unsafe { filter_sum_tiles(&mut got, &src, &taps) };
                kinds.push(got);
            }
            if supported(Isa::Avx2Fma) {
                let mut got = vec![f32::NAN; n];
                // SAFETY: AVX2 checked; as above.
                unsafe { filter_sum_tiles_256(&mut got, &src, &taps) };
                kinds.push(got);
            }
            for got in kinds {
                assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "n {n}: {got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn conv_wide_matches_the_sum_on_ragged_shapes() {
        for (in_ch, out_ch, n, plane, offsets) in [(3usize, 7usize, 70usize, 90usize, vec![0usize, 1, 2, 10, 11, 12, 20, 21, 22]), (17, 13, 200, 230, vec![0, 1, 31]), (5, 1, 64, 64, vec![0]), (2, 6, 1, 1, vec![0])] {
            let span = offsets.iter().max().copied().unwrap_or(0);
            let src = values((in_ch - 1) * plane + span + n, 1);
            let w = values(out_ch * in_ch * offsets.len(), 2);
            let scale = values(out_ch, 3);
            let results: Vec<Vec<f32>> = isas()
                .into_iter()
                .map(|isa| {
                    let mut wide = vec![f32::NAN; out_ch * n];
                    assert!(conv_wide_as(isa, &src, plane, in_ch, &offsets, &w, out_ch, n, &scale, 2, &mut wide));
                    wide
                })
                .collect();
            same_bits(&results, "conv_wide");
            let Some(got) = results.first() else { return };
            for o in 0..out_ch {
                for p in 0..n {
                    let mut want = 0f64;
                    for i in 0..in_ch {
                        for (t, off) in offsets.iter().enumerate() {
                            want += w[(o * in_ch + i) * offsets.len() + t] as f64 * src[i * plane + off + p] as f64;
                        }
                    }
                    want *= scale[o] as f64;
                    assert!((got[o * n + p] as f64 - want).abs() < 1e-4, "{in_ch}->{out_ch} o {o} p {p}: {} vs {want}", got[o * n + p]);
                }
            }
        }
    }

    #[test]
    fn conv_wide_skips_zero_taps_without_changing_a_bit() {
        // A 3x3 kernel over 5 channels to 20 outputs (blocks of 6, the last of 2) with zero
        // weights: tap 4 for every output, tap 7 of channel 2 for the first block, taps 0..3 of
        // every channel for outputs 6..14 (the second block and part of the third), and all of
        // output 19. Each output is the FMA chain over every step in order: a zero step leaves
        // its sum as it was, so skipping it must give the same bits.
        let (in_ch, out_ch, n, plane) = (5usize, 20usize, 150usize, 170usize);
        let offsets = vec![0usize, 1, 2, 12, 13, 14, 24, 25, 26];
        let src = values((in_ch - 1) * plane + 26 + n, 4);
        let mut w = values(out_ch * in_ch * 9, 5);
        for o in 0..out_ch {
            for i in 0..in_ch {
                for t in 0..9 {
                    if t == 4 || (o < 6 && i == 2 && t == 7) || ((6..14).contains(&o) && t < 3) || o == 19 {
                        w[(o * in_ch + i) * 9 + t] = 0.0;
                    }
                }
            }
        }
        let mut want = vec![0f32; out_ch * n];
        for o in 0..out_ch {
            for p in 0..n {
                let mut acc = 0f32;
                for (t, off) in offsets.iter().enumerate() {
                    for i in 0..in_ch {
                        acc = w[(o * in_ch + i) * 9 + t].mul_add(src[i * plane + off + p], acc);
                    }
                }
                want[o * n + p] = acc;
            }
        }
        for isa in isas() {
            let mut wide = vec![f32::NAN; out_ch * n];
            assert!(conv_wide_as(isa, &src, plane, in_ch, &offsets, &w, out_ch, n, &[], 2, &mut wide));
            same_bits(&[want.clone(), wide], "zero taps skipped");
        }
    }

    #[test]
    fn weight_grad_matches_the_sum_on_ragged_shapes() {
        for (in_ch, out_ch, npix, plane, offsets) in [(3usize, 7usize, 600usize, 620usize, vec![0usize, 1, 2, 10, 11, 12, 20, 21, 22]), (70, 13, 300, 300, vec![0, 5]), (1, 1, 1, 1, vec![0])] {
            let rows = out_ch.div_ceil(ROWS) * ROWS;
            let mut dy = values(rows * plane, 4);
            dy[out_ch * plane..].fill(0.0);
            let span = offsets.iter().max().copied().unwrap_or(0);
            let xt = values((npix + span) * in_ch, 5);
            let results: Vec<Vec<f32>> = isas().into_iter().map(|isa| weight_grad_as(isa, &dy, plane, out_ch, &xt, in_ch, &offsets, npix, 2).expect("fits")).collect();
            same_bits(&results, "weight_grad");
            let Some(got) = results.first() else { return };
            for o in 0..out_ch {
                for i in 0..in_ch {
                    for (t, off) in offsets.iter().enumerate() {
                        let want: f64 = (0..npix).map(|p| dy[o * plane + p] as f64 * xt[(p + off) * in_ch + i] as f64).sum();
                        let g = got[(o * in_ch + i) * offsets.len() + t] as f64;
                        assert!((g - want).abs() < 1e-3, "{in_ch}->{out_ch} o {o} i {i} t {t}: {g} vs {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn gemm_matches_the_sum_with_strides_tails_and_accumulation() {
        for (m, n, k, accumulate, row_major) in [(13usize, 70usize, 9usize, false, false), (6, 64, 1, true, false), (1, 3, 300, false, false), (20, 129, 17, true, false), (13, 70, 9, false, true), (20, 129, 300, true, true), (5, 3, 7, false, true)] {
            // a transposed in memory (row stride 1, column stride m+2: packed) or in rows k+3
            // apart (read in place, but for a last block of fewer than six rows), b and dst
            // with wide rows.
            let (a_rs, a_cs) = if row_major { (k + 3, 1) } else { (1, m + 2) };
            let (b_rs, d_rs) = (n + 5, n + 3);
            let a = values(m.max(k) * (m.max(k) + 3), 6);
            let b = values(k * b_rs, 7);
            let before = values(m * d_rs, 8);
            let results: Vec<Vec<f32>> = isas()
                .into_iter()
                .map(|isa| {
                    let mut d = before.clone();
                    // SAFETY: every view lies inside its vector.
                    assert!(unsafe { gemm_as(isa, (m, n, k), d.as_mut_ptr(), d_rs as isize, accumulate, (a.as_ptr(), a_rs as isize, a_cs as isize), (b.as_ptr(), b_rs as isize)) });
                    d
                })
                .collect();
            same_bits(&results, "gemm");
            let Some(d) = results.first() else { return };
            for r in 0..m {
                for c in 0..d_rs {
                    let got = d[r * d_rs + c] as f64;
                    if c >= n {
                        assert_eq!(got, before[r * d_rs + c] as f64, "outside the product");
                        continue;
                    }
                    let mut want: f64 = (0..k).map(|i| a[r * a_rs + i * a_cs] as f64 * b[i * b_rs + c] as f64).sum();
                    if accumulate {
                        want += before[r * d_rs + c] as f64;
                    }
                    assert!((got - want).abs() < 1e-4, "{m}x{n}x{k} ({r}, {c}): {got} vs {want}");
                }
            }
        }
    }
}
