//! How the rows of a panel of an implicit column matrix (`super::im2col_view`) are read
//! from the images, half a row (16 lanes) at a time: lanes that form a few runs along input
//! rows (stride 1 or 2) by masked loads and a permute per run, blocks of 16 positions along
//! stride-1 output rows by masked loads and a register transpose, anything else by a
//! gather. On the AMD EPYC (Zen 4) we measure on, a 16-lane gather costs ~20 cycles, two
//! masked loads and a permute ~4.

#[cfg(target_arch = "x86_64")]
use super::packed_gemm::NR;

/// Every step's packed row (see `Im2colView::gather`): per half, masked loads of its
/// runs where `plans` has them, else a gather through `table`; one function compiled for
/// AVX-512 so that the row kernels inline into the loop.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,bmi2")]
pub(super) unsafe fn pack_rows(
    x: &[f32],
    steps: impl Iterator<Item = Part>,
    (plans, table): (&[Option<Runs>; NR / 16], &[[i32; NR]; 3]),
    (h, w): (i32, i32),
    dst: &mut [f32],
) {
    use std::arch::x86_64::*;
    for (s, step) in steps.enumerate() {
        let row = &mut dst[s * NR..(s + 1) * NR];
        for (half, plan) in plans.iter().enumerate() {
            // SAFETY: as the caller's.
            let v = unsafe {
                let inside = inside_half(step, table, half, (h, w));
                match plan {
                    Some(runs) => load_runs(x, step, runs, inside),
                    None => gather_half(x, step, table, half, inside),
                }
            };
            // SAFETY: 16 values from `half * 16` of a row of NR.
            unsafe { _mm512_storeu_ps(row[half * 16..].as_mut_ptr(), v) };
        }
    }
}

/// One side's part of a column-matrix entry: its offset in `x`, and its share of the input
/// row and column.
#[derive(Clone, Copy, Debug)]
pub(super) struct Part {
    pub(super) offset: i32,
    pub(super) y: i32,
    pub(super) x: i32,
}

/// Most runs a half may have and still be loaded run by run rather than gathered.
const MAX_RUNS: usize = 4;

/// Lanes `first..first + len` of a half that read every `stride`-th value of one input row
/// from `head`'s: `offset` and `x` `stride` more per lane, `y` the same.
#[derive(Clone, Copy, Debug)]
struct Run {
    first: u32,
    len: u32,
    stride: i32,
    head: Part,
    /// Lane `first + l`'s place, `l * stride`, in the run's loaded values.
    pick: [i32; 16],
}

impl Run {
    fn new(first: usize, head: Part) -> Run {
        Run {
            first: first as u32,
            len: 1,
            stride: 1,
            head,
            pick: [0; 16],
        }
    }

    /// Extends the run by lane `l` if it continues it (the second lane sets the stride,
    /// 1 or 2).
    fn extend(&mut self, l: usize, p: &Part) -> bool {
        let d = l as i32 - self.first as i32;
        let step = p.x - self.head.x;
        if self.len == 1 && (step == 1 || step == 2) && d == 1 {
            self.stride = step;
        }
        let follows = p.offset == self.head.offset + d * self.stride
            && p.y == self.head.y
            && p.x == self.head.x + d * self.stride;
        if follows {
            self.pick[l] = d * self.stride;
            self.len += 1;
        }
        follows
    }

    /// The values loaded: from the head's to the last lane's.
    #[cfg(target_arch = "x86_64")]
    fn span(&self) -> i32 {
        (self.len as i32 - 1) * self.stride + 1
    }
}

/// A half of a panel row (16 lanes) as a few [`Run`]s: a convolution's positions along
/// output rows (stride 1 or 2), or a weight gradient's taps `kj` of a kernel row. Each run
/// is one or two masked loads and a permute; lanes past the used ones stay zero.
#[derive(Clone, Copy, Debug)]
pub(super) struct Runs {
    runs: [Option<Run>; MAX_RUNS],
}

impl Runs {
    /// The runs of `parts` (a half's 16 lanes, the first `used` of them read), or `None`
    /// when there are more than [`MAX_RUNS`].
    pub(super) fn of(parts: &[Part], used: usize) -> Option<Runs> {
        let mut runs = Runs {
            runs: [None; MAX_RUNS],
        };
        let mut count = 0;
        for (l, p) in parts.iter().enumerate().take(used.min(16)) {
            if count > 0 && runs.runs[count - 1].as_mut().unwrap().extend(l, p) {
                continue;
            }
            if count == MAX_RUNS {
                return None;
            }
            runs.runs[count] = Some(Run::new(l, *p));
            count += 1;
        }
        Some(runs)
    }
}

