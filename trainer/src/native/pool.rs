//! Reused activation buffers. A training step allocates the same few hundred large buffers every
//! step; fresh from the allocator, each one's first touch faulted in zeroed (huge) pages, which
//! cost a quarter of an RL step's time. Buffers now go back to a pool when dropped and come out
//! again without being zeroed (for outputs every element of which is written) or zeroed in
//! place (for accumulators).

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Buffers kept at most; past it the smallest is freed (bounds what an odd step can leave).
const MAX_POOLED: usize = 512;

/// Bytes kept at most. A step of a tiny or small model needs a few hundred megabytes, all
/// reused; a 0.5B model's needs gigabytes, which would otherwise stay resident through the
/// optimizer step (where PyTorch has freed its activations), while faulting them in afresh
/// costs a few percent of so long a step.
pub(crate) const MAX_POOLED_BYTES: usize = 1 << 30;

/// The pooled buffers and what is held in all (in `f32` elements of capacity).
struct Pool {
    free: Vec<Vec<f32>>,
    /// Capacity handed out and not yet returned.
    live: usize,
    /// Capacity of `free`.
    pooled: usize,
    /// The most ever live at once: what a step needs.
    peak_live: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool::new());

impl Pool {
    const fn new() -> Self {
        Pool {
            free: Vec::new(),
            live: 0,
            pooled: 0,
            peak_live: 0,
        }
    }

    /// A buffer of capacity at least `len` (its length and contents as they were): the
    /// smallest pooled one that fits, else a fresh one.
    fn acquire(&mut self, len: usize) -> Vec<f32> {
        let best = (0..self.free.len())
            .filter(|&i| self.free[i].capacity() >= len)
            .min_by_key(|&i| self.free[i].capacity());
        match best {
            Some(i) => {
                let data = self.free.swap_remove(i);
                self.pooled -= data.capacity();
                self.live += data.capacity();
                data
            }
            None => {
                let data = Vec::with_capacity(len);
                self.live += data.capacity();
                self.peak_live = self.peak_live.max(self.live);
                self.trim_to_peak();
                data
            }
        }
    }

    /// Take back a buffer handed out by [`Pool::acquire`] (freed if the pool is full).
    fn release(&mut self, data: Vec<f32>) {
        self.live -= data.capacity();
        if (self.pooled + data.capacity()) * size_of::<f32>() > MAX_POOLED_BYTES {
            return;
        }
        self.pooled += data.capacity();
        self.free.push(data);
        if self.free.len() > MAX_POOLED
            && let Some(smallest) = (0..self.free.len()).min_by_key(|&i| self.free[i].capacity())
        {
            self.pooled -= self.free.swap_remove(smallest).capacity();
        }
    }

    /// Free pooled buffers, largest first, until live plus pooled is no more than the peak
    /// ever live. A buffer is allocated fresh only when none pooled fits, i.e. when every one
    /// pooled is smaller — the stale sizes of a step whose sequences grew; without this the
    /// pool would keep each size a run ever saw (at 0.5B, gigabytes a step).
    fn trim_to_peak(&mut self) {
        while self.live + self.pooled > self.peak_live {
            let Some(largest) = (0..self.free.len()).max_by_key(|&i| self.free[i].capacity())
            else {
                break;
            };
            self.pooled -= self.free.swap_remove(largest).capacity();
        }
    }
}

/// An `f32` buffer that returns to the pool when dropped.
#[derive(Debug, Default)]
pub(crate) struct Buffer(Vec<f32>);

impl Buffer {
    /// `len` elements of unspecified value (each must be written before it is read).
    pub(crate) fn scratch(len: usize) -> Self {
        let mut data = POOL.lock().unwrap_or_else(|e| e.into_inner()).acquire(len);
        if data.len() >= len {
            data.truncate(len);
        } else {
            data.resize(len, 0.0);
        }
        Buffer(data)
    }

    /// `len` zeros.
    pub(crate) fn zeroed(len: usize) -> Self {
        let mut buffer = Self::scratch(len);
        buffer.fill(0.0);
        buffer
    }

    /// A copy of `values`.
    pub(crate) fn copy_of(values: &[f32]) -> Self {
        let mut buffer = Self::scratch(values.len());
        buffer.copy_from_slice(values);
        buffer
    }
}

impl Deref for Buffer {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.0);
        if data.capacity() == 0 {
            return;
        }
        POOL.lock().unwrap_or_else(|e| e.into_inner()).release(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One "step": acquire every size, then release them all.
    fn step(pool: &mut Pool, sizes: &[usize]) {
        let held: Vec<_> = sizes.iter().map(|&n| pool.acquire(n)).collect();
        held.into_iter().for_each(|data| pool.release(data));
    }

    #[test]
    fn steps_of_the_same_sizes_reuse_their_buffers() {
        let mut pool = Pool::new();
        step(&mut pool, &[300, 100, 100, 50]);
        let first = pool.pooled;
        step(&mut pool, &[100, 50, 300, 100]);
        assert_eq!(pool.pooled, first);
        assert_eq!(pool.live, 0);
        assert_eq!(pool.free.len(), 4);
    }

    #[test]
    fn growing_steps_hold_no_more_than_the_largest_step_needs() {
        let mut pool = Pool::new();
        for n in [100, 150, 200, 250, 300] {
            step(&mut pool, &[n, n, n / 2]);
            assert!(
                pool.pooled <= pool.peak_live,
                "{} > {}",
                pool.pooled,
                pool.peak_live
            );
        }
        // The largest step needed 750 elements at once; the pool keeps no more than that
        // (it kept every size it saw before: 2,500).
        assert!(pool.peak_live < 800 && pool.pooled <= pool.peak_live);
    }

    #[test]
    fn the_pool_keeps_at_most_its_byte_bound() {
        let mut pool = Pool::new();
        let quarter = MAX_POOLED_BYTES / size_of::<f32>() / 4;
        step(&mut pool, &[quarter; 6]);
        assert_eq!(pool.pooled * size_of::<f32>(), MAX_POOLED_BYTES);
        assert_eq!(pool.free.len(), 4);
    }
}
