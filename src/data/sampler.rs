//! The order in which training visits the dataset: the official `InfiniteSampler`
//! (`torch_utils/misc.py`) and numpy's legacy `RandomState.shuffle`, on our bit-exact
//! `RandomState`, so the same seed visits the same images in the same order as the official code.

use crate::rng::RandomState;

/// numpy's `random_interval(max)`: a uniform integer in `0..=max` by masked rejection (32-bit
/// draws while `max` fits in 32 bits, 64-bit draws beyond).
pub fn random_interval(rnd: &mut RandomState, max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let mut mask = max;
    for shift in [1, 2, 4, 8, 16, 32] {
        mask |= mask >> shift;
    }
    loop {
        let v = if max <= u32::MAX as u64 {
            rnd.next_u32() as u64 & mask
        } else {
            // numpy's mt19937 `next_uint64`: the first draw is the high half.
            (((rnd.next_u32() as u64) << 32) | rnd.next_u32() as u64) & mask
        };
        if v <= max {
            return v;
        }
    }
}

/// Legacy `RandomState.shuffle` of a 1-D array: Fisher-Yates from the end, `j =
/// random_interval(i)` for `i = n-1 .. 1`.
pub fn shuffle<T>(rnd: &mut RandomState, x: &mut [T]) {
    for i in (1..x.len()).rev() {
        let j = random_interval(rnd, i as u64) as usize;
        x.swap(i, j);
    }
}

/// `InfiniteSampler(dataset, rank, num_replicas, shuffle, seed, window_size)`: an endless stream of
/// dataset indices. With shuffling, the order is shuffled once and then, after each index, the
/// current slot swaps with one up to `window` slots back (`window = rint(len * window_size)`).
#[derive(Clone)]
pub struct InfiniteSampler {
    order: Vec<usize>,
    rnd: Option<RandomState>,
    window: u32,
    idx: u64,
    rank: u64,
    num_replicas: u64,
}

impl InfiniteSampler {
    /// The official defaults: one replica, shuffled, `window_size = 0.5`. An empty dataset gives
    /// an empty stream (the official code asserts).
    pub fn new(len: usize, seed: u32) -> Self {
        Self::with_options(len, 0, 1, true, seed, 0.5)
    }

    /// All of the official arguments. Panics where the official code asserts on its arguments
    /// (`rank >= num_replicas`, `window_size` outside 0..=1).
    pub fn with_options(len: usize, rank: usize, num_replicas: usize, shuffle_order: bool, seed: u32, window_size: f64) -> Self {
        assert!(num_replicas > 0 && rank < num_replicas, "rank {rank} out of 0..{num_replicas}");
        assert!((0.0..=1.0).contains(&window_size), "window_size {window_size} out of 0..=1");
        let mut order: Vec<usize> = (0..len).collect();
        let mut rnd = None;
        let mut window = 0;
        if shuffle_order {
            let mut r = RandomState::new(seed);
            shuffle(&mut r, &mut order);
            window = (len as f64 * window_size).round_ties_even() as u32;
            rnd = Some(r);
        }
        Self { order, rnd, window, idx: 0, rank: rank as u64, num_replicas: num_replicas as u64 }
    }
}

impl Iterator for InfiniteSampler {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let n = self.order.len();
        if n == 0 {
            return None;
        }
        loop {
            let i = (self.idx % n as u64) as usize;
            let mine = self.idx % self.num_replicas == self.rank;
            let value = self.order[i];
            if let (true, Some(rnd)) = (self.window >= 2, self.rnd.as_mut()) {
                let back = rnd.randint(self.window) as usize;
                let j = (i + n - back % n) % n;
                self.order.swap(i, j);
            }
            self.idx += 1;
            if mine {
                return Some(value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every expected sequence below was printed by numpy 2.4.6 with the official code:
    // `list(itertools.islice(iter(InfiniteSampler(range(n), rank, num_replicas, shuffle, seed,
    // window_size)), k))` (torch_utils/misc.py, the torch base class removed), and
    // `x = np.arange(n); np.random.RandomState(seed).shuffle(x)`.

    #[test]
    fn shuffle_matches_numpy() {
        let mut x: Vec<usize> = (0..10).collect();
        shuffle(&mut RandomState::new(0), &mut x);
        assert_eq!(x, [2, 8, 4, 9, 1, 6, 7, 3, 0, 5]);
        let mut x: Vec<usize> = (0..100_000).collect();
        shuffle(&mut RandomState::new(7), &mut x);
        assert_eq!(&x[..8], &[33909, 92307, 89107, 9538, 31008, 71305, 71012, 62938]);
        assert_eq!(&x[x.len() - 3..], &[49689, 58564, 61615]);
    }

    #[test]
    fn sampler_matches_numpy() {
        let take = |s: InfiniteSampler, k: usize| s.take(k).collect::<Vec<_>>();
        assert_eq!(take(InfiniteSampler::new(10, 0), 30), [2, 8, 4, 9, 1, 6, 2, 3, 0, 9, 7, 8, 1, 5, 6, 4, 3, 8, 2, 1, 9, 6, 7, 5, 8, 4, 0, 9, 6, 7]);
        // window = rint(3.5) = 4
        assert_eq!(take(InfiniteSampler::new(7, 123), 30), [1, 3, 4, 0, 2, 3, 1, 0, 5, 6, 3, 4, 1, 2, 3, 0, 5, 4, 2, 0, 6, 4, 5, 2, 3, 0, 1, 6, 4, 0]);
        assert_eq!(take(InfiniteSampler::new(1000, 42), 12), [521, 737, 740, 660, 411, 678, 626, 513, 859, 136, 811, 76]);
        // window = rint(2.5) = 2 (ties to even), second of two replicas.
        assert_eq!(
            take(InfiniteSampler::with_options(5, 1, 2, true, 1, 0.5), 30),
            [1, 0, 1, 0, 2, 1, 2, 4, 1, 0, 4, 0, 3, 0, 2, 0, 2, 0, 1, 0, 1, 0, 3, 0, 4, 3, 4, 3, 4, 2]
        );
        // window = rint(1.5) = 2.
        assert_eq!(take(InfiniteSampler::new(3, 0), 30), [2, 1, 2, 0, 2, 0, 2, 0, 2, 0, 2, 1, 0, 1, 2, 0, 1, 2, 0, 2, 1, 2, 1, 0, 2, 0, 2, 0, 2, 1]);
        assert_eq!(take(InfiniteSampler::with_options(6, 0, 1, false, 0, 0.5), 8), [0, 1, 2, 3, 4, 5, 0, 1]);
        assert_eq!(take(InfiniteSampler::new(1, 5), 3), [0, 0, 0]);
        assert!(take(InfiniteSampler::new(0, 5), 3).is_empty());
    }
}
