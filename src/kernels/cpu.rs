//! The fast CPU path for StyleGAN3's hot op, `filtered_lrelu`, on plain slices.
//!
//! The reference composes zero insertion, padding, a depthwise convolution and a strided slice,
//! materialising the whole up-sampled tensor (for a 256² StyleGAN3 the widest layer is hundreds of
//! MB). Here each `(n, c)` plane is processed on its own, in parallel over planes: a polyphase
//! up-sampling pass along x then y (skipping the inserted zeros), bias + leaky ReLU + gain + clamp,
//! and a strided down-sampling pass (separable, or 2-D for config R's radial filters). Every pass
//! is a list of (tap, contiguous source row) pairs summed by `filter_sum`, which runs as AVX2 code
//! where the CPU has it (`kernels::simd`). Numbers are the reference's up to float rounding; the
//! parity tests hold them to 1e-5. The module also holds the CPU convolution (`conv2d`).

use std::sync::atomic::{AtomicUsize, Ordering};

/// The FIR taps of one stage, already flipped (true convolution) and scaled.
#[derive(Clone, Debug)]
pub enum Taps {
    Separable(Vec<f32>),
    /// Square 2-D kernel, row-major.
    Full { n: usize, k: Vec<f32> },
}

/// Parameters of one `filtered_lrelu` call.
#[derive(Clone, Debug)]
pub struct FilteredLrelu {
    pub up: usize,
    pub down: usize,
    /// `[x0, x1, y0, y1]`, negative = crop.
    pub padding: [i64; 4],
    pub gain: f32,
    pub slope: f32,
    pub clamp: Option<f32>,
    /// Up-sampling filter (`None` = identity); must be separable.
    pub fu: Option<Vec<f32>>,
    pub fd: Option<Taps>,
}

fn flipped(v: &[f32], scale: f32) -> Vec<f32> {
    v.iter().rev().map(|x| x * scale).collect()
}

impl FilteredLrelu {
    /// Output size along one axis for input `len`.
    fn sizes(&self, len: usize, p0: i64, p1: i64) -> (usize, usize) {
        let tu = self.fu.as_ref().map_or(1, Vec::len) as i64;
        let td = match &self.fd {
            None => 1,
            Some(Taps::Separable(v)) => v.len() as i64,
            Some(Taps::Full { n, .. }) => *n as i64,
        };
        let mid = (len * self.up) as i64 + p0 + p1 - (tu - 1);
        let out = (mid - (td - 1) + self.down as i64 - 1).div_euclid(self.down as i64);
        (mid.max(0) as usize, out.max(0) as usize)
    }

