//! The fast CPU path for StyleGAN3's hot op, `filtered_lrelu`, on plain slices.
//!
//! The reference composes zero insertion, padding, a depthwise convolution and a strided slice,
//! materialising the whole up-sampled tensor (for a 256² StyleGAN3 the widest layer is hundreds of
//! MB). Here each `(n, c)` plane is processed on its own, in parallel over planes: a polyphase
//! up-sampling pass along x (skipping the inserted zeros, rows kept phase-major), then a row at a
//! time the up-sampling along y, bias + leaky ReLU + gain + clamp, and the strided down-sampling
//! (separable, or 2-D for config R's radial filters), so the rows in flight stay in cache. Every
//! pass is a list of (tap, contiguous run of a source buffer) pairs summed by `filter_sum`, which
//! runs as AVX2 code where the CPU has it (`kernels::simd`). Numbers are the reference's up to
//! float rounding; the parity tests hold them to 1e-5. The module also holds the CPU convolution
//! (`conv2d`).

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
        let threads = threads();
        par_planes(&mut out, oh * ow, threads, Scratch::default, |scratch, p, dst| {
            let b = if bias.is_empty() { 0.0 } else { bias[p % bias.len()] };
            self.plane(&x[p * h * w..(p + 1) * h * w], h, w, b, dst, scratch);
        });
        out
    }

    /// One `h x w` plane of [`run`](Self::run) into `dst` (`output_size` values, every one
    /// written), with the worker's scratch buffers.
    pub(crate) fn plane(&self, x: &[f32], h: usize, w: usize, bias: f32, dst: &mut [f32], s: &mut Scratch) {
        let [x0, x1, y0, y1] = self.padding;
        let (mh, _) = self.sizes(h, y0, y1);
        let (mw, _) = self.sizes(w, x0, x1);
        let (oh, ow) = self.output_size(h, w);
        let (up, d) = (self.up, self.down);
        // Identity up filter = one tap of weight 1 (gain up² spread as up per axis).
        let fu = match &self.fu {
            Some(f) => flipped(f, up as f32),
            None => vec![(up * up) as f32],
        };
        let fu_y = match &self.fu {
            Some(f) => flipped(f, up as f32),
            None => vec![1.0],
        };
        // Up-sampled rows are kept phase-major, as the polyphase pass 1 computes them: with `p`
        // phases, position i lies at (i mod p)·cnt + i div p. p = up when the down-sampling
        // factor divides it (every official layer): then each down-sampling tap reads a
        // contiguous run of every phase too. Else p = 1 (natural order), deinterleaved by d
        // before down-sampling. Passes along y treat columns alike, whatever their order.
        let p = if up % d == 0 { up } else { 1 };
        let cnt = mw.div_ceil(p);
        let row = p * cnt;

        // Pass 1: up-sample rows along x: [h, row]. (Every pass overwrites all of its output,
        // so the scratch buffers are only grown, never cleared.)
        grow(&mut s.a, h * row);
        for r in 0..h {
            let src = &x[r * w..(r + 1) * w];
            upsample_line(src, bias, up, x0, &fu, mw, p, &mut s.a[r * row..(r + 1) * row], &mut s.line, &mut s.phase_out, &mut s.taps);
        }

        // Passes 2 and 3 a row at a time: up-sampled row r (along y) and the activation, the
        // down-sampling along x, and each output row as soon as the rows it reads exist. The rows
        // in flight stay in the core's caches; a whole up-sampled plane (1.3 MB for a 256²
        // network's widest layers) did not, and every pass waited on loads.
        let (gain, slope) = (self.gain, self.slope);
        let clamp = self.clamp.unwrap_or(f32::INFINITY);
        let up_row = |a: &[f32], r: usize, out: &mut [f32], taps: &mut Vec<(f32, usize)>| {
            upsample_row(a, h, row, up, y0, &fu_y, r, out, taps);
            activate(out, gain, slope, clamp);
        };
        // The layout down-sampling reads: (phases, phase length); phases is a multiple of d.
        let (dp, dcnt) = if p % d == 0 { (p, cnt) } else { (d, mw.div_ceil(d)) };
        // Down-sampled rows are phase-major too, with q = dp / d phases of `oq`: output x =
        // q·m + ψ is tap k's sum over up-sampled position d·ψ + k + dp·m, a contiguous run of
        // phase (d·ψ + k) mod dp.
        let q = dp / d;
        let oq = ow.div_ceil(q);
        let tap_at = |psi: usize, k: usize| ((d * psi + k) % dp) * dcnt + (d * psi + k) / dp;
        grow(&mut s.b, row.max(dp * dcnt));
        grow(&mut s.phase_out, q * oq);
        match &self.fd {
            None => {
                for oy in 0..oh {
                    up_row(&s.a, oy * d, &mut s.b[..row], &mut s.taps);
                    let out = &mut dst[oy * ow..(oy + 1) * ow];
                    if d == 1 {
                        // The up-sampled row itself (the backward's recomputed pre-activation).
                        interleave(&s.b[..row], p, out);
                        continue;
                    }
                    for (ox, o) in out.iter_mut().enumerate() {
                        let i = ox * d;
                        *o = s.b[(i % p) * cnt + i / p];
                    }
                }
            }
            Some(Taps::Separable(f)) => {
                let f = flipped(f, 1.0);
                let x_taps: Vec<Vec<(f32, usize)>> = (0..q).map(|psi| f.iter().enumerate().map(|(k, fk)| (*fk, tap_at(psi, k))).collect()).collect();
                // Tap k of output row oy reads down-sampled row oy·d + k.
                let y_taps: Vec<(f32, usize)> = f.iter().enumerate().map(|(k, fk)| (*fk, k * q * oq)).collect();
                grow(&mut s.c, mh * q * oq);
                grow(&mut s.line, dp * dcnt);
                let mut oy = 0;
                for r in 0..mh {
                    up_row(&s.a, r, &mut s.b[..row], &mut s.taps);
                    let src = if p % d == 0 {
                        &s.b[..row]
                    } else {
                        deinterleave(&s.b[..mw], d, &mut s.line[..dp * dcnt]);
                        &s.line[..dp * dcnt]
                    };
                    phase_sums(&mut s.c[r * q * oq..(r + 1) * q * oq], src, &x_taps, ow);
                    // Output rows whose last tap row is r.
                    while oy < oh && oy * d + f.len() == r + 1 {
                        let rows = &s.c[oy * d * q * oq..];
                        let out = &mut dst[oy * ow..(oy + 1) * ow];
                        if q == 1 {
                            filter_sum(out, rows, &y_taps);
                        } else {
                            filter_sum(&mut s.phase_out[..q * oq], rows, &y_taps);
                            interleave(&s.phase_out[..q * oq], q, out);
                        }
                        oy += 1;
                    }
                }
            }
            Some(Taps::Full { n, k }) => {
                let f = flipped(k, 1.0); // flipping a row-major square kernel flips both axes
                let n = *n;
                let row_len = dp * dcnt;
                // Radial filters are symmetric top to bottom: rows ky and n-1-ky have the same
                // taps, so the two input rows are added first ("folded") and the taps run over
                // ⌈n/2⌉ rows, half the multiply-adds of the 12x12 filters of config R. Exact
                // equality is checked; other filters run unfolded.
                let mirrored = (0..n / 2).all(|ky| f[ky * n..(ky + 1) * n] == f[(n - 1 - ky) * n..(n - ky) * n]);
                let kept = if mirrored { n.div_ceil(2) } else { n };
                // Tap (ky, kx) of output row oy reads (folded) row ky of its window: offsets into
                // that window, per output phase, computed once.
                let taps: Vec<Vec<(f32, usize)>> = (0..q).map(|psi| f[..kept * n].iter().enumerate().map(|(t, ft)| (*ft, (t / n) * row_len + tap_at(psi, t % n))).collect()).collect();
                grow(&mut s.c, mh * row_len);
                grow(&mut s.line, kept * row_len);
                let mut oy = 0;
                for r in 0..mh {
                    let dst_row = &mut s.c[r * row_len..(r + 1) * row_len];
                    if p % d == 0 {
                        up_row(&s.a, r, dst_row, &mut s.taps);
                    } else {
                        up_row(&s.a, r, &mut s.b[..row], &mut s.taps);
                        deinterleave(&s.b[..mw], d, dst_row);
                    }
                    while oy < oh && oy * d + n == r + 1 {
                        let window = &s.c[oy * d * row_len..(oy * d + n) * row_len];
                        let rows = if mirrored {
                            fold_rows(window, n, row_len, &mut s.line[..kept * row_len]);
                            &s.line[..kept * row_len]
                        } else {
                            window
                        };
                        let out = &mut dst[oy * ow..(oy + 1) * ow];
                        if q == 1 {
                            phase_sums(out, rows, &taps, ow);
                        } else {
                            phase_sums(&mut s.phase_out[..q * oq], rows, &taps, ow);
                            interleave(&s.phase_out[..q * oq], q, out);
                        }
                        oy += 1;
                    }
                }
            }
        }
    }
}

