//! Per-thread scratch buffers for temporaries that a kernel overwrites completely before
//! reading (im2col columns, GEMM outputs with `beta = 0`, layout copies). A fresh
//! `vec![0.0; n]` per chunk paid a zero-fill of every buffer in every step (about 4% of a
//! celeba32 step was `memset`); a scratch buffer is allocated and zeroed once per thread
//! and size, then reused with whatever values the last user left in it.

use std::cell::RefCell;

/// Buffers kept per thread: a task that needs two at once (columns and a product) and a
/// stolen task nested inside it (rayon runs other work while it waits) each find one.
const KEPT_PER_THREAD: usize = 4;

thread_local! {
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a buffer of exactly `len` values whose contents are unspecified (left over
/// from an earlier use, or zero): `f` must write every value before it reads it.
pub fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = take(len);
    if buf.len() < len {
        // A new buffer rather than a grown one: growing would copy the old values.
        buf = vec![0.0; len];
    }
    let result = f(&mut buf[..len]);
    give_back(buf);
    result
}

/// The smallest kept buffer that holds `len` values, else an empty one. The pool's borrow
/// ends before `f` runs, so nesting is safe.
fn take(len: usize) -> Vec<f32> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let fitting = (0..pool.len())
            .filter(|&i| pool[i].len() >= len)
            .min_by_key(|&i| pool[i].len());
        fitting.map(|i| pool.swap_remove(i)).unwrap_or_default()
    })
}

/// Keeps `buf` for the next user; with a full pool the smallest buffer is dropped.
fn give_back(buf: Vec<f32>) {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        pool.push(buf);
        if pool.len() > KEPT_PER_THREAD {
            let smallest = (0..pool.len()).min_by_key(|&i| pool[i].len()).unwrap();
            pool.swap_remove(smallest);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_have_the_asked_length_and_are_reused() {
        let first_ptr = with_scratch(1000, |b| {
            assert_eq!(b.len(), 1000);
            b.fill(3.0);
            b.as_ptr() as usize
        });
        // A smaller request reuses the same allocation (its old values are still there).
        let (ptr, old) = with_scratch(10, |b| (b.as_ptr() as usize, b[5]));
        assert_eq!((ptr, old), (first_ptr, 3.0));
        // Nested requests get distinct buffers.
        with_scratch(100, |outer| {
            outer.fill(1.0);
            with_scratch(100, |inner| {
                inner.fill(2.0);
                assert_ne!(inner.as_ptr(), outer.as_ptr());
            });
            assert!(outer.iter().all(|&v| v == 1.0));
        });
        // Growing a buffer keeps the request's length.
        with_scratch(5000, |b| assert_eq!(b.len(), 5000));
    }
}