    /// Output `(height, width)` for an input plane of `h x w`.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        let [x0, x1, y0, y1] = self.padding;
        (self.sizes(h, y0, y1).1, self.sizes(w, x0, x1).1)
    }

    /// Runs on `x [planes, h, w]` with one bias per plane (`bias[plane % channels]`).
    pub fn run(&self, x: &[f32], planes: usize, h: usize, w: usize, bias: &[f32]) -> Vec<f32> {
        let (oh, ow) = self.output_size(h, w);
        let mut out = vec![0f32; planes * oh * ow];
        if oh == 0 || ow == 0 || planes == 0 {
            return out;
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        par_planes(&mut out, oh * ow, threads, Scratch::default, |scratch, p, dst| {
            let b = if bias.is_empty() { 0.0 } else { bias[p % bias.len()] };
            self.plane(&x[p * h * w..(p + 1) * h * w], h, w, b, dst, scratch);
        });
        out
    }

    fn plane(&self, x: &[f32], h: usize, w: usize, bias: f32, dst: &mut [f32], s: &mut Scratch) {
        let [x0, x1, y0, y1] = self.padding;
        let (mh, _) = self.sizes(h, y0, y1);
        let (mw, _) = self.sizes(w, x0, x1);
        let up = self.up;
        // Identity up filter = one tap of weight 1 (gain up² spread as up per axis).
        let fu = match &self.fu {
            Some(f) => flipped(f, up as f32),
            None => vec![(up * up) as f32],
        };
        let fu_y = match &self.fu {
            Some(f) => flipped(f, up as f32),
            None => vec![1.0],
        };
        // Pass 1: up-sample rows along x: [h, mw]. (Every pass overwrites all of its output, so
        // the scratch buffers are only grown, never cleared.)
        grow(&mut s.a, h * mw);
        for r in 0..h {
            let src = &x[r * w..(r + 1) * w];
            upsample_line(src, bias, up, x0, &fu, &mut s.a[r * mw..(r + 1) * mw], &mut s.line, &mut s.phase_out);
        }
        // Pass 2: up-sample columns along y: [mh, mw], then the activation.
        grow(&mut s.b, mh * mw);
        upsample_cols(&s.a, h, mw, up, y0, &fu_y, &mut s.b, mh);
        let (gain, slope) = (self.gain, self.slope);
        let clamp = self.clamp.unwrap_or(f32::INFINITY);
        activate(&mut s.b[..mh * mw], gain, slope, clamp);
        // Pass 3: down-sample.
        let (oh, ow) = self.output_size(h, w);
        let d = self.down;
        match &self.fd {
            None => {
                for oy in 0..oh {
                    for ox in 0..ow {
                        dst[oy * ow + ox] = s.b[oy * d * mw + ox * d];
                    }
                }
            }
            Some(Taps::Separable(f)) => {
                let f = flipped(f, 1.0);
                grow(&mut s.a, mh * ow);
                // Tap k of output x reads phase k mod d at k div d: offsets into a deinterleaved
                // row (the same for every row; computed once, rows are short).
                let len = deinterleave_rows(&s.b[..mh * mw], mw, d, &mut s.c);
                let offs: Vec<usize> = (0..f.len()).map(|k| (k % d) * len + k / d).collect();
                let mut taps: Vec<(f32, &[f32])> = Vec::with_capacity(f.len());
                for r in 0..mh {
                    let row = &s.c[r * d * len..(r + 1) * d * len];
                    taps.clear();
                    taps.extend(f.iter().zip(&offs).map(|(fk, off)| (*fk, &row[*off..][..ow])));
                    filter_sum(&mut s.a[r * ow..(r + 1) * ow], &taps);
                }
                for oy in 0..oh {
                    let dst_row = &mut dst[oy * ow..(oy + 1) * ow];
                    taps.clear();
                    taps.extend(f.iter().enumerate().map(|(k, fk)| (*fk, &s.a[(oy * d + k) * ow..][..ow])));
                    filter_sum(dst_row, &taps);
                }
            }
            Some(Taps::Full { n, k }) => {
                let f = flipped(k, 1.0); // flipping a row-major square kernel flips both axes
                let n = *n;
                // Deinterleave every row once; then each tap is a contiguous multiply-add.
                let len = deinterleave_rows(&s.b[..mh * mw], mw, d, &mut s.a);
                let row_len = d * len;
                // Tap (ky, kx) of output row oy reads deinterleaved row oy·d + ky, phase kx mod d,
                // at kx div d: offsets from the output row's first input row, computed once
                // (divisions per tap and row cost as much as the short rows' arithmetic).
                let offs: Vec<usize> = (0..n * n).map(|t| (t / n) * row_len + (t % n % d) * len + t % n / d).collect();
                let mut taps: Vec<(f32, &[f32])> = Vec::with_capacity(n * n);
                for oy in 0..oh {
                    let out = &mut dst[oy * ow..(oy + 1) * ow];
                    let rows = &s.a[oy * d * row_len..];
                    taps.clear();
                    taps.extend(f.iter().zip(&offs).map(|(fk, off)| (*fk, &rows[*off..][..ow])));
                    filter_sum(out, &taps);
                }
            }
        }
    }
}