multiversion! {
    /// `out` row ky = window rows ky + (n-1-ky) for ky < n/2, and the middle row itself when n is
    /// odd (`⌈n/2⌉` rows of `len`).
    fn fold_rows(window: &[f32], n: usize, len: usize, out: &mut [f32]) {
        for (ky, dst) in out.chunks_exact_mut(len).enumerate() {
            let top = &window[ky * len..(ky + 1) * len];
            if ky == n - 1 - ky {
                dst.copy_from_slice(top);
                continue;
            }
            let bottom = &window[(n - 1 - ky) * len..(n - ky) * len];
            for ((o, a), b) in dst.iter_mut().zip(top).zip(bottom) {
                *o = a + b;
            }
        }
    }
}

/// Phase ψ of the `ow` down-sampled outputs, phase-major in `out` (`q = taps.len()` phases of
/// `out.len() / q`; output x = q·m + ψ), as `taps[ψ]`'s sums over `src`; the slot past a short
/// phase's end is zeroed (carried through the pass along y, never read after).
fn phase_sums(out: &mut [f32], src: &[f32], taps: &[Vec<(f32, usize)>], ow: usize) {
    let q = taps.len();
    let oq = out.len() / q;
    for ((psi, taps), phase) in taps.iter().enumerate().zip(out.chunks_exact_mut(oq)) {
        let (done, rest) = phase.split_at_mut(ow.saturating_sub(psi).div_ceil(q));
        filter_sum(done, src, taps);
        rest.fill(0.0);
    }
}

