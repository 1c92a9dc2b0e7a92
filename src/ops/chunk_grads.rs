//! The backward pass of a convolution over a batch split into chunks of images: each chunk
//! writes its own slice of the input gradient and adds its product into the weight
//! gradient. Chunks run in groups of consecutive chunks, one weight-gradient buffer per
//! group (the group's first chunk writes it, the others add to it through the GEMM's
//! `beta = 1`), and the groups' buffers are summed in group order. So the sums depend on
//! the thread count only, never on which thread ran what, and a step allocates a few
//! buffers instead of one per chunk.

use crate::kernels::zeroed::zero;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Runs `per_chunk(chunk, dx_slice, dw)` for every chunk `0..chunks`, where `dx_slice` is
/// the chunk's `dx_chunk_len` values of a new input gradient of `dx_len` values (fewer for
/// the last chunk; `None` when `dx_len` is 0, i.e. not wanted), zeroed by the chunk's task
/// just before, and `dw` is `(buffer, beta)` when `dw_len` is given: the chunk computes
/// `buffer = product + beta * buffer` (each group's buffer starts zeroed, so a chunk may
/// also just add into it). Returns the input gradient and the summed weight gradient,
/// `Some` exactly when `dw_len` is (zeros when there are no chunks).
pub(crate) fn backward_in_chunks<F>(
    chunks: usize,
    dx_len: usize,
    dx_chunk_len: usize,
    dw_len: Option<usize>,
    per_chunk: F,
) -> (Vec<f32>, Option<Vec<f32>>)
where
    F: Fn(usize, Option<&mut [f32]>, Option<(&mut [f32], f32)>) + Sync,
{
    let groups = chunks.min(2 * rayon::current_num_threads()).max(1);
    let bound = |group: usize| group * chunks / groups;
    let mut dx: Vec<f32> = Vec::with_capacity(dx_len);
    let partials = {
        let spare = &mut dx.spare_capacity_mut()[..dx_len];
        let mut dx_chunks: Vec<Option<&mut [MaybeUninit<f32>]>> =
            spare.chunks_mut(dx_chunk_len.max(1)).map(Some).collect();
        assert!(
            dx_chunks.len() <= chunks,
            "more input-gradient slices than chunks"
        );
        dx_chunks.resize_with(chunks, || None);
        let mut dx_chunks = dx_chunks.into_iter();
        let grouped: Vec<Vec<_>> = (0..groups)
            .map(|g| dx_chunks.by_ref().take(bound(g + 1) - bound(g)).collect())
            .collect();
        grouped
            .into_par_iter()
            .enumerate()
            .map(|(g, dx_group)| {
                let mut dw = dw_len.map(|len| vec![0.0f32; len]);
                for (k, dx_c) in dx_group.into_iter().enumerate() {
                    let beta = if k == 0 { 0.0 } else { 1.0 };
                    let dw = dw.as_deref_mut().map(|d| (d, beta));
                    per_chunk(bound(g) + k, dx_c.map(zero), dw);
                }
                dw
            })
            .collect::<Vec<_>>()
    };
    // SAFETY: the slices cover the first `dx_len` values, and each was zeroed by `zero`.
    unsafe { dx.set_len(dx_len) };
    (dx, sum_in_order(partials.into_iter().flatten()))
}

/// Values of the summed weight gradient per task of [`sum_in_order`]: 16 KiB, which stay
/// in L1 while every partial sum is added into them.
const SUM_TASK: usize = 4096;

/// The groups' weight gradients summed in group order, `((g0 + g1) + g2) + ...` for every
/// value, on the current rayon pool (a weight gradient of 0.6 M values summed by one
/// thread kept the other idle for about 1% of a celeba64x48-in step).
fn sum_in_order(mut partials: impl Iterator<Item = Vec<f32>>) -> Option<Vec<f32>> {
    let mut sum = partials.next()?;
    let rest: Vec<Vec<f32>> = partials.collect();
    sum.par_chunks_mut(SUM_TASK)
        .enumerate()
        .for_each(|(t, part)| {
            for r in &rest {
                let r = &r[t * SUM_TASK..][..part.len()];
                part.iter_mut().zip(r).for_each(|(x, y)| *x += y);
            }
        });
    Some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parallel sum adds every value's partials in group order, as one thread would,
    /// so the weight gradient is the same bit for bit on any pool.
    #[test]
    fn partials_sum_in_group_order_on_any_pool() {
        let len = 3 * SUM_TASK + 17;
        let partials: Vec<Vec<f32>> = (0..5)
            .map(|g| {
                (0..len)
                    .map(|i| ((i * 7 + g * 13) % 101) as f32 * 0.1 + 1e-3 * g as f32)
                    .collect()
            })
            .collect();
        let serial = partials
            .iter()
            .skip(1)
            .fold(partials[0].clone(), |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            });
        for threads in [1, 2, 3] {
            let pool = crate::threads::thread_pool(threads).unwrap();
            let sum = pool
                .install(|| sum_in_order(partials.clone().into_iter()))
                .unwrap();
            assert!(sum
                .iter()
                .zip(&serial)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
        assert_eq!(sum_in_order(std::iter::empty()), None);
    }

    #[test]
    fn every_chunk_runs_once_with_its_slice_and_partials_sum() {
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let (chunks, len) = (7, 3);
            let dx_len = chunks * len - 1; // the last chunk is short
            let (dx, dw) = pool.install(|| {
                backward_in_chunks(chunks, dx_len, len, Some(2), |ci, dx_c, dw| {
                    let dx_c = dx_c.unwrap();
                    assert_eq!(dx_c.len(), if ci == chunks - 1 { len - 1 } else { len });
                    assert!(dx_c.iter().all(|&v| v == 0.0), "a slice starts zeroed");
                    dx_c[0] = ci as f32;
                    let (buf, beta) = dw.unwrap();
                    if beta == 0.0 {
                        assert!(buf.iter().all(|&v| v == 0.0), "a group starts zeroed");
                    }
                    for v in buf.iter_mut() {
                        *v = (ci + 1) as f32 + beta * *v;
                    }
                })
            });
            let expect: Vec<f32> = (0..dx_len)
                .map(|i| if i % len == 0 { (i / len) as f32 } else { 0.0 })
                .collect();
            assert_eq!(dx, expect);
            assert_eq!(dw.unwrap(), vec![28.0, 28.0]); // 1 + 2 + ... + 7
        }
        // Nothing wanted: no dx slices, no weight gradient.
        let (dx, dw) = backward_in_chunks(3, 0, 4, None, |_, dx_c, dw| {
            assert!(dx_c.is_none() && dw.is_none());
        });
        assert!(dx.is_empty() && dw.is_none());
        // No chunks: still a (zero) weight gradient when one is asked for.
        let (_, dw) = backward_in_chunks(0, 0, 4, Some(3), |_, _, _| unreachable!());
        assert_eq!(dw, Some(vec![0.0; 3]));
    }
}
