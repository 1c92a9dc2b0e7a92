//! The forward of a 4x4 stride-2 padding-1 transposed convolution with at most
//! [`direct_conv::NARROW`] channels on both sides, on the direct kernel of
//! [`crate::kernels::direct_up2`] (AVX-512 or AVX2, rows of whole 32-lane blocks): celeba64x48-in's
//! 32 -> 32 layer at 24 x 32, where minimal filtering's products have 32 rows and an inner
//! dimension of 32 and run far below the machine's speed (docs/benchmarks.md, session 30).
//! Its backward stays on minimal filtering or GEMM ([`super::conv_transpose2d`]).

use super::direct_conv::{self, group_weights};
use crate::kernels::direct_conv::Direct;
use crate::kernels::layout::Bias;
use crate::kernels::ConvGeom;

/// Whether `g` (the adjoint conv2d's geometry of a transposed convolution with `c` inputs,
/// `g.c` outputs) is a 4x4 stride-2 padding-1 layer with no output padding, more than
/// [`direct_conv::THIN`] and at most [`direct_conv::NARROW`] channels on both sides, input
/// rows of whole 32-lane blocks, on AVX-512 or AVX2 (as the direct convolutions).
pub(crate) fn applies(g: &ConvGeom, c: usize) -> bool {
    (g.kh, g.kw, g.sh, g.sw, g.pad_top, g.pad_left) == (4, 4, 2, 2, 1, 1)
        && (g.h, g.w) == (2 * g.oh, 2 * g.ow)
        && c.min(g.c) > direct_conv::THIN
        && direct_conv::applies(&padded_geometry(c, g), g.c)
}

/// The input's geometry as a 3x3 padding-1 stride-1 convolution: its padded copy has one
/// zero on every side.
fn padded_geometry(c: usize, g: &ConvGeom) -> ConvGeom {
    let (h, w) = (g.oh, g.ow);
    ConvGeom::stride1(c, (h, w), (3, 3), (1, 1), (h, w))
}

/// `y[N, O, 2H, 2W]` from `x[N, C, H, W]` and `w[C, O, 4, 4]` (`g` as in [`applies`]),
/// plus `bias`; images and groups of outputs run in parallel
/// ([`direct_conv::per_output_group`]).
pub(crate) fn forward(
    x: &[f32],
    n: usize,
    c: usize,
    g: &ConvGeom,
    w: &[f32],
    bias: Bias,
) -> Vec<f32> {
    let o = g.c;
    let d = direct_conv::direct(&padded_geometry(c, g));
    let weights = Direct { kh: 4, kw: 4, ..d };
    let wg = group_weights(&weights, o, |o_, c_, ky, kx| {
        w[((c_ * o + o_) * 4 + ky) * 4 + kx]
    });
    let (len, plane) = (weights.group_weights_len(), 4 * d.h * d.w);
    direct_conv::per_output_group(&d, x, n, (o, plane), bias, |xp, k, y_k| {
        let wk = &wg[k * len..][..len];
        let outs = y_k.len() / plane;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `applies` found AVX-512, or else AVX2 and FMA (through
        // `direct_conv::applies`).
        unsafe {
            use crate::kernels::direct_up2::{up2_group_avx2, up2_group_avx512};
            use crate::kernels::simd::{level, Level};
            if level() == Level::Avx512 {
                up2_group_avx512(&d, xp, wk, y_k, outs)
            } else {
                up2_group_avx2(&d, xp, wk, y_k, outs)
            }
        };
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("applies only on AVX-512 or AVX2: {wk:?} {xp:?} {y_k:?} {outs}");
    })
}

#[cfg(test)]
mod tests {
    use super::super::conv_transpose2d;
    use super::super::testutil::config;
    use super::*;
    use crate::kernels::simd::{level, Level};
    use crate::Tensor;
    use ndarray::IxDyn;
    use proptest::prelude::*;
    use std::sync::Arc;

    /// The adjoint geometry of a 4x4 stride-2 padding-1 transposed convolution from
    /// planes of `h x w` to `o` planes of `2h x 2w`.
    fn geometry(o: usize, h: usize, w: usize) -> ConvGeom {
        let stride1 = ConvGeom::stride1(o, (2 * h, 2 * w), (4, 4), (1, 1), (h, w));
        ConvGeom {
            sh: 2,
            sw: 2,
            ..stride1
        }
    }

    fn values(len: usize, salt: u64) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u64 * 2654435761) ^ salt) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    proptest! {
        #![proptest_config(config(16))]

        /// The direct forward equals GEMM + col2im's.
        #[test]
        fn forward_matches_gemm(n in 1usize..3, c in 5usize..33, o in 5usize..33,
                                h in 1usize..5, blocks in 1usize..3, seed: u64) {
            let g = geometry(o, h, blocks * 32);
            // Every such layer runs direct where a kernel can (AVX-512, AVX2), none elsewhere.
            prop_assert_eq!(applies(&g, c), level() >= Level::Avx2);
            if !applies(&g, c) {
                return Ok(());
            }
            let x = values(n * c * h * g.ow, seed);
            let w = values(c * o * 16, seed ^ 1);
            let w_t = Arc::new(Tensor::from_shape_vec(IxDyn(&[w.len()]), w.clone()).unwrap());
            // A bias, added by each path's own tasks.
            let bias = values(o, seed ^ 2);
            let expect = conv_transpose2d::gemm_forward(&x, n, c, &g, &w_t, true, Some(&bias));
            let got = forward(&x, n, c, &g, &w, Some(&bias));
            prop_assert_eq!(got.len(), expect.len());
            for (i, (a, e)) in got.iter().zip(&expect).enumerate() {
                prop_assert!((a - e).abs() <= 1e-4 * (1.0 + e.abs()), "[{}]: {} vs {}", i, a, e);
            }
        }
    }

    #[test]
    fn only_narrow_layers_with_whole_blocks_run_direct() {
        assert_eq!(applies(&geometry(32, 24, 32), 32), level() >= Level::Avx2);
        assert!(!applies(&geometry(32, 24, 32), 64));
        assert!(!applies(&geometry(33, 24, 32), 32));
        assert!(!applies(&geometry(32, 12, 16), 32));
        assert!(!applies(&geometry(3, 24, 32), 32));
        let stride1 = ConvGeom {
            sh: 1,
            sw: 1,
            ..geometry(32, 24, 32)
        };
        assert!(!applies(&stride1, 32));
    }
}