multiversion! {
    /// `out[o] = Σ f · src[o]` over the `(f, src)` pairs (zero for none), four taps per sweep
    /// (the last one to three in one more), so `out` is loaded and stored a quarter as often;
    /// each sweep vectorises over `o`.
    fn filter_sum(out: &mut [f32], taps: &[(f32, &[f32])]) {
        let n = out.len();
        let mut first = true;
        // One sweep over the named taps: `out = Σ` on the first, `out += Σ` after.
        macro_rules! sweep {
            ($f0:ident * $s0:ident $(, $f:ident * $s:ident)*) => {{
                let $s0 = &$s0[..n];
                $(let $s = &$s[..n];)*
                if first {
                    for i in 0..n {
                        out[i] = $f0 * $s0[i] $(+ $f * $s[i])*;
                    }
                } else {
                    for i in 0..n {
                        out[i] += $f0 * $s0[i] $(+ $f * $s[i])*;
                    }
                }
                first = false;
            }};
        }
        let mut quads = taps.chunks_exact(4);
        for q in &mut quads {
            let [(f0, a), (f1, b), (f2, c), (f3, d)] = [q[0], q[1], q[2], q[3]];
            sweep!(f0 * a, f1 * b, f2 * c, f3 * d);
        }
        match *quads.remainder() {
            [(f0, a)] => sweep!(f0 * a),
            [(f0, a), (f1, b)] => sweep!(f0 * a, f1 * b),
            [(f0, a), (f1, b), (f2, c)] => sweep!(f0 * a, f1 * b, f2 * c),
            _ => {}
        }
        if first {
            out.fill(0.0);
        }
    }
}

/// Splits `buf` into planes of `plane` values and hands them out one at a time to `threads`
/// workers (the calling thread is one of them), which call `f(state, index, plane)` for each,
/// with one `init()` state (scratch buffers) per worker. Each plane is written by one worker, so
/// the result does not depend on which. Handing planes out as workers come free, rather than a
/// fixed share each, keeps both CPUs busy when one runs slower (another process, a descheduled
/// virtual CPU): with fixed halves, one of the two threads ran alone for 18% of a 256² image's
/// time on the 2-vCPU machines here.
pub(crate) fn par_planes<S>(buf: &mut [f32], plane: usize, threads: usize, init: impl Fn() -> S + Sync, f: impl Fn(&mut S, usize, &mut [f32]) + Sync) {
    if plane == 0 || buf.is_empty() {
        return;
    }
    let helpers = threads.clamp(1, buf.len() / plane) - 1;
    let work = std::sync::Mutex::new(buf.chunks_mut(plane).enumerate());
    let worker = || {
        let mut state = init();
        loop {
            // A panicking worker poisons the lock; the scope re-raises its panic afterwards.
            let next = work.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).next();
            let Some((index, dst)) = next else { break };
            f(&mut state, index, dst);
        }
    };
    std::thread::scope(|s| {
        for _ in 0..helpers {
            s.spawn(worker);
        }
        worker();
    });
}

/// Runs `job(j)` for every `j` in `0..jobs`, each once, on up to `threads` workers (the calling
/// thread is one), handing the next index to whichever worker comes free, as [`par_planes`] hands
/// out planes.
pub(crate) fn par_jobs(jobs: usize, threads: usize, job: impl Fn(usize) + Sync) {
    let next = AtomicUsize::new(0);
    let worker = || loop {
        let j = next.fetch_add(1, Ordering::Relaxed);
        if j >= jobs {
            break;
        }
        job(j);
    };
    std::thread::scope(|s| {
        for _ in 1..threads.clamp(1, jobs.max(1)) {
            s.spawn(worker);
        }
        worker();
    });
}

/// A raw pointer handed to [`par_jobs`] workers that write disjoint blocks of one buffer (the
/// GEMMs' outputs).
#[derive(Clone, Copy)]
pub(crate) struct SharedMut(pub(crate) *mut f32);
// SAFETY: only used by jobs that each write elements no other job reads or writes, inside a
// scope that ends before the buffer is used again.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

/// Writes every element of `plane` (`wp` wide): the `h x w` image `src` times `scale` at offset
/// `(pad, pad)`, zeros around it.
pub(crate) fn pad_plane(src: &[f32], w: usize, pad: usize, wp: usize, scale: f32, plane: &mut [f32]) {
    let h = src.len() / w.max(1);
    for (r, row) in plane.chunks_mut(wp).enumerate() {
        if r < pad || r >= pad + h {
            row.fill(0.0);
            continue;
        }
        row[..pad].fill(0.0);
        for (d, v) in row[pad..pad + w].iter_mut().zip(&src[(r - pad) * w..(r - pad + 1) * w]) {
            *d = v * scale;
        }
        row[pad + w..].fill(0.0);
    }
}

