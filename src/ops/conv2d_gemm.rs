//! conv2d's im2col + GEMM paths (see [`super::conv2d`]): forward `Y = W · col(x)` per chunk
//! of images; backward `dW = Σ dY · col(x)ᵀ` and `dx = col2im(Wᵀ · dY)`, or for a stride
//! of 1 `dx = conv(dY, flipped W)` ([`ConvGeom::adjoint`]). Where our kernel runs, the
//! columns are packed straight from the images ([`Im2colView`]) and never written out.

use super::chunk_grads::backward_in_chunks;
use super::conv2d::Columns;
use crate::kernels::gemm::{
    gemm, gemm_columns_t, gemm_packed_columns, gemm_packed_in_task, packs_columns_in_place, MatRef,
    PackedA,
};
use crate::kernels::gemm_col2im::gemm_col2im_chunk;
use crate::kernels::im2col_view::Im2colView;
use crate::kernels::layout::{
    add_plane_bias, images_per_chunk, into_batch_major, with_channel_major, Bias,
};
use crate::kernels::zeroed::{written_in_chunks, zeroed_in_chunks};
use crate::kernels::ConvGeom;
use crate::Tensor;
use std::sync::Arc;

/// [`forward`] through im2col + GEMM. Where our kernel packs the columns straight from
/// the images, nothing is kept; elsewhere, with `tracked` (the weight is on a tape), each
/// chunk's columns are written out once and kept for the weight gradient. Without, the
/// weight's packed panels are reused across calls ([`PackedA::reused`]). Each chunk's
/// task adds `bias` to the images it has written.
pub(crate) fn gemm_forward(
    x: &[f32],
    n: usize,
    g: &ConvGeom,
    (w, o): (&Arc<Tensor>, usize),
    tracked: bool,
    bias: Bias,
) -> (Vec<f32>, Option<Columns>) {
    let (p, img, rows) = (g.out_positions(), g.image_len(), g.col_rows());
    let b = images_per_chunk(n, p);
    let w_mat = PackedA::weight(MatRef::new(w.as_slice().unwrap(), o, rows).kept(w), tracked);
    let keep_columns = tracked && !packs_columns_in_place();
    let tasks = n.div_ceil(b);
    let (y, columns) = zeroed_in_chunks(n * o * p, b * o * p, |i, y_c| {
        let bc = y_c.len() / (o * p);
        let view = Im2colView::new(g, &x[i * b * img..][..bc * img]);
        let mut kept = Vec::new();
        into_batch_major(y_c, bc, o, p, |y_cm| {
            if keep_columns {
                kept = vec![0.0f32; rows * bc * p];
                view.write(&mut kept, tasks < rayon::current_num_threads());
                let col = MatRef::new(&kept, rows, bc * p);
                gemm_packed_in_task(1.0, &w_mat, col, 0.0, y_cm, tasks);
            } else {
                gemm_packed_columns(1.0, &w_mat, view, 0.0, y_cm, tasks);
            }
        });
        add_plane_bias(y_c, p, bias);
        kept
    });
    (y, keep_columns.then_some(columns))
}

