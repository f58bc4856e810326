//! numpy's legacy `RandomState`, bit for bit.
//!
//! The official scripts turn a seed into a latent with `np.random.RandomState(seed).randn(...)`, so a
//! user who types `--seeds 42` expects the very same `z` (and therefore the very same image) here.
//! This is MT19937 seeded with `init_genrand`, the 53-bit double of randomkit, the polar Box-Muller
//! Gaussian with its cached second value, and the masked rejection sampler behind `randint`.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// `numpy.random.RandomState` restricted to what the official scripts call.
#[derive(Clone)]
pub struct RandomState {
    mt: [u32; N],
    index: usize,
    cached_gauss: Option<f64>,
}

impl RandomState {
    /// `RandomState(seed)` for an integer seed in `0..2**32`.
    pub fn new(seed: u32) -> Self {
        let mut mt = [0u32; N];
        mt[0] = seed;
        for i in 1..N {
            let prev = mt[i - 1];
            mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self { mt, index: N, cached_gauss: None }
    }

    fn regenerate(&mut self) {
        for i in 0..N {
            let y = (self.mt[i] & UPPER_MASK) | (self.mt[(i + 1) % N] & LOWER_MASK);
            let mut next = self.mt[(i + M) % N] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= MATRIX_A;
            }
            self.mt[i] = next;
        }
        self.index = 0;
    }

    /// One tempered 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.regenerate();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// A double in `[0, 1)` with 53 random bits (`random_sample`).
    pub fn next_f64(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// One standard normal sample (legacy polar method, second value cached).
    pub fn gauss(&mut self) -> f64 {
        if let Some(g) = self.cached_gauss.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.next_f64() - 1.0;
            let x2 = 2.0 * self.next_f64() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.cached_gauss = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// `randn(n)`: `n` standard normal samples in row-major order.
    pub fn randn(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.gauss()).collect()
    }

    /// `randint(high)`: uniform integer in `0..high` (legacy masked rejection sampling).
    pub fn randint(&mut self, high: u32) -> u32 {
        if high <= 1 {
            return 0;
        }
        let range = high - 1;
        let mut mask = range;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        loop {
            let v = self.next_u32() & mask;
            if v <= range {
                return v;
            }
        }
    }
}

/// The latent `z` that `gen_images.py` uses for `seed`: `RandomState(seed).randn(1, z_dim)`.
pub fn z_from_seed(seed: u32, z_dim: usize) -> Vec<f64> {
    RandomState::new(seed).randn(z_dim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_reference_outputs() {
        // First outputs of MT19937 seeded with init_genrand(5489), from the reference implementation.
        let mut r = RandomState::new(5489);
        assert_eq!(r.next_u32(), 3_499_211_612);
        assert_eq!(r.next_u32(), 581_869_302);
        assert_eq!(r.next_u32(), 3_890_346_734);
    }

    #[test]
    fn numpy_randn_seed0() {
        // np.random.RandomState(0).randn(3)
        let z = RandomState::new(0).randn(3);
        let expect = [1.764_052_345_967_664_3, 0.400_157_208_367_223_3, 0.978_737_984_105_739_2];
        for (a, b) in z.iter().zip(expect) {
            assert!((a - b).abs() < 1e-15, "{a} vs {b}");
        }
    }

    #[test]
    fn numpy_randint_seed0() {
        // np.random.RandomState(0).randint(10, size=5) == [5, 0, 3, 3, 7]
        let mut r = RandomState::new(0);
        let v: Vec<u32> = (0..5).map(|_| r.randint(10)).collect();
        assert_eq!(v, [5, 0, 3, 3, 7]);
    }
}
