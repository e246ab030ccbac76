//! Reused activation buffers. A training step allocates the same few hundred large buffers every
//! step; fresh from the allocator, each one's first touch faulted in zeroed (huge) pages, which
//! cost a quarter of an RL step's time. Buffers now go back to a pool when dropped and come out
//! again without being zeroed (for outputs every element of which is written) or zeroed in
//! place (for accumulators).

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Buffers kept at most; past it the smallest is freed (bounds what an odd step can leave).
const MAX_POOLED: usize = 512;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// An `f32` buffer that returns to the pool when dropped.
#[derive(Debug, Default)]
pub(crate) struct Buffer(Vec<f32>);

impl Buffer {
    /// `len` elements of unspecified value (each must be written before it is read).
    pub(crate) fn scratch(len: usize) -> Self {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let best = pool
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        let mut data = match best {
            Some(i) => pool.swap_remove(i),
            None => Vec::with_capacity(len),
        };
        drop(pool);
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
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        pool.push(data);
        if pool.len() > MAX_POOLED
            && let Some(smallest) = (0..pool.len()).min_by_key(|&i| pool[i].capacity())
        {
            pool.swap_remove(smallest);
        }
    }
}
