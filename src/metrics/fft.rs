//! Small FFT helpers shared by the spectrum measurements and the explorer's FFT view: torch's
//! Kaiser window and an in-place 2-D DFT (radix 2 for powers of two, direct otherwise, since
//! StyleGAN3's intermediate layers have odd sizes).

/// `torch.kaiser_window(n, periodic=False, beta)`.
pub fn kaiser(n: usize, beta: f64) -> Vec<f64> {
    if n == 1 {
        return vec![1.0];
    }
    let denom = bessel_i0(beta);
    (0..n)
        .map(|i| {
            let r = 2.0 * i as f64 / (n - 1) as f64 - 1.0;
            bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / denom
        })
        .collect()
}

/// Modified Bessel function of the first kind, order 0 (power series).
pub fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, q) = (1.0, 1.0, x * x / 4.0);
    for k in 1..200 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// In-place 2-D DFT of an `h x w` complex array (rows, then columns).
pub fn fft2(re: &mut [f64], im: &mut [f64], h: usize, w: usize) {
    let mut r = vec![0f64; w.max(h)];
    let mut i = vec![0f64; w.max(h)];
    for y in 0..h {
        r[..w].copy_from_slice(&re[y * w..(y + 1) * w]);
        i[..w].copy_from_slice(&im[y * w..(y + 1) * w]);
        dft(&mut r[..w], &mut i[..w]);
        re[y * w..(y + 1) * w].copy_from_slice(&r[..w]);
        im[y * w..(y + 1) * w].copy_from_slice(&i[..w]);
    }
    for x in 0..w {
        for y in 0..h {
            r[y] = re[y * w + x];
            i[y] = im[y * w + x];
        }
        dft(&mut r[..h], &mut i[..h]);
        for y in 0..h {
            re[y * w + x] = r[y];
            im[y * w + x] = i[y];
        }
    }
}

/// 1-D DFT: radix-2 for powers of two, direct O(n²) otherwise (StyleGAN3's odd layer sizes).
pub fn dft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    if n <= 1 {
        return;
    }
    if n.is_power_of_two() {
        // Bit-reversal permutation, then iterative butterflies.
        let mut j = 0;
        for i in 1..n {
            let mut bit = n >> 1;
            while j & bit != 0 {
                j ^= bit;
                bit >>= 1;
            }
            j |= bit;
            if i < j {
                re.swap(i, j);
                im.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= n {
            let ang = -2.0 * std::f64::consts::PI / len as f64;
            for start in (0..n).step_by(len) {
                for k in 0..len / 2 {
                    let (s, c) = (ang * k as f64).sin_cos();
                    let (a, b) = (start + k, start + k + len / 2);
                    let tr = re[b] * c - im[b] * s;
                    let ti = re[b] * s + im[b] * c;
                    re[b] = re[a] - tr;
                    im[b] = im[a] - ti;
                    re[a] += tr;
                    im[a] += ti;
                }
            }
            len <<= 1;
        }
        return;
    }
    let (cos, sin): (Vec<f64>, Vec<f64>) = (0..n)
        .map(|k| {
            let a = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
            (a.cos(), a.sin())
        })
        .unzip();
    let mut out_r = vec![0f64; n];
    let mut out_i = vec![0f64; n];
    for k in 0..n {
        let (mut sr, mut si) = (0.0, 0.0);
        for t in 0..n {
            let idx = (k * t) % n;
            sr += re[t] * cos[idx] - im[t] * sin[idx];
            si += re[t] * sin[idx] + im[t] * cos[idx];
        }
        out_r[k] = sr;
        out_i[k] = si;
    }
    re.copy_from_slice(&out_r);
    im.copy_from_slice(&out_i);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dft_agrees_between_radix2_and_direct() {
        let x: Vec<f64> = (0..8).map(|i| (i as f64 * 0.7).sin()).collect();
        let (mut r1, mut i1) = (x.clone(), vec![0.0; 8]);
        dft(&mut r1, &mut i1);
        // Direct DFT of the same signal.
        for k in 0..8 {
            let (mut sr, mut si) = (0.0, 0.0);
            for (t, v) in x.iter().enumerate() {
                let a = -2.0 * std::f64::consts::PI * (k * t) as f64 / 8.0;
                sr += v * a.cos();
                si += v * a.sin();
            }
            assert!((sr - r1[k]).abs() < 1e-9 && (si - i1[k]).abs() < 1e-9);
        }
    }

    #[test]
    fn kaiser_is_symmetric_and_peaks_at_one() {
        let k = kaiser(9, 8.0);
        assert!((k[4] - 1.0).abs() < 1e-12);
        assert!((k[0] - k[8]).abs() < 1e-12);
    }
}
