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
        // Rows of consecutive halves are masked loads, others gathers.
        let firsts = consecutive_halves(&parts);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: our kernel runs (and so this) only where AVX-512 is present; every lane
        // the masks keep lies inside an image of `x` (see `gather_row`).
        unsafe {
            pack_rows(self.x, steps, (&firsts, &table), (h, w), dst)
        };
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("AVX-512 on {firsts:?} {table:?} {h} {w} {}", dst.len());
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

/// Every step's packed row (see [`Im2colView::gather`]): masked loads where `firsts` gives
/// each half's first lane, else gathers through `table`; one function compiled for AVX-512
/// so that the row kernels inline into the loop.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pack_rows(
    x: &[f32],
    steps: impl Iterator<Item = Part>,
    (firsts, table): (&Option<[Part; NR / 16]>, &[[i32; NR]; 3]),
    (h, w): (i32, i32),
    dst: &mut [f32],
) {
    for (s, step) in steps.enumerate() {
        let row: &mut [f32; NR] = (&mut dst[s * NR..(s + 1) * NR]).try_into().unwrap();
        // SAFETY: as the caller's.
        unsafe {
            match firsts {
                Some(firsts) => load_row(x, step, firsts, (h, w), row),
                None => gather_row(x, step, table, (h, w), row),
            }
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

/// The first lane's part of each half of a panel row when each half's 16 lanes read
/// consecutive values of one input row (`offset`, `x` one more per lane, `y` the same):
/// a stride-1 convolution's positions along an output row of at least 16.
fn consecutive_halves(parts: &[Part; NR]) -> Option<[Part; NR / 16]> {
    let halves: [Part; NR / 16] = std::array::from_fn(|h| parts[h * 16]);
    let follows = |l: usize| {
        let (first, p, d) = (halves[l / 16], parts[l], (l % 16) as i32);
        p.offset == first.offset + d && p.y == first.y && p.x == first.x + d
    };
    (0..NR).all(follows).then_some(halves)
}

/// [`gather_row`] for rows whose halves are consecutive ([`consecutive_halves`]): one
/// masked load per half, the lanes outside the image row (or all, outside the image)
/// masked off.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn load_row(
    x: &[f32],
    step: Part,
    firsts: &[Part; NR / 16],
    (h, w): (i32, i32),
    row: &mut [f32; NR],
) {
    use std::arch::x86_64::*;
    for (half, first) in firsts.iter().enumerate() {
        let iy = step.y + first.y;
        let ix0 = step.x + first.x;
        // Lanes l with 0 <= ix0 + l < w.
        let (lo, hi) = ((-ix0).clamp(0, 16), (w - ix0).clamp(0, 16));
        let mask = if (0..h).contains(&iy) && lo < hi {
            (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as u16
        } else {
            0
        };
        let at = x
            .as_ptr()
            .wrapping_offset((step.offset + first.offset) as isize);
        // SAFETY: the lanes kept read inside the image (as in `gather_row`); masked lanes
        // are not read.
        let v = unsafe { _mm512_maskz_loadu_ps(mask, at) };
        unsafe { _mm512_storeu_ps(row[half * 16..].as_mut_ptr(), v) };
    }
}

/// One packed row: lane `l` is `x[step.offset + offset[l]]` where `step.y + y[l]` lies in
/// `0..h` and `step.x + x[l]` in `0..w`, else zero.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn gather_row(
    x: &[f32],
    step: Part,
    [offset, y, xs]: &[[i32; NR]; 3],
    (h, w): (i32, i32),
    row: &mut [f32; NR],
) {
    use std::arch::x86_64::*;
    for half in 0..NR / 16 {
        // SAFETY: 16 values from `half * 16` of arrays of NR.
        let load = |a: &[i32; NR]| unsafe { _mm512_loadu_si512(a[half * 16..].as_ptr().cast()) };
        let iy = _mm512_add_epi32(load(y), _mm512_set1_epi32(step.y));
        let ix = _mm512_add_epi32(load(xs), _mm512_set1_epi32(step.x));
        // Unsigned compares: a negative coordinate is a huge unsigned one.
        let inside = _mm512_cmplt_epu32_mask(iy, _mm512_set1_epi32(h))
            & _mm512_cmplt_epu32_mask(ix, _mm512_set1_epi32(w));
        let index = _mm512_add_epi32(load(offset), _mm512_set1_epi32(step.offset));
        // A lane inside the image is inside its image's values: offsets of valid
        // coordinates are < x.len(), checked at construction to fit an i32.
        let v = unsafe {
            _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), inside, index, x.as_ptr().cast())
        };
        unsafe { _mm512_storeu_ps(row[half * 16..].as_mut_ptr(), v) };
    }
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
