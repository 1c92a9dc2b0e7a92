//! col2im: the adjoint of [`im2col`](super::im2col::im2col). Each image pixel is the sum
//! of the column entries that were read from it (overlapping windows add up).
//! Used by the backward pass of conv2d and the forward pass of conv_transpose2d.
//!
//! Pixel-stationary: each image row is summed by phase `ix mod sw`, in which a column
//! row's entries land on consecutive places (`ix = ox*sw + kj - pad_left`, so phase `(kj -
//! pad_left) mod sw`, place `ox + (kj - pad_left) div sw`): sixteen places per AVX-512
//! register with each tap a masked load, or elsewhere contiguous vectorized adds into a
//! small buffer; the row is then written once, its phases interleaved. Scattering each column row onto the image instead touches
//! every `sw`-th value, one at a time, and needs the image zeroed first. Each pixel sums
//! its entries in the order of their rows (`ki`, then `kj`), starting from zero.

use super::im2col::ConvGeom;
use super::simd::simd_versions;
use std::mem::MaybeUninit;

/// Writes the image `x` (`c*h*w` values) from the column matrix `col` (rows `ld` apart):
/// every pixel is overwritten with the sum of its entries (zero where no window reads it).
pub fn col2im(g: &ConvGeom, col: &[f32], ld: usize, x: &mut [f32]) {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and `col2im_into` writes only
    // initialized values.
    let x = unsafe { &mut *(x as *mut [f32] as *mut [MaybeUninit<f32>]) };
    col2im_into(g, col, ld, x);
}

simd_versions! {
    /// [`col2im`] into memory that need not be initialized: every value of `x` is written.
    pub fn col2im_into(g: &ConvGeom, col: &[f32], ld: usize, x: &mut [MaybeUninit<f32>]) =
        col2im_body;
}

#[inline(always)]
fn col2im_body<const FMA: bool>(g: &ConvGeom, col: &[f32], ld: usize, x: &mut [MaybeUninit<f32>]) {
    let wide = cfg!(target_arch = "x86_64") && super::simd::level() == super::simd::Level::Avx512;
    sum_rows(g, col, ld, x, wide);
}

/// The rows of the image, each summed sixteen places at a time in AVX-512 registers when
/// `wide` (which must then be present), else in a buffer.
#[inline(always)]
fn sum_rows(g: &ConvGeom, col: &[f32], ld: usize, x: &mut [MaybeUninit<f32>], wide: bool) {
    assert_eq!(x.len(), g.image_len(), "col2im: image has the wrong size");
    let p = g.out_positions();
    assert!(
        ld >= p && col.len() >= (g.col_rows() - 1) * ld + p,
        "col2im: column buffer too small"
    );
    let mut row = PhaseRow::new(g);
    // The window rows `oy` that read each image row, and at which tap `ki`.
    let windows: Vec<Vec<(usize, usize)>> = (0..g.h)
        .map(|iy| {
            (0..g.kh)
                .filter_map(|ki| {
                    let t = (iy + g.pad_top).checked_sub(ki)?;
                    (t % g.sh == 0 && t / g.sh < g.oh).then_some((ki, t / g.sh))
                })
                .collect()
        })
        .collect();
    for c in 0..g.c {
        for (iy, windows) in windows.iter().enumerate() {
            // Where each window's row of tap `kj = 0` starts in `col`.
            let firsts = windows
                .iter()
                .map(|&(ki, oy)| ((c * g.kh + ki) * g.kw) * ld + oy * g.ow);
            if wide {
                // SAFETY: the caller checked that AVX-512 is present.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    row.sum_avx512(col, ld, firsts)
                };
            } else {
                row.sum(col, ld, firsts);
            }
            row.write(&mut x[(c * g.h + iy) * g.w..][..g.w]);
        }
    }
}

/// One image row of `w` pixels summed by phase: pixel `ix` at `sums[(ix % sw) * stride +
/// ix / sw]`, with where each tap `kj`'s entries land.
struct PhaseRow {
    sums: Vec<f32>,
    sw: usize,
    /// Values per phase in `sums`: the pixels of phase 0, rounded up to whole vectors.
    stride: usize,
    /// Per `kj`: where a window row's entries land.
    taps: Vec<Tap>,
}

