//! A convolution's column matrix (see [`super::im2col`]) packed panel by panel straight
//! from its images, so that the GEMM never needs it written out ("implicit im2col", as
//! implicit-GEMM convolutions in cuDNN and oneDNN do): the matrix, `kh*kw` times larger
//! than the input for a stride of 1, is never written whole, kept, or read back from
//! memory.
//!
//! Entry `(r, j)` of the matrix, row `r = (c, ki, kj)` and column `j = (image, oy, ox)`,
//! is `x[image, c, iy, ix]` with `iy = oy*sh - pad_top + ki`, `ix = ox*sw - pad_left + kj`,
//! or zero when that lies in the padding. Its offset in `x` is a sum of a part from the row
//! (`c*h*w + ki*w + kj`) and a part from the column (`image*c*h*w + iy0*w + ix0`, with
//! `iy0 = oy*sh - pad_top`, `ix0 = ox*sw - pad_left`), and it is inside the image when
//! `iy0 + ki` and `ix0 + kj` are. So a packed panel row is one AVX-512 gather per 16 values:
//! per-lane parts in vectors, the step's part broadcast, the padding masked off.

use super::avx512_gemm::{PanelSource, NR};
use super::im2col::{im2col, im2col_par, ConvGeom};

/// The column matrix of `images` consecutive images of `x`: rows `r = (c, ki, kj)`,
/// columns `(image, oy, ox)`, exactly as [`super::im2col::im2col`] writes it for the
/// images side by side.
#[derive(Clone, Copy, Debug)]
pub struct Im2colView<'a> {
    g: &'a ConvGeom,
    x: &'a [f32],
    images: usize,
}

impl<'a> Im2colView<'a> {
    /// The columns of the images in `x` (a whole number of `g.image_len()` values).
    pub fn new(g: &'a ConvGeom, x: &'a [f32]) -> Self {
        let img = g.image_len();
        assert!(
            img > 0 && x.len().is_multiple_of(img),
            "im2col: not a whole number of images"
        );
        assert!(
            x.len() < i32::MAX as usize / 2,
            "im2col: chunk too large to index"
        );
        Im2colView {
            g,
            x,
            images: x.len() / img,
        }
    }

    pub fn rows(&self) -> usize {
        self.g.col_rows()
    }

    pub fn cols(&self) -> usize {
        self.images * self.g.out_positions()
    }

    /// The whole matrix into `col` (`rows() x cols()`, row-major); with `par`, one image's
    /// channels split over the current rayon pool.
    pub fn write(&self, col: &mut [f32], par: bool) {
        let (img, p, ld) = (self.g.image_len(), self.g.out_positions(), self.cols());
        if par && self.images == 1 {
            return im2col_par(self.g, self.x, col, ld);
        }
        for i in 0..self.images {
            im2col(
                self.g,
                &self.x[i * img..(i + 1) * img],
                &mut col[i * p..],
                ld,
            );
        }
    }

