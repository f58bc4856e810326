//! The CPU kernels' helper threads, started once and kept: `cpu::par_planes` and `cpu::par_jobs`
//! spawned their helpers per call, and a training step makes over a thousand such calls, many
//! of them a few hundred microseconds of work (a Winograd transform, a padding pass, a small
//! layer), where the calling thread had done most of the work before a fresh thread was running
//! (a StyleGAN3-T step at 64² kept the second CPU idle 40% of the time). Kept helpers wait a
//! moment spinning before they sleep, so back-to-back calls find them awake, and their
//! thread-local scratch buffers survive between calls.
//!
//! One job at a time: a call made while the helpers are busy (from inside a job, or from a
//! second thread such as a test harness's) runs on freshly spawned scoped threads instead, as
//! before. A job is a worker closure that takes work from a shared counter until none is left,
//! so the result never depends on how many helpers joined in, or when.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle helper (or the caller waiting for helpers) spins before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

type Job = &'static (dyn Fn() + Sync);

#[derive(Default)]
struct State {
    /// The job on offer, while it is.
    job: Option<Job>,
    /// Helpers still allowed to join the job on offer.
    slots: usize,
    /// Helpers running it.
    running: usize,
    /// A helper's panic, re-raised by the caller.
    panic: Option<Box<dyn Any + Send>>,
}

struct Pool {
    helpers: usize,
    state: Mutex<State>,
    /// Bumped when a job is offered (helpers spin on it before they sleep).
    epoch: AtomicU64,
    /// Mirrors `State::running` for the caller's spin.
    running: AtomicUsize,
    /// Held by the caller whose job is on offer.
    busy: AtomicBool,
    offered: Condvar,
    finished: Condvar,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a helper panicked while holding it; the state stays valid.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn helper(&self) {
        let mut seen = self.epoch.load(Ordering::Acquire);
        loop {
            let start = Instant::now();
            while self.epoch.load(Ordering::Acquire) == seen && start.elapsed() < SPIN {
                std::hint::spin_loop();
            }
            let mut state = self.lock();
            while self.epoch.load(Ordering::Acquire) == seen {
                state = self.offered.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            seen = self.epoch.load(Ordering::Acquire);
            let Some(job) = state.job.filter(|_| state.slots > 0) else { continue };
            state.slots -= 1;
            state.running += 1;
            self.running.fetch_add(1, Ordering::AcqRel);
            drop(state);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            let mut state = self.lock();
            if let Err(payload) = result {
                state.panic.get_or_insert(payload);
            }
            state.running -= 1;
            self.running.fetch_sub(1, Ordering::AcqRel);
            if state.running == 0 {
                self.finished.notify_all();
            }
        }
    }
}

/// The pool, its helpers started on first use (one fewer than the CPUs); `None` where none
/// could be started.
fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<&'static Pool>> = OnceLock::new();
    *POOL.get_or_init(|| {
        let helpers = super::cpu::threads().saturating_sub(1);
        if helpers == 0 {
            return None;
        }
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            helpers,
            state: Mutex::new(State::default()),
            epoch: AtomicU64::new(0),
            running: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            offered: Condvar::new(),
            finished: Condvar::new(),
        }));
        let mut started = 0;
        for i in 0..helpers {
            if std::thread::Builder::new().name(format!("stylescope-cpu-{i}")).spawn(move || pool.helper()).is_ok() {
                started += 1;
            }
        }
        (started == helpers).then_some(pool)
    })
}

/// Withdraws the job from the pool and waits for the helpers running it, also when the caller's
/// own share unwinds: the job borrows the caller's stack.
struct Withdraw(&'static Pool);

impl Drop for Withdraw {
    fn drop(&mut self) {
        let pool = self.0;
        {
            let mut state = pool.lock();
            state.slots = 0;
        }
        let start = Instant::now();
        while pool.running.load(Ordering::Acquire) > 0 && start.elapsed() < SPIN {
            std::hint::spin_loop();
        }
        let mut state = pool.lock();
        while state.running > 0 {
            state = pool.finished.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.job = None;
        let panic = state.panic.take();
        drop(state);
        pool.busy.store(false, Ordering::Release);
        if let Some(payload) = panic {
            if !std::thread::panicking() {
                std::panic::resume_unwind(payload);
            }
        }
    }
}

/// Runs `worker` on the calling thread and on up to `threads − 1` helpers at once, returning when
/// every copy has returned (re-raising a helper's panic). `worker` must take its work from shared
/// state until none is left: copies may join late or not at all.
pub(crate) fn run(threads: usize, worker: &(dyn Fn() + Sync)) {
    if threads <= 1 {
        worker();
        return;
    }
    let Some(pool) = pool().filter(|p| p.busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()) else {
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(worker);
            }
            worker();
        });
        return;
    };
    // SAFETY: the job is withdrawn, and every helper that took it has returned, before this
    // function returns or unwinds (`Withdraw`'s drop), so the borrow never outlives `worker`.
    let job: Job = unsafe { std::mem::transmute::<&(dyn Fn() + Sync), Job>(worker) };
    {
        let mut state = pool.lock();
        state.job = Some(job);
        state.slots = (threads - 1).min(pool.helpers);
        pool.epoch.fetch_add(1, Ordering::AcqRel);
    }
    pool.offered.notify_all();
    let _withdraw = Withdraw(pool);
    worker();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_once_and_helper_panics_reach_the_caller() {
        for _ in 0..200 {
            let next = AtomicUsize::new(0);
            let hits: Vec<AtomicUsize> = (0..64).map(|_| AtomicUsize::new(0)).collect();
            run(4, &|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= hits.len() {
                    break;
                }
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
        // Nested: the inner call finds the pool busy and spawns its own threads.
        let total = AtomicUsize::new(0);
        let outer = AtomicUsize::new(0);
        run(2, &|| {
            while outer.fetch_add(1, Ordering::Relaxed) < 4 {
                let inner = AtomicUsize::new(0);
                run(2, &|| {
                    while inner.fetch_add(1, Ordering::Relaxed) < 8 {
                        total.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 32);
        // A panic in whichever copy takes item 3 reaches the caller, and the pool stays usable.
        let next = AtomicUsize::new(0);
        let caught = std::panic::catch_unwind(|| {
            run(2, &|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= 16 {
                    break;
                }
                assert_ne!(i, 3, "item 3");
            })
        });
        assert!(caught.is_err());
        let count = AtomicUsize::new(0);
        run(2, &|| while count.fetch_add(1, Ordering::Relaxed) < 10 {});
        assert!(count.load(Ordering::Relaxed) >= 10);
    }
}
