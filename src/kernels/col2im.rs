//! col2im: the adjoint of [`im2col`](super::im2col::im2col). Each column entry is added
//! back onto the image pixel it was read from, so overlapping windows accumulate.
//! Used by the backward pass of conv2d and the forward pass of conv_transpose2d.

use super::im2col::ConvGeom;

/// Adds the column matrix `col` (rows `ld` apart) into the image `x` (`c*h*w` values).
/// `x` is accumulated into, not overwritten.
pub fn col2im(g: &ConvGeom, col: &[f32], ld: usize, x: &mut [f32]) {
    assert_eq!(x.len(), g.image_len(), "col2im: image has the wrong size");
    let p = g.out_positions();
    assert!(
        ld >= p && col.len() >= (g.col_rows() - 1) * ld + p,
        "col2im: column buffer too small"
    );
    let mut row = 0;
    for c in 0..g.c {
        let plane = &mut x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (y_lo, y_hi) = ConvGeom::valid_range(ki, g.sh, g.pad_top, g.h, g.oh);
            for kj in 0..g.kw {
                let (x_lo, x_hi) = ConvGeom::valid_range(kj, g.sw, g.pad_left, g.w, g.ow);
                let src = &col[row * ld..row * ld + p];
                row += 1;
                if x_lo >= x_hi {
                    continue;
                }
                for oy in y_lo..y_hi {
                    let iy = oy * g.sh + ki - g.pad_top;
                    let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let vals = &src[oy * g.ow + x_lo..oy * g.ow + x_hi];
                    let ix0 = x_lo * g.sw + kj - g.pad_left;
                    scatter_add_strided(&mut dst[ix0..], vals, g.sw);
                }
            }
        }
    }
}

/// `dst[o * stride] += vals[o]` for a non-empty `vals`, with strides 1 and 2 written out
/// without bounds checks.
#[inline(always)]
fn scatter_add_strided(dst: &mut [f32], vals: &[f32], stride: usize) {
    let n = vals.len();
    match stride {
        1 => {
            for (d, v) in dst[..n].iter_mut().zip(vals) {
                *d += v;
            }
        }
        2 => {
            let (last, body) = vals.split_last().expect("a row has values");
            for (pair, v) in dst.chunks_exact_mut(2).zip(body) {
                pair[0] += v;
            }
            dst[2 * (n - 1)] += last;
        }
        _ => {
            for (o, v) in vals.iter().enumerate() {
                dst[o * stride] += v;
            }
        }
    }
}

/// [`col2im`] with the channels split over the current rayon pool (each channel's planes
/// are summed from its own rows of `col`); the same result.
pub fn col2im_par(g: &ConvGeom, col: &[f32], ld: usize, x: &mut [f32]) {
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
            col2im(&sub, &col[i * group * per_channel * ld..], ld, planes);
        });
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::im2col::im2col;
    use super::*;
    use proptest::prelude::*;

    /// Convolution geometries with any strides and (asymmetric) padding that fit.
    pub(in crate::kernels) fn geom() -> impl Strategy<Value = ConvGeom> {
        (
            1usize..4,
            1usize..9,
            1usize..9,
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
            let mut back_par = vec![1.0; g.image_len()];
            pool.install(|| col2im_par(&g, &serial, ld, &mut back_par));
            prop_assert_eq!(back_par, back);
        }
    }
}