/// Writes phase-major `src` (`q` phases of `src.len() / q`) in natural order: `out[q·m + ψ] =
/// src[ψ·len + m]` for every `out` element.
fn interleave(src: &[f32], q: usize, out: &mut [f32]) {
    let len = src.len() / q;
    if q == 1 {
        out.copy_from_slice(&src[..out.len()]);
        return;
    }
    if q == 2 {
        let (even, odd) = src.split_at(len);
        let mut pairs = out.chunks_exact_mut(2);
        for ((pair, e), o) in (&mut pairs).zip(even).zip(odd) {
            pair[0] = *e;
            pair[1] = *o;
        }
        if let [last] = pairs.into_remainder() {
            *last = even[len - 1];
        }
        return;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = src[(i % q) * len + i / q];
    }
}

/// `out[o] = Σ f · src[off + o]` over the `(f, off)` taps in order (zero for none): the AVX-512 or
/// AVX2 vectors of `kernels::tiles` where the loops run either (the compiled loops kept their
/// block sums on the stack and did rows under 16 one value at a time), else [`filter_sum_loops`].
/// Every copy computes each output as the same multiplies and adds in the same order.
fn filter_sum(out: &mut [f32], src: &[f32], taps: &[(f32, usize)]) {
    if !crate::kernels::tiles::filter_sum(out, src, taps) {
        filter_sum_loops(out, src, taps);
    }
}

multiversion! {
    /// [`filter_sum`]'s loops. Outputs go a block at a time: the block's sums stay in registers
    /// while every tap is added, so each output is stored once and each source value loaded once.
    /// Blocks of 64 (eight AVX2 vectors: enough independent additions to cover their latency),
    /// 16 for short rows.
    fn filter_sum_loops(out: &mut [f32], src: &[f32], taps: &[(f32, usize)]) {
        let n = out.len();
        if n >= 64 {
            sum_blocks::<64>(out, src, taps);
        } else if n >= 16 {
            sum_blocks::<16>(out, src, taps);
        } else {
            let mut acc = [0f32; 16];
            for &(f, off) in taps {
                for (a, v) in acc.iter_mut().zip(&src[off..off + n]) {
                    *a += f * v;
                }
            }
            out.copy_from_slice(&acc[..n]);
        }
    }
}

