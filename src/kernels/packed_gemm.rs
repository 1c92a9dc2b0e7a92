//! Our own single-threaded SGEMM for x86-64 CPUs with AVX-512, or with AVX2 and FMA:
//! `C = alpha * A * B + beta * C`.
//!
//! The classic blocking (Goto and van de Geijn, "Anatomy of High-Performance Matrix
//! Multiplication", 2008): A is packed once into panels of [`MR`] rows over all of K; for
//! each block of [`KC`] rows of B, each panel of [`NR`] columns of B is packed into a
//! small contiguous buffer that stays in L1 while every A panel is multiplied into it by
//! the micro-kernel, which keeps an `MR x NR` tile of C in 16 registers (on AVX2, half of
//! the panel at a time, [`AVX2_SLICE`], in tiles of two quarters of 8 registers each,
//! `avx2_micro`).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
use super::avx2_micro;
use super::matrix::MatRef;
use super::scratch::with_scratch;

/// Rows of A (and C) per micro-kernel tile.
pub const MR: usize = 8;
/// Columns of B (and C) per micro-kernel tile: two vectors of 16.
pub const NR: usize = 32;
/// Rows of B (columns of A) per block: a packed B panel is `KC x NR` (32 KiB).
pub const KC: usize = 256;
/// On AVX2, the columns of B's panel that meet every panel of A before the next ones
/// (tiles of `MR x AVX2_SLICE`, two of `avx2_micro`'s quarters): a slice (16 KiB) stays
/// in L1 beside A's panel, the whole panel (32 KiB) did not.
pub(super) const AVX2_SLICE: usize = NR / 2;

/// `C = alpha * A * B + beta * C` with C's rows `ldc` apart; A's and B's layouts are any
/// strides. The caller checks that AVX-512 is present ([`super::simd::level`]) and that the
/// shapes agree and fit their slices (`matrix::prepare` and `MatRef::check`).
pub(crate) fn sgemm(
    alpha: f32,
    a: MatRef,
    b: &impl PanelSource,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    with_scratch(packed_len(a.rows, a.cols), |a_packed| {
        pack_all(a, a_packed);
        sgemm_packed(alpha, a_packed, a.rows, b, beta, c, ldc);
    });
}

/// Values of an `m x k` matrix packed by [`pack_all`].
pub(crate) fn packed_len(m: usize, k: usize) -> usize {
    m.div_ceil(MR) * MR * k
}

/// A in panels of [`MR`] rows over all of K, `[panel][k][MR]`, zero past its last row.
pub(crate) fn pack_all(a: MatRef, dst: &mut [f32]) {
    let k = a.cols;
    assert_eq!(dst.len(), packed_len(a.rows, k));
    for (p, panel) in dst.chunks_exact_mut(MR * k).enumerate() {
        pack_a(a, p * MR, panel);
    }
}

/// [`pack_all`] into a new buffer, the panels split over the current rayon pool, each
/// zeroed by its own task just before it is packed (a serial zero fill of the whole
/// buffer kept the pool's other threads waiting).
pub(crate) fn packed_par(a: MatRef) -> Vec<f32> {
    let k = a.cols;
    let (packed, _) = super::zeroed::zeroed_in_chunks(packed_len(a.rows, k), MR * k, |p, panel| {
        pack_a(a, p * MR, panel)
    });
    packed
}

/// A right operand B as the kernel reads it: panel by panel, each packed into L1 just
/// before use. A matrix view is one; so is a convolution's column matrix read straight
/// from its images (`super::im2col_view`), which is then never written whole.
pub(crate) trait PanelSource {
    /// B's rows (the product's K) and columns (its N).
    fn shape(&self) -> (usize, usize);
    /// Rows `k0..k0+kc` and columns `j0..j0+NR` of B (zero past B's last column) as
    /// `[kc][NR]`.
    fn pack(&self, k0: usize, kc: usize, j0: usize, dst: &mut [f32]);
}

impl PanelSource for MatRef<'_> {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    fn pack(&self, k0: usize, kc: usize, j0: usize, dst: &mut [f32]) {
        pack_b(*self, k0, kc, j0, dst)
    }
}

