//! A product whose result goes straight through col2im, `image_i = col2im(A · X_i)`, as
//! conv_transpose2d's forward computes `y = col2im(Wᵀ · x)`. The product runs in groups of
//! whole channels (A's rows are `(c, ki, kj)`), and each group's columns are summed into
//! the images while they are still in cache (a chunk's whole column matrix, 2 MiB for one
//! 16x16 image of celeba32's 128-channel layers, went out to memory and came back). The
//! images are written once, with no zero fill before.

use super::col2im::{col2im_into, col2im_par_into};
use super::gemm::{gemm_packed_in_task, gemm_packed_rows, MatRef, PackedA};
use super::im2col::ConvGeom;
use super::layout::{add_plane_bias, images_per_chunk, with_channel_major, Bias};
use super::offload;
use super::packed_gemm::MR;
use super::scratch::with_scratch;
use super::zeroed::assume_written;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Column values per group: small enough to stay in L2 beside the packed panels.
const GROUP_VALUES: usize = 64 << 10;

/// The `n` images `col2im(A · X_i)` (`g.image_len()` values each) of the batch-major
/// `x` (`n` images of `c` planes of `g.oh * g.ow`), plus `bias` (one value per plane of
/// an image); A is `g.col_rows() x c`. Chunks of images run over the current rayon pool;
/// a chunk's planes are multiplied as one matrix `[c, images * positions]`.
pub fn gemm_col2im(
    a: &PackedA,
    x: &[f32],
    n: usize,
    c: usize,
    g: &ConvGeom,
    bias: Bias,
) -> Vec<f32> {
    let (p, img) = (g.out_positions(), g.image_len());
    assert_eq!(x.len(), n * c * p, "gemm_col2im: input is not {n} images");
    let b = images_per_chunk(n, p);
    let tasks = n.div_ceil(b);
    let mut out: Vec<f32> = Vec::with_capacity(n * img);
    out.spare_capacity_mut()[..n * img]
        .par_chunks_mut(b * img)
        .zip(x.par_chunks(b * c * p))
        .for_each(|(images, x_c)| {
            let bc = images.len() / img;
            with_channel_major(x_c, bc, c, p, |x_cm| {
                let x_mat = MatRef::new(x_cm, c, bc * p);
                if tasks >= rayon::current_num_threads() {
                    let per_group = channels_per_group(g.c, g.kh * g.kw, bc * p);
                    return in_groups(a, x_mat, g, images, per_group);
                }
                // Fewer chunks than threads (one image): each step over the pool.
                with_scratch(g.col_rows() * bc * p, |col| {
                    gemm_packed_in_task(1.0, a, x_mat, 0.0, col, tasks);
                    for (i, image) in images.chunks_exact_mut(img).enumerate() {
                        col2im_par_into(g, &col[i * p..], bc * p, image);
                    }
                })
            });
            // SAFETY: the images were written whole just above (as at the end).
            add_plane_bias(unsafe { assume_written(images) }, g.h * g.w, bias);
        });
    // SAFETY: every chunk's images were written whole above (col2im writes every value
    // of an image; the groups cover every channel).
    unsafe { out.set_len(n * img) };
    out
}

/// The images of B's columns (`g.oh * g.ow` each) written from `A · B` into `images`
/// (overwritten), in groups of channels: for a chunk a caller has laid out itself.
pub fn gemm_col2im_chunk(a: &PackedA, b: MatRef, g: &ConvGeom, images: &mut [f32]) {
    assert_eq!(images.len() / g.image_len() * g.out_positions(), b.cols);
    let per_group = channels_per_group(g.c, g.kh * g.kw, b.cols);
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout; only initialized values are written.
    let images = unsafe { &mut *(images as *mut [f32] as *mut [MaybeUninit<f32>]) };
    in_groups(a, b, g, images, per_group);
}

