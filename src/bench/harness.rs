//! The measuring loop: units of work on a number of threads for a time window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Run `work(i)` for i = 0, 1, 2, … on `threads` threads (round-robin) until `window` has
/// passed; returns units per second (`work` returns the units it completed).
///
/// Each thread first runs one unit off the clock: the families keep warm Z3 solvers per thread,
/// and a fresh thread's first unit pays for creating them, which a long-running generator or
/// server pays once.
pub fn timed(threads: usize, window: Duration, work: impl Fn(u64) -> u64 + Sync) -> f64 {
    let count = threads.max(1);
    let step = count as u64;
    let units = AtomicU64::new(0);
    let ready = std::sync::Barrier::new(count + 1);
    let started = std::thread::scope(|scope| {
        for t in 0..step {
            let (units, work, ready) = (&units, &work, &ready);
            scope.spawn(move || {
                work(t + step * 1_000_000);
                ready.wait();
                let deadline = Instant::now() + window;
                let mut i = t;
                let mut done = 0;
                // At least one unit each, so slow levels still give a figure.
                loop {
                    done += work(i);
                    i += step;
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                units.fetch_add(done, Ordering::Relaxed);
            });
        }
        ready.wait();
        Instant::now()
    });
    units.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