    /// The transpose (positions by `(c, ki, kj)`), as the weight gradient `dY · colᵀ`
    /// reads it.
    pub fn t(self) -> Im2colViewT<'a> {
        Im2colViewT(self)
    }

    /// Row `r`'s part of an entry: (offset, ki, kj).
    fn row_parts(&self, r: usize) -> Part {
        self.row_walk(r, 1).next().expect("one row")
    }

    /// Column `j`'s part of an entry: (offset, iy0, ix0).
    fn col_parts(&self, j: usize) -> Part {
        self.col_walk(j, 1).next().expect("one column")
    }

    /// `dst[s * NR + l] = entry(step s, lane l)` for `steps` steps, where an entry sums the
    /// step's part and lane `l`'s, `lane(l)` for `l < lanes`; the other lanes are zero.
    fn gather(
        &self,
        steps: impl Iterator<Item = Part>,
        (lanes, lane): (usize, impl Fn(usize) -> Part),
        dst: &mut [f32],
    ) {
        assert!(lanes <= NR);
        // A lane that never reads: its y part puts it far outside the image.
        let unused = Part {
            offset: 0,
            y: i32::MIN / 2,
            x: 0,
        };
        let parts: [Part; NR] = std::array::from_fn(|l| if l < lanes { lane(l) } else { unused });
        let table: [[i32; NR]; 3] = [
            parts.map(|p| p.offset),
            parts.map(|p| p.y),
            parts.map(|p| p.x),
        ];
        let (h, w) = (self.g.h as i32, self.g.w as i32);
        // Halves made of a few runs of consecutive values are masked loads, others gathers.
        let plans: [Option<Runs>; NR / 16] = std::array::from_fn(|half| {
            Runs::of(&parts[half * 16..][..16], lanes.saturating_sub(half * 16))
        });
        #[cfg(target_arch = "x86_64")]
        // SAFETY: our kernel runs (and so this) only where AVX-512 is present; every lane
        // the masks keep lies inside an image of `x` (see `gather_half`).
        unsafe {
            pack_rows(self.x, steps, (&plans, &table), (h, w), dst)
        };
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("AVX-512 on {plans:?} {table:?} {h} {w} {}", dst.len());
    }

    /// The parts of rows `r0..r0 + count` in order (row `r = (c, ki, kj)`: offset `c*h*w +
    /// ki*w + kj`, `ki`, `kj`), walked without a division per row.
    fn row_walk(&self, r0: usize, count: usize) -> impl Iterator<Item = Part> + '_ {
        let g = self.g;
        let taps = g.kh * g.kw;
        let (mut c, mut ki, mut kj) = (r0 / taps, r0 % taps / g.kw, r0 % g.kw);
        (0..count).map(move |_| {
            let part = Part {
                offset: (c * g.h * g.w + ki * g.w + kj) as i32,
                y: ki as i32,
                x: kj as i32,
            };
            (ki, kj) = next_of(ki, kj, g.kw);
            if ki == g.kh {
                (c, ki) = (c + 1, 0);
            }
            part
        })
    }

    /// The parts of columns `j0..j0 + count` in order (column `j = (image, oy, ox)`:
    /// offset `image*c*h*w + iy0*w + ix0`, `iy0`, `ix0`), walked without a division per
    /// column.
    fn col_walk(&self, j0: usize, count: usize) -> impl Iterator<Item = Part> + '_ {
        let g = self.g;
        let p = g.out_positions();
        let (mut image, mut oy, mut ox) = (j0 / p, j0 % p / g.ow, j0 % g.ow);
        (0..count).map(move |_| {
            let (iy0, ix0) = (
                (oy * g.sh) as i32 - g.pad_top as i32,
                (ox * g.sw) as i32 - g.pad_left as i32,
            );
            let part = Part {
                offset: (image * g.image_len()) as i32 + iy0 * g.w as i32 + ix0,
                y: iy0,
                x: ix0,
            };
            (oy, ox) = next_of(oy, ox, g.ow);
            if oy == g.oh {
                (image, oy) = (image + 1, 0);
            }
            part
        })
    }
}

/// The index after `(outer, inner)` when `inner` counts to `len`.
fn next_of(outer: usize, inner: usize, len: usize) -> (usize, usize) {
    if inner + 1 == len {
        (outer + 1, 0)
    } else {
        (outer, inner + 1)
    }
}

