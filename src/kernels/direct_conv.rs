//! Direct stride-1 convolution kernels for layers with few channels on one side (a
//! decoder's last layer to 3 colour channels). As a GEMM such a layer is a product with 3
//! rows or an inner dimension of 3, which runs at a few percent of the machine's speed
//! (celeba64's last layer took half of all GEMM time); here the image is read once per
//! tap into 32 lanes and multiplied into up to [`GROUP`] output planes at once.
//!
//! Both kernels read a zero-bordered copy of their input ([`pad_image`]), so no tap needs a
//! bounds test: `xp[c, r, s] = x[c, r - pad_top, s - pad_left]`, zero outside the image,
//! with rows wide enough that a block of [`LANES`] outputs at any tap stays inside the row.

use super::simd::simd_versions;

/// Outputs per block of the kernels' accumulators: two vectors of 16, so that the four
/// output planes give eight independent chains of multiply-adds.
pub const LANES: usize = 32;
/// Output planes computed together (weights come in groups of this many, zero-filled).
pub const GROUP: usize = 4;
const _: () = assert!(GROUP == 4, "the kernels name four accumulators");

/// A stride-1 convolution of one image of `cin` planes of `h x w` into `oh x ow` planes,
/// with `pad_top` / `pad_left` zeros before the image (the bottom and right padding are
/// implied by `oh` and `ow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Direct {
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Direct {
    /// `ow` rounded up to whole blocks of [`LANES`].
    pub fn ow_blocks(&self) -> usize {
        self.ow.div_ceil(LANES) * LANES
    }

    /// Rows of a padded plane: every row that some output reads.
    pub fn padded_h(&self) -> usize {
        self.oh + self.kh - 1
    }

    /// Columns of a padded plane: whole blocks of outputs at every tap.
    pub fn padded_w(&self) -> usize {
        self.ow_blocks() + self.kw - 1
    }

    /// Values of one padded image.
    pub fn padded_len(&self) -> usize {
        self.cin * self.padded_h() * self.padded_w()
    }

    /// Values of one group of [`GROUP`] weight sets, `[cin][kh][kw][GROUP]`.
    pub fn group_weights_len(&self) -> usize {
        self.cin * self.kh * self.kw * GROUP
    }
}

/// Writes the zero-bordered copy of `x` (`cin x h x w`) into `xp` ([`Direct::padded_len`]
/// values); input pixels no output reads are left out.
pub fn pad_image(d: &Direct, x: &[f32], xp: &mut [f32]) {
    assert_eq!(
        x.len(),
        d.cin * d.h * d.w,
        "pad_image: image has the wrong size"
    );
    let (hp, wp) = (d.padded_h(), d.padded_w());
    assert_eq!(
        xp.len(),
        d.padded_len(),
        "pad_image: buffer has the wrong size"
    );
    xp.fill(0.0);
    let rows = d.h.min(hp.saturating_sub(d.pad_top));
    let cols = d.w.min(wp.saturating_sub(d.pad_left));
    for c in 0..d.cin {
        for r in 0..rows {
            let src = &x[(c * d.h + r) * d.w..][..cols];
            let at = (c * hp + r + d.pad_top) * wp + d.pad_left;
            xp[at..at + cols].copy_from_slice(src);
        }
    }
}

simd_versions! {
    /// `y[g, oy, ox] = sum_{c, ki, kj} w[c, ki, kj, g] * xp[c, oy + ki, ox + kj]` for the
    /// first `outs <= GROUP` planes `g` of one weight group (`[cin][kh][kw][GROUP]`), over a
    /// padded image `xp`; `y` holds `outs` planes of `oh x ow`.
    pub fn conv_group(d: &Direct, xp: &[f32], w: &[f32], y: &mut [f32], outs: usize) =
        conv_group_body;
}