/// The images of B's columns (`g.oh * g.ow` each) written from `A · B`, `per_group`
/// channels per product.
fn in_groups(
    a: &PackedA,
    b: MatRef,
    g: &ConvGeom,
    images: &mut [MaybeUninit<f32>],
    per_group: usize,
) {
    let (p, taps, plane) = (g.out_positions(), g.kh * g.kw, g.h * g.w);
    for c0 in (0..g.c).step_by(per_group) {
        let channels = per_group.min(g.c - c0);
        let group = ConvGeom { c: channels, ..*g };
        with_scratch(channels * taps * b.cols, |col| {
            gemm_packed_rows(1.0, a, (c0 * taps, channels * taps), b, 0.0, col);
            for (i, image) in images.chunks_exact_mut(g.image_len()).enumerate() {
                let planes = &mut image[c0 * plane..(c0 + channels) * plane];
                col2im_into(&group, &col[i * p..], b.cols, planes);
            }
        });
    }
}

/// Channels per group: about [`GROUP_VALUES`] column values, in whole panels of A's rows
/// (or all channels). With an accelerator in use, all channels: one large product.
fn channels_per_group(c: usize, taps: usize, cols: usize) -> usize {
    if offload::is_active() {
        return c;
    }
    let step = MR / gcd(taps, MR);
    let fit = (GROUP_VALUES / (taps * cols).max(1)).max(1);
    (fit / step * step).max(step).min(c)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::super::col2im::tests::geom;
    use super::*;
    use proptest::prelude::*;

    fn close(got: &[f32], want: &[f32]) -> Result<(), TestCaseError> {
        for (x, y) in got.iter().zip(want) {
            prop_assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{} vs {}", x, y);
        }
        Ok(())
    }

    proptest! {
        /// Each image equals its own product followed by col2im: over pools of one and
        /// three threads (chunks per thread, and one image over the pool), and in groups
        /// of any whole number of panels.
        #[test]
        fn matches_each_images_product_then_col2im(g in geom(), n in 1usize..4, k in 1usize..6,
                                                   panels in 1usize..4, seed: u32) {
            let (rows, p) = (g.col_rows(), g.out_positions());
            let value = |i: usize| ((i as u32).wrapping_mul(2654435761) ^ seed) as f32 / u32::MAX as f32 - 0.5;
            let a: Vec<f32> = (0..rows * k).map(value).collect();
            let x: Vec<f32> = (0..n * k * p).map(|i| value(i + 7919)).collect();
            let a = MatRef::new(&a, rows, k);
            let mut want = vec![0.0f32; n * g.image_len()];
            for (i, image) in want.chunks_exact_mut(g.image_len()).enumerate() {
                let mut col = vec![0.0f32; rows * p];
                let x_i = MatRef::new(&x[i * k * p..(i + 1) * k * p], k, p);
                super::super::gemm::gemm(1.0, a, x_i, 0.0, &mut col);
                super::super::col2im::col2im(&g, &col, p, image);
            }
            let packed = PackedA::new(a);
            for threads in [1, 3] {
                let pool = crate::threads::thread_pool(threads).unwrap();
                close(&pool.install(|| gemm_col2im(&packed, &x, n, k, &g, None)), &want)?;
            }
            // All images side by side as one channel-major matrix, in groups.
            let mut x_cm = vec![0.0f32; x.len()];
            super::super::layout::batch_to_channel_major(&x, n, k, p, &mut x_cm);
            let taps = g.kh * g.kw;
            let per_group = (panels * MR / gcd(taps, MR)).min(g.c);
            let mut got = vec![MaybeUninit::new(f32::NAN); want.len()];
            in_groups(&packed, MatRef::new(&x_cm, k, n * p), &g, &mut got, per_group);
            close(&got.iter().map(|v| unsafe { v.assume_init() }).collect::<Vec<_>>(), &want)?;
        }
    }

    #[test]
    fn groups_hold_whole_panels_and_fit() {
        for (c, taps, cols) in [(128, 16, 256), (64, 9, 768), (3, 9, 100_000), (256, 4, 12)] {
            let per = channels_per_group(c, taps, cols);
            assert!(per >= 1 && per <= c);
            assert!(
                per == c || (per * taps).is_multiple_of(MR),
                "{c} {taps} {cols}: {per}"
            );
            let least = (MR / gcd(taps, MR)).min(c);
            assert!(
                per == least || per * taps * cols <= GROUP_VALUES,
                "{c} {taps} {cols}: {per}"
            );
        }
    }
}