/// [`backward`] through im2col + GEMM: `dx` by col2im, or where our kernel runs and the
/// stride is 1, as the adjoint convolution.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_backward(
    x: &[f32],
    n: usize,
    g: &ConvGeom,
    w: &Arc<Tensor>,
    o: usize,
    dy: &[f32],
    (want_dx, want_dw): (bool, bool),
    columns: Option<&[Vec<f32>]>,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let (p, img, rows) = (g.out_positions(), g.image_len(), g.col_rows());
    let b = images_per_chunk(n, p);
    let w_all = w.as_slice().unwrap();
    // A stride-1 input gradient is itself a convolution (of dy with the flipped kernel),
    // which our kernel runs from dy's own values: no column matrix, no col2im.
    let adjoint = g.adjoint(o).filter(|_| want_dx && packs_columns_in_place());
    let flipped = adjoint.map(|_| flipped_kernel(w_all, o, g));
    let w_t = match &flipped {
        Some(f) => MatRef::new(f, g.c, o * g.kh * g.kw),
        None => MatRef::new(w_all, o, rows).kept(w).t(),
    };
    let w_t = want_dx.then(|| PackedA::new(w_t));
    let tasks = n.div_ceil(b);
    let dw_len = want_dw.then_some(o * rows);
    // Columns kept by a forward that chunked alike (it ran on a pool of the same size): as
    // many chunks, the first of as many images.
    let columns = columns
        .filter(|c| c.len() == tasks && c.first().is_none_or(|c| c.len() == rows * b.min(n) * p));
    let dx_len = if want_dx { n * img } else { 0 };
    let (dx, dw) = backward_in_chunks(tasks, dx_len, b * img, dw_len, |ci, dx_c, dw| {
        let first = ci * b;
        let bc = b.min(n - first);
        let cols = bc * p;
        let dy_c = &dy[first * o * p..(first + bc) * o * p];
        with_channel_major(dy_c, bc, o, p, |dy_cm| {
            let dy_mat = MatRef::new(dy_cm, o, cols);
            if let Some((dw, beta)) = dw {
                match columns {
                    Some(kept) => gemm(
                        1.0,
                        dy_mat,
                        MatRef::new(&kept[ci], rows, cols).t(),
                        beta,
                        dw,
                    ),
                    None => {
                        let view = Im2colView::new(g, &x[first * img..(first + bc) * img]);
                        gemm_columns_t(1.0, dy_mat, view, beta, dw)
                    }
                }
            }
            match (dx_c, w_t.as_ref(), &adjoint) {
                (Some(dx_c), Some(w_t), Some(ga)) => {
                    into_batch_major(dx_c, bc, g.c, g.h * g.w, |t| {
                        gemm_packed_columns(1.0, w_t, Im2colView::new(ga, dy_c), 0.0, t, tasks)
                    })
                }
                (Some(dx_c), Some(w_t), None) => gemm_col2im_chunk(w_t, dy_mat, g, dx_c),
                _ => {}
            }
        });
    });
    (want_dx.then_some(dx), dw)
}

/// `w'[c, o, i, j] = w[o, c, kh-1-i, kw-1-j]`: the kernel of the adjoint convolution
/// ([`ConvGeom::adjoint`]), `[C, O, kh, kw]`, written once (no zero fill) one input
/// channel per task on the current pool.
fn flipped_kernel(w: &[f32], o: usize, g: &ConvGeom) -> Vec<f32> {
    let taps = g.kh * g.kw;
    assert_eq!(w.len(), o * g.c * taps);
    // SAFETY: each task writes every value of its chunk, channel `ci`'s `o` kernels.
    let (flipped, _) = unsafe {
        written_in_chunks(w.len(), o * taps, |ci, dst| {
            for (oi, d) in dst.chunks_exact_mut(taps).enumerate() {
                let tap = &w[(oi * g.c + ci) * taps..][..taps];
                d.iter_mut().zip(tap.iter().rev()).for_each(|(d, v)| {
                    d.write(*v);
                });
            }
        })
    };
    flipped
}

#[cfg(test)]
mod tests {
    use super::super::conv2d::{conv2d_output_size, geometry, Conv2dSpec, Padding};
    use super::super::testutil::config;
    use super::*;
    use ndarray::IxDyn;
    use proptest::prelude::*;

    /// The kept columns serve only a backward that chunks the batch as the forward did: on
    /// a pool of another size it unfolds the input again, with the same gradients (and so
    /// does every backward where no columns are kept).
    #[test]
    fn backward_on_another_pool_than_the_forward_matches() {
        let x = Tensor::from_shape_fn(IxDyn(&[7, 2, 5, 5]), |d| {
            ((d[0] * 5 + d[1] * 3 + d[2] * 7 + d[3]) % 13) as f32 / 13.0 - 0.5
        });
        let w = Arc::new(Tensor::from_shape_fn(IxDyn(&[6, 2, 3, 3]), |d| {
            ((d[0] + 3 * d[1] + 2 * d[2] + 5 * d[3]) % 11) as f32 / 11.0 - 0.5
        }));
        let (n, g, o) = geometry(
            x.shape(),
            w.shape(),
            &Conv2dSpec::new(1, Padding::symmetric(1)),
        );
        let xs = x.as_slice().unwrap();
        let dy: Vec<f32> = (0..n * o * g.out_positions())
            .map(|i| (i % 7) as f32 - 3.0)
            .collect();
        let pool = |threads| crate::threads::thread_pool(threads).unwrap();
        let (dx, dw) = gemm_backward(xs, n, &g, &w, o, &dy, (true, true), None);
        for (fwd, bwd) in [(1, 3), (3, 1), (2, 5), (2, 2)] {
            let (_, kept) = pool(fwd).install(|| gemm_forward(xs, n, &g, (&w, o), true, None));
            // Where the kernel packs columns from the images, there is nothing to keep.
            assert_eq!(kept.is_some(), !packs_columns_in_place());
            let (dx2, dw2) = pool(bwd)
                .install(|| gemm_backward(xs, n, &g, &w, o, &dy, (true, true), kept.as_deref()));
            let pairs = dx2.iter().flatten().zip(dx.iter().flatten());
            for (a, e) in pairs.chain(dw2.iter().flatten().zip(dw.iter().flatten())) {
                assert!((a - e).abs() < 1e-4, "{fwd} -> {bwd} threads: {a} vs {e}");
            }
        }
    }

