//! The one module that calls `matrixmultiply`. All matrix products of the engine go
//! through [`gemm`] (single-threaded, for use inside rayon tasks) or [`gemm_par`]
//! (splits the rows of C over the current rayon pool). `matrixmultiply` is built
//! without its own `threading` feature so that only one thread pool exists.
//!
//! When an accelerator is in use (`--device cuda`, see [`super::offload`]), both hand
//! large enough products to it first and compute on the CPU only what it declines.

use super::offload;
use crate::Tensor;
use rayon::prelude::*;
use std::sync::Arc;

/// A read-only matrix view over a slice: element (i, j) is `data[i*rs + j*cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
    /// The tensor this matrix lives in, when it is a parameter that an accelerator may keep
    /// a copy of for as long as that tensor is alive and unchanged (see [`MatRef::kept`]).
    pub owner: Option<&'a Arc<Tensor>>,
}

impl<'a> MatRef<'a> {
    /// A contiguous row-major `rows x cols` matrix.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(
            data.len() >= rows * cols,
            "matrix {rows}x{cols} needs {} values, slice has {}",
            rows * cols,
            data.len()
        );
        MatRef {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
            owner: None,
        }
    }

    /// Marks this matrix as the contents of `owner` (a layer's weight), so that an
    /// accelerator may reuse its device copy across calls. Sound because a shared tensor is
    /// only ever changed through `Arc::make_mut`/`get_mut`, and neither changes it in place
    /// while an accelerator watches it (see `offload::cache`).
    pub fn kept(self, owner: &'a Arc<Tensor>) -> Self {
        MatRef {
            owner: Some(owner),
            ..self
        }
    }

    /// The transpose, as a view (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            owner: self.owner,
        }
    }

    /// Rows `start..start+len` of this matrix.
    pub fn rows_range(self, start: usize, len: usize) -> Self {
        assert!(start + len <= self.rows);
        let offset = (start * self.rs).min(self.data.len());
        MatRef {
            data: &self.data[offset..],
            rows: len,
            ..self
        }
    }

    /// The values this view reaches: `data[..span]` (0 for an empty matrix).
    pub fn span(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }

    fn check(&self) {
        assert!(
            self.span() <= self.data.len(),
            "matrix view reaches past its slice"
        );
    }
}

/// `C = alpha * A * B + beta * C`, with C a contiguous row-major `A.rows x B.cols` slice.
/// When `beta == 0`, C's previous contents are ignored (may be uninitialised garbage).
pub fn gemm(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut [f32]) {
    let Some((m, n)) = prepare(a, b, beta, c) else {
        return;
    };
    if !offload::try_gemm(alpha, a, b, beta, &mut c[..m * n]) {
        checked_sgemm(alpha, a, b, beta, c);
    }
}

/// Like [`gemm`], but splits the rows of C into blocks computed in parallel on the
/// current rayon pool. Small products stay on one thread.
pub fn gemm_par(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut [f32]) {
    let Some((m, n)) = prepare(a, b, beta, c) else {
        return;
    };
    if offload::try_gemm(alpha, a, b, beta, &mut c[..m * n]) {
        return;
    }
    let k = a.cols;
    let threads = rayon::current_num_threads();
    let flops = 2.0 * m as f64 * k as f64 * n as f64;
    if threads <= 1 || m < 2 * 16 || flops < 4.0e6 {
        return checked_sgemm(alpha, a, b, beta, c);
    }
    let blocks = threads.min(m / 16);
    let rows_per = m.div_ceil(blocks);
    c[..m * n]
        .par_chunks_mut(rows_per * n)
        .enumerate()
        .for_each(|(i, c_block)| {
            let start = i * rows_per;
            let len = c_block.len() / n;
            checked_sgemm(alpha, a.rows_range(start, len), b, beta, c_block);
        });
}

/// Checks the shapes and handles the degenerate products; `Some((m, n))` when a real
/// product is left to compute.
fn prepare(a: MatRef, b: MatRef, beta: f32, c: &mut [f32]) -> Option<(usize, usize)> {
    assert_eq!(
        a.cols, b.rows,
        "gemm inner dimensions differ: {}x{} * {}x{}",
        a.rows, a.cols, b.rows, b.cols
    );
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(c.len() >= m * n, "gemm output slice too short");
    if m == 0 || n == 0 {
        return None;
    }
    if k == 0 {
        c[..m * n].iter_mut().for_each(|v| *v *= beta);
        return None;
    }
    a.check();
    b.check();
    Some((m, n))
}

/// The CPU product (`matrixmultiply`), on the calling thread, never offloaded.
pub(crate) fn cpu_gemm(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut [f32]) {
    if prepare(a, b, beta, c).is_some() {
        checked_sgemm(alpha, a, b, beta, c);
    }
}

/// `matrixmultiply`'s product of views that [`prepare`] accepted (or row ranges of them);
/// only the O(1) bounds checks that make the call safe are repeated.
fn checked_sgemm(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut [f32]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(a.cols == b.rows && c.len() >= m * n);
    a.check();
    b.check();
    // SAFETY: just checked: the views stay inside their slices and C holds m*n values in
    // row-major order; the three slices cannot alias (&[f32] vs &mut [f32]).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(a: MatRef, b: MatRef) -> Vec<f32> {
        let mut c = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = 0.0f64;
                for p in 0..a.cols {
                    s += a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
                c[i * b.cols + j] = s as f32;
            }
        }
        c
    }

    proptest! {
        #[test]
        fn gemm_matches_naive(m in 1usize..40, k in 0usize..40, n in 1usize..40,
                              ta: bool, tb: bool, seed: u64, par: bool) {
            let gen = |len: usize, s: u64| -> Vec<f32> {
                (0..len).map(|i| (((i as u64 * 2654435761 + s) % 1000) as f32 / 500.0) - 1.0).collect()
            };
            let a_data = gen(m * k, seed);
            let b_data = gen(k * n, seed ^ 77);
            let a = if ta { MatRef::new(&a_data, k, m).t() } else { MatRef::new(&a_data, m, k) };
            let b = if tb { MatRef::new(&b_data, n, k).t() } else { MatRef::new(&b_data, k, n) };
            let expect = naive(a, b);
            let mut c = vec![1.0; m * n];
            if par { gemm_par(1.0, a, b, 0.0, &mut c) } else { gemm(1.0, a, b, 0.0, &mut c) }
            for (x, y) in c.iter().zip(&expect) {
                prop_assert!((x - y).abs() < 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
            }
            // beta = 1 accumulates.
            gemm(1.0, a, b, 1.0, &mut c);
            for (x, y) in c.iter().zip(&expect) {
                prop_assert!((x - 2.0 * y).abs() < 2e-4 * (1.0 + y.abs()));
            }
        }
    }
}