/// [`filter_sum`] in blocks of `B` for `out.len() ≥ B`. A row's last partial block is done as a
/// whole block ending at the row's end (every output is the same sum in the same order in any
/// block, so outputs done twice come out the same): one more block of independent sums, not a
/// tail of short dependent ones.
#[inline(always)]
fn sum_blocks<const B: usize>(out: &mut [f32], src: &[f32], taps: &[(f32, usize)]) {
    let n = out.len();
    for o in (0..n).step_by(B).map(|o| o.min(n - B)) {
        let mut acc = [0f32; B];
        for &(f, off) in taps {
            for (a, v) in acc.iter_mut().zip(&src[off + o..off + o + B]) {
                *a += f * v;
            }
        }
        out[o..o + B].copy_from_slice(&acc);
    }
}

/// Splits `buf` into planes of `plane` values and hands them out one at a time to `threads`
/// workers (the calling thread and `kernels::pool`'s helpers), which call `f(state, index,
/// plane)` for each, with one `init()` state (scratch buffers) per worker. Each plane is written
/// by one worker, so the result does not depend on which. Handing planes out as workers come free, rather than a
/// fixed share each, keeps both CPUs busy when one runs slower (another process, a descheduled
/// virtual CPU): with fixed halves, one of the two threads ran alone for 18% of a 256² image's
/// time on the 2-vCPU machines here.
pub(crate) fn par_planes<S>(buf: &mut [f32], plane: usize, threads: usize, init: impl Fn() -> S + Sync, f: impl Fn(&mut S, usize, &mut [f32]) + Sync) {
    if plane == 0 || buf.is_empty() {
        return;
    }
    let count = buf.len().div_ceil(plane);
    hand_out(buf.chunks_mut(plane).enumerate(), count, threads, init, |state, (index, dst)| f(state, index, dst));
}

/// Hands the `count` items of `work` out one at a time to up to `threads` workers (the calling
/// thread and `kernels::pool`'s helpers) as they come free, each worker calling `f(state, item)`
/// with its own `init()` state: the scheduling of [`par_planes`] and [`par_items`].
fn hand_out<T, S>(work: impl Iterator<Item = T> + Send, count: usize, threads: usize, init: impl Fn() -> S + Sync, f: impl Fn(&mut S, T) + Sync) {
    let work = std::sync::Mutex::new(work);
    let worker = || {
        let mut state = init();
        loop {
            // A panicking worker poisons the lock; `pool::run` re-raises its panic afterwards.
            let next = work.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).next();
            let Some(item) = next else { break };
            f(&mut state, item);
        }
    };
    super::pool::run(threads.clamp(1, count.max(1)), &worker);
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
    super::pool::run(threads.clamp(1, jobs.max(1)), &worker);
}

/// Runs `f(item)` for every item, each once, on up to `threads` workers (the calling thread is
/// one), handing the next item to whichever worker comes free: [`par_planes`] for work whose
/// pieces differ in size or shape (items may carry disjoint `&mut` slices of one buffer).
pub(crate) fn par_items<T: Send>(items: Vec<T>, threads: usize, f: impl Fn(T) + Sync) {
    let count = items.len();
    hand_out(items.into_iter(), count, threads, || (), |_, item| f(item));
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
        pixel_row(&x[s * c * h * w..(s + 1) * c * h * w], c, h, w, y - pad, pad, cp, row);
    });
}

