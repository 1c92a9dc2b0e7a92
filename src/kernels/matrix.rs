//! Matrix views ([`MatRef`]) and the CPU product on the calling thread: our own
//! `packed_gemm` on CPUs with AVX-512 or AVX2, `matrixmultiply` elsewhere (the one module
//! that calls it). [`super::gemm`] decides where a product runs; `matrixmultiply` is built
//! without its own `threading` feature so that only one thread pool exists.

use crate::Tensor;
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

    pub(crate) fn check(&self) {
        assert!(
            self.span() <= self.data.len(),
            "matrix view reaches past its slice"
        );
    }
}

/// Checks the shapes and handles the degenerate products; `Some((m, n))` when a real
/// product is left to compute.
pub(crate) fn prepare(a: MatRef, b: MatRef, beta: f32, c: &mut [f32]) -> Option<(usize, usize)> {
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

/// The CPU product, on the calling thread, never offloaded.
pub(crate) fn cpu_gemm(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut [f32]) {
    if prepare(a, b, beta, c).is_some() {
        checked_sgemm(alpha, a, b, beta, c);
    }
}

/// The CPU product of views that [`prepare`] accepted (or row ranges of them): our kernel
/// on AVX-512, and on AVX2 with a row-major B (its transposed panels are packed by
/// AVX-512 register transposes), else `matrixmultiply`;
/// only the O(1) bounds checks that make the call safe are repeated.
pub(crate) fn checked_sgemm(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut [f32]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(a.cols == b.rows && c.len() >= m * n);
    a.check();
    b.check();
    let level = super::simd::level();
    if level == super::simd::Level::Avx512 || (level == super::simd::Level::Avx2 && b.cs == 1) {
        return super::packed_gemm::sgemm(alpha, a, &b, beta, c, n);
    }
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