    /// The definition of the input gradient: `dx[n, c, iy, ix] += w[o, c, ki, kj] *
    /// dy[n, o, oy, ox]` wherever `iy = oy*s + ki - pt`, `ix = ox*s + kj - pl` lie inside.
    fn naive_input_gradient(g: &ConvGeom, n: usize, o: usize, w: &[f32], dy: &[f32]) -> Vec<f32> {
        let mut dx = vec![0.0f64; n * g.image_len()];
        for (i, ((oc, ki), kj)) in (0..n)
            .flat_map(|i| (0..o * g.c).map(move |oc| (i, oc)))
            .flat_map(|(i, oc)| (0..g.kh).map(move |ki| (i, (oc, ki))))
            .flat_map(|(i, t)| (0..g.kw).map(move |kj| (i, (t, kj))))
        {
            let (oo, c) = (oc / g.c, oc % g.c);
            let wv = w[((oo * g.c + c) * g.kh + ki) * g.kw + kj] as f64;
            for (oy, ox) in (0..g.oh).flat_map(|oy| (0..g.ow).map(move |ox| (oy, ox))) {
                let iy = (oy * g.sh + ki) as isize - g.pad_top as isize;
                let ix = (ox * g.sw + kj) as isize - g.pad_left as isize;
                if (0..g.h as isize).contains(&iy) && (0..g.w as isize).contains(&ix) {
                    let d = dy[((i * o + oo) * g.oh + oy) * g.ow + ox] as f64;
                    dx[((i * g.c + c) * g.h + iy as usize) * g.w + ix as usize] += wv * d;
                }
            }
        }
        dx.into_iter().map(|v| v as f32).collect()
    }

    proptest! {
        #![proptest_config(config(48))]

        /// The GEMM path's input gradient (through the adjoint convolution where the stride
        /// is 1 and the padding fits, else through col2im) for channel counts the direct
        /// kernels leave to it.
        #[test]
        fn gemm_input_gradient_matches_naive(n in 1usize..4, c in 5usize..9, o in 5usize..9,
                                             h in 2usize..9, w in 2usize..9, kh in 1usize..5,
                                             kw in 1usize..5, s in 1usize..3,
                                             pads in (0usize..5, 0usize..5, 0usize..5, 0usize..5),
                                             seed: u64) {
            let (top, bottom, left, right) = pads;
            let spec = Conv2dSpec::new(s, Padding::Explicit { top, bottom, left, right });
            prop_assume!(conv2d_output_size(h, w, kh, kw, &spec).is_some());
            let values = |len: usize, salt: u64| -> Vec<f32> {
                (0..len).map(|i| (((i as u64 * 2654435761 + seed) ^ salt) % 1000) as f32 / 500.0 - 1.0).collect()
            };
            let x = values(n * c * h * w, 1);
            let wt = Arc::new(Tensor::from_shape_vec(IxDyn(&[o, c, kh, kw]), values(o * c * kh * kw, 2)).unwrap());
            let (n, g, o) = geometry(&[n, c, h, w], wt.shape(), &spec);
            let dy = values(n * o * g.out_positions(), 3);
            let (dx, _) = gemm_backward(&x, n, &g, &wt, o, &dy, (true, false), None);
            let expect = naive_input_gradient(&g, n, o, wt.as_slice().unwrap(), &dy);
            for (a, e) in dx.unwrap().iter().zip(&expect) {
                prop_assert!((a - e).abs() < 1e-3 * (1.0 + e.abs()), "{} vs {}", a, e);
            }
        }
    }
}
