//! The direct kernel of a 4x4 stride-2 padding-1 transposed convolution (upsampling by two)
//! with few channels: each output row is a sum over two input rows, each output column
//! over two input columns (the sub-pixel decomposition, `ops::sub_pixel`): output
//! `(2q + ry, 2p + rx)` takes input `(q - 1 + ry + m, p - 1 + rx + n)` with tap
//! `(3 - ry - 2m, 3 - rx - 2n)` for `m, n` in `{0, 1}`. Both column phases of a block of
//! outputs are summed in registers and interleaved on the way out, so nothing but the
//! output is written and no zero is multiplied.

#[cfg(target_arch = "x86_64")]
use super::direct_conv::{Direct, GROUP};

/// `y[g, 2q + ry, 2p + rx] = sum_{c, m, n} w[c, 3 - ry - 2m, 3 - rx - 2n, g] *
/// x[c, q - 1 + ry + m, p - 1 + rx + n]` for the first `outs <= GROUP` planes of one weight
/// group (`[cin][4][4][GROUP]`) and one image. `xp` is the image with one zero on every
/// side (`pad_image` of `d`, a 3x3 padding-1 geometry of the image, `d.w` a multiple of
/// 32); `y` holds `outs` planes of `2h x 2w`.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub unsafe fn up2_group_avx512(d: &Direct, xp: &[f32], wg: &[f32], y: &mut [f32], outs: usize) {
    use std::arch::x86_64::*;
    let (h, w, hp, wp) = (d.h, d.w, d.padded_h(), d.padded_w());
    assert!(w.is_multiple_of(32) && (d.oh, d.ow, d.pad_top, d.pad_left) == (h, w, 1, 1));
    assert!(hp == h + 2 && wp >= w + 2 && xp.len() >= d.cin * hp * wp);
    assert!(wg.len() >= d.cin * 16 * GROUP && outs <= GROUP && y.len() == outs * 4 * h * w);
    // Lanes of the even (rx = 0) and odd (rx = 1) sums in output order.
    let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (q, ry) in (0..h).flat_map(|q| [(q, 0), (q, 1)]) {
        for p0 in (0..w).step_by(32) {
            // [g][block of 16 columns][rx]
            let mut acc = [[[_mm512_setzero_ps(); 2]; 2]; GROUP];
            for c in 0..d.cin {
                for m in 0..2 {
                    let row = &xp[(c * hp + q + ry + m) * wp + p0..][..34];
                    let taps = &wg[(c * 4 + 3 - ry - 2 * m) * 4 * GROUP..][..4 * GROUP];
                    // SAFETY: 16 values from offsets up to 18 of a row of 34; the taps of
                    // one kernel row, [kx][GROUP].
                    unsafe {
                        // Input columns p - 1, p and p + 1 of each block (padded p, p + 1, p + 2).
                        let xs: [[__m512; 3]; 2] = std::array::from_fn(|b| {
                            std::array::from_fn(|s| _mm512_loadu_ps(row.as_ptr().add(16 * b + s)))
                        });
                        for (g, acc_g) in acc.iter_mut().enumerate() {
                            let t: [__m512; 4] = std::array::from_fn(|kx| {
                                _mm512_set1_ps(*taps.get_unchecked(kx * GROUP + g))
                            });
                            for (a, x) in acc_g.iter_mut().zip(&xs) {
                                a[0] = _mm512_fmadd_ps(t[3], x[0], a[0]);
                                a[0] = _mm512_fmadd_ps(t[1], x[1], a[0]);
                                a[1] = _mm512_fmadd_ps(t[2], x[1], a[1]);
                                a[1] = _mm512_fmadd_ps(t[0], x[2], a[1]);
                            }
                        }
                    }
                }
            }
            for (g, acc_g) in acc.iter().enumerate().take(outs) {
                let out = &mut y[(g * 2 * h + 2 * q + ry) * 2 * w + 2 * p0..][..64];
                for (b, [even, odd]) in acc_g.iter().enumerate() {
                    // SAFETY: 32 values from 32 * b of 64.
                    unsafe {
                        let at = out.as_mut_ptr().add(32 * b);
                        _mm512_storeu_ps(at, _mm512_permutex2var_ps(*even, low, *odd));
                        _mm512_storeu_ps(at.add(16), _mm512_permutex2var_ps(*even, high, *odd));
                    }
                }
            }
        }
    }
}

/// [`up2_group_avx512`] for CPUs with AVX2 and FMA (16 registers of 8 lanes): per output
/// row, blocks of 8 input columns, whose [`GROUP`] x 2 sums (both column phases) are 8
/// registers besides the three shifted loads of the input row and a weight broadcast.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn up2_group_avx2(d: &Direct, xp: &[f32], wg: &[f32], y: &mut [f32], outs: usize) {
    use std::arch::x86_64::*;
    let (h, w, hp, wp) = (d.h, d.w, d.padded_h(), d.padded_w());
    assert!(w.is_multiple_of(8) && (d.oh, d.ow, d.pad_top, d.pad_left) == (h, w, 1, 1));
    assert!(hp == h + 2 && wp >= w + 2 && xp.len() >= d.cin * hp * wp);
    assert!(wg.len() >= d.cin * 16 * GROUP && outs <= GROUP && y.len() == outs * 4 * h * w);
    for (q, ry) in (0..h).flat_map(|q| [(q, 0), (q, 1)]) {
        for p0 in (0..w).step_by(8) {
            // [g][rx]
            let mut acc = [[_mm256_setzero_ps(); 2]; GROUP];
            for c in 0..d.cin {
                for m in 0..2 {
                    let row = &xp[(c * hp + q + ry + m) * wp + p0..][..10];
                    let taps = &wg[(c * 4 + 3 - ry - 2 * m) * 4 * GROUP..][..4 * GROUP];
                    // SAFETY: 8 values from offsets up to 2 of a row of 10; the taps of one
                    // kernel row, [kx][GROUP].
                    unsafe {
                        // Input columns p - 1, p and p + 1 (padded p, p + 1, p + 2).
                        let xs: [__m256; 3] =
                            std::array::from_fn(|s| _mm256_loadu_ps(row.as_ptr().add(s)));
                        for (g, [even, odd]) in acc.iter_mut().enumerate() {
                            let t = |kx: usize| _mm256_set1_ps(*taps.get_unchecked(kx * GROUP + g));
                            *even = _mm256_fmadd_ps(t(3), xs[0], *even);
                            *even = _mm256_fmadd_ps(t(1), xs[1], *even);
                            *odd = _mm256_fmadd_ps(t(2), xs[1], *odd);
                            *odd = _mm256_fmadd_ps(t(0), xs[2], *odd);
                        }
                    }
                }
            }
            for (g, [even, odd]) in acc.iter().enumerate().take(outs) {
                let out = &mut y[(g * 2 * h + 2 * q + ry) * 2 * w + 2 * p0..][..16];
                // Interleaved: (e0 o0 e1 o1 e4 o4 e5 o5) and (e2 o2 e3 o3 e6 o6 e7 o7), whose
                // 128-bit halves in order are the 16 outputs.
                let (low, high) = (
                    _mm256_unpacklo_ps(*even, *odd),
                    _mm256_unpackhi_ps(*even, *odd),
                );
                // SAFETY: 16 values, two vectors of 8.
                unsafe {
                    let at = out.as_mut_ptr();
                    _mm256_storeu_ps(at, _mm256_permute2f128_ps(low, high, 0x20));
                    _mm256_storeu_ps(at.add(8), _mm256_permute2f128_ps(low, high, 0x31));
                }
            }
        }
    }
}
