//! The micro-kernel of [`super::packed_gemm`] for CPUs with AVX2 and FMA but no AVX-512
//! (AMD before Zen 4, Intel's client cores): the same packed panels (`[k][MR]` of A,
//! `[k][NR]` of B), met in slices of [`AVX2_SLICE`] columns of B (tiles of
//! `MR x AVX2_SLICE` of C, two 4 x 16 quarters), so that the slice of B's panel stays in
//! L1 beside A's.
//! A quarter keeps 8 accumulators of 8 lanes, two loads of B and four broadcasts of A per
//! step, within the 16 vector registers: as many independent chains as two FMA units
//! of 4 cycles' latency need to stay busy.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::packed_gemm::{Tile, AVX2_SLICE, MR, NR};

/// Rows and columns of a quarter of the tile.
const QR: usize = 4;
const QC: usize = 16;

// The slices `sgemm_packed` hands over are whole quarters wide.
const _: () = assert!(AVX2_SLICE.is_multiple_of(QC));

/// One tile of at most `MR x NR`: `C = alpha * A_part * B_panel + beta * C` over `kc`
/// steps, writing only the tile's `rows x cols` that lie inside C (as the AVX-512 kernel's
/// `micro`). B's steps are `NR` apart; `b` may start inside a panel's step.
///
/// # Safety
/// The CPU runs AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn micro(
    kc: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    t: Tile,
    alpha: f32,
    beta: f32,
) {
    let quarter_cols = t.cols.next_multiple_of(QC);
    assert!(a.len() >= kc * MR && t.rows <= MR && t.cols <= NR && quarter_cols <= NR);
    assert!(kc > 0 && b.len() >= (kc - 1) * NR + quarter_cols);
    assert!(t.rows > 0 && c.len() >= (t.rows - 1) * t.ldc + t.cols);
    if t.rows == MR && t.cols == quarter_cols {
        for (r0, c0) in quarters(MR, t.cols) {
            // SAFETY: AVX2 and FMA as the caller's; the quarter's panels hold kc steps, and
            // a whole tile lies inside C (asserted above).
            unsafe {
                let acc = quarter(kc, &a[r0..], &b[c0..]);
                store(acc, &mut c[r0 * t.ldc + c0..], t.ldc, alpha, beta);
            }
        }
        return;
    }
    // A tile that C cuts is computed into this buffer, then its inside copied.
    let mut spill = [0.0f32; MR * NR];
    for (r0, c0) in quarters(t.rows, t.cols) {
        // SAFETY: as above; the buffer holds the whole tile.
        unsafe {
            let acc = quarter(kc, &a[r0..], &b[c0..]);
            store(acc, &mut spill[r0 * NR + c0..], NR, 1.0, 0.0);
        }
    }
    for i in 0..t.rows {
        let row = &mut c[i * t.ldc..][..t.cols];
        for (out, &v) in row.iter_mut().zip(&spill[i * NR..]) {
            // When beta is zero C is not read: it may hold garbage.
            *out = if beta == 0.0 {
                alpha * v
            } else {
                alpha * v + beta * *out
            };
        }
    }
}

/// The top-left corners of the quarters that hold any of a tile's first `rows` x `cols`.
fn quarters(rows: usize, cols: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..rows.div_ceil(QR)).flat_map(move |i| (0..cols.div_ceil(QC)).map(move |j| (i * QR, j * QC)))
}

/// The `QR x QC` product whose A values start at `a[0]` (steps `MR` apart) and B values
/// at `b[0]` (steps `NR` apart), over `kc` steps: per row, two vectors of 8 columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn quarter(kc: usize, a: &[f32], b: &[f32]) -> [[__m256; 2]; QR] {
    assert!(a.len() > (kc - 1) * MR + QR - 1 && b.len() > (kc - 1) * NR + QC - 1);
    let mut acc = [[_mm256_setzero_ps(); 2]; QR];
    let (mut ap, mut bp) = (a.as_ptr(), b.as_ptr());
    for _ in 0..kc {
        // SAFETY: kc steps of QR values of A and QC of B, asserted above.
        let (b0, b1) = unsafe { (_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8))) };
        for (i, row) in acc.iter_mut().enumerate() {
            let av = _mm256_set1_ps(unsafe { *ap.add(i) });
            row[0] = _mm256_fmadd_ps(av, b0, row[0]);
            row[1] = _mm256_fmadd_ps(av, b1, row[1]);
        }
        ap = unsafe { ap.add(MR) };
        bp = unsafe { bp.add(NR) };
    }
    acc
}

/// `out = alpha * acc + beta * out` for a `QR x QC` block whose rows are `ld` apart (out
/// is not read when beta is zero).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store(acc: [[__m256; 2]; QR], out: &mut [f32], ld: usize, alpha: f32, beta: f32) {
    assert!(out.len() >= (QR - 1) * ld + QC);
    let read = beta != 0.0;
    let (alpha, beta) = (_mm256_set1_ps(alpha), _mm256_set1_ps(beta));
    for (i, row) in acc.iter().enumerate() {
        for (h, &v) in row.iter().enumerate() {
            // SAFETY: 16 values of row i lie inside `out` (asserted).
            unsafe {
                let at = out.as_mut_ptr().add(i * ld + 8 * h);
                let mut r = _mm256_mul_ps(v, alpha);
                if read {
                    r = _mm256_fmadd_ps(_mm256_loadu_ps(at), beta, r);
                }
                _mm256_storeu_ps(at, r);
            }
        }
    }
}
