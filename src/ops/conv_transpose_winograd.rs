//! conv_transpose2d with a 4x4 kernel, stride 2 and padding 1 on inputs of 16x16 and more,
//! in batches of 32 or more (the largest upsampling layer of celeba32 and of
//! celeba64x48-in, in training) through minimal
//! filtering ([`crate::kernels::winograd`]):
//! per phase and transformed position, one product `[O, C] x [C, tiles]`, 25 products per
//! 4x4 output tile instead of 64. The backward pass runs the same products transposed.
//! Chunks of images run over the rayon pool; each chunk goes phase by phase so that its
//! transformed input and products stay in cache.

use super::chunk_grads::backward_in_chunks;
use crate::kernels::gemm::{gemm, gemm_packed_in_task, MatRef, PackedA};
use crate::kernels::layout::{add_plane_bias, Bias};
use crate::kernels::scratch::with_scratch;
use crate::kernels::winograd::{self, Tiles, PHASES, POSITIONS};
use crate::kernels::winograd_planes as planes;
use crate::kernels::zeroed::{assume_written, written_in_chunks};
use crate::kernels::ConvGeom;
use crate::kernels::{offload, simd};
use std::mem::MaybeUninit;

/// Tiles per chunk and phase: the columns of each product (its transformed input and
/// output, 25 x 128 channels x 64 tiles, are 800 KiB each).
const TARGET_TILES: usize = 64;

/// Inputs narrower or shorter than this stay on the GEMM + col2im path: with few tiles
/// per image, the per-call work in the weight domain (`U` is 6.25 times the weight, and
/// each task sums its own `dU`) outweighs the products saved (measured in
/// `cargo bench --bench layers` and `vae-cpu bench`: celeba32's 8x8 layer with F(4x4, 2x2)
/// is faster forward but slower forward + backward, its 4x4 and 2x2 layers and
/// celeba64x48-in's 3x4 to 12x16 ones slower; 16x16 and 24x32 faster; docs/benchmarks.md,
/// sessions 28 and 29).
const MIN_SIDE: usize = 16;

/// Batches smaller than this stay on the GEMM + col2im path: the weight's transform and
/// packing, redone on every call, then outweigh the products saved. Decoding celeba32
/// (its 16x16 layer, eval mode, `vae-cpu bench --mode decode`, AMD EPYC Zen 3, 2 threads)
/// ran one face at 77-92 images/s through this path and 462-479 through GEMM + col2im, 16
/// faces at 587-594 and 623-663; from 32 faces on this path was faster (683-760 against
/// 664-671, and 844-894 against 658-689 at 128). Session 34, docs/benchmarks.md.
const MIN_IMAGES: usize = 32;

/// Whether a transposed convolution of `n` images whose adjoint conv2d has geometry `g`
/// runs here: a 4x4 stride-2 padding-1 layer with no output padding on an input of at
/// least [`MIN_SIDE`] both ways, a batch of at least [`MIN_IMAGES`], on a CPU where this
/// path was measured faster ([`runs_here`]).
pub(crate) fn applies(g: &ConvGeom, n: usize) -> bool {
    fits(g, MIN_SIDE) && n >= MIN_IMAGES
}

/// A 4x4 stride-2 convolution's input gradient (the forward of this layer on its output
/// gradient, [`forward`]) pays from outputs of this size on where both sides have at
/// least [`MIN_CHANNELS_DX`] channels: celeba32's 128-channel 16x16 convolution runs its
/// forward + backward 5-13% faster than with GEMM + col2im (`cargo bench --bench layers`,
/// row 17, session 31). As a transposed layer's own forward it did not pay: celeba32's
/// 8x8 layer ran its forward 4-15% faster but its forward + backward slower (row 14), and
/// celeba64x48-in's 64->32 one at 12x16 ran its forward 57% slower.
const MIN_SIDE_DX: usize = 8;
const MIN_CHANNELS_DX: usize = 128;