/// [`sgemm`] with A already packed ([`pack_all`] of an `m x k` matrix, or whole panels of
/// one: `m` rows from the first panel given) and B any [`PanelSource`].
pub(crate) fn sgemm_packed(
    alpha: f32,
    a_packed: &[f32],
    m: usize,
    b: &impl PanelSource,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    let (k, n) = b.shape();
    assert!(ldc >= n && k > 0 && m > 0 && n > 0);
    assert!(c.len() >= (m - 1) * ldc + n && a_packed.len() >= packed_len(m, k));
    let avx512 = super::simd::level() == super::simd::Level::Avx512;
    assert!(avx512 || super::simd::level() == super::simd::Level::Avx2);
    let slice = if avx512 { NR } else { AVX2_SLICE };
    let panels = m.div_ceil(MR);
    with_scratch(KC * NR, |b_panel| {
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            let scale = (alpha, if k0 == 0 { beta } else { 1.0 });
            for j0 in (0..n).step_by(NR) {
                let cols = NR.min(n - j0);
                b.pack(k0, kc, j0, &mut b_panel[..kc * NR]);
                for s0 in (0..cols).step_by(slice) {
                    for p in 0..panels {
                        let a_part = &a_packed[p * MR * k + k0 * MR..][..kc * MR];
                        let tile = Tile {
                            rows: MR.min(m - p * MR),
                            cols: slice.min(cols - s0),
                            ldc,
                        };
                        let c_tile = &mut c[p * MR * ldc + j0 + s0..];
                        let b_part = &b_panel[s0..kc * NR];
                        tile_product(avx512, kc, a_part, b_part, c_tile, tile, scale);
                    }
                }
            }
        }
    });
}

/// One tile, `C = alpha * A_part * B_part + beta * C` (`scale` = (alpha, beta)), on the
/// AVX-512 micro-kernel or else the AVX2 one ([`sgemm_packed`] checked for one).
fn tile_product(
    avx512: bool,
    kc: usize,
    a_part: &[f32],
    b_part: &[f32],
    c_tile: &mut [f32],
    tile: Tile,
    (alpha, beta): (f32, f32),
) {
    // SAFETY: the caller checked for AVX-512 or else AVX2 and FMA; `micro` checks that
    // the tile stays inside C.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        if avx512 {
            micro(kc, a_part, b_part, c_tile, tile, alpha, beta)
        } else {
            avx2_micro::micro(kc, a_part, b_part, c_tile, tile, alpha, beta)
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "AVX-512 ({avx512}) on {tile:?} {kc} {a_part:?} {b_part:?} {c_tile:?} {alpha} {beta}"
    );
}

/// The part of a C tile that is inside C.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) struct Tile {
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) ldc: usize,
}

/// Rows `i0..i0+MR` of A (zero past A's last row) as `[k][MR]`.
fn pack_a(a: MatRef, i0: usize, dst: &mut [f32]) {
    let rows = MR.min(a.rows - i0);
    if rows < MR {
        dst.fill(0.0);
    }
    if a.rs == 1 && rows == MR {
        // Whole panels: fixed-size copies, which compile to two vector moves (a
        // `copy_from_slice` of a run-time length is a call to memcpy per step).
        for (p, d) in dst.chunks_exact_mut(MR).enumerate() {
            let src: &[f32; MR] = a.data[i0 + p * a.cs..][..MR].try_into().unwrap();
            *<&mut [f32; MR]>::try_from(d).unwrap() = *src;
        }
    } else if a.rs == 1 {
        for (p, d) in dst.chunks_exact_mut(MR).enumerate() {
            let src = &a.data[i0 + p * a.cs..][..rows];
            for (d, s) in d.iter_mut().zip(src) {
                *d = *s;
            }
        }
    } else if rows == MR {
        // Rows of A contiguous (a weight gradient's dY): eight streams read side by side,
        // each step of the panel written whole.
        let starts: [usize; MR] = std::array::from_fn(|i| (i0 + i) * a.rs);
        for (p, d) in dst.chunks_exact_mut(MR).enumerate() {
            let d: &mut [f32; MR] = d.try_into().unwrap();
            *d = std::array::from_fn(|i| a.data[starts[i] + p * a.cs]);
        }
    } else {
        for i in 0..rows {
            let row = &a.data[(i0 + i) * a.rs..];
            for p in 0..a.cols {
                dst[p * MR + i] = row[p * a.cs];
            }
        }
    }
}