/// Entry `ox` of a window row at one tap lands on place `ox + offset` of phase `phase`;
/// places `lo..hi` are the ones inside the image row.
#[derive(Clone, Copy)]
struct Tap {
    phase: usize,
    offset: isize,
    lo: usize,
    hi: usize,
}

impl PhaseRow {
    /// Entry `ox` of tap `kj` reads pixel `ix = ox*sw + kj - pad_left`: in phase `(kj -
    /// pad_left) mod sw`, at place `ox + (kj - pad_left) div sw`, consecutive places for
    /// consecutive entries; those with `ix` in `0..w` are kept.
    fn new(g: &ConvGeom) -> Self {
        let (w, sw) = (g.w as isize, g.sw as isize);
        let taps = (0..g.kw)
            .map(|kj| {
                let shift = kj as isize - g.pad_left as isize;
                let (phase, offset) = (shift.rem_euclid(sw), shift.div_euclid(sw));
                // Pixels of this phase inside the row: ix = phase + place*sw < w.
                let inside = ((w - phase).max(0) as usize).div_ceil(g.sw) as isize;
                let lo = offset.clamp(0, inside);
                let hi = (g.ow as isize + offset).clamp(lo, inside);
                Tap {
                    phase: phase as usize,
                    offset,
                    lo: lo as usize,
                    hi: hi as usize,
                }
            })
            .collect();
        let stride = g.w.div_ceil(g.sw).next_multiple_of(16);
        PhaseRow {
            sums: vec![0.0; g.sw * stride],
            sw: g.sw,
            stride,
            taps,
        }
    }

    /// The row's sums from the window rows starting at `firsts` (tap `kj`'s row `kj * ld`
    /// further), window by window and tap by tap.
    fn sum(&mut self, col: &[f32], ld: usize, firsts: impl Iterator<Item = usize>) {
        self.sums.fill(0.0);
        for first in firsts {
            for (kj, t) in self.taps.iter().enumerate().filter(|(_, t)| t.lo < t.hi) {
                let src = &col[first + kj * ld..];
                let (a, b) = (t.lo as isize - t.offset, t.hi as isize - t.offset);
                let dst = &mut self.sums[t.phase * self.stride..][t.lo..t.hi];
                for (d, v) in dst.iter_mut().zip(&src[a as usize..b as usize]) {
                    *d += v;
                }
            }
        }
    }

    /// [`Self::sum`] sixteen places at a time in a register, each tap's entries read with
    /// a masked load: no partial vector is stored and read back at another offset (a
    /// store-forwarding stall per tap).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn sum_avx512(
        &mut self,
        col: &[f32],
        ld: usize,
        firsts: impl Iterator<Item = usize> + Clone,
    ) {
        use std::arch::x86_64::*;
        for phase in 0..self.sw {
            for m0 in (0..self.stride).step_by(16) {
                let mut acc = _mm512_setzero_ps();
                for first in firsts.clone() {
                    for (kj, t) in self.taps.iter().enumerate() {
                        let (lo, hi) = (t.lo.max(m0), t.hi.min(m0 + 16));
                        if t.phase != phase || lo >= hi {
                            continue;
                        }
                        let mask = (((1u32 << (hi - m0)) - 1) & !((1u32 << (lo - m0)) - 1)) as u16;
                        let at = (first + kj * ld) as isize + m0 as isize - t.offset;
                        // SAFETY: the lanes kept are places lo..hi, entries lo - offset ..
                        // hi - offset of the window row, inside `col` (checked by col2im's
                        // assertions on its size); masked lanes are not read.
                        let v = unsafe {
                            _mm512_maskz_loadu_ps(mask, col.as_ptr().wrapping_offset(at))
                        };
                        acc = _mm512_add_ps(acc, v);
                    }
                }
                // SAFETY: 16 values from m0 < stride, a multiple of 16, in `sums`.
                unsafe {
                    _mm512_storeu_ps(self.sums[phase * self.stride + m0..].as_mut_ptr(), acc)
                };
            }
        }
    }

    /// `row[ix]` = pixel `ix`: the phases back in pixel order.
    #[inline(always)]
    fn write(&self, row: &mut [MaybeUninit<f32>]) {
        let (sums, per_phase) = (&self.sums, self.stride);
        match self.sw {
            1 => {
                for (d, s) in row.iter_mut().zip(sums) {
                    d.write(*s);
                }
            }
            2 => {
                let (even, odd) = sums.split_at(per_phase);
                for (pair, (e, o)) in row.chunks_exact_mut(2).zip(even.iter().zip(odd)) {
                    pair[0].write(*e);
                    pair[1].write(*o);
                }
                if row.len() % 2 == 1 {
                    row[row.len() - 1].write(even[row.len() / 2]);
                }
            }
            sw => {
                for (ix, d) in row.iter_mut().enumerate() {
                    d.write(sums[(ix % sw) * per_phase + ix / sw]);
                }
            }
        }
    }
}

