//! Stride-1 convolutions and transposed convolutions with at most [`THIN`] channels on one
//! side (or [`NARROW`] on both, on AVX2 or AVX-512 with rows of whole blocks) run through
//! the direct kernels of [`crate::kernels::direct_conv`] instead of im2col + GEMM,
//! forward and backward. Each pass is one stride-1 convolution:
//!
//! - conv2d: `y = conv(x, w)`; `dx = conv(dy, w')` with `w'[c, o] = w[o, c]` flipped in
//!   both axes and padding `k - 1 - p`; `dw[o, c] = sum dy[o] * x[c]` shifted by the tap.
//! - conv_transpose2d (stride 1 is a convolution with the flipped kernel):
//!   `y = conv(x, w')` with `w'[o, c] = w[c, o]` flipped and padding `k - 1 - p`;
//!   `dx = conv(dy, w)` read as `[C, O]` with padding `p`; `dw[c, o] = sum x[c] * dy[o]`
//!   shifted by the tap.

use super::chunk_grads::backward_in_chunks;
use crate::kernels::direct_conv::{conv_group, pad_image, weight_grad_group, Direct, GROUP, LANES};
use crate::kernels::layout::{add_plane_bias, Bias};
use crate::kernels::offload;
use crate::kernels::scratch::with_scratch;
use crate::kernels::simd;
use crate::kernels::zeroed::zeroed_in_chunks;
use crate::kernels::ConvGeom;
use rayon::prelude::*;

/// Channels on the thin side up to which the direct kernels are used.
pub const THIN: usize = 4;

/// Channels on both sides up to which the direct kernels are used on AVX2 or AVX-512
/// (their register kernels) where every row fills whole blocks of [`LANES`]:
/// celeba64x48-in's 32 -> 32 layers at 24 x 32, 28.6 -> 21.9 ms forward + backward at
/// batch 64 on AVX-512 (Intel), 37.6 -> 25.3 ms on AVX2 (AMD Zen 3) (`cargo bench --bench
/// layers`, row 1, medians of 7 and 5 alternating rounds; docs/benchmarks.md). As a
/// GEMM, 32 output rows share each packed panel of columns, and packing it costs as much
/// as the products; here each input row is loaded once per tap for 4 outputs, with
/// nothing packed. With 64 channels at 12 x 16
/// (half a block wasted) direct is slower: 36.2 against 22.6 ms.
pub const NARROW: usize = 32;

/// Whether a convolution of geometry `g` (as im2col sees it) with `outs` output channels
/// runs direct: stride 1, few channels on one side (or on both, [`NARROW`]), and padding
/// below the kernel size on every side (so that the adjoint convolution's padding
/// `k - 1 - p` is one too). With an accelerator in use every convolution stays a GEMM,
/// which it runs.
pub(crate) fn applies(g: &ConvGeom, outs: usize) -> bool {
    let narrow = g.c.max(outs) <= NARROW
        && g.ow.is_multiple_of(LANES)
        && g.w.is_multiple_of(LANES)
        && simd::level() >= simd::Level::Avx2;
    !offload::is_active() && (g.c.min(outs) <= THIN || narrow) && g.adjoint(outs).is_some()
}

/// The geometry `g` of a stride-1 convolution as a direct one.
pub(crate) fn direct(g: &ConvGeom) -> Direct {
    Direct {
        cin: g.c,
        h: g.h,
        w: g.w,
        kh: g.kh,
        kw: g.kw,
        pad_top: g.pad_top,
        pad_left: g.pad_left,
        oh: g.oh,
        ow: g.ow,
    }
}

/// The convolution that carries gradients back through `g` ([`ConvGeom::adjoint`]): from
/// `outs` planes of `oh x ow` to `g.c` planes of `h x w`, padding `k - 1 - p`. Only for a
/// geometry that [`applies`] accepted.
pub(crate) fn adjoint(g: &ConvGeom, outs: usize) -> Direct {
    direct(
        &g.adjoint(outs)
            .expect("a direct convolution has an adjoint"),
    )
}

/// Weights in the kernels' layout: groups of [`GROUP`] outputs, `[cin][kh][kw][GROUP]`
/// each, zero for outputs past `outs`; `at(o, c, ki, kj)` gives each weight.
pub(crate) fn group_weights(
    d: &Direct,
    outs: usize,
    at: impl Fn(usize, usize, usize, usize) -> f32,
) -> Vec<f32> {
    let groups = outs.div_ceil(GROUP);
    let mut w = vec![0.0f32; groups * d.group_weights_len()];
    for o in 0..outs {
        let group = &mut w[(o / GROUP) * d.group_weights_len()..];
        for c in 0..d.cin {
            for ki in 0..d.kh {
                for kj in 0..d.kw {
                    group[((c * d.kh + ki) * d.kw + kj) * GROUP + o % GROUP] = at(o, c, ki, kj);
                }
            }
        }
    }
    w
}