/// Whether a convolution of adjoint geometry `g` and `o` output channels takes its input
/// gradient from [`forward`] (in training, where batches are large): from outputs of
/// [`MIN_SIDE`], or of [`MIN_SIDE_DX`] with many channels on both sides.
pub(crate) fn applies_to_input_gradient(g: &ConvGeom, o: usize) -> bool {
    fits(g, MIN_SIDE) || (fits(g, MIN_SIDE_DX) && o.min(g.c) >= MIN_CHANNELS_DX)
}

/// Whether this path runs here: an x86-64 CPU with AVX2 and FMA (at least), where it was
/// measured faster than GEMM + col2im, with no accelerator in use (which takes the GEMM
/// path's products). The products run on our own kernel, and the transforms on the widest
/// vectors: on an AMD EPYC (Zen 3, AVX2) host, celeba32 batch 128 trained 142.0 -> 178.2
/// images/s with this path (medians of 6 alternating runs, `scripts/ab-builds.sh`,
/// session 32, then with `matrixmultiply`'s products) and its
/// 128-channel 16x16 convolution ran forward + backward in 71.0 -> 56.6 ms (row 17).
/// Elsewhere (SSE2 only, aarch64) it was never measured, and the GEMM path stays.
pub(crate) fn runs_here() -> bool {
    simd::level() >= simd::Level::Avx2 && !offload::is_active()
}

fn fits(g: &ConvGeom, min_side: usize) -> bool {
    runs_here()
        && (g.kh, g.kw, g.sh, g.sw, g.pad_top, g.pad_left) == (4, 4, 2, 2, 1, 1)
        && (g.h, g.w) == (2 * g.oh, 2 * g.ow)
        && g.oh.min(g.ow) >= min_side
}

/// Images per chunk for `per_image` tiles: about [`TARGET_TILES`], and at least one chunk
/// per thread when the batch allows.
fn images_per_chunk(n: usize, per_image: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    TARGET_TILES
        .div_ceil(per_image)
        .min(n.div_ceil(threads))
        .max(1)
}

/// The weight's transformed products, packed: `[phase][pos]`, each `[O, C]` (or its
/// transpose `[C, O]` for the input gradient).
fn packed_products(u: &[f32], c: usize, o: usize, transposed: bool) -> Vec<PackedA<'_>> {
    u.chunks_exact(o * c)
        .map(|m| {
            let m = MatRef::new(m, o, c);
            PackedA::new(if transposed { m.t() } else { m })
        })
        .collect()
}

/// `y [N, O, 2H, 2W]` from `x [N, C, H, W]` and `w [C, O, 4, 4]`, plus `bias`; `g.c == O`.
pub(crate) fn forward(
    x: &[f32],
    n: usize,
    c: usize,
    g: &ConvGeom,
    w: &[f32],
    bias: Bias,
) -> Vec<f32> {
    let (o, h, wd) = (g.c, g.oh, g.ow);
    let u = winograd::weight_transform(w, c, o);
    let products = packed_products(&u, c, o, false);
    let per_image = Tiles::new(1, h, wd).per_image();
    let b = images_per_chunk(n, per_image);
    let tasks = n.div_ceil(b);
    let (in_img, out_img) = (c * h * wd, o * 4 * h * wd);
    // SAFETY: `chunk_forward` writes every pixel of its images (merge_outputs), before
    // the bias is added to them.
    let (y, _) = unsafe {
        written_in_chunks(n * out_img, b * out_img, |i, y_c| {
            let images = y_c.len() / out_img;
            let x_c = &x[i * b * in_img..][..images * in_img];
            chunk_forward(x_c, c, o, &Tiles::new(images, h, wd), &products, y_c, tasks);
            add_plane_bias(assume_written(y_c), 4 * h * wd, bias);
        })
    };
    y
}