/// [`col2im`] with the channels split over the current rayon pool (each channel's planes
/// are summed from its own rows of `col`), into memory that need not be initialized:
/// every value of `x` is written; the same result.
pub fn col2im_par_into(g: &ConvGeom, col: &[f32], ld: usize, x: &mut [MaybeUninit<f32>]) {
    use rayon::prelude::*;
    let per_channel = g.kh * g.kw;
    let group = g.c.div_ceil(rayon::current_num_threads()).max(1);
    let plane = g.h * g.w;
    x.par_chunks_mut(group * plane)
        .enumerate()
        .for_each(|(i, planes)| {
            let sub = ConvGeom {
                c: planes.len() / plane,
                ..*g
            };
            col2im_into(&sub, &col[i * group * per_channel * ld..], ld, planes);
        });
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::im2col::im2col;
    use super::*;
    use proptest::prelude::*;

    /// Convolution geometries with any strides and (asymmetric) padding that fit.
    pub(in crate::kernels) fn geom() -> impl Strategy<Value = ConvGeom> {
        geom_within(1..9, 1..9)
    }

    /// [`geom`] with image rows of 9 to 40 pixels: several vectors of 16 places per phase.
    fn wide_geom() -> impl Strategy<Value = ConvGeom> {
        geom_within(1..4, 9..41)
    }

    /// Geometries whose image is `h` rows of `w` pixels; the rest as in [`geom`].
    fn geom_within(
        h: std::ops::Range<usize>,
        w: std::ops::Range<usize>,
    ) -> impl Strategy<Value = ConvGeom> {
        (
            1usize..4,
            h,
            w,
            1usize..5,
            1usize..5,
            1usize..4,
            1usize..4,
            0usize..3,
            0usize..3,
            0usize..3,
            0usize..3,
        )
            .prop_filter_map(
                "kernel larger than padded input",
                |(c, h, w, kh, kw, sh, sw, pt, pb, pl, pr)| {
                    if h + pt + pb < kh || w + pl + pr < kw {
                        return None;
                    }
                    let oh = (h + pt + pb - kh) / sh + 1;
                    let ow = (w + pl + pr - kw) / sw + 1;
                    Some(ConvGeom {
                        c,
                        h,
                        w,
                        kh,
                        kw,
                        sh,
                        sw,
                        pad_top: pt,
                        pad_left: pl,
                        oh,
                        ow,
                    })
                },
            )
    }

    proptest! {
        /// im2col against a direct gather, and col2im as its exact adjoint:
        /// <im2col(x), y> == <x, col2im(y)>.
        #[test]
        fn im2col_gathers_and_col2im_is_adjoint(g in geom(), seed: u32) {
            let x: Vec<f32> = (0..g.image_len()).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 97) as f32 - 48.0).collect();
            let ld = g.out_positions() + 3;
            let mut col = vec![f32::NAN; g.col_rows() * ld];
            im2col(&g, &x, &mut col, ld);
            for c in 0..g.c { for ki in 0..g.kh { for kj in 0..g.kw {
                let r = (c * g.kh + ki) * g.kw + kj;
                for oy in 0..g.oh { for ox in 0..g.ow {
                    let iy = (oy * g.sh + ki) as isize - g.pad_top as isize;
                    let ix = (ox * g.sw + kj) as isize - g.pad_left as isize;
                    let expect = if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                        x[(c * g.h + iy as usize) * g.w + ix as usize]
                    } else { 0.0 };
                    prop_assert_eq!(col[r * ld + oy * g.ow + ox], expect);
                }}
            }}}
            let y: Vec<f32> = (0..col.len()).map(|i| ((i as u32).wrapping_mul(40503).wrapping_add(seed) % 31) as f32 - 15.0).collect();
            let mut back = vec![0.0; g.image_len()];
            col2im(&g, &y, ld, &mut back);
            let lhs: f64 = (0..g.col_rows()).flat_map(|r| (0..g.out_positions()).map(move |q| r * ld + q))
                .map(|i| col[i] as f64 * y[i] as f64).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| *a as f64 * *b as f64).sum();
            prop_assert_eq!(lhs, rhs);
        }

        /// Every pixel is overwritten (the image starts as NaN) with the same bits as adding
        /// each column entry onto a zeroed image in row order, the scatter col2im was; with
        /// the rows summed in a buffer, and in AVX-512 registers where present.
        #[test]
        fn col2im_overwrites_with_the_sums_in_row_order(g in prop_oneof![geom(), wide_geom()], extra in 0usize..3, seed: u32) {
            let ld = g.out_positions() + extra;
            let col: Vec<f32> = (0..g.col_rows() * ld)
                .map(|i| ((i as u32).wrapping_mul(2654435761) ^ seed) as f32 / u32::MAX as f32 - 0.5)
                .collect();
            let mut want = vec![0.0f32; g.image_len()];
            for c in 0..g.c { for ki in 0..g.kh { for kj in 0..g.kw {
                let r = (c * g.kh + ki) * g.kw + kj;
                for oy in 0..g.oh { for ox in 0..g.ow {
                    let iy = (oy * g.sh + ki) as isize - g.pad_top as isize;
                    let ix = (ox * g.sw + kj) as isize - g.pad_left as isize;
                    if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                        want[(c * g.h + iy as usize) * g.w + ix as usize] += col[r * ld + oy * g.ow + ox];
                    }
                }}
            }}}
            let avx512 = super::super::simd::level() == super::super::simd::Level::Avx512;
            for wide in [false, avx512] {
                let mut got = vec![MaybeUninit::new(f32::NAN); g.image_len()];
                sum_rows(&g, &col, ld, &mut got, wide);
                let got: Vec<u32> = got.iter().map(|v| unsafe { v.assume_init() }.to_bits()).collect();
                prop_assert_eq!(got, want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
        }

        /// The channel-parallel versions give the same bits as the serial ones, on pools
        /// of several sizes (more threads than channels too).
        #[test]
        fn parallel_versions_match_the_serial_ones(g in geom(), threads in 1usize..5) {
            use super::super::im2col::im2col_par;
            let x: Vec<f32> = (0..g.image_len()).map(|i| (i % 23) as f32 - 11.0).collect();
            let ld = g.out_positions();
            let mut serial = vec![0.0; g.col_rows() * ld];
            im2col(&g, &x, &mut serial, ld);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut parallel = vec![f32::NAN; g.col_rows() * ld];
            pool.install(|| im2col_par(&g, &x, &mut parallel, ld));
            prop_assert_eq!(&parallel, &serial);
            let mut back = vec![1.0; g.image_len()];
            col2im(&g, &serial, ld, &mut back);
            let mut back_par = vec![MaybeUninit::new(1.0); g.image_len()];
            pool.install(|| col2im_par_into(&g, &serial, ld, &mut back_par));
            let back_par: Vec<f32> = back_par.iter().map(|v| unsafe { v.assume_init() }).collect();
            prop_assert_eq!(back_par, back);
        }
    }
}
