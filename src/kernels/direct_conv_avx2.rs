//! The register kernels of [`super::direct_conv`] for CPUs with AVX2 and FMA but no
//! AVX-512 (16 vector registers of 8 lanes): the same layouts and sums, a block of
//! [`LANES`] outputs taken as two halves of 16, so that a half's [`GROUP`] x 16 sums are 8
//! registers, besides the two loads of the input row and the weight broadcast.

use super::direct_conv::{sum_lanes, Direct, GROUP, LANES};
use std::arch::x86_64::*;

/// Outputs per half block: two vectors of 8.
const HALF: usize = 16;
const _: () = assert!(
    LANES.is_multiple_of(HALF),
    "half blocks tile the padded rows"
);

/// `conv_group` for kernels `KW` wide on AVX2: per half block of outputs, the
/// [`GROUP`] x 16 sums stay in registers over all its taps.
///
/// # Safety
/// The CPU runs AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn conv_rows<const KW: usize>(
    d: &Direct,
    xp: &[f32],
    w: &[f32],
    y: &mut [f32],
    outs: usize,
) {
    let (hp, wp, plane) = (d.padded_h(), d.padded_w(), d.oh * d.ow);
    assert!(d.kw == KW && xp.len() >= d.padded_len() && w.len() >= d.group_weights_len());
    assert!(outs <= GROUP && y.len() == outs * plane);
    for oy in 0..d.oh {
        for ox0 in (0..d.ow).step_by(HALF) {
            let mut acc = [[_mm256_setzero_ps(); 2]; GROUP];
            for c in 0..d.cin {
                for ki in 0..d.kh {
                    // A half block's row: 16 outputs at each of the KW taps, inside the
                    // padded row (whose width is whole blocks of LANES plus KW - 1).
                    let row = &xp[(c * hp + oy + ki) * wp + ox0..][..HALF + KW - 1];
                    let taps = &w[((c * d.kh + ki) * KW) * GROUP..][..KW * GROUP];
                    for kj in 0..KW {
                        // SAFETY: 16 values from `kj` of a row of `HALF + KW - 1`, and
                        // GROUP weights from `kj * GROUP` of `KW * GROUP`.
                        unsafe {
                            let xs = [
                                _mm256_loadu_ps(row.as_ptr().add(kj)),
                                _mm256_loadu_ps(row.as_ptr().add(kj + 8)),
                            ];
                            for (g, acc_g) in acc.iter_mut().enumerate() {
                                let wt = _mm256_set1_ps(*taps.get_unchecked(kj * GROUP + g));
                                acc_g[0] = _mm256_fmadd_ps(wt, xs[0], acc_g[0]);
                                acc_g[1] = _mm256_fmadd_ps(wt, xs[1], acc_g[1]);
                            }
                        }
                    }
                }
            }
            let n = HALF.min(d.ow - ox0);
            for (g, acc_g) in acc.iter().enumerate().take(outs) {
                let out = &mut y[g * plane + oy * d.ow + ox0..][..n];
                let mut lanes = [0.0f32; HALF];
                // SAFETY: 16 values, two vectors of 8.
                unsafe {
                    _mm256_storeu_ps(lanes.as_mut_ptr(), acc_g[0]);
                    _mm256_storeu_ps(lanes.as_mut_ptr().add(8), acc_g[1]);
                }
                out.copy_from_slice(&lanes[..n]);
            }
        }
    }
}

/// `weight_grad_group` for kernels `KW` (at most 3) wide on AVX2, a kernel row at a
/// time: each step loads the [`GROUP`] planes' 8 values of `a` once and multiplies them
/// into the `KW` taps of the row (`GROUP * KW` vector sums in registers; a kernel 4 wide
/// would need more registers than there are). Each sum's 8 lanes are added pairwise in
/// a fixed order.
///
/// # Safety
/// The CPU runs AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn kernel_rows<const KW: usize>(
    d: &Direct,
    a: &[f32],
    xp: &[f32],
    dw: &mut [f32],
    outs: usize,
) {
    let (hp, wp, owb) = (d.padded_h(), d.padded_w(), d.ow_blocks());
    let taps = d.cin * d.kh * KW;
    assert!(d.kw == KW && KW <= 3 && owb % 8 == 0);
    assert!(xp.len() >= d.padded_len() && a.len() >= GROUP * d.oh * owb);
    assert!(outs <= GROUP && dw.len() == outs * taps);
    for b in 0..d.cin {
        for ki in 0..d.kh {
            let mut acc = [[_mm256_setzero_ps(); KW]; GROUP];
            for oy in 0..d.oh {
                let row = &xp[(b * hp + oy + ki) * wp..][..wp];
                for at in (0..owb).step_by(8) {
                    // SAFETY: 8 values at `at` of each plane's row of `owb`, and at
                    // `at + kj` of a padded row of `owb + KW - 1` (asserted above).
                    unsafe {
                        let lanes: [__m256; GROUP] = std::array::from_fn(|g| {
                            _mm256_loadu_ps(a.as_ptr().add((g * d.oh + oy) * owb + at))
                        });
                        let xs: [__m256; KW] =
                            std::array::from_fn(|kj| _mm256_loadu_ps(row.as_ptr().add(at + kj)));
                        for (acc_g, lane) in acc.iter_mut().zip(lanes) {
                            for (sum, x) in acc_g.iter_mut().zip(xs) {
                                *sum = _mm256_fmadd_ps(lane, x, *sum);
                            }
                        }
                    }
                }
            }
            let row_taps = (b * d.kh + ki) * KW;
            for (g, acc_g) in acc.iter().enumerate().take(outs) {
                for (kj, v) in acc_g.iter().enumerate() {
                    let mut lanes = [0.0f32; 8];
                    // SAFETY: 8 values.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), *v) };
                    dw[g * taps + row_taps + kj] += sum_lanes(&lanes);
                }
            }
        }
    }
}
