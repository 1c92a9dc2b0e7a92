//! The processes of a data-parallel run and the sums they share.
//!
//! Training across processes (`mpirun -np N vae-cpu train ...`, docs/cluster.md) needs
//! three things from the group it runs in: who am I (`rank`), how many are we (`size`),
//! and element-wise sums of buffers over all members (an all-reduce). [`SingleProcess`]
//! is the group of one, where a sum is the identity; [`local::LocalGroup`] is a group of
//! threads in one process (tests); the `mpi` feature adds `MpiWorld` over the system's
//! MPI library. The trainer uses only this trait, so it has no `cfg` branches.
//!
//! Sync batch norm needs the group inside an op that has no room for it in its signature:
//! the trainer names the group of the batch for the duration of a step with
//! [`with_batch_group`], and batch norm in training mode reads it with [`batch_group`].

pub mod local;
#[cfg(feature = "mpi")]
mod mpi;

#[cfg(feature = "mpi")]
pub use self::mpi::MpiWorld;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

/// A group of processes (or threads) that sum buffers together. Every member must make
/// the same calls in the same order with buffers of the same length.
pub trait Collective: Send + Sync {
    /// This member's index, `0..size()`; member 0 writes files and prints.
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Replaces `buf` on every member by the element-wise sum of all members' `buf`.
    fn sum_f32(&self, buf: &mut [f32]);
    /// [`Collective::sum_f32`] for f64 (statistics and metrics).
    fn sum_f64(&self, buf: &mut [f64]);
    /// Ends every member of the group with `code` (MPI_Abort); the group of one exits.
    fn abort(&self, code: i32) -> !;

    fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// Whether every member passed the same `value` (e.g. a hash of the weights).
    fn all_equal(&self, value: u64) -> bool {
        // Per 16-bit piece x: the members agree iff n·Σx² == (Σx)² (zero variance). The
        // sums are exact in f64 for up to 2^21 members.
        let pieces: Vec<f64> = (0..4)
            .map(|i| ((value >> (16 * i)) & 0xffff) as f64)
            .collect();
        let mut buf: Vec<f64> = pieces.iter().chain(&pieces).copied().collect();
        buf[4..].iter_mut().for_each(|x| *x *= *x);
        self.sum_f64(&mut buf);
        let n = self.size() as f64;
        (0..4).all(|i| buf[4 + i] * n == buf[i] * buf[i])
    }
}

impl std::fmt::Debug for dyn Collective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rank {} of {}", self.rank(), self.size())
    }
}

/// The group of one process: sums are the identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f32(&self, _: &mut [f32]) {}
    fn sum_f64(&self, _: &mut [f64]) {}
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// The group of one, shared.
pub fn single() -> Arc<dyn Collective> {
    Arc::new(SingleProcess)
}

/// Member `rank`'s part of `range` when a group of `size` splits it: contiguous parts in
/// rank order whose lengths differ by at most one (the first `len % size` get one more).
pub fn shard(range: Range<usize>, rank: usize, size: usize) -> Range<usize> {
    let (len, size) = (range.len(), size.max(1));
    let (base, extra) = (len / size, len % size);
    let start = range.start + rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

thread_local! {
    static BATCH_GROUP: RefCell<Option<Arc<dyn Collective>>> = const { RefCell::new(None) };
}

/// Runs `f` with `group` as the group whose members together hold the batch: batch norm
/// in training mode then normalizes with the statistics of the whole batch (sync batch
/// norm). A group of one is the same as none.
pub fn with_batch_group<T>(group: &Arc<dyn Collective>, f: impl FnOnce() -> T) -> T {
    if group.size() == 1 {
        return f();
    }
    let previous = BATCH_GROUP.with(|g| g.replace(Some(group.clone())));
    // Restored even if `f` panics, so a later step on this thread is not affected.
    struct Restore(Option<Arc<dyn Collective>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            BATCH_GROUP.with(|g| *g.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(previous);
    f()
}

/// The group set by [`with_batch_group`] on this thread, if any.
pub fn batch_group() -> Option<Arc<dyn Collective>> {
    BATCH_GROUP.with(|g| g.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_range_in_order() {
        for len in 0..20 {
            for size in 1..6 {
                let parts: Vec<_> = (0..size).map(|r| shard(3..3 + len, r, size)).collect();
                assert_eq!(parts[0].start, 3);
                assert_eq!(parts[size - 1].end, 3 + len);
                for w in parts.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                    assert!(w[0].len() >= w[1].len() && w[0].len() - w[1].len() <= 1);
                }
            }
        }
    }

    #[test]
    fn batch_group_is_scoped() {
        let group = local::LocalGroup::members(2).remove(0);
        assert!(batch_group().is_none());
        with_batch_group(&group, || assert_eq!(batch_group().unwrap().size(), 2));
        assert!(batch_group().is_none());
        with_batch_group(&single(), || assert!(batch_group().is_none()));
    }
}