#[inline(always)]
fn conv_group_body<const FMA: bool>(d: &Direct, xp: &[f32], w: &[f32], y: &mut [f32], outs: usize) {
    let (hp, wp, plane) = (d.padded_h(), d.padded_w(), d.oh * d.ow);
    assert!(xp.len() >= d.padded_len() && w.len() >= d.group_weights_len());
    assert!(outs <= GROUP && y.len() == outs * plane);
    for oy in 0..d.oh {
        for ox0 in (0..d.ow).step_by(LANES) {
            let mut acc = [[0.0f32; LANES]; GROUP];
            for c in 0..d.cin {
                for ki in 0..d.kh {
                    let row = &xp[(c * hp + oy + ki) * wp + ox0..];
                    let taps = &w[((c * d.kh + ki) * d.kw) * GROUP..][..d.kw * GROUP];
                    for (kj, wt) in taps.chunks_exact(GROUP).enumerate() {
                        let xs: &[f32; LANES] = row[kj..kj + LANES].try_into().unwrap();
                        let [a0, a1, a2, a3] = &mut acc;
                        axpy::<FMA>(a0, wt[0], xs);
                        axpy::<FMA>(a1, wt[1], xs);
                        axpy::<FMA>(a2, wt[2], xs);
                        axpy::<FMA>(a3, wt[3], xs);
                    }
                }
            }
            let n = LANES.min(d.ow - ox0);
            for (g, acc_g) in acc.iter().enumerate().take(outs) {
                y[g * plane + oy * d.ow + ox0..][..n].copy_from_slice(&acc_g[..n]);
            }
        }
    }
}

simd_versions! {
    /// `dw[g, b, ki, kj] += sum_{oy, ox} a[g, oy, ox] * xp[b, oy + ki, ox + kj]` for the
    /// first `outs <= GROUP` planes of `a` (`[GROUP][oh][ow_blocks]`, zero past `ow` and
    /// in absent planes) against the padded image `xp` of `cin` planes; `dw` holds `outs`
    /// sets of `[cin][kh][kw]`.
    pub fn weight_grad_group(d: &Direct, a: &[f32], xp: &[f32], dw: &mut [f32], outs: usize) =
        weight_grad_group_body;
}

#[inline(always)]
fn weight_grad_group_body<const FMA: bool>(
    d: &Direct,
    a: &[f32],
    xp: &[f32],
    dw: &mut [f32],
    outs: usize,
) {
    let (hp, wp, owb) = (d.padded_h(), d.padded_w(), d.ow_blocks());
    let taps = d.cin * d.kh * d.kw;
    assert!(xp.len() >= d.padded_len() && a.len() >= GROUP * d.oh * owb);
    assert!(outs <= GROUP && dw.len() == outs * taps);
    for b in 0..d.cin {
        for ki in 0..d.kh {
            for kj in 0..d.kw {
                let mut acc = [[0.0f32; LANES]; GROUP];
                for oy in 0..d.oh {
                    let row = &xp[(b * hp + oy + ki) * wp + kj..][..owb];
                    for (blk, xs) in row.chunks_exact(LANES).enumerate() {
                        let xs: &[f32; LANES] = xs.try_into().unwrap();
                        let lane = |g: usize| -> &[f32; LANES] {
                            a[(g * d.oh + oy) * owb + blk * LANES..][..LANES]
                                .try_into()
                                .unwrap()
                        };
                        let [s0, s1, s2, s3] = &mut acc;
                        mul_acc::<FMA>(s0, lane(0), xs);
                        mul_acc::<FMA>(s1, lane(1), xs);
                        mul_acc::<FMA>(s2, lane(2), xs);
                        mul_acc::<FMA>(s3, lane(3), xs);
                    }
                }
                let tap = (b * d.kh + ki) * d.kw + kj;
                for (g, acc_g) in acc.iter().enumerate().take(outs) {
                    dw[g * taps + tap] += sum_lanes(acc_g);
                }
            }
        }
    }
}

/// `acc += w * x`, lane by lane (fused when `FMA`).
#[inline(always)]
fn axpy<const FMA: bool>(acc: &mut [f32; LANES], w: f32, x: &[f32; LANES]) {
    for l in 0..LANES {
        acc[l] = mul_add::<FMA>(w, x[l], acc[l]);
    }
}

