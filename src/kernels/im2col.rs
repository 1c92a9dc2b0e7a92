//! im2col: unfold the receptive fields of a convolution into the columns of a matrix,
//! so that the convolution becomes one GEMM: `Y[o, (oy,ox)] = sum_r W[o, r] * col[r, (oy,ox)]`
//! with `r = (c, ki, kj)` in the order of a PyTorch weight `[O, C, kh, kw]`.

/// The geometry of a 2-D convolution over one image of `c x h x w`, producing `oh x ow`
/// outputs. Padding below/right is implied by `oh`/`ow` (positions past the image read 0),
/// which covers symmetric, asymmetric and TensorFlow-style "same" padding alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
}

impl ConvGeom {
    /// A stride-1 geometry: `c` planes of `h x w`, a `kh x kw` kernel, `pad_top` and
    /// `pad_left` zeros before the image, `oh x ow` outputs.
    pub fn stride1(
        c: usize,
        (h, w): (usize, usize),
        (kh, kw): (usize, usize),
        (pad_top, pad_left): (usize, usize),
        (oh, ow): (usize, usize),
    ) -> ConvGeom {
        let (sh, sw) = (1, 1);
        ConvGeom {
            c,
            h,
            w,
            kh,
            kw,
            sh,
            sw,
            pad_top,
            pad_left,
            oh,
            ow,
        }
    }

    /// Rows of the column matrix: `c * kh * kw`.
    pub fn col_rows(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Columns of the column matrix for one image: `oh * ow`.
    pub fn out_positions(&self) -> usize {
        self.oh * self.ow
    }

    pub fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// The convolution that carries gradients back through this one when its stride is 1:
    /// from `outs` planes of `oh x ow` to `c` planes of `h x w`, with the kernel flipped
    /// and padding `k - 1 - p` (so `dx = conv(dy, w')`, `w'[c, o, i, j] =
    /// w[o, c, kh-1-i, kw-1-j]`). `None` for other strides, or padding at least the kernel
    /// size on some side (the adjoint's padding would be negative).
    pub fn adjoint(&self, outs: usize) -> Option<ConvGeom> {
        let fits = self.sh == 1
            && self.sw == 1
            && self.pad_top < self.kh
            && self.pad_left < self.kw
            && self.oh <= self.h + self.pad_top
            && self.ow <= self.w + self.pad_left
            && self.oh + self.kh > self.h + self.pad_top
            && self.ow + self.kw > self.w + self.pad_left;
        fits.then_some(ConvGeom {
            c: outs,
            h: self.oh,
            w: self.ow,
            kh: self.kh,
            kw: self.kw,
            sh: 1,
            sw: 1,
            pad_top: self.kh - 1 - self.pad_top,
            pad_left: self.kw - 1 - self.pad_left,
            oh: self.h,
            ow: self.w,
        })
    }

    /// The output indices `ox` whose input column `ox*sw + kj - pad_left` lies in `[0, w)`,
    /// as a half-open range (same formula for rows).
    pub(crate) fn valid_range(
        k: usize,
        stride: usize,
        pad: usize,
        size: usize,
        out: usize,
    ) -> (usize, usize) {
        // need 0 <= o*stride + k - pad <= size - 1
        let lo = if pad > k {
            (pad - k).div_ceil(stride)
        } else {
            0
        };
        let hi = if size + pad > k {
            (size - 1 + pad - k) / stride + 1
        } else {
            0
        };
        (lo.min(out), hi.min(out).max(lo.min(out)))
    }
}

/// Writes the column matrix of one image `x` (`c*h*w` values) into `col`, whose rows are
/// `ld` apart (`ld >= oh*ow`, so several images can share one wide matrix).
pub fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32], ld: usize) {
    assert_eq!(x.len(), g.image_len(), "im2col: image has the wrong size");
    let p = g.out_positions();
    assert!(
        ld >= p && col.len() >= (g.col_rows() - 1) * ld + p,
        "im2col: column buffer too small"
    );
    let mut row = 0;
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (y_lo, y_hi) = ConvGeom::valid_range(ki, g.sh, g.pad_top, g.h, g.oh);
            for kj in 0..g.kw {
                let (x_lo, x_hi) = ConvGeom::valid_range(kj, g.sw, g.pad_left, g.w, g.ow);
                let dst = &mut col[row * ld..row * ld + p];
                row += 1;
                for oy in 0..g.oh {
                    let out_row = &mut dst[oy * g.ow..(oy + 1) * g.ow];
                    if oy < y_lo || oy >= y_hi {
                        out_row.fill(0.0);
                        continue;
                    }
                    let iy = oy * g.sh + ki - g.pad_top;
                    let src = &plane[iy * g.w..(iy + 1) * g.w];
                    out_row[..x_lo].fill(0.0);
                    out_row[x_hi..].fill(0.0);
                    if x_lo == x_hi {
                        continue;
                    }
                    let ix0 = x_lo * g.sw + kj - g.pad_left;
                    gather_strided(&mut out_row[x_lo..x_hi], &src[ix0..], g.sw);
                }
            }
        }
    }
}

/// `dst[o] = src[o * stride]` for a non-empty `dst`, with strides 1 and 2 (every
/// convolution of our models) written out without bounds checks.
#[inline(always)]
fn gather_strided(dst: &mut [f32], src: &[f32], stride: usize) {
    let n = dst.len();
    match stride {
        1 => dst.copy_from_slice(&src[..n]),
        2 => {
            let (last, body) = dst.split_last_mut().expect("a row has values");
            for (v, pair) in body.iter_mut().zip(src.chunks_exact(2)) {
                *v = pair[0];
            }
            *last = src[2 * (n - 1)];
        }
        _ => {
            for (o, v) in dst.iter_mut().enumerate() {
                *v = src[o * stride];
            }
        }
    }
}

/// [`im2col`] with the channels split over the current rayon pool (one image whose
/// columns alone must keep every thread busy); the same result.
pub fn im2col_par(g: &ConvGeom, x: &[f32], col: &mut [f32], ld: usize) {
    use rayon::prelude::*;
    let per_channel = g.kh * g.kw;
    let group = g.c.div_ceil(rayon::current_num_threads()).max(1);
    let plane = g.h * g.w;
    col.par_chunks_mut(group * per_channel * ld)
        .zip(x.par_chunks(group * plane))
        .for_each(|(rows, planes)| {
            let sub = ConvGeom {
                c: planes.len() / plane,
                ..*g
            };
            im2col(&sub, planes, rows, ld);
        });
}
