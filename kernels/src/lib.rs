//! Bounds-checked matrix products over `f32` slices, on the `gemm` crate (the kernels candle's
//! CPU backend uses, here called directly so a product needs no tensor, no allocation and no
//! zero-filled output, and can accumulate into its destination).
//!
//! A [`View`] is a logical matrix over a slice with row and column strides (so a transpose or a
//! head's columns cost nothing); every view is checked against its slice when made, and
//! [`matmul`] checks the destination too, which is what makes the one `unsafe` call sound.

use gemm::Parallelism;

/// Products with fewer multiply-adds than this run on the calling thread: below it, handing
/// work to the pool costs more than it saves (and the attention products run inside a parallel
/// loop already).
const PARALLEL_MIN_FLOPS: usize = 1 << 18;

/// A logical `rows × cols` matrix over a slice: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `rows × cols` matrix with rows `row_stride` apart.
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        let view = View {
            data,
            rows,
            cols,
            rs: row_stride,
            cs: 1,
        };
        view.check();
        view
    }

    /// A contiguous row-major `rows × cols` matrix.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        View {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(
                last < self.data.len(),
                "a {}x{} view with strides ({}, {}) overruns {} elements",
                self.rows,
                self.cols,
                self.rs,
                self.cs,
                self.data.len()
            );
        }
    }
}

/// How a product treats what its destination holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Out {
    /// `dst = scale · a·b`.
    Set,
    /// `dst += scale · a·b` (gradient accumulation).
    Add,
}

/// `dst (a.rows × b.cols, rows dst_stride apart) ⟵ scale · a · b`, as `mode` says; large
/// products use the thread pool.
pub fn matmul(dst: &mut [f32], dst_stride: usize, a: View, b: View, scale: f32, mode: Out) {
    product(dst, dst_stride, a, b, scale, mode, true);
}

/// [`matmul`] on the calling thread only (for products inside a parallel loop).
pub fn matmul_serial(dst: &mut [f32], dst_stride: usize, a: View, b: View, scale: f32, mode: Out) {
    product(dst, dst_stride, a, b, scale, mode, false);
}

fn product(
    dst: &mut [f32],
    dst_stride: usize,
    a: View,
    b: View,
    scale: f32,
    mode: Out,
    may_fork: bool,
) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    View::strided(dst, m, n, dst_stride).check();
    if k == 0 {
        if mode == Out::Set {
            for row in dst.chunks_mut(dst_stride).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    let threads = rayon::current_num_threads();
    let parallelism = if may_fork && m * n * k >= PARALLEL_MIN_FLOPS && threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    #[allow(unsafe_code)]
    // SAFETY: every view (and the destination) was checked to lie inside its slice; `dst` is a
    // unique borrow, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            mode == Out::Add,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn products_match_the_definition_in_every_orientation() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut c = vec![9.0; m * n];
        matmul(
            &mut c,
            n,
            View::new(&a, m, k),
            View::new(&b, k, n),
            1.0,
            Out::Set,
        );
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
        // aᵀ stored, read transposed; accumulate twice with a scale.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let mut c2 = vec![0.0; m * n];
        for _ in 0..2 {
            let at_view = View::new(&at, k, m).t();
            matmul(&mut c2, n, at_view, View::new(&b, k, n), 0.5, Out::Add);
        }
        for (x, y) in c2.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    #[test]
    #[should_panic(expected = "overruns")]
    fn a_view_past_its_slice_is_refused() {
        View::new(&[0.0; 5], 2, 3);
    }
}