/// A half's 16 values by its runs ([`Runs`]): per run, the values of its span under lanes
/// `inside` the image read by masked loads (nothing else is read), and its lanes picked
/// from them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,bmi2")]
#[inline]
unsafe fn load_runs(x: &[f32], step: Part, runs: &Runs, inside: u16) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let mut v = _mm512_setzero_ps();
    for run in runs.runs.iter().map_while(|r| r.as_ref()) {
        let bits = (inside as u32 >> run.first) & ((1u32 << run.len) - 1);
        // The loaded values under those lanes: value l * stride for lane first + l.
        let mask = if run.stride == 2 {
            _pdep_u32(bits, 0x5555_5555)
        } else {
            bits
        };
        let at = x
            .as_ptr()
            .wrapping_offset((step.offset + run.head.offset) as isize);
        // SAFETY: the values kept are lanes inside the image (as in `gather_half`);
        // masked values are not read.
        let a = unsafe { _mm512_maskz_loadu_ps(mask as u16, at) };
        if run.len == 16 && run.stride == 1 {
            v = a;
            continue;
        }
        let b = if run.span() > 16 {
            // SAFETY: as above.
            unsafe { _mm512_maskz_loadu_ps((mask >> 16) as u16, at.wrapping_add(16)) }
        } else {
            _mm512_setzero_ps()
        };
        // SAFETY: 16 indices.
        let pick = unsafe { _mm512_loadu_si512(run.pick.as_ptr().cast()) };
        let lanes = (((1u32 << run.len) - 1) << run.first) as u16;
        v = _mm512_mask_blend_ps(lanes, v, _mm512_permutex2var_ps(a, pick, b));
    }
    v
}

/// Which lanes of half `half` of a packed row lie inside the image: `step.y + y[l]` in
/// `0..h` and `step.x + x[l]` in `0..w`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn inside_half(
    step: Part,
    [_, y, xs]: &[[i32; NR]; 3],
    half: usize,
    (h, w): (i32, i32),
) -> u16 {
    use std::arch::x86_64::*;
    // SAFETY: 16 values from `half * 16` of arrays of NR.
    let load = |a: &[i32; NR]| unsafe { _mm512_loadu_si512(a[half * 16..].as_ptr().cast()) };
    let iy = _mm512_add_epi32(load(y), _mm512_set1_epi32(step.y));
    let ix = _mm512_add_epi32(load(xs), _mm512_set1_epi32(step.x));
    // Unsigned compares: a negative coordinate is a huge unsigned one.
    _mm512_cmplt_epu32_mask(iy, _mm512_set1_epi32(h))
        & _mm512_cmplt_epu32_mask(ix, _mm512_set1_epi32(w))
}

/// Half `half` of a packed row: lane `l` is `x[step.offset + offset[l]]` for the lanes
/// `inside` the image ([`inside_half`]), else zero.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn gather_half(
    x: &[f32],
    step: Part,
    [offset, ..]: &[[i32; NR]; 3],
    half: usize,
    inside: u16,
) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    // SAFETY: 16 values from `half * 16` of an array of NR.
    let offsets = unsafe { _mm512_loadu_si512(offset[half * 16..].as_ptr().cast()) };
    let index = _mm512_add_epi32(offsets, _mm512_set1_epi32(step.offset));
    // A lane inside the image is inside its image's values: offsets of valid
    // coordinates are < x.len(), checked at construction to fit an i32.
    unsafe { _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), inside, index, x.as_ptr().cast()) }
}

/// 16 packed rows (`dst`, `[16][NR]`) for 16 positions of a stride-1 convolution given as
/// segments of `seg` consecutive positions of an output row (the first position's part of
/// each): lane `l` (row part `parts[l]`, zero where `None`) of row `r * seg + m` is
/// `x[segment_r.offset + part.offset + m]` where that lies inside the image, else zero.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn transposed_block(
    x: &[f32],
    (segments, seg): (&[Option<Part>; 4], i32),
    parts: &[Option<Part>; NR],
    (h, w): (i32, i32),
    dst: &mut [f32],
) {
    use std::arch::x86_64::*;
    for half in 0..NR / 16 {
        let rows: [__m512; 16] = std::array::from_fn(|i| match parts[half * 16 + i] {
            None => _mm512_setzero_ps(),
            // SAFETY: as the caller's.
            Some(part) => unsafe { segments_lane(x, (segments, seg), part, (h, w)) },
        });
        // SAFETY: AVX-512 as the caller's; `dst` holds 16 rows of NR.
        unsafe { super::packed_gemm::store_transposed(rows, &mut dst[half * 16..], NR) };
    }
}

/// One lane of [`transposed_block`]: its values in each segment, masked to the image, in
/// lanes `r * seg..(r + 1) * seg`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn segments_lane(
    x: &[f32],
    (segments, seg): (&[Option<Part>; 4], i32),
    part: Part,
    (h, w): (i32, i32),
) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let mut v = _mm512_setzero_ps();
    for (r, segment) in segments.iter().map_while(|s| *s).enumerate() {
        let (iy, ix0) = (segment.y + part.y, segment.x + part.x);
        // Values m < seg with 0 <= ix0 + m < w (none when hi <= lo), on a row inside the
        // image, into lanes r * seg + m.
        let (lo, hi) = ((-ix0).clamp(0, seg), (w - ix0).clamp(0, seg));
        let span = ((1u32 << hi) - 1) & !((1u32 << lo) - 1);
        let mask = if (0..h).contains(&iy) { span } else { 0 };
        let shift = r as i32 * seg;
        let at = x
            .as_ptr()
            .wrapping_offset((segment.offset + part.offset - shift) as isize);
        // SAFETY: the values kept lie in the image row, inside `x`.
        v = unsafe { _mm512_mask_loadu_ps(v, (mask << shift) as u16, at) };
    }
    v
}
