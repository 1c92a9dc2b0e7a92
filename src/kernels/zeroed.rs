//! Large zero-filled buffers, zeroed by every thread of the pool at once. A step's outputs
//! and gradients (tens of MiB each) were `vec![0.0; n]`: one thread wrote every zero while
//! the others waited, a serial part that kept two threads from twice one's speed.

use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Values zeroed per task: large enough that a task is worth handing out.
const PER_TASK: usize = 1 << 16;

/// `vec![0.0; len]`, zeroed in parallel on the current rayon pool when it is large.
pub fn zeroed(len: usize) -> Vec<f32> {
    if len < 2 * PER_TASK || rayon::current_num_threads() == 1 {
        return vec![0.0; len];
    }
    let mut v: Vec<f32> = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(PER_TASK)
        .for_each(|chunk| chunk.fill(MaybeUninit::new(0.0)));
    // SAFETY: the loop above wrote all `len` values, within the capacity just reserved.
    unsafe { v.set_len(len) };
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_zeros_of_the_asked_length_on_any_pool() {
        for threads in [1, 3] {
            let pool = crate::threads::thread_pool(threads).unwrap();
            for len in [0, 5, 2 * PER_TASK - 1, 5 * PER_TASK + 7] {
                let v = pool.install(|| zeroed(len));
                assert_eq!(v.len(), len);
                assert!(v.iter().all(|&x| x == 0.0));
            }
        }
    }
}