/// The chunk's images written phase by phase: the input read through its window planes,
/// each phase's outputs put in the planes modulo 8 of `y`, written out whole at the end.
fn chunk_forward(
    x: &[f32],
    c: usize,
    o: usize,
    t: &Tiles,
    products: &[PackedA],
    y: &mut [MaybeUninit<f32>],
    tasks: usize,
) {
    let tiles = t.count();
    let q_len = c * planes::window_planes_len(t);
    let z_len = o * planes::output_planes_len(t);
    with_scratch(q_len, |q| {
        planes::gather_windows(x, c, t, q);
        with_scratch(z_len, |z| {
            with_scratch(POSITIONS * c * tiles, |v| {
                with_scratch(POSITIONS * o * tiles, |m| {
                    for phase in 0..PHASES {
                        winograd::input_transform(q, c, t, phase, v);
                        for pos in 0..POSITIONS {
                            let a = &products[phase * POSITIONS + pos];
                            let b = MatRef::new(&v[pos * c * tiles..][..c * tiles], c, tiles);
                            let m_pos = &mut m[pos * o * tiles..][..o * tiles];
                            gemm_packed_in_task(1.0, a, b, 0.0, m_pos, tasks);
                        }
                        winograd::output_transform(m, o, t, phase, z);
                    }
                })
            });
            planes::merge_outputs(z, o, t, y);
        })
    })
}

/// `(dx, dw)` for `dy [N, O, 2H, 2W]`, each when wanted.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    x: &[f32],
    n: usize,
    c: usize,
    g: &ConvGeom,
    w: &[f32],
    dy: &[f32],
    want_dx: bool,
    want_dw: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let (o, h, wd) = (g.c, g.oh, g.ow);
    let u = want_dx.then(|| winograd::weight_transform(w, c, o));
    let products_t = u.as_deref().map(|u| packed_products(u, c, o, true));
    let per_image = Tiles::new(1, h, wd).per_image();
    let b = images_per_chunk(n, per_image);
    let tasks = n.div_ceil(b);
    let (in_img, out_img) = (c * h * wd, o * 4 * h * wd);
    let du_len = want_dw.then_some(PHASES * POSITIONS * o * c);
    let dx_len = if want_dx { n * in_img } else { 0 };
    let (dx, du) = backward_in_chunks(tasks, dx_len, b * in_img, du_len, |i, dx_c, du| {
        let images = b.min(n - i * b);
        let t = Tiles::new(images, h, wd);
        let x_c = &x[i * b * in_img..][..images * in_img];
        let dy_c = &dy[i * b * out_img..][..images * out_img];
        let dx_c = dx_c.zip(products_t.as_deref());
        chunk_backward(x_c, dy_c, c, o, &t, dx_c, du, tasks);
    });
    let dw = du.map(|du| winograd::weight_grad(&du, c, o));
    (want_dx.then_some(dx), dw)
}

/// One chunk's input gradient (added into `dx`, which starts zeroed) and weight-gradient products
/// (`du = product + beta * du`), phase by phase.
#[allow(clippy::too_many_arguments)]
fn chunk_backward(
    x: &[f32],
    dy: &[f32],
    c: usize,
    o: usize,
    t: &Tiles,
    dx: Option<(&mut [f32], &[PackedA])>,
    du: Option<(&mut [f32], f32)>,
    tasks: usize,
) {
    let q_len = c * planes::window_planes_len(t);
    // The input's window planes (for the weight gradient), then the input gradient's.
    with_scratch(if du.is_some() { q_len } else { 0 }, |q| {
        if du.is_some() {
            planes::gather_windows(x, c, t, q);
        }
        with_scratch(if dx.is_some() { q_len } else { 0 }, |dq| {
            dq.fill(0.0);
            let products_t = dx.as_ref().map(|(_, p)| *p);
            chunk_phases_backward(q, dy, c, o, t, products_t.map(|p| (&mut *dq, p)), du, tasks);
            if let Some((dx, _)) = dx {
                planes::scatter_windows(dq, c, t, dx);
            }
        })
    })
}