multiversion! {
    /// Image row `y` of one sample `x` (`[c, h, w]`) into the pixel-major `row`: `row[(pad + xx)·cp
    /// + ch] = x[ch][y][xx]`. Blocks of 8 channels x 8 pixels go through registers (eight
    /// contiguous loads, eight contiguous stores); the ragged edges one value at a time.
    #[allow(clippy::too_many_arguments)]
    fn pixel_row(x: &[f32], c: usize, h: usize, w: usize, y: usize, pad: usize, cp: usize, row: &mut [f32]) {
        let line = |ch: usize| &x[(ch * h + y) * w..(ch * h + y + 1) * w];
        let mut c0 = 0;
        while c0 + 8 <= c {
            let lines: [&[f32]; 8] = std::array::from_fn(|j| line(c0 + j));
            let mut x0 = 0;
            while x0 + 8 <= w {
                let block: [[f32; 8]; 8] = std::array::from_fn(|j| std::array::from_fn(|p| lines[j][x0 + p]));
                for (p, pixel) in row[(pad + x0) * cp..].chunks_mut(cp).take(8).enumerate() {
                    for (j, v) in pixel[c0..c0 + 8].iter_mut().enumerate() {
                        *v = block[j][p];
                    }
                }
                x0 += 8;
            }
            for xx in x0..w {
                for (j, l) in lines.iter().enumerate() {
                    row[(pad + xx) * cp + c0 + j] = l[xx];
                }
            }
            c0 += 8;
        }
        for ch in c0..c {
            for (xx, v) in line(ch).iter().enumerate() {
                row[(pad + xx) * cp + ch] = *v;
            }
        }
    }
}

/// How many workers the kernels split their work over: the CPUs this process may use (1 where
/// that cannot be read). `kernels::pool` keeps one fewer helper threads.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |t| t.get())
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