/// Rows `k0..k0+kc` and columns `j0..j0+NR` of B (zero past B's last column) as `[kc][NR]`.
pub(crate) fn pack_b(b: MatRef, k0: usize, kc: usize, j0: usize, dst: &mut [f32]) {
    let cols = NR.min(b.cols - j0);
    if cols < NR {
        dst.fill(0.0);
    }
    if b.cs == 1 && cols == NR {
        for (p, d) in dst.chunks_exact_mut(NR).enumerate() {
            let src: &[f32; NR] = b.data[(k0 + p) * b.rs + j0..][..NR].try_into().unwrap();
            *<&mut [f32; NR]>::try_from(d).unwrap() = *src;
        }
    } else if b.cs == 1 {
        for (p, d) in dst.chunks_exact_mut(NR).enumerate() {
            let src = &b.data[(k0 + p) * b.rs + j0..][..cols];
            for (d, s) in d.iter_mut().zip(src) {
                *d = *s;
            }
        }
    } else if b.rs == 1 {
        pack_b_transposed(b, k0, kc, j0, cols, dst);
    } else {
        for j in 0..cols {
            let col = &b.data[(j0 + j) * b.cs + k0 * b.rs..];
            for p in 0..kc {
                dst[p * NR + j] = col[p * b.rs];
            }
        }
    }
}

/// [`pack_b`] for a B whose columns are contiguous (B = Mᵀ of a row-major M, as in a
/// weight gradient `dY · colᵀ`): whole 16 x 16 blocks through register transposes.
fn pack_b_transposed(b: MatRef, k0: usize, kc: usize, j0: usize, cols: usize, dst: &mut [f32]) {
    let column = |j: usize| &b.data[(j0 + j) * b.cs + k0..][..kc];
    for g in (0..cols).step_by(16) {
        let width = 16.min(cols - g);
        let mut p = 0;
        let avx512 = super::simd::level() == super::simd::Level::Avx512;
        if cfg!(target_arch = "x86_64") && avx512 && width == 16 {
            while p + 16 <= kc {
                let block: [&[f32]; 16] = std::array::from_fn(|r| &column(g + r)[p..p + 16]);
                // SAFETY: `sgemm` checked for AVX-512; each source row holds 16 values and
                // the destination 16 rows of NR from column g (g + 16 <= NR).
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    transpose16(block, &mut dst[p * NR + g..], NR)
                };
                #[cfg(not(target_arch = "x86_64"))]
                let _ = block;
                p += 16;
            }
        }
        for q in p..kc {
            for j in 0..width {
                dst[q * NR + g + j] = column(g + j)[q];
            }
        }
    }
}

/// Writes the transpose of the 16 x 16 block whose rows are `rows` into `dst`, rows `ld`
/// apart: `dst[q * ld + r] = rows[r][q]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose16(rows: [&[f32]; 16], dst: &mut [f32], ld: usize) {
    assert!(rows.iter().all(|r| r.len() >= 16));
    // SAFETY: every row holds 16 values (asserted).
    let r: [__m512; 16] = std::array::from_fn(|i| unsafe { _mm512_loadu_ps(rows[i].as_ptr()) });
    // SAFETY: AVX-512 as the caller's.
    unsafe { store_transposed(r, dst, ld) }
}

