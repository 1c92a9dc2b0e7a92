//! [`super::panel_rows`] for CPUs with AVX2 and FMA but no AVX-512: a packed row of a
//! panel of an implicit column matrix (`super::im2col_view`) as four groups of 8 lanes.
//! A group whose lanes read every value (stride 1) or every other value (stride 2) of one
//! input row is one or two masked loads (and a shuffle), any other group a gather.

use super::packed_gemm::NR;
use super::panel_rows::Part;
use std::arch::x86_64::*;

/// Lanes of a group: one vector of 8.
const LANES: usize = 8;
/// Groups of a packed row.
pub(super) const GROUPS: usize = NR / LANES;

/// How a group of 8 lanes is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// Lane `l` reads the value `l * stride` after lane 0's, on its input row.
    Run {
        stride: i32,
    },
    Gather,
}

impl Read {
    /// How to read a group of 8 lanes `parts`, of which the first `used` are read: a run
    /// when every used lane follows lane 0 along its input row by 1 or by 2.
    pub(super) fn of(parts: &[Part], used: usize) -> Read {
        let used = used.min(LANES);
        if used <= 1 {
            return Read::Run { stride: 1 };
        }
        let (head, stride) = (parts[0], parts[1].x - parts[0].x);
        let follows = parts[..used].iter().enumerate().all(|(l, p)| {
            let d = l as i32 * stride;
            p.y == head.y && p.x == head.x + d && p.offset == head.offset + d
        });
        match stride {
            1 | 2 if follows => Read::Run { stride },
            _ => Read::Gather,
        }
    }
}

/// Every step's packed row: lane `l` of step `s` is `x[step.offset + offset[l]]` where
/// `step.y + y[l]` lies in `0..h` and `step.x + x[l]` in `0..w` (`table` holds the lanes'
/// offset, y and x parts), else zero; each group read as `reads` says.
///
/// # Safety
/// The CPU runs AVX2 and FMA, and every lane inside the image has its value inside `x`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn pack_rows(
    x: &[f32],
    steps: impl Iterator<Item = Part>,
    (reads, table): (&[Read; GROUPS], &[[i32; NR]; 3]),
    (h, w): (i32, i32),
    dst: &mut [f32],
) {
    for (s, step) in steps.enumerate() {
        let row = &mut dst[s * NR..(s + 1) * NR];
        for (group, read) in reads.iter().enumerate() {
            // SAFETY: as the caller's; 8 values from `group * 8` of arrays of NR.
            unsafe {
                let inside = inside_group(step, table, group, (h, w));
                let head = step.offset + table[0][group * LANES];
                let v = match read {
                    Read::Run { stride: 1 } => load_run(x, head, inside),
                    Read::Run { .. } => load_every_other(x, head, inside),
                    Read::Gather => gather_group(x, step, &table[0], group, inside),
                };
                _mm256_storeu_ps(row[group * LANES..].as_mut_ptr(), v);
            }
        }
    }
}

/// All ones in the lanes of group `group` that lie inside the image.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn inside_group(
    step: Part,
    [_, y, xs]: &[[i32; NR]; 3],
    group: usize,
    (h, w): (i32, i32),
) -> __m256i {
    // SAFETY: 8 values from `group * 8` of arrays of NR.
    let load = |a: &[i32; NR]| unsafe { _mm256_loadu_si256(a[group * LANES..].as_ptr().cast()) };
    let iy = _mm256_add_epi32(load(y), _mm256_set1_epi32(step.y));
    let ix = _mm256_add_epi32(load(xs), _mm256_set1_epi32(step.x));
    // `v < n` unsigned (a negative coordinate is a huge unsigned one): min(v, n - 1) == v.
    let below = |v, n: i32| _mm256_cmpeq_epi32(_mm256_min_epu32(v, _mm256_set1_epi32(n - 1)), v);
    _mm256_and_si256(below(iy, h), below(ix, w))
}

/// Lane `l` is `x[head + l]` where `inside`, else zero (masked values are not read).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn load_run(x: &[f32], head: i32, inside: __m256i) -> __m256 {
    let at = x.as_ptr().wrapping_offset(head as isize);
    // SAFETY: the lanes kept lie inside the image, so inside `x` (the caller's promise).
    unsafe { _mm256_maskload_ps(at, inside) }
}

/// Lane `l` is `x[head + 2 * l]` where `inside`, else zero: the even values of two masked
/// loads of 8, gathered into order by a shuffle and a permute.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn load_every_other(x: &[f32], head: i32, inside: __m256i) -> __m256 {
    // Loaded value 2l is lane l's; odd values are not read.
    let even = _mm256_setr_epi32(-1, 0, -1, 0, -1, 0, -1, 0);
    let spread = |first: i32| {
        let lanes = _mm256_setr_epi32(
            first,
            first,
            first + 1,
            first + 1,
            first + 2,
            first + 2,
            first + 3,
            first + 3,
        );
        _mm256_and_si256(_mm256_permutevar8x32_epi32(inside, lanes), even)
    };
    let at = x.as_ptr().wrapping_offset(head as isize);
    // SAFETY: as in `load_run`.
    let (a, b) = unsafe {
        (
            _mm256_maskload_ps(at, spread(0)),
            _mm256_maskload_ps(at.wrapping_add(LANES), spread(4)),
        )
    };
    // (a0 a2 b0 b2 | a4 a6 b4 b6), then its 64-bit pairs in the order 0, 2, 1, 3.
    let pairs = _mm256_castps_pd(_mm256_shuffle_ps::<0b10_00_10_00>(a, b));
    _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(pairs))
}

/// Lane `l` of group `group` is `x[step.offset + offset[l]]` where `inside`, else zero.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn gather_group(
    x: &[f32],
    step: Part,
    offset: &[i32; NR],
    group: usize,
    inside: __m256i,
) -> __m256 {
    // SAFETY: 8 values from `group * 8` of an array of NR.
    let offsets = unsafe { _mm256_loadu_si256(offset[group * LANES..].as_ptr().cast()) };
    let index = _mm256_add_epi32(offsets, _mm256_set1_epi32(step.offset));
    let mask = _mm256_castsi256_ps(inside);
    // SAFETY: the lanes kept lie inside `x` (the caller's promise); others are not read.
    unsafe { _mm256_mask_i32gather_ps::<4>(_mm256_setzero_ps(), x.as_ptr(), index, mask) }
}