/// `n` images of `d.cin` planes convolved into `outs` planes each (grouped weights from
/// [`group_weights`]), plus `bias`; images and output groups run in parallel.
fn convolve(d: &Direct, x: &[f32], n: usize, w: &[f32], outs: usize, bias: Bias) -> Vec<f32> {
    let (len, plane) = (d.group_weights_len(), d.oh * d.ow);
    per_output_group(d, x, n, (outs, plane), bias, |xp, g, y_g| {
        conv_group(d, xp, &w[g * len..][..len], y_g, y_g.len() / plane)
    })
}

/// `n` images of `d.cin` planes into `outs` planes of `plane` values each: per image its
/// zero-bordered copy ([`pad_image`]) once, then `kernel(xp, g, y_g)` for each group `g`
/// of [`GROUP`] output planes `y_g`, then `bias`; images and groups run in parallel.
pub(crate) fn per_output_group(
    d: &Direct,
    x: &[f32],
    n: usize,
    (outs, plane): (usize, usize),
    bias: Bias,
    kernel: impl Fn(&[f32], usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let image = d.cin * d.h * d.w;
    let (y, _) = zeroed_in_chunks(n * outs * plane, outs * plane, |i, y_i| {
        with_scratch(d.padded_len(), |xp| {
            pad_image(d, &x[i * image..][..image], xp);
            let xp = &*xp;
            y_i.par_chunks_mut(GROUP * plane)
                .enumerate()
                .for_each(|(g, y_g)| kernel(xp, g, y_g));
        });
        add_plane_bias(y_i, plane, bias);
    });
    y
}

/// `dw[a, b, ki, kj] = sum_images sum_{oy, ox} a[a, oy, ox] * b[b, oy + ki - pt, ox + kj - pl]`
/// for `n` images of `na` planes `a` (`oh x ow`) and `d.cin` planes `b` (`h x w`).
/// Images are summed as the GEMM path sums its chunks ([`backward_in_chunks`]: groups of
/// images, one buffer each, the groups in order): the same sums for the same thread count.
pub(crate) fn weight_grad(d: &Direct, a: &[f32], na: usize, b: &[f32], n: usize) -> Vec<f32> {
    let taps = d.cin * d.kh * d.kw;
    let plane = d.oh * d.ow;
    // Each group's buffer starts zeroed, so adding an image serves beta = 0 as well.
    backward_in_chunks(n, 0, 1, Some(na * taps), |i, _, dw| {
        let (dw, _beta) = dw.expect("a weight gradient was asked for");
        add_image_weight_grad(d, &a[i * na * plane..], b, i, dw);
    })
    .1
    .expect("a weight gradient was asked for")
}

/// One image's contribution to [`weight_grad`], added into `dw`.
fn add_image_weight_grad(d: &Direct, a: &[f32], b: &[f32], i: usize, dw: &mut [f32]) {
    let (plane, owb) = (d.oh * d.ow, d.ow_blocks());
    let taps = d.cin * d.kh * d.kw;
    let b_i = &b[i * d.cin * d.h * d.w..][..d.cin * d.h * d.w];
    with_scratch(d.padded_len(), |bp| {
        pad_image(d, b_i, bp);
        with_scratch(GROUP * d.oh * owb, |ag| {
            for (g, dw_g) in dw.chunks_mut(GROUP * taps).enumerate() {
                let outs = dw_g.len() / taps;
                ag.fill(0.0);
                for k in 0..outs {
                    let src = &a[(g * GROUP + k) * plane..][..plane];
                    for (oy, row) in src.chunks_exact(d.ow).enumerate() {
                        ag[(k * d.oh + oy) * owb..][..d.ow].copy_from_slice(row);
                    }
                }
                weight_grad_group(d, ag, bp, dw_g, outs);
            }
        });
    });
}

/// conv2d's forward (`w`: `[O, C, kh, kw]`), with `bias`.
pub(crate) fn conv2d_forward(
    x: &[f32],
    n: usize,
    g: &ConvGeom,
    (w, o): (&[f32], usize),
    bias: Bias,
) -> Vec<f32> {
    let d = direct(g);
    let wg = group_weights(&d, o, |o, c, ki, kj| {
        w[((o * g.c + c) * g.kh + ki) * g.kw + kj]
    });
    convolve(&d, x, n, &wg, o, bias)
}

/// conv2d's gradients with respect to x and w, each only when asked for.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d_backward(
    x: &[f32],
    n: usize,
    g: &ConvGeom,
    w: &[f32],
    o: usize,
    dy: &[f32],
    want_dx: bool,
    want_dw: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let dx = want_dx.then(|| {
        let d = adjoint(g, o);
        let (kh, kw) = (g.kh, g.kw);
        let flipped = group_weights(&d, g.c, |c, o, ki, kj| {
            w[((o * g.c + c) * kh + kh - 1 - ki) * kw + kw - 1 - kj]
        });
        convolve(&d, dy, n, &flipped, g.c, None)
    });
    let dw = want_dw.then(|| weight_grad(&direct(g), dy, o, x, n));
    (dx, dw)
}

