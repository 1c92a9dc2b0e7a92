//! Our row-major products in cuBLAS's column-major terms.
//!
//! cuBLAS computes `C = alpha * op(X) * op(Y) + beta * C` on column-major matrices
//! (`op` = as stored, or transposed). A row-major `m x n` matrix C is the column-major
//! `n x m` matrix `C^T`, so `C = A B` becomes `C^T = B^T A^T`: X is B's buffer, Y is A's,
//! and each view's strides decide whether its buffer already holds the transpose.

use crate::kernels::matrix::{cpu_gemm, MatRef};

/// Whether cuBLAS reads a buffer as stored (`N`) or transposed (`T`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    N,
    T,
}

/// The arguments of one column-major `sgemm` call (cuBLAS's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmPlan {
    pub transa: Op,
    pub transb: Op,
    /// Rows of `op(X)` and of C (our n).
    pub m: usize,
    /// Columns of `op(Y)` and of C (our m).
    pub n: usize,
    pub k: usize,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
}

impl GemmPlan {
    /// The plan for row-major `C[m x n] = A[m x k] * B[k x n]`, X being B's buffer and Y
    /// A's. `None` when a view has no unit stride (cuBLAS cannot read it) or a size does
    /// not fit cuBLAS's 32-bit integers: the CPU computes those.
    pub fn new(a: &MatRef, b: &MatRef) -> Option<GemmPlan> {
        let (m, k, n) = (a.rows, a.cols, b.cols);
        // X must read as B^T (n x k): stored n x k column-major (N) or k x n (T).
        let (transa, lda) = operand(b, n, k)?;
        // Y must read as A^T (k x m): stored k x m (N) or m x k (T).
        let (transb, ldb) = operand(a, k, m)?;
        let plan = GemmPlan {
            transa,
            transb,
            m: n,
            n: m,
            k,
            lda,
            ldb,
            ldc: n,
        };
        let limit = i32::MAX as usize;
        [plan.m, plan.n, plan.k, lda, ldb]
            .iter()
            .all(|&v| v <= limit)
            .then_some(plan)
    }
}

/// How cuBLAS should read the buffer of `view` so that it sees `view^T`, a
/// `rows x cols` column-major matrix (rows = view.cols, cols = view.rows), and the
/// leading dimension to give it.
fn operand(view: &MatRef, rows: usize, cols: usize) -> Option<(Op, usize)> {
    // Element (i, j) of view^T is view(j, i), at j*rs + i*cs. Stored as is (N), that is
    // column-major with unit row stride (cs == 1) and ld = rs; stored transposed (T), the
    // buffer is view itself: unit stride rs == 1, ld = cs. A single column (or row) has
    // no second stride, so its ld is free: give the smallest legal one.
    if view.cs == 1 || rows == 1 {
        let ld = if cols == 1 { rows } else { view.rs };
        (ld >= rows.max(1)).then_some((Op::N, ld.max(1)))
    } else if view.rs == 1 || cols == 1 {
        let ld = if rows == 1 { cols } else { view.cs };
        (ld >= cols.max(1)).then_some((Op::T, ld.max(1)))
    } else {
        None
    }
}

/// Executes a plan as cuBLAS defines `sgemm` (column-major: element (i, j) of a buffer
/// at `i + j * ld`), on the CPU. The reference accelerator uses it; a wrong plan gives a
/// wrong product here as it would on a GPU. Our plans always have `ldc == m`.
pub fn column_major_sgemm(
    plan: &GemmPlan,
    alpha: f32,
    x: &[f32],
    y: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    assert_eq!(plan.ldc, plan.m, "only dense C is supported");
    // op(buffer) as a strided view: as stored, (i, j) is at i + j*ld; transposed, at j + i*ld.
    let view = |data, op, rows, cols, ld| {
        let (rs, cs) = match op {
            Op::N => (1, ld),
            Op::T => (ld, 1),
        };
        MatRef {
            data,
            rows,
            cols,
            rs,
            cs,
            owner: None,
        }
    };
    let op_x = view(x, plan.transa, plan.m, plan.k, plan.lda);
    let op_y = view(y, plan.transb, plan.k, plan.n, plan.ldb);
    // Column-major C (m x n) is row-major C^T (n x m) = op(Y)^T op(X)^T.
    cpu_gemm(alpha, op_y.t(), op_x.t(), beta, c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(a: &MatRef, b: &MatRef) -> Vec<f32> {
        let mut c = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                c[i * b.cols + j] = (0..a.cols)
                    .map(|p| {
                        a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64
                    })
                    .sum::<f64>() as f32;
            }
        }
        c
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as u64 * 2654435761 + seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    proptest! {
        /// Every layout our ops use (row-major, transposed, a row range of either, single
        /// rows and columns) plans to a cuBLAS call that computes the same product.
        #[test]
        fn plans_compute_the_row_major_product(
            m in 1usize..12, k in 1usize..12, n in 1usize..12,
            ta: bool, tb: bool, skip in 0usize..3, seed: u64, alpha in -2f32..2.0, beta_on: bool,
        ) {
            let a_data = values((m + skip) * k, seed);
            let b_data = values(k * n, seed ^ 99);
            let a_full = if ta { MatRef::new(&a_data, k, m + skip).t() }
                         else { MatRef::new(&a_data, m + skip, k) };
            let a = a_full.rows_range(skip, m);
            let b = if tb { MatRef::new(&b_data, n, k).t() } else { MatRef::new(&b_data, k, n) };
            let plan = GemmPlan::new(&a, &b).expect("every unit-stride layout has a plan");
            let beta = if beta_on { 0.5 } else { 0.0 };
            let start = values(m * n, seed ^ 7);
            let mut c = start.clone();
            column_major_sgemm(&plan, alpha, &b.data[..b.span()], &a.data[..a.span()], beta, &mut c);
            let expect = naive(&a, &b);
            for ((got, e), s) in c.iter().zip(&expect).zip(&start) {
                let want = alpha * e + beta * s;
                prop_assert!((got - want).abs() < 1e-4 * (1.0 + want.abs()), "{got} vs {want}");
            }
        }
    }

    #[test]
    fn a_view_without_a_unit_stride_has_no_plan() {
        let data = values(64, 1);
        let strided = MatRef {
            data: &data,
            rows: 3,
            cols: 3,
            rs: 8,
            cs: 2,
            owner: None,
        };
        let b = MatRef::new(&data, 3, 4);
        assert_eq!(GemmPlan::new(&strided, &b), None);
        assert!(GemmPlan::new(&b.t(), &strided).is_none());
    }
}