/// `acc += a * x`, lane by lane (fused when `FMA`).
#[inline(always)]
fn mul_acc<const FMA: bool>(acc: &mut [f32; LANES], a: &[f32; LANES], x: &[f32; LANES]) {
    for l in 0..LANES {
        acc[l] = mul_add::<FMA>(a[l], x[l], acc[l]);
    }
}

/// `a * b + c`, in one rounding when `FMA` (only in code compiled for FMA instructions:
/// elsewhere `mul_add` is a slow library call).
#[inline(always)]
fn mul_add<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The sum of the lanes, added pairwise in a fixed order.
#[inline(always)]
fn sum_lanes(v: &[f32; LANES]) -> f32 {
    let mut s = *v;
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            s[i] += s[i + width];
        }
        width /= 2;
    }
    s[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatched kernels (AVX-512 or AVX2 with fused multiply-adds where the CPU has
    /// them) compute what the baseline build of the same body computes, up to rounding.
    #[test]
    fn wide_versions_match_the_baseline() {
        let d = Direct {
            cin: 3,
            h: 9,
            w: 21,
            kh: 3,
            kw: 2,
            pad_top: 1,
            pad_left: 1,
            oh: 9,
            ow: 21,
        };
        let x: Vec<f32> = (0..d.cin * d.h * d.w)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let mut xp = vec![0.0; d.padded_len()];
        pad_image(&d, &x, &mut xp);
        let w: Vec<f32> = (0..d.group_weights_len())
            .map(|i| ((i * 13 % 29) as f32 - 14.0) / 9.0)
            .collect();
        let (mut wide, mut base) = (vec![0.0; 3 * d.oh * d.ow], vec![0.0; 3 * d.oh * d.ow]);
        conv_group(&d, &xp, &w, &mut wide, 3);
        conv_group_body::<false>(&d, &xp, &w, &mut base, 3);
        assert_close(&wide, &base);
        let a: Vec<f32> = (0..GROUP * d.oh * d.ow_blocks())
            .map(|i| ((i * 7 % 17) as f32 - 8.0) / 5.0)
            .collect();
        let taps = d.cin * d.kh * d.kw;
        let (mut wide, mut base) = (vec![0.5; 2 * taps], vec![0.5; 2 * taps]);
        weight_grad_group(&d, &a, &xp, &mut wide, 2);
        weight_grad_group_body::<false>(&d, &a, &xp, &mut base, 2);
        assert_close(&wide, &base);
        assert!(wide.iter().any(|&v| v != 0.5), "the gradient was written");
    }

    /// Every value of the padded copy is written (a buffer of NaN before), as its
    /// definition says: the image's pixel where one lies, else zero.
    #[test]
    fn pad_image_writes_every_value() {
        for (pad_top, pad_left, h, w) in [(1, 1, 5, 7), (0, 2, 3, 40), (2, 0, 1, 1)] {
            let d = Direct {
                cin: 2,
                h,
                w,
                kh: 3,
                kw: 3,
                pad_top,
                pad_left,
                oh: h,
                ow: w,
            };
            let x: Vec<f32> = (0..d.cin * h * w).map(|i| i as f32 + 1.0).collect();
            let mut xp = vec![f32::NAN; d.padded_len()];
            pad_image(&d, &x, &mut xp);
            let (hp, wp) = (d.padded_h(), d.padded_w());
            for (i, &v) in xp.iter().enumerate() {
                let (c, r, s) = (i / (hp * wp), i / wp % hp, i % wp);
                let (y, x_) = (
                    r as isize - pad_top as isize,
                    s as isize - pad_left as isize,
                );
                let inside = (0..h as isize).contains(&y) && (0..w as isize).contains(&x_);
                let want = if inside {
                    x[(c * h + y as usize) * w + x_ as usize]
                } else {
                    0.0
                };
                assert_eq!(v, want, "value {i} of {d:?}");
            }
        }
    }

    fn assert_close(a: &[f32], b: &[f32]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }
}