/// [`chunk_backward`] on window planes: `q` the input's, `dq` the input gradient's
/// (added into).
#[allow(clippy::too_many_arguments)]
fn chunk_phases_backward(
    q: &[f32],
    dy: &[f32],
    c: usize,
    o: usize,
    t: &Tiles,
    mut dq: Option<(&mut [f32], &[PackedA])>,
    mut du: Option<(&mut [f32], f32)>,
    tasks: usize,
) {
    let tiles = t.count();
    with_scratch(o * planes::output_planes_len(t), |z| {
        planes::split_outputs(dy, o, t, z);
        with_scratch(POSITIONS * c * tiles, |v| {
            with_scratch(POSITIONS * o * tiles, |dm| {
                for phase in 0..PHASES {
                    winograd::output_grad_transform(z, o, t, phase, dm);
                    let dm_at =
                        |pos: usize| MatRef::new(&dm[pos * o * tiles..][..o * tiles], o, tiles);
                    if let Some((dq, products_t)) = dq.as_mut() {
                        for pos in 0..POSITIONS {
                            let a = &products_t[phase * POSITIONS + pos];
                            let dv = &mut v[pos * c * tiles..][..c * tiles];
                            gemm_packed_in_task(1.0, a, dm_at(pos), 0.0, dv, tasks);
                        }
                        winograd::add_input_grad(v, c, t, phase, dq);
                    }
                    if let Some((du, beta)) = du.as_mut() {
                        winograd::input_transform(q, c, t, phase, v);
                        for pos in 0..POSITIONS {
                            let v_pos = MatRef::new(&v[pos * c * tiles..][..c * tiles], c, tiles);
                            let du_pos = &mut du[(phase * POSITIONS + pos) * o * c..][..o * c];
                            gemm(1.0, dm_at(pos), v_pos.t(), *beta, du_pos);
                        }
                    }
                }
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::conv_transpose2d::{
        conv_transpose2d, gemm_backward, gemm_forward, ConvTranspose2dSpec,
    };
    use super::super::gradcheck::{check_gradients, Tolerance};
    use super::super::testutil::{config, tensor};
    use super::*;
    use crate::Tensor;
    use proptest::prelude::*;
    use std::sync::Arc;

    /// The adjoint conv2d's geometry of a 4x4 stride-2 padding-1 layer on `h x w` inputs.
    fn geometry(o: usize, h: usize, w: usize) -> ConvGeom {
        ConvGeom {
            c: o,
            h: 2 * h,
            w: 2 * w,
            kh: 4,
            kw: 4,
            sh: 2,
            sw: 2,
            pad_top: 1,
            pad_left: 1,
            oh: h,
            ow: w,
        }
    }

    fn close(got: &[f32], want: &[f32], what: &str) -> Result<(), TestCaseError> {
        prop_assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            prop_assert!(
                (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{} [{}]: {} vs {}",
                what,
                i,
                a,
                b
            );
        }
        Ok(())
    }

    /// Shapes with sides in `sides`: sizes not multiples of 4 (tiles partly outside),
    /// single rows and columns, and more images than threads or fewer.
    fn problem(
        sides: std::ops::Range<usize>,
    ) -> impl Strategy<Value = (Tensor, Tensor, Tensor, usize)> {
        (
            1usize..5,
            1usize..6,
            1usize..6,
            sides.clone(),
            sides,
            1usize..4,
        )
            .prop_flat_map(|(n, c, o, h, w, threads)| {
                (
                    tensor(vec![n, c, h, w]),
                    tensor(vec![c, o, 4, 4]),
                    tensor(vec![n, o, 2 * h, 2 * w]),
                    Just(threads),
                )
            })
    }

    /// Forward, input and weight gradients, each gradient alone and both together,
    /// against the GEMM + col2im path.
    fn check_against_the_gemm_path(
        x: Tensor,
        w: Tensor,
        dy: Tensor,
        threads: usize,
    ) -> Result<(), TestCaseError> {
        let (n, c, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
        let g = geometry(w.shape()[1], h, wd);
        let (xs, dys) = (x.as_slice().unwrap(), dy.as_slice().unwrap());
        let w = Arc::new(w);
        let pool = crate::threads::thread_pool(threads).unwrap();
        // A bias, added by each path's own tasks.
        let bias: Vec<f32> = (0..g.c).map(|i| i as f32 * 0.25 - 1.0).collect();
        let (y, (dx, dw)) = pool.install(|| {
            (
                forward(xs, n, c, &g, w.as_slice().unwrap(), Some(&bias)),
                backward(xs, n, c, &g, w.as_slice().unwrap(), dys, true, true),
            )
        });
        let want_y = gemm_forward(xs, n, c, &g, &w, true, Some(&bias));
        close(&y, &want_y, "y")?;
        let (want_dx, want_dw) = gemm_backward(xs, n, c, &g, &w, dys, true, true);
        close(&dx.unwrap(), &want_dx.unwrap(), "dx")?;
        close(&dw.unwrap(), &want_dw.unwrap(), "dw")?;
        // Each gradient alone is the same as both together.
        let (dx_only, none) =
            pool.install(|| backward(xs, n, c, &g, w.as_slice().unwrap(), dys, true, false));
        prop_assert!(none.is_none());
        let (none, dw_only) =
            pool.install(|| backward(xs, n, c, &g, w.as_slice().unwrap(), dys, false, true));
        prop_assert!(none.is_none());
        close(
            &dx_only.unwrap(),
            &gemm_backward(xs, n, c, &g, &w, dys, true, false).0.unwrap(),
            "dx alone",
        )?;
        close(
            &dw_only.unwrap(),
            &gemm_backward(xs, n, c, &g, &w, dys, false, true).1.unwrap(),
            "dw alone",
        )?;
        Ok(())
    }

    proptest! {
        #![proptest_config(config(48))]

        /// Forward, input and weight gradients against the GEMM + col2im path (itself
        /// checked against the definition in conv_transpose2d's tests).
        #[test]
        fn matches_the_gemm_path((x, w, dy, threads) in problem(1..8)) {
            check_against_the_gemm_path(x, w, dy, threads)?;
        }

        /// The same on planes of 9 to 36 tiles per image (the transforms' blocks of 16, 8,
        /// 4 and 1 lanes).
        #[test]
        fn larger_planes_match_the_gemm_path((x, w, dy, threads) in problem(9..22)) {
            check_against_the_gemm_path(x, w, dy, threads)?;
        }

        /// Through the op itself, on an input large enough for this path (taken where our
        /// kernel runs).
        #[test]
        fn gradients_match_finite_differences(x in tensor(vec![1, 2, 16, 17]), w in tensor(vec![2, 2, 4, 4]), seed: u64) {
            let spec = ConvTranspose2dSpec::new(2, 1, 0);
            check_gradients(&[x, w], seed, Tolerance::default(), |v| conv_transpose2d(&v[0], &v[1], None, spec))
                .map_err(TestCaseError::fail)?;
        }
    }

    /// Relative RMS error of `got` against the exact `want`.
    fn relative_error(got: &[f32], want: &[f64]) -> f64 {
        let err: f64 = got
            .iter()
            .zip(want)
            .map(|(g, w)| (*g as f64 - w).powi(2))
            .sum();
        let norm: f64 = want.iter().map(|w| w * w).sum();
        (err / norm).sqrt()
    }

    /// `(y, dx, dw)` of the transposed convolution in f64, from its definition
    /// (`y[2i - 1 + k] += x[i] w[k]` per axis).
    fn exact(x: &[f32], w: &[f32], dy: &[f32], (n, c, o, h, wd): Dims) -> [Vec<f64>; 3] {
        let (oh, ow) = (2 * h, 2 * wd);
        let (mut y, mut dx, mut dw) = (
            vec![0.0; n * o * oh * ow],
            vec![0.0; x.len()],
            vec![0.0; w.len()],
        );
        for (xi, &xv) in x.iter().enumerate() {
            let (ix, iy, ci, ni) = (xi % wd, xi / wd % h, xi / (wd * h) % c, xi / (wd * h * c));
            for oi in 0..o {
                for (ky, kx) in (0..16).map(|k| (k / 4, k % 4)) {
                    let (yy, xx) = (2 * iy + ky, 2 * ix + kx);
                    if yy == 0 || xx == 0 || yy > oh || xx > ow {
                        continue;
                    }
                    let wi = (ci * o + oi) * 16 + ky * 4 + kx;
                    let yi = ((ni * o + oi) * oh + yy - 1) * ow + xx - 1;
                    y[yi] += xv as f64 * w[wi] as f64;
                    dx[xi] += dy[yi] as f64 * w[wi] as f64;
                    dw[wi] += xv as f64 * dy[yi] as f64;
                }
            }
        }
        [y, dx, dw]
    }

    type Dims = (usize, usize, usize, usize, usize);

    /// Minimal filtering rounds a little worse than the GEMM path, and no more: each of y,
    /// dx and dw within 1e-6 relative RMS error of the exact values and 10 times the GEMM
    /// path's (measured at 32 channels: 7.7e-7, 7.6e-7 and 5.9e-7, against 1.1e-7, 2.9e-7
    /// and 2.8e-7; F(4x4, 2x2)'s points 2 and ∞ scale values by up to 8 per axis). The
    /// ill-conditioned coefficients of larger tiles would fail this.
    #[test]
    fn rounds_like_the_gemm_path() {
        let dims @ (n, c, o, h, wd) = (2, 32, 32, 16, 16);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut uniform = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                })
                .collect()
        };
        let (x, w, dy) = (
            uniform(n * c * h * wd),
            uniform(c * o * 16),
            uniform(n * o * 4 * h * wd),
        );
        let g = geometry(o, h, wd);
        let wt =
            Arc::new(Tensor::from_shape_vec(ndarray::IxDyn(&[c, o, 4, 4]), w.clone()).unwrap());
        let (dx, dw) = backward(&x, n, c, &g, &w, &dy, true, true);
        let ours = [forward(&x, n, c, &g, &w, None), dx.unwrap(), dw.unwrap()];
        let (dx, dw) = gemm_backward(&x, n, c, &g, &wt, &dy, true, true);
        let gemm = [
            gemm_forward(&x, n, c, &g, &wt, true, None),
            dx.unwrap(),
            dw.unwrap(),
        ];
        for ((ours, gemm), (exact, what)) in ours
            .iter()
            .zip(&gemm)
            .zip(exact(&x, &w, &dy, dims).iter().zip(["y", "dx", "dw"]))
        {
            let (e_ours, e_gemm) = (relative_error(ours, exact), relative_error(gemm, exact));
            assert!(
                e_ours <= 1e-6 && e_ours <= 10.0 * e_gemm.max(1e-7),
                "{what}: {e_ours:.2e} vs the GEMM path's {e_gemm:.2e}"
            );
        }
    }

    /// A layer of celeba32's size is taken by this path wherever it runs, in training's
    /// batches; small batches (decoding one face) stay on the GEMM path, where the weight's
    /// transform and packing on every call cost more than the products saved.
    #[test]
    fn celeba32_upsampling_takes_this_path_where_it_runs() {
        let g = geometry(128, 16, 16);
        for n in [MIN_IMAGES, 128] {
            assert_eq!(applies(&g, n), runs_here(), "batch {n}");
        }
        for n in [1, 16, MIN_IMAGES - 1] {
            assert!(!applies(&g, n), "batch {n}");
        }
        assert!(!applies(&geometry(128, 8, 8), 128), "an 8x8 input");
        assert!(!applies(&ConvGeom { h: 33, ..g }, 128), "output padding");
        assert!(!applies(&ConvGeom { pad_top: 0, ..g }, 128));
    }
}