/// Writes the transpose of the 16 x 16 block whose rows are the vectors `r` into `dst`,
/// rows `ld` apart: `dst[q * ld + i] = r[i][q]` (three rounds of shuffles: 32-bit, 64-bit
/// and 128-bit interleaves, then 256-bit halves).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn store_transposed(r: [__m512; 16], dst: &mut [f32], ld: usize) {
    assert!(dst.len() >= 15 * ld + 16);
    let t: [__m512; 16] = std::array::from_fn(|i| {
        let (a, b) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_ps(a, b)
        } else {
            _mm512_unpackhi_ps(a, b)
        }
    });
    let u: [__m512; 16] = std::array::from_fn(|i| {
        let base = i & !3;
        let (a, b) = (t[base + (i & 3) / 2], t[base + 2 + (i & 3) / 2]);
        if i % 2 == 0 {
            _mm512_shuffle_ps::<0x44>(a, b)
        } else {
            _mm512_shuffle_ps::<0xEE>(a, b)
        }
    });
    let v: [__m512; 16] = std::array::from_fn(|i| {
        let base = i & 8;
        let (a, b) = (u[base + (i & 3)], u[base + 4 + (i & 3)]);
        if i & 4 == 0 {
            _mm512_shuffle_f32x4::<0x88>(a, b)
        } else {
            _mm512_shuffle_f32x4::<0xDD>(a, b)
        }
    });
    for i in 0..16 {
        let (a, b) = (v[i & 7], v[8 + (i & 7)]);
        let w = if i < 8 {
            _mm512_shuffle_f32x4::<0x88>(a, b)
        } else {
            _mm512_shuffle_f32x4::<0xDD>(a, b)
        };
        // SAFETY: row i of 16 values at i * ld, inside `dst` (asserted).
        unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add(i * ld), w) };
    }
}

/// One `MR x NR` tile: `C = alpha * A_part * B_panel + beta * C` over `kc` steps, writing
/// only the tile's `rows x cols` that lie inside C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn micro(kc: usize, a: &[f32], b: &[f32], c: &mut [f32], t: Tile, alpha: f32, beta: f32) {
    assert!(a.len() >= kc * MR && b.len() >= kc * NR && t.rows <= MR && t.cols <= NR);
    assert!(t.rows > 0 && c.len() >= (t.rows - 1) * t.ldc + t.cols);
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (mut ap, mut bp) = (a.as_ptr(), b.as_ptr());
    for _ in 0..kc {
        // SAFETY: kc steps of MR values of A and NR of B, asserted above.
        let (b0, b1) = unsafe { (_mm512_loadu_ps(bp), _mm512_loadu_ps(bp.add(16))) };
        for (i, row) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(unsafe { *ap.add(i) });
            row[0] = _mm512_fmadd_ps(av, b0, row[0]);
            row[1] = _mm512_fmadd_ps(av, b1, row[1]);
        }
        ap = unsafe { ap.add(MR) };
        bp = unsafe { bp.add(NR) };
    }
    let lanes = |n: usize| -> __mmask16 {
        if n >= 16 {
            0xffff
        } else {
            (1u16 << n) - 1
        }
    };
    let masks = [lanes(t.cols), lanes(t.cols.saturating_sub(16))];
    // When beta is zero C is not read: it may hold garbage.
    let read_c = beta != 0.0;
    let (alpha, beta) = (_mm512_set1_ps(alpha), _mm512_set1_ps(beta));
    for (i, row) in acc.iter().enumerate().take(t.rows) {
        let out = c[i * t.ldc..].as_mut_ptr();
        for (h, (&v, &mask)) in row.iter().zip(&masks).enumerate() {
            // SAFETY: masked to the columns inside the row, which `c` holds (asserted).
            unsafe {
                let at = out.add(16 * h);
                let mut r = _mm512_mul_ps(v, alpha);
                if read_c {
                    r = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, at), beta, r);
                }
                _mm512_mask_storeu_ps(at, mask, r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose16_transposes() {
        if super::super::simd::level() != super::super::simd::Level::Avx512 {
            return;
        }
        let src: Vec<f32> = (0..256).map(|i| i as f32).collect();
        let rows: [&[f32]; 16] = std::array::from_fn(|r| &src[r * 16..(r + 1) * 16]);
        let mut dst = vec![-1.0f32; 15 * 20 + 16];
        unsafe { transpose16(rows, &mut dst, 20) };
        for q in 0..16 {
            for r in 0..16 {
                assert_eq!(dst[q * 20 + r], src[r * 16 + q], "({q}, {r})");
            }
        }
    }
}
