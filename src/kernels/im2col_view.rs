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
//! `iy0 + ki` and `ix0 + kj` are. So a packed panel row's 16 values are at most one AVX-512
//! gather (per-lane parts in vectors, the step's part broadcast, the padding masked off),
//! and masked loads where the lanes lie along input rows (`super::panel_rows`); on AVX2,
//! groups of 8 lanes alike (`super::panel_rows_avx2`).

use super::im2col::{im2col, im2col_par, ConvGeom};
use super::packed_gemm::{PanelSource, NR};
#[cfg(target_arch = "x86_64")]
use super::panel_rows::{pack_rows, transposed_block};
use super::panel_rows::{Part, Runs};
use super::simd::{gathers_are_slow, Level};

/// Whether this CPU has AVX-512 (else the packing runs on AVX2).
fn avx512() -> bool {
    super::simd::level() == Level::Avx512
}

/// The column matrix of `images` consecutive images of `x`: rows `r = (c, ki, kj)`,
/// columns `(image, oy, ox)`, exactly as [`super::im2col::im2col`] writes it for the
/// images side by side.
#[derive(Clone, Copy, Debug)]
pub struct Im2colView<'a> {
    g: &'a ConvGeom,
    x: &'a [f32],
    images: usize,
    /// Whether panel halves (on AVX2, groups of 8 lanes) along input rows are packed by
    /// masked loads rather than gathers: where gathers are slow ([`gathers_are_slow`]),
    /// and on every AVX2 CPU (its groups are one or two masked loads).
    masked_runs: bool,
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
            masked_runs: gathers_are_slow() || !avx512(),
        }
    }

    /// The same view packing halves along input rows by masked loads (`true`) or by
    /// gathers, whatever this CPU prefers (for tests of both).
    #[cfg(test)]
    pub(crate) fn with_masked_runs(self, masked_runs: bool) -> Self {
        Im2colView {
            masked_runs,
            ..self
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
        #[cfg(target_arch = "x86_64")]
        if !avx512() {
            use super::panel_rows_avx2::{pack_rows, Read, GROUPS};
            let reads: [Read; GROUPS] = std::array::from_fn(|group| match self.masked_runs {
                true => Read::of(&parts[group * 8..][..8], lanes.saturating_sub(group * 8)),
                false => Read::Gather,
            });
            // SAFETY: our kernel runs (and so this) only where AVX2 and FMA are present;
            // every lane the masks keep lies inside an image of `x`.
            return unsafe { pack_rows(self.x, steps, (&reads, &table), (h, w), dst) };
        }
        // Halves made of a few runs of consecutive values are masked loads where gathers
        // are slow, others gathers.
        let plans: [Option<Runs>; NR / 16] = std::array::from_fn(|half| {
            let used = lanes.saturating_sub(half * 16);
            self.masked_runs
                .then(|| Runs::of(&parts[half * 16..][..16], used))
                .flatten()
        });
        #[cfg(target_arch = "x86_64")]
        // SAFETY: our kernel runs (and so this) only where AVX-512 is present; every lane
        // the masks keep lies inside an image of `x` (see `gather_half`).
        unsafe {
            pack_rows(self.x, steps, (&plans, &table), (h, w), dst)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = steps;
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

    /// Steps are the positions `k0..k0+kc`, lanes the rows `j0..j0+NR`. Where a stride-1
    /// convolution's blocks of 16 positions are whole output rows (or parts of one), each
    /// block is [`Im2colView::pack_t_blocks`]; the rest is gathered row by row.
    fn pack(&self, k0: usize, kc: usize, j0: usize, dst: &mut [f32]) {
        let v = &self.0;
        let lanes = (NR.min(v.rows() - j0), |l| v.row_parts(j0 + l));
        let g = v.g;
        let rows_whole = g.ow.is_multiple_of(16) || (g.ow >= 4 && 16_usize.is_multiple_of(g.ow));
        let blocks = if avx512() && g.sw == 1 && g.sh == 1 && rows_whole && k0.is_multiple_of(16) {
            kc / 16
        } else {
            0
        };
        if blocks > 0 {
            v.pack_t_blocks(k0, blocks, (j0, lanes.0), &mut dst[..blocks * 16 * NR]);
        }
        let done = blocks * 16;
        if done < kc {
            v.gather(
                v.col_walk(k0 + done, kc - done),
                lanes,
                &mut dst[done * NR..],
            );
        }
    }
}

impl Im2colView<'_> {
    /// The transposed panel's steps `k0..k0 + 16 * blocks` (positions) and lanes `j0..j0 +
    /// lanes` (rows) of a stride-1 convolution whose blocks of 16 positions are 1, 2 or 4
    /// segments of whole output rows (or lie in one): a lane's values in a segment are
    /// consecutive in its input row, one masked load, and each block of 16 lanes is
    /// transposed in registers (a gather per step and half otherwise).
    fn pack_t_blocks(
        &self,
        k0: usize,
        blocks: usize,
        (j0, lanes): (usize, usize),
        dst: &mut [f32],
    ) {
        let mut parts = [None; NR];
        for (l, part) in self.row_walk(j0, lanes).enumerate() {
            parts[l] = Some(part);
        }
        let (h, w) = (self.g.h as i32, self.g.w as i32);
        let seg = self.g.ow.min(16);
        let mut starts = self.col_walk(k0, blocks * 16).step_by(seg);
        for b in 0..blocks {
            let mut segments = [None; 4];
            for s in segments.iter_mut().take(16 / seg) {
                *s = starts.next();
            }
            let block = &mut dst[b * 16 * NR..][..16 * NR];
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `gather`: AVX-512 is present, and the lanes the masks keep lie
            // inside an image of `x`.
            unsafe {
                transposed_block(self.x, (&segments, seg as i32), &parts, (h, w), block)
            };
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("AVX-512 on {segments:?} {parts:?} {h} {w} {}", block.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::col2im::tests::geom;
    use super::super::matrix::MatRef;
    use super::super::packed_gemm::pack_b;
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
        let rows = g.col_rows();
        let r0 = (r * rows as f64) as usize % rows;
        let j0 = j0 % ld;
        if !super::super::gemm::packs_columns_in_place() {
            return Ok(());
        }
        let mat = MatRef::new(&col, rows, ld);
        // Both ways of packing halves along input rows: masked loads and gathers.
        let views = [true, false].map(|runs| Im2colView::new(g, &x).with_masked_runs(runs));
        let transposed = views.map(|v| v.t());
        let sources: [(&dyn PanelSource, MatRef); 4] = [
            (&views[0], mat),
            (&transposed[0], mat.t()),
            (&views[1], mat),
            (&transposed[1], mat.t()),
        ];
        for (source, expect) in sources {
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

        /// The transposed view's blocks of 16 positions of stride-1 output rows 4, 8, 16 or
        /// 32 wide (segments loaded whole and transposed) equal the explicit column
        /// matrix's, from any block, blocks across images included, with lanes from any
        /// row of the matrix.
        #[test]
        fn transposed_blocks_match_explicit_im2col(g in wide_geom(), wide in 0usize..4,
                                                   images in 1usize..4, block in 0usize..16,
                                                   r in 0.0f64..1.0, seed: u32) {
            // The same geometry made 4 to 32 outputs wide.
            let ow = 4 << wide;
            let pad_right = g.ow + g.kw - 1 - g.w - g.pad_left;
            let w = ow + g.kw - 1 - g.pad_left - pad_right;
            let g = ConvGeom { w, ow, ..g };
            let blocks = images * g.out_positions() / 16;
            let j0 = 16 * (block % blocks.max(1));
            check_panels(&g, images, r, j0, seed)?;
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