multiversion! {
    /// Splits a row into its `d` phases, one after another in `out`: `out[φ·len + m] = row[m·d + φ]`,
    /// zero past the row's end, `len = out.len() / d`.
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

/// A worker's buffers for [`FilteredLrelu::plane`] (only grown, kept from plane to plane).
#[derive(Default)]
pub(crate) struct Scratch {
    /// The plane's rows up-sampled along x.
    a: Vec<f32>,
    /// One up-sampled, activated row.
    b: Vec<f32>,
    /// Rows down-sampled along x (separable), or deinterleaved up-sampled rows (2-D filter).
    c: Vec<f32>,
    /// `upsample_line`'s zero-margined row; later one deinterleaved row.
    line: Vec<f32>,
    phase_out: Vec<f32>,
    /// The taps of the row being up-sampled.
    taps: Vec<(f32, usize)>,
}

multiversion! {
    /// `dst[i] = Σ_k f[k] · zp[i + k]` for `i < len`, where `zp` is `src + bias` zero-inserted by
    /// `up` and shifted by `p0`, written phase-major with `p` phases (`p` = `up` or 1; see
    /// `FilteredLrelu::plane`). Polyphase: outputs `i ≡ φ (mod up)` use taps `k ≡ k0(φ)` only,
    /// over consecutive source samples, so each (phase, tap) pair is one contiguous multiply-add
    /// over a zero-margined copy.
    #[allow(clippy::too_many_arguments)]
    fn upsample_line(src: &[f32], bias: f32, up: usize, p0: i64, f: &[f32], len: usize, p: usize, dst: &mut [f32], line: &mut Vec<f32>, phase_out: &mut Vec<f32>, taps: &mut Vec<(f32, usize)>) {
        let n = src.len();
        let t = f.len();
        let margin = t + len / up + 2;
        line.clear();
        line.resize(n + 2 * margin, 0.0);
        for (d, s) in line[margin..margin + n].iter_mut().zip(src) {
            *d = s + bias;
        }
        let up_i = up as i64;
        let cnt = len.div_ceil(up);
        for phase in 0..up {
            let start = phase as i64 - p0;
            let k0 = (-start).rem_euclid(up_i);
            let j0 = (start + k0).div_euclid(up_i); // source index of tap k0 for the first output of this phase
            let count = (len.saturating_sub(phase)).div_ceil(up);
            taps.clear();
            for k in (k0 as usize..t).step_by(up) {
                let off = j0 + (k as i64 - k0) / up_i + margin as i64;
                if off >= 0 && (off as usize) + count <= line.len() {
                    taps.push((f[k], off as usize));
                }
            }
            if p == up {
                // Phase-major: this phase's outputs are one run; the slot past a short phase's
                // end is zeroed (it is carried through the passes along y, never read after).
                let (run, rest) = dst[phase * cnt..(phase + 1) * cnt].split_at_mut(count);
                filter_sum(run, line, taps);
                rest.fill(0.0);
            } else {
                grow(phase_out, count);
                filter_sum(&mut phase_out[..count], line, taps);
                for (o, v) in dst[phase..len].iter_mut().step_by(up).zip(&phase_out[..count]) {
                    *o = *v;
                }
            }
        }
    }
}

/// Row `i` of the column version of [`upsample_line`] on a `[h, w]` image: the `up`-fold
/// up-sampling along y, written as a sum of whole source rows.
#[allow(clippy::too_many_arguments)]
fn upsample_row(src: &[f32], h: usize, w: usize, up: usize, p0: i64, f: &[f32], i: usize, row_out: &mut [f32], taps: &mut Vec<(f32, usize)>) {
    let up_i = up as i64;
    let start = i as i64 - p0;
    let k0 = (-start).rem_euclid(up_i);
    taps.clear();
    for k in (k0..f.len() as i64).step_by(up) {
        let j = (start + k) / up_i;
        if (0..h as i64).contains(&j) {
            taps.push((f[k as usize], j as usize * w));
        }
    }
    filter_sum(row_out, src, taps);
}

thread_local! {
    /// `conv2d_direct`'s padded input, kept between calls (only grown; every element used is
    /// written first).
    static DIRECT_SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `dst = lhs · rhs` (`[m, k] x [k, n]`; `dst +=` when `accumulate`) on the calling thread
/// through `kernels::tiles::gemm` where it applies, else the gemm crate, every matrix given by
/// its first element and `(row, column)` strides in elements.
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
    // SAFETY: the caller's guarantees are the register tiles', which take products whose right
    // operand and result have contiguous rows where the CPU has AVX-512F or AVX2+FMA.
    if rhs_cs == 1 && dst_cs == 1 && unsafe { crate::kernels::tiles::gemm((m, n, k), dst, dst_rs, accumulate, (lhs, lhs_rs, lhs_cs), (rhs, rhs_rs)) } {
        return;
    }
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

/// Where tap `(ky, kx)` of a `k x k` kernel reads, relative to its output position, in planes
/// `wp` wide: `ky·wp + kx`, taps in `[ky][kx]` order.
pub(crate) fn tap_offsets(k: usize, wp: usize) -> Vec<usize> {
    (0..k * k).map(|tap| (tap / k) * wp + tap % k).collect()
}

/// `out[o, y, x] = Σ_{i, ky, kx} w[o, i, ky, kx] · xpad[i, y + ky, x + kx]` (correlation, zero
/// padding `pad` on every side, `scales` folded in) for one image: Winograd F(6x6, 3x3)
/// ([`crate::kernels::winograd`]) for 3x3 kernels with enough channels to amortise its
/// transforms, else [`conv2d_direct`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d(x: &[f32], in_ch: usize, h: usize, w: usize, weight: &[f32], out_ch: usize, k: usize, pad: usize, scales: ChannelScales) -> (Vec<f32>, usize, usize) {
    if uses_winograd(k, in_ch, out_ch) {
        return crate::kernels::winograd::conv3x3(x, in_ch, h, w, weight, out_ch, pad, scales);
    }
    conv2d_direct(x, in_ch, h, w, weight, out_ch, k, pad, scales)
}

/// Whether [`conv2d`] takes the Winograd path for these shapes.
pub fn uses_winograd(k: usize, in_ch: usize, out_ch: usize) -> bool {
    k == 3 && in_ch >= 16 && out_ch >= 16
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
    let threads = threads();
    let n = ho * wp;
    let kk = k * k;
    // The wide output `[out_ch, n]`: every element is written by the jobs below (the first tap
    // of each overwrites, later taps accumulate), so it is not zero-filled first.
    let mut wide: Vec<f32> = Vec::with_capacity(out_ch * n);
    let dst = SharedMut(wide.as_mut_ptr());
    // The GEMMs over `src` (input planes `plane` apart, rows `wp` wide, k-1 columns of slack
    // past the last one) with the weights `wts` (`[out, in, k, k]`). Jobs are blocks of output
    // columns (pixels), each through every tap, then its output scales.
    let gemms = |src: &[f32], plane: usize, wts: &[f32]| {
        let offsets = tap_offsets(k, wp);
        if let Some(fast) = crate::kernels::tiles::conv_wide(src, plane, in_ch, &offsets, wts, out_ch, n, scales.output, threads) {
            return Some(fast);
        }
        let block = n.div_ceil(4 * threads).max(256);
        par_jobs(n.div_ceil(block), threads, |j| {
            let dst = dst;
            let c0 = j * block;
            let cols = block.min(n - c0);
            for tap in 0..kk {
                let (ky, kx) = (tap / k, tap % k);
                // SAFETY: every pointer/stride pair addresses memory inside its buffer: lhs is
                // the [out, in] slice of the [out, in, k, k] weights at offset `tap`; rhs has
                // `in_ch` rows, columns c0..c0+cols of the view starting at ky*wp+kx in `src`,
                // whose last read ends at (in_ch-1)*plane + ky*wp + kx + n - 1 < src.len() (the
                // callers' slack); dst is columns c0..c0+cols of the [out_ch, n] buffer `wide`
                // (capacity out_ch·n), written by this job only, and not read by the first tap.
                unsafe {
                    gemm_strided(
                        (out_ch, cols, in_ch),
                        dst.0.add(c0),
                        (n as isize, 1),
                        tap > 0,
                        (wts.as_ptr().add(tap), (in_ch * kk) as isize, kk as isize),
                        (src.as_ptr().add(ky * wp + kx + c0), plane as isize, 1),
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
        None
    };
    // The register tiles' result where they ran (then `wide` is not written).
    let mut fast = None;
    if k == 1 && pad == 0 {
        // A 1x1 convolution without padding reads the input in place (its last view ends at
        // the input's end): the input scales go into a copy of the small [out, in] weights, not
        // into a scaled copy of the activations (config R's 1x1 layers at 1024² read 0.7 GB).
        let scaled: Vec<f32> = weight.iter().enumerate().map(|(t, v)| v * scales.input(t % in_ch)).collect();
        fast = gemms(x, h * w, &scaled);
    } else {
        DIRECT_SCRATCH.with(|cell| {
            let mut xp = cell.borrow_mut();
            // Padded input (scaled per channel) on the threads, plus k zeros of slack so the
            // last channel's shifted views stay in bounds.
            let len = in_ch * hp * wp;
            grow(&mut xp, len + k);
            xp[len..len + k].fill(0.0);
            par_planes(&mut xp[..len], hp * wp, threads, || (), |_, c, plane| pad_plane(&x[c * h * w..(c + 1) * h * w], w, pad, wp, scales.input(c), plane));
            fast = gemms(&xp[..len + k], hp * wp, weight);
        });
    }
    match fast {
        Some(v) => wide = v,
        // SAFETY: the jobs covered every column 0..n of every row, so all out_ch·n elements are
        // initialised (a panicking job would have propagated out of the scope before this point).
        None => unsafe { wide.set_len(out_ch * n) },
    }
    if wo == wp {
        return (wide, ho, wo);
    }
    let mut out = vec![0f32; out_ch * ho * wo];
    for (dst, src) in out.chunks_mut(wo).zip(wide.chunks(wp)) {
        dst.copy_from_slice(&src[..wo]);
    }
    (out, ho, wo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tiles::tests::values;

    #[test]
    fn pixel_major_matches_the_definition_on_ragged_shapes() {
        // Channels past whole blocks of 8 and columns past whole blocks of 8, extra zero
        // channels per pixel, padding, and rows of zeros below the image.
        for (n, c, h, w, pad, hp, wp, cp) in [(2usize, 19usize, 5usize, 21usize, 2usize, 10usize, 26usize, 24usize), (1, 8, 3, 8, 0, 3, 8, 8), (3, 5, 4, 3, 1, 6, 5, 8)] {
            let x = values(n * c * h * w, 7);
            let mut got = vec![f32::NAN; n * hp * wp * cp];
            pixel_major(&x, (n, c, h, w), pad, (hp, wp), cp, 2, &mut got);
            for s in 0..n {
                for yy in 0..hp {
                    for xx in 0..wp {
                        for ch in 0..cp {
                            let inside = ch < c && (pad..pad + h).contains(&yy) && (pad..pad + w).contains(&xx);
                            let want = if inside { x[((s * c + ch) * h + yy - pad) * w + xx - pad] } else { 0.0 };
                            assert_eq!(got[((s * hp + yy) * wp + xx) * cp + ch].to_bits(), want.to_bits(), "{n}x{c}x{h}x{w} pad {pad}: ({s}, {yy}, {xx}, {ch})");
                        }
                    }
                }
            }
        }
    }
}