/// conv_transpose2d's forward (`w`: `[C, O, kh, kw]`; `g` is the adjoint conv's geometry,
/// `g.c == O`): a convolution with the flipped kernel, plus `bias`.
pub(crate) fn conv_transpose2d_forward(
    x: &[f32],
    n: usize,
    c: usize,
    g: &ConvGeom,
    w: &[f32],
    bias: Bias,
) -> Vec<f32> {
    let d = adjoint(g, c);
    let (o, kh, kw) = (g.c, g.kh, g.kw);
    let flipped = group_weights(&d, o, |o_, c_, ki, kj| {
        w[((c_ * o + o_) * kh + kh - 1 - ki) * kw + kw - 1 - kj]
    });
    convolve(&d, x, n, &flipped, o, bias)
}

/// conv_transpose2d's gradients with respect to x and w, each only when asked for.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_transpose2d_backward(
    x: &[f32],
    n: usize,
    c: usize,
    g: &ConvGeom,
    w: &[f32],
    dy: &[f32],
    want_dx: bool,
    want_dw: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let d = direct(g);
    let dx = want_dx.then(|| {
        let (o, kh, kw) = (g.c, g.kh, g.kw);
        let wg = group_weights(&d, c, |c_, o_, ki, kj| {
            w[((c_ * o + o_) * kh + ki) * kw + kj]
        });
        convolve(&d, dy, n, &wg, c, None)
    });
    let dw = want_dw.then(|| weight_grad(&d, x, c, dy, n));
    (dx, dw)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::config;
    use super::super::{conv2d_gemm, conv_transpose2d};
    use super::*;
    use crate::Tensor;
    use ndarray::IxDyn;
    use proptest::prelude::*;
    use std::sync::Arc;

    /// A stride-1 geometry with `cin` inputs, and its number of outputs, that runs direct.
    fn thin_geometry() -> impl Strategy<Value = (ConvGeom, usize, usize)> {
        (
            1usize..4,
            1usize..9,
            1usize..9,
            1usize..23,
            1usize..21,
            1usize..5,
            1usize..5,
        )
            .prop_flat_map(|(n, cin, outs, h, w, kh, kw)| {
                (
                    Just((n, cin, outs, h, w, kh, kw)),
                    0..kh,
                    0..kh,
                    0..kw,
                    0..kw,
                )
            })
            .prop_filter_map("needs a thin side and room for the kernel", |t| {
                let ((n, cin, outs, h, w, kh, kw), pt, pb, pl, pr) = t;
                if cin.min(outs) > THIN || h + pt + pb < kh || w + pl + pr < kw {
                    return None;
                }
                let (oh, ow) = (h + pt + pb - kh + 1, w + pl + pr - kw + 1);
                let g = ConvGeom::stride1(cin, (h, w), (kh, kw), (pt, pl), (oh, ow));
                applies(&g, outs).then_some((g, outs, n))
            })
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32]) -> Result<(), TestCaseError> {
        prop_assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            prop_assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "[{}]: {} vs {}",
                i,
                x,
                y
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(config(64))]

        /// conv2d through the direct kernels equals im2col + GEMM, forward and backward.
        #[test]
        fn conv2d_matches_gemm((g, o, n) in thin_geometry(), seed: u64) {
            conv2d_direct_matches_gemm(&g, o, n, seed)?;
        }

        /// conv_transpose2d of stride 1 (`g` is its adjoint conv: `g.c` outputs from
        /// `c` inputs) through the direct kernels equals GEMM + col2im.
        #[test]
        fn conv_transpose2d_matches_gemm((g, c, n) in thin_geometry(), seed: u64) {
            conv_transpose2d_direct_matches_gemm(&g, c, n, seed)?;
        }
    }

    proptest! {
        #![proptest_config(config(12))]

        /// The same where no side is thin but both are narrow ([`NARROW`]).
        #[test]
        fn narrow_convolutions_match_gemm((g, o, n) in narrow_geometry(), seed: u64) {
            // Every such layer runs direct where the register kernels are (AVX2 or
            // AVX-512), none elsewhere.
            prop_assert_eq!(applies(&g, o), simd::level() >= simd::Level::Avx2);
            if !applies(&g, o) {
                return Ok(());
            }
            conv2d_direct_matches_gemm(&g, o, n, seed)?;
            conv_transpose2d_direct_matches_gemm(&g, o, n, seed)?;
        }
    }

    fn conv2d_direct_matches_gemm(
        g: &ConvGeom,
        o: usize,
        n: usize,
        seed: u64,
    ) -> Result<(), TestCaseError> {
        let x = values(n * g.image_len(), seed);
        let w = values(o * g.col_rows(), seed ^ 1);
        let dy = values(n * o * g.out_positions(), seed ^ 2);
        let w_t = Arc::new(Tensor::from_shape_vec(IxDyn(&[w.len()]), w.clone()).unwrap());
        // A bias, added by each path's own tasks.
        let bias = values(o, seed ^ 3);
        let (ry, _) = conv2d_gemm::gemm_forward(&x, n, g, (&w_t, o), false, Some(&bias));
        close(&conv2d_forward(&x, n, g, (&w, o), Some(&bias)), &ry)?;
        let (dx, dw) = conv2d_backward(&x, n, g, &w, o, &dy, true, true);
        let (rdx, rdw) = conv2d_gemm::gemm_backward(&x, n, g, &w_t, o, &dy, (true, true), None);
        close(&dx.unwrap(), &rdx.unwrap())?;
        close(&dw.unwrap(), &rdw.unwrap())
    }

    fn conv_transpose2d_direct_matches_gemm(
        g: &ConvGeom,
        c: usize,
        n: usize,
        seed: u64,
    ) -> Result<(), TestCaseError> {
        let x = values(n * c * g.out_positions(), seed);
        let w = values(c * g.col_rows(), seed ^ 1);
        let dy = values(n * g.image_len(), seed ^ 2);
        let w_t = Arc::new(Tensor::from_shape_vec(IxDyn(&[w.len()]), w.clone()).unwrap());
        let bias = values(g.c, seed ^ 3);
        let y = conv_transpose2d_forward(&x, n, c, g, &w, Some(&bias));
        let ry = conv_transpose2d::gemm_forward(&x, n, c, g, &w_t, true, Some(&bias));
        close(&y, &ry)?;
        let (dx, dw) = conv_transpose2d_backward(&x, n, c, g, &w, &dy, true, true);
        let (rdx, rdw) = conv_transpose2d::gemm_backward(&x, n, c, g, &w_t, &dy, true, true);
        close(&dx.unwrap(), &rdx.unwrap())?;
        close(&dw.unwrap(), &rdw.unwrap())
    }

    /// Stride-1 geometries with 5 to 32 channels on each side and rows of 32 or 64 (the
    /// padding keeps the width), on a CPU where [`applies`] takes them.
    fn narrow_geometry() -> impl Strategy<Value = (ConvGeom, usize, usize)> {
        (
            1usize..3,
            5usize..33,
            5usize..33,
            1usize..5,
            1usize..3,
            1usize..5,
            1usize..5,
        )
            .prop_flat_map(|t| (Just(t), 0..t.5, 0..t.6))
            .prop_map(|((n, c, outs, h, blocks, kh, kw), pt, pl)| {
                let w = blocks * LANES;
                // Bottom and right padding kh - 1 - pt and kw - 1 - pl keep the size.
                let g = ConvGeom::stride1(c, (h, w), (kh, kw), (pt, pl), (h, w));
                (g, outs, n)
            })
    }

    #[test]
    fn thick_strided_or_overpadded_convolutions_do_not_run_direct() {
        let g = ConvGeom {
            c: 8,
            h: 8,
            w: 8,
            kh: 3,
            kw: 3,
            sh: 1,
            sw: 1,
            pad_top: 1,
            pad_left: 1,
            oh: 8,
            ow: 8,
        };
        assert!(applies(&g, 3) && applies(&g, 4) && !applies(&g, 5));
        // Narrow on both sides: only rows of whole blocks, on AVX2 or AVX-512.
        let wide_rows = ConvGeom { w: 32, ow: 32, ..g };
        assert_eq!(applies(&wide_rows, 32), simd::level() >= simd::Level::Avx2);
        assert!(!applies(&wide_rows, 33));
        assert!(!applies(&ConvGeom { w: 16, ow: 16, ..g }, 32));
        assert!(!applies(&ConvGeom { sh: 2, oh: 4, ..g }, 3));
        assert!(!applies(
            &ConvGeom {
                pad_top: 3,
                oh: 12,
                ..g
            },
            3
        ));
    }
}