/// Makes `v` at least `n` long; existing values are kept (callers overwrite what they use).
pub(crate) fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

multiversion! {
    /// Leaky ReLU with gain and clamp, in place: `clamp(gain · (v < 0 ? slope·v : v), ±clamp)`.
    fn activate(v: &mut [f32], gain: f32, slope: f32, clamp: f32) {
        for v in v.iter_mut() {
            let a = if *v < 0.0 { *v * slope } else { *v };
            *v = (a * gain).clamp(-clamp, clamp);
        }
    }
}

/// Splits each `w`-long row of `src` into its `d` phases, written one row after another into
/// `dst` (grown as needed): row `r`'s `dst[r·d·len + φ·len + m] = row[m·d + φ]`, zero past the
/// row's end. Returns `len = ⌈w / d⌉`.
fn deinterleave_rows(src: &[f32], w: usize, d: usize, dst: &mut Vec<f32>) -> usize {
    let len = w.div_ceil(d);
    if len == 0 {
        return 0;
    }
    let rows = src.len() / w;
    grow(dst, rows * d * len);
    for (row, out) in src.chunks_exact(w).zip(dst.chunks_exact_mut(d * len)) {
        deinterleave(row, d, out);
    }
    len
}

multiversion! {
    /// One row of [`deinterleave_rows`]: `out` holds the `d` phases, `len = out.len() / d` each.
    fn deinterleave(row: &[f32], d: usize, out: &mut [f32]) {
        let len = out.len() / d;
        if d == 2 {
            // Every official down-sampling is by 2: pairs split into two halves (vector shuffles).
            let (even, odd) = out.split_at_mut(len);
            for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(row.chunks_exact(2)) {
                *e = pair[0];
                *o = pair[1];
            }
            if row.len() % 2 == 1 {
                even[len - 1] = row[row.len() - 1];
                odd[len - 1] = 0.0;
            }
            return;
        }
        for (phase, dst) in out.chunks_exact_mut(len).enumerate() {
            let mut values = row.iter().skip(phase).step_by(d);
            for o in dst.iter_mut() {
                *o = values.next().copied().unwrap_or(0.0);
            }
        }
    }
}

#[derive(Default)]
struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    /// Deinterleaved rows of the up-sampled plane (separable down-sampling).
    c: Vec<f32>,
    line: Vec<f32>,
    phase_out: Vec<f32>,
}

multiversion! {
    /// `dst[i] = Σ_k f[k] · zp[i + k]` where `zp` is `src + bias` zero-inserted by `up` and shifted by
    /// `p0`. Polyphase: outputs `i ≡ φ (mod up)` use taps `k ≡ k0(φ)` only, over consecutive source
    /// samples, so each (phase, tap) pair is one contiguous multiply-add over a zero-margined copy.
    fn upsample_line(src: &[f32], bias: f32, up: usize, p0: i64, f: &[f32], dst: &mut [f32], line: &mut Vec<f32>, phase_out: &mut Vec<f32>) {
        let n = src.len();
        let t = f.len();
        let margin = t + dst.len() / up + 2;
        line.clear();
        line.resize(n + 2 * margin, 0.0);
        for (d, s) in line[margin..margin + n].iter_mut().zip(src) {
            *d = s + bias;
        }
        let up_i = up as i64;
        let mut taps: Vec<(f32, &[f32])> = Vec::with_capacity(t.div_ceil(up));
        for phase in 0..up.min(dst.len()) {
            let start = phase as i64 - p0;
            let k0 = (-start).rem_euclid(up_i);
            let j0 = (start + k0).div_euclid(up_i); // source index of tap k0 for the first output of this phase
            let count = (dst.len() - phase).div_ceil(up);
            taps.clear();
            for k in (k0 as usize..t).step_by(up) {
                let off = j0 + (k as i64 - k0) / up_i + margin as i64;
                if off >= 0 && (off as usize) + count <= line.len() {
                    taps.push((f[k], &line[off as usize..off as usize + count]));
                }
            }
            // This phase's outputs are contiguous in `phase_out`, then interleaved into `dst`.
            grow(phase_out, count);
            filter_sum(&mut phase_out[..count], &taps);
            for (o, v) in dst[phase..].iter_mut().step_by(up).zip(&phase_out[..count]) {
                *o = *v;
            }
        }
    }
}

