//! Large output buffers filled by every thread of the pool at once: zeroed chunk by chunk by
//! the task that then fills the chunk ([`zeroed_in_chunks`]), or written chunk by chunk and
//! never zeroed ([`written_in_chunks`]) where every value is written anyway. A step's
//! outputs and gradients (tens of MiB each) were `vec![0.0; n]`: one thread wrote every
//! zero while the others waited, a serial part that kept two threads from twice one's
//! speed; and a zero fill of a whole buffer ahead of the pass that writes it is one more
//! pass over memory, its zeros out of cache by the time the pass comes back to them.

use rayon::prelude::*;
use std::mem::MaybeUninit;

/// `len` values written by `fill(i, chunk)` for the `i`-th chunk of `chunk` values (the
/// last shorter) on the current rayon pool, without zeroing them first; with each chunk's
/// result in order.
///
/// # Safety
/// `fill` must write every value of the chunk it is given.
pub unsafe fn written_in_chunks<R: Send>(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) -> R + Sync + Send,
) -> (Vec<f32>, Vec<R>) {
    let mut v: Vec<f32> = Vec::with_capacity(len);
    let results = v.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .map(|(i, c)| fill(i, c))
        .collect();
    // SAFETY: the caller's `fill` wrote every value of every chunk, which cover `len`
    // values within the capacity just reserved.
    unsafe { v.set_len(len) };
    (v, results)
}

/// `len` values in chunks of `chunk` (the last shorter), each zeroed by the task that then
/// runs `fill(i, chunk)` on it, on the current rayon pool; with each chunk's result in
/// order. For outputs that a parallel pass writes chunk by chunk, or adds into: the zeros
/// are written while the chunk is about to be used (in cache, by every thread) rather
/// than by a pass of their own over the whole buffer beforehand.
pub fn zeroed_in_chunks<R: Send>(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [f32]) -> R + Sync + Send,
) -> (Vec<f32>, Vec<R>) {
    // SAFETY: every chunk is zeroed whole before `fill` sees it.
    unsafe { written_in_chunks(len, chunk, |i, c| fill(i, zero(c))) }
}

/// `values` zeroed, as initialised values.
pub fn zero(values: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    values.fill(MaybeUninit::new(0.0));
    // SAFETY: every value was just written.
    unsafe { assume_written(values) }
}

/// `values` as the initialised values they now are.
///
/// # Safety
/// Every value of `values` has been written.
pub unsafe fn assume_written(values: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: the caller wrote every value; `MaybeUninit<f32>` has `f32`'s layout.
    unsafe { &mut *(values as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_in_chunks_hands_each_task_its_chunk_zeroed() {
        for threads in [1, 3] {
            let pool = crate::threads::thread_pool(threads).unwrap();
            let (len, chunk) = (10 * 7 + 3, 7);
            let (v, firsts) = pool.install(|| {
                zeroed_in_chunks(len, chunk, |i, c| {
                    assert!(c.iter().all(|&x| x == 0.0));
                    assert_eq!(c.len(), chunk.min(len - i * chunk));
                    c[0] = i as f32 + 1.0;
                    i
                })
            });
            assert_eq!(firsts, (0..11).collect::<Vec<_>>());
            let want: Vec<f32> = (0..len)
                .map(|j| {
                    if j % chunk == 0 {
                        (j / chunk) as f32 + 1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            assert_eq!(v, want);
        }
    }

    #[test]
    fn written_in_chunks_gives_each_chunk_its_values_and_results_in_order() {
        let pool = crate::threads::thread_pool(3).unwrap();
        for (len, chunk) in [(0, 4), (10, 4), (12, 4), (7, 100)] {
            // SAFETY: every value of each chunk is written.
            let (v, starts) = pool.install(|| unsafe {
                written_in_chunks(len, chunk, |i, c| {
                    for (j, x) in c.iter_mut().enumerate() {
                        x.write((i * chunk + j) as f32);
                    }
                    i * chunk
                })
            });
            assert_eq!(v, (0..len).map(|i| i as f32).collect::<Vec<_>>());
            assert_eq!(starts, (0..len).step_by(chunk).collect::<Vec<_>>());
        }
    }
}