/// Every step's packed row (see [`Im2colView::gather`]): per half, masked loads of its
/// runs where `plans` has them, else a gather through `table`; one function compiled for
/// AVX-512 so that the row kernels inline into the loop.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,bmi2")]
unsafe fn pack_rows(
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
struct Part {
    offset: i32,
    y: i32,
    x: i32,
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
    fn span(&self) -> i32 {
        (self.len as i32 - 1) * self.stride + 1
    }
}

/// A half of a panel row (16 lanes) as a few [`Run`]s: a convolution's positions along
/// output rows (stride 1 or 2), or a weight gradient's taps `kj` of a kernel row. Each run
/// is one or two masked loads and a permute; lanes past the used ones stay zero.
#[derive(Clone, Copy, Debug)]
struct Runs {
    runs: [Option<Run>; MAX_RUNS],
}

impl Runs {
    /// The runs of `parts` (a half's 16 lanes, the first `used` of them read), or `None`
    /// when there are more than [`MAX_RUNS`].
    fn of(parts: &[Part], used: usize) -> Option<Runs> {
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

impl PanelSource for Im2colView<'_> {
    fn shape(&self) -> (usize, usize) {
        (self.rows(), self.cols())
    }

    /// Steps are the rows `k0..k0+kc`, lanes the positions `j0..j0+NR`.
    fn pack(&self, k0: usize, kc: usize, j0: usize, dst: &mut [f32]) {
        let lanes = (NR.min(self.cols() - j0), |l| self.col_parts(j0 + l));
        self.gather(self.row_walk(k0, kc), lanes, dst);
    }
}

/// The transpose of an [`Im2colView`].
#[derive(Clone, Copy, Debug)]
pub struct Im2colViewT<'a>(Im2colView<'a>);

impl PanelSource for Im2colViewT<'_> {
    fn shape(&self) -> (usize, usize) {
        (self.0.cols(), self.0.rows())
    }

    /// Steps are the positions `k0..k0+kc`, lanes the rows `j0..j0+NR`.
    fn pack(&self, k0: usize, kc: usize, j0: usize, dst: &mut [f32]) {
        let v = &self.0;
        let lanes = (NR.min(v.rows() - j0), |l| v.row_parts(j0 + l));
        v.gather(v.col_walk(k0, kc), lanes, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::super::avx512_gemm::pack_b;
    use super::super::col2im::tests::geom;
    use super::super::matrix::MatRef;
    use super::*;
    use proptest::prelude::*;

    /// The whole column matrix of `images` images as `im2col` writes it.
    fn explicit(g: &ConvGeom, x: &[f32]) -> (Vec<f32>, usize) {
        let (p, img) = (g.out_positions(), g.image_len());
        let images = x.len() / img;
        let ld = images * p;
        let mut col = vec![f32::NAN; g.col_rows() * ld];
        for i in 0..images {
            im2col(g, &x[i * img..(i + 1) * img], &mut col[i * p..], ld);
        }
        (col, ld)
    }

    /// The panels of the view and of its transpose from row fraction `r` and column
    /// `j0 % columns` against the explicit column matrix packed as a plain matrix.
    fn check_panels(
        g: &ConvGeom,
        images: usize,
        r: f64,
        j0: usize,
        seed: u32,
    ) -> Result<(), TestCaseError> {
        let x: Vec<f32> = (0..images * g.image_len())
            .map(|i| ((i as u32).wrapping_mul(2654435761) ^ seed) as f32 / u32::MAX as f32 - 0.5)
            .collect();
        let (col, ld) = explicit(g, &x);
        let view = Im2colView::new(g, &x);
        let rows = g.col_rows();
        let r0 = (r * rows as f64) as usize % rows;
        let j0 = j0 % ld;
        if super::super::simd::level() != super::super::simd::Level::Avx512 {
            return Ok(());
        }
        let mat = MatRef::new(&col, rows, ld);
        for (source, expect) in [(&view as &dyn PanelSource, mat), (&view.t(), mat.t())] {
            let (k0, jj) = if expect.rows == rows {
                (r0, j0)
            } else {
                (j0, r0)
            };
            let kc = expect.rows - k0;
            let (mut got, mut want) = (vec![f32::NAN; kc * NR], vec![f32::NAN; kc * NR]);
            source.pack(k0, kc, jj, &mut got);
            pack_b(expect, k0, kc, jj, &mut want);
            prop_assert_eq!(got, want);
        }
        Ok(())
    }

    /// Stride-1 geometries with output rows of 16 or more (panels whose halves read
    /// consecutive values), some padded, some not a whole number of halves wide.
    fn wide_geom() -> impl Strategy<Value = ConvGeom> {
        (
            1usize..3,
            1usize..5,
            14usize..40,
            1usize..4,
            1usize..4,
            0usize..3,
            0usize..3,
        )
            .prop_map(|(c, h, w, kh, kw, pad, extra)| {
                let (kh, pad_h) = (kh.min(h), pad.min(kh.min(h) - 1));
                let (pad_left, pad_right) = (pad.min(kw - 1), extra.min(kw - 1));
                ConvGeom {
                    c,
                    h,
                    w,
                    kh,
                    kw,
                    sh: 1,
                    sw: 1,
                    pad_top: pad_h,
                    pad_left,
                    oh: h + 2 * pad_h + 1 - kh,
                    ow: w + pad_left + pad_right + 1 - kw,
                }
            })
    }

    proptest! {
        /// On wide stride-1 rows too (masked loads instead of gathers), every panel of the
        /// view equals the explicit column matrix's: from the start of an output row (the
        /// halves consecutive) or from elsewhere.
        #[test]
        fn wide_panels_match_explicit_im2col(g in wide_geom(), images in 1usize..3,
                                             row in 0usize..8, shift in 0usize..20, seed: u32) {
            let j0 = row * g.ow + if shift < 10 { 0 } else { shift };
            check_panels(&g, images, 0.0, j0, seed)?;
        }

        /// Every packed panel of the view and of its transpose, from any row and column,
        /// equals the explicit column matrix's (packed as a plain matrix), padding, strides,
        /// image boundaries and a panel past the last column included.
        #[test]
        fn panels_match_explicit_im2col(g in geom(), images in 1usize..4,
                                        r in 0.0f64..1.0, j in 0.0f64..1.0, seed: u32) {
            let j0 = (j * (images * g.out_positions()) as f64) as usize;
            check_panels(&g, images, r, j0, seed)?;
        }
    }
}