/// Column version of [`upsample_line`] on a `[h, w]` image, written as row operations for speed.
#[allow(clippy::too_many_arguments)]
fn upsample_cols(src: &[f32], h: usize, w: usize, up: usize, p0: i64, f: &[f32], dst: &mut [f32], mh: usize) {
    let up_i = up as i64;
    let t = f.len() as i64;
    let mut taps: Vec<(f32, &[f32])> = Vec::with_capacity(f.len());
    for i in 0..mh {
        let row_out = &mut dst[i * w..(i + 1) * w];
        let start = i as i64 - p0;
        let mut k = (-start).rem_euclid(up_i);
        taps.clear();
        while k < t {
            let j = (start + k) / up_i;
            if j >= h as i64 {
                break;
            }
            if j >= 0 {
                taps.push((f[k as usize], &src[j as usize * w..(j as usize + 1) * w]));
            }
            k += up_i;
        }
        filter_sum(row_out, &taps);
    }
}

thread_local! {
    /// `conv2d_direct`'s padded input, kept between calls (only grown; every element used is
    /// written first).
    static DIRECT_SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `dst = lhs · rhs` (`[m, k] x [k, n]`; `dst +=` when `accumulate`) on the calling thread
/// through the gemm crate, every matrix given by its first element and `(row, column)` strides in
/// elements.
///
/// # Safety
/// Every element the three views address lies inside a live buffer, and no other thread reads or
/// writes `dst`'s elements meanwhile.
pub(crate) unsafe fn gemm_strided(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    (dst_rs, dst_cs): (isize, isize),
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (*const f32, isize, isize),
    (rhs, rhs_rs, rhs_cs): (*const f32, isize, isize),
) {
    // SAFETY: the caller's guarantees are gemm's; alpha (the old dst's factor) is only read when
    // `accumulate`, beta = 1 scales the product, no conjugation, one thread.
    unsafe { gemm::gemm(m, n, k, dst, dst_cs, dst_rs, accumulate, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, 1.0, 1.0, false, false, false, gemm::Parallelism::None) }
}

/// Per-channel factors folded into a convolution's input and output:
/// `out[o] = output[o] · Σ_i w[o, i] ⋆ (input[i] · x[i])`, which is the convolution with the
/// weights `output[o] · input[i] · w[o, i]`. StyleGAN's modulation and demodulation are such
/// factors: applied to the activations (on the copies the kernels make anyway) they leave the
/// stored weights untouched, so nothing `[out, in, k, k]`-sized is built per image. An empty
/// slice means all ones.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChannelScales<'a> {
    pub input: &'a [f32],
    pub output: &'a [f32],
}

impl ChannelScales<'_> {
    pub fn input(&self, c: usize) -> f32 {
        self.input.get(c).copied().unwrap_or(1.0)
    }

    pub fn output(&self, o: usize) -> f32 {
        self.output.get(o).copied().unwrap_or(1.0)
    }
}

/// `out[o, y, x] = Σ_{i, ky, kx} w[o, i, ky, kx] · xpad[i, y + ky, x + kx]` (correlation, zero
/// padding `pad` on every side, `scales` folded in) for one image: Winograd F(6x6, 3x3)
/// ([`crate::kernels::winograd`]) for 3x3 kernels with enough channels to amortise its
/// transforms, else [`conv2d_direct`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d(x: &[f32], in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, k: usize, pad: usize, scales: ChannelScales) -> (Vec<f32>, usize, usize) {
    if k == 3 && in_ch >= 16 && out_ch >= 16 {
        return crate::kernels::winograd::conv3x3(x, in_ch, h, w, weight, out_ch, pad, scales);
    }
    conv2d_direct(x, in_ch, h, w, weight, out_ch, k, pad, scales)
}

