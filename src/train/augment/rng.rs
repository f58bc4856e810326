//! Where the augment pipe's random numbers come from.
//!
//! The official pipe calls `torch.rand` / `torch.randn` in a fixed order; [`AugmentRng`] is that
//! interface, so the fixtures can [`Replay`] the recorded draws one by one while training uses a
//! [`SeededRng`].

use std::collections::VecDeque;

use crate::rng::RandomState;

/// A source of the pipe's draws, called in the official order with the official shapes.
pub trait AugmentRng {
    /// `torch.rand(shape)`: uniform float32 in `[0, 1)`, row-major.
    fn rand(&mut self, shape: &[usize]) -> Vec<f32>;
    /// `torch.randn(shape)`: standard normal float32, row-major.
    fn randn(&mut self, shape: &[usize]) -> Vec<f32>;
}

impl<R: AugmentRng + ?Sized> AugmentRng for &mut R {
    fn rand(&mut self, shape: &[usize]) -> Vec<f32> {
        (**self).rand(shape)
    }
    fn randn(&mut self, shape: &[usize]) -> Vec<f32> {
        (**self).randn(shape)
    }
}

/// Seeded draws for training: numpy's MT19937 ([`crate::rng::RandomState`]).
///
/// `rand` takes the top 24 bits of one 32-bit output (so it is always `< 1` in float32), `randn`
/// is numpy's legacy Gaussian rounded to float32. This does **not** reproduce torch's random
/// stream (nothing can: torch's CPU/CUDA generators differ from each other), only the
/// distributions; it is deterministic for a given seed.
#[derive(Clone)]
pub struct SeededRng {
    state: RandomState,
}

impl SeededRng {
    pub fn new(seed: u32) -> Self {
        Self { state: RandomState::new(seed) }
    }
}

impl std::fmt::Debug for SeededRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeededRng")
    }
}

impl AugmentRng for SeededRng {
    fn rand(&mut self, shape: &[usize]) -> Vec<f32> {
        let n: usize = shape.iter().product();
        (0..n).map(|_| (self.state.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)).collect()
    }

    fn randn(&mut self, shape: &[usize]) -> Vec<f32> {
        let n: usize = shape.iter().product();
        (0..n).map(|_| self.state.gauss() as f32).collect()
    }
}

/// Which torch function made a recorded draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrawKind {
    Rand,
    Randn,
}

/// One recorded draw: the function (when known), the shape asked for and the values returned.
#[derive(Clone, Debug)]
pub struct RecordedDraw {
    pub kind: Option<DrawKind>,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Replays recorded draws in order (the oracle fixtures' `<run>/draw{k:03d}`).
///
/// # Panics
/// A test utility: a call whose function or shape differs from the next recorded draw, or a call
/// after the last one, panics with a message naming the draw — that is the bug being tested for.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    draws: VecDeque<RecordedDraw>,
    consumed: usize,
}

impl Replay {
    pub fn new(draws: Vec<RecordedDraw>) -> Self {
        Self { draws: draws.into(), consumed: 0 }
    }

    /// Draws not used yet (0 once the pipe made exactly the recorded calls).
    pub fn remaining(&self) -> usize {
        self.draws.len()
    }

    /// Draws used so far.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    fn next(&mut self, kind: DrawKind, shape: &[usize]) -> Vec<f32> {
        let k = self.consumed;
        let Some(d) = self.draws.pop_front() else {
            panic!("replay: draw {k} ({kind:?} {shape:?}) asked for, but only {k} were recorded");
        };
        if let Some(want) = d.kind {
            assert_eq!(want, kind, "replay: draw {k} was recorded as {want:?} {:?}, the pipe called {kind:?} {shape:?}", d.shape);
        }
        assert_eq!(d.shape, shape, "replay: draw {k} was recorded with shape {:?}, the pipe asked for {shape:?}", d.shape);
        let n: usize = shape.iter().product();
        assert_eq!(d.values.len(), n, "replay: draw {k} holds {} values for shape {shape:?}", d.values.len());
        self.consumed += 1;
        d.values
    }
}

impl AugmentRng for Replay {
    fn rand(&mut self, shape: &[usize]) -> Vec<f32> {
        self.next(DrawKind::Rand, shape)
    }
    fn randn(&mut self, shape: &[usize]) -> Vec<f32> {
        self.next(DrawKind::Randn, shape)
    }
}