/// [`conv2d`] as `k²` GEMMs over shifted views of the padded input: no im2col buffer. Output
/// rows are computed on the padded width and cropped. Blocks of output columns are jobs for the
/// threads ([`par_jobs`]).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_direct(x: &[f32], in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, k: usize, pad: usize, scales: ChannelScales) -> (Vec<f32>, usize, usize) {
    let (hp, wp) = (h + 2 * pad, w + 2 * pad);
    let (ho, wo) = ((hp + 1).saturating_sub(k), (wp + 1).saturating_sub(k));
    if ho == 0 || wo == 0 || out_ch == 0 || in_ch == 0 {
        return (vec![0.0; out_ch * ho * wo], ho, wo);
    }
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let n = ho * wp;
    let kk = k * k;
    // The wide output `[out_ch, n]`: every element is written by the jobs below (the first tap
    // of each overwrites, later taps accumulate), so it is not zero-filled first.
    let mut wide: Vec<f32> = Vec::with_capacity(out_ch * n);
    let dst = SharedMut(wide.as_mut_ptr());
    DIRECT_SCRATCH.with(|cell| {
        let mut xp = cell.borrow_mut();
        // Padded input (scaled per channel) on the threads, plus k zeros of slack so the last
        // channel's shifted views stay in bounds.
        let len = in_ch * hp * wp;
        grow(&mut xp, len + k);
        xp[len..len + k].fill(0.0);
        par_planes(&mut xp[..len], hp * wp, threads, || (), |_, c, plane| pad_plane(&x[c * h * w..(c + 1) * h * w], w, pad, wp, scales.input(c), plane));
        // Jobs are blocks of output columns (pixels), each through every tap, then its output
        // scales.
        let xp = &xp[..len + k];
        let block = n.div_ceil(4 * threads).max(256);
        par_jobs(n.div_ceil(block), threads, |j| {
            let dst = dst;
            let c0 = j * block;
            let cols = block.min(n - c0);
            for tap in 0..kk {
                let (ky, kx) = (tap / k, tap % k);
                // SAFETY: every pointer/stride pair addresses memory inside its buffer: lhs is
                // the [out, in] slice of the [out, in, k, k] weight at offset `tap`; rhs has
                // `in_ch` rows, columns c0..c0+cols of the view starting at ky*wp+kx in `xp`,
                // whose last read ends at (in_ch-1)*hp*wp + ky*wp + kx + n - 1 < xp.len(); dst is
                // columns c0..c0+cols of the [out_ch, n] buffer `wide` (capacity out_ch·n),
                // written by this job only, and not read by the first tap.
                unsafe {
                    gemm_strided(
                        (out_ch, cols, in_ch),
                        dst.0.add(c0),
                        (n as isize, 1),
                        tap > 0,
                        (weight.as_ptr().add(tap), (in_ch * kk) as isize, kk as isize),
                        (xp.as_ptr().add(ky * wp + kx + c0), (hp * wp) as isize, 1),
                    );
                }
            }
            if !scales.output.is_empty() {
                for o in 0..out_ch {
                    // SAFETY: columns c0..c0+cols of row o, initialised above by this job, which
                    // no other job touches.
                    let row = unsafe { std::slice::from_raw_parts_mut(dst.0.add(o * n + c0), cols) };
                    let scale = scales.output(o);
                    row.iter_mut().for_each(|v| *v *= scale);
                }
            }
        });
    });
    // SAFETY: the jobs covered every column 0..n of every row, so all out_ch·n elements are
    // initialised (a panicking job would have propagated out of the scope before this point).
    unsafe { wide.set_len(out_ch * n) };
    if wo == wp {
        return (wide, ho, wo);
    }
    let mut out = vec![0f32; out_ch * ho * wo];
    for (dst, src) in out.chunks_mut(wo).zip(wide.chunks(wp)) {
        dst.copy_from_slice(&src[..wo]);
    }
    (out, ho, wo)
}
