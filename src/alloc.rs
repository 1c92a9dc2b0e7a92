//! A global allocator that recycles large blocks. A training step allocates the same
//! large buffers (activations, im2col columns, gradients) every step; from the system
//! allocator each one is fresh memory (glibc maps blocks over 32 MiB anew every time), so
//! every step paid page faults, page zeroing and cross-core TLB shootdowns on unmapping:
//! about a fifth of a celeba32 step's time was in the kernel. Freed blocks of at least
//! [`MIN_BLOCK`] bytes are instead kept in a fixed table of atomic slots (no lock) and
//! handed back to the next request of the same size. Small blocks go straight to the
//! system allocator.
//!
//! The binary installs it with `#[global_allocator]`; the library works without it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Blocks smaller than this are not cached.
pub const MIN_BLOCK: usize = 256 << 10;
/// Cached blocks are aligned to this (requests for a larger alignment bypass the cache).
const ALIGN: usize = 64;
const SLOTS: usize = 512;

pub struct RecyclingAllocator {
    /// Free blocks; a free block stores its size in its first word.
    slots: [AtomicPtr<u8>; SLOTS],
    cached_bytes: AtomicUsize,
    limit: usize,
}

impl RecyclingAllocator {
    /// An allocator that keeps at most `limit` bytes of free blocks.
    pub const fn new(limit: usize) -> Self {
        RecyclingAllocator {
            slots: [const { AtomicPtr::new(null_mut()) }; SLOTS],
            cached_bytes: AtomicUsize::new(0),
            limit,
        }
    }

    /// Bytes held in free blocks now.
    pub fn cached_bytes(&self) -> usize {
        self.cached_bytes.load(Ordering::Relaxed)
    }

    fn cacheable(layout: &Layout) -> bool {
        layout.size() >= MIN_BLOCK && layout.align() <= ALIGN
    }

    fn block_layout(size: usize) -> Layout {
        Layout::from_size_align(size, ALIGN).expect("a valid block layout")
    }

    fn first_slot(size: usize) -> usize {
        (size / 4096).wrapping_mul(0x9E37_79B9) % SLOTS
    }

    /// Takes a cached block of exactly `size` bytes, if there is one.
    fn take(&self, size: usize) -> *mut u8 {
        let start = Self::first_slot(size);
        for k in 0..SLOTS {
            let slot = &self.slots[(start + k) % SLOTS];
            if slot.load(Ordering::Relaxed).is_null() {
                continue;
            }
            let p = slot.swap(null_mut(), Ordering::Acquire);
            if p.is_null() {
                continue;
            }
            // SAFETY: a cached block is ours alone once swapped out; its first word holds
            // its size (written in `put`).
            let cached = unsafe { (p as *const usize).read() };
            if cached == size {
                self.cached_bytes.fetch_sub(size, Ordering::Relaxed);
                return p;
            }
            // Not our size: put it back in any free slot, or give it to the system.
            if !self.store(p, cached, (start + k) % SLOTS) {
                self.cached_bytes.fetch_sub(cached, Ordering::Relaxed);
                // SAFETY: `p` was allocated by `System` with this block layout.
                unsafe { System.dealloc(p, Self::block_layout(cached)) };
            }
        }
        null_mut()
    }

    /// Stores the free block `p` of `size` bytes in an empty slot from `start` on.
    fn store(&self, p: *mut u8, size: usize, start: usize) -> bool {
        // SAFETY: the block is free and at least MIN_BLOCK bytes, aligned to ALIGN.
        unsafe { (p as *mut usize).write(size) };
        (0..SLOTS).any(|k| {
            self.slots[(start + k) % SLOTS]
                .compare_exchange(null_mut(), p, Ordering::Release, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Keeps the free block, or returns it to the system when the cache is full.
    fn put(&self, p: *mut u8, size: usize) {
        let before = self.cached_bytes.fetch_add(size, Ordering::Relaxed);
        if before + size > self.limit || !self.store(p, size, Self::first_slot(size)) {
            self.cached_bytes.fetch_sub(size, Ordering::Relaxed);
            // SAFETY: `p` was allocated by `System` with this block layout.
            unsafe { System.dealloc(p, Self::block_layout(size)) };
        }
    }
}

// SAFETY: every block handed out is either fresh from `System` with a layout at least as
// large and aligned as requested, or a cached one of exactly the requested size and
// ALIGN alignment that no one else holds (slots are taken with an atomic swap).
unsafe impl GlobalAlloc for RecyclingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::cacheable(&layout) {
            return System.alloc(layout);
        }
        let p = self.take(layout.size());
        if p.is_null() {
            System.alloc(Self::block_layout(layout.size()))
        } else {
            p
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Self::cacheable(&layout) {
            return System.alloc_zeroed(layout);
        }
        let p = self.take(layout.size());
        if p.is_null() {
            System.alloc_zeroed(Self::block_layout(layout.size()))
        } else {
            p.write_bytes(0, layout.size());
            p
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if Self::cacheable(&layout) {
            self.put(p, layout.size());
        } else {
            System.dealloc(p, layout);
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        if !Self::cacheable(&layout) && !Self::cacheable(&new_layout) {
            return System.realloc(p, layout, new_size);
        }
        let q = self.alloc(new_layout);
        if !q.is_null() {
            std::ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
            self.dealloc(p, layout);
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_the_same_size_are_reused_and_others_are_not() {
        let a = RecyclingAllocator::new(1 << 30);
        let big = Layout::from_size_align(MIN_BLOCK * 3, 8).unwrap();
        let other = Layout::from_size_align(MIN_BLOCK * 5, 8).unwrap();
        unsafe {
            let p = a.alloc(big);
            p.write_bytes(7, big.size());
            a.dealloc(p, big);
            assert_eq!(a.cached_bytes(), big.size());
            let q = a.alloc(other);
            assert_ne!(q, p, "a block of another size must not be handed out");
            let r = a.alloc_zeroed(big);
            assert_eq!(r, p, "the cached block is reused");
            assert!(std::slice::from_raw_parts(r, big.size())
                .iter()
                .all(|&b| b == 0));
            assert_eq!(a.cached_bytes(), 0);
            a.dealloc(q, other);
            a.dealloc(r, big);
            assert_eq!(a.cached_bytes(), big.size() + other.size());
            // Small blocks bypass the cache.
            let small = Layout::from_size_align(64, 8).unwrap();
            let s = a.alloc(small);
            a.dealloc(s, small);
            assert_eq!(a.cached_bytes(), big.size() + other.size());
        }
    }

    #[test]
    fn the_limit_bounds_what_is_kept_and_realloc_keeps_contents() {
        let a = RecyclingAllocator::new(MIN_BLOCK * 2);
        let l = Layout::from_size_align(MIN_BLOCK * 2, 8).unwrap();
        unsafe {
            let (p, q) = (a.alloc(l), a.alloc(l));
            a.dealloc(p, l);
            a.dealloc(q, l); // over the limit: back to the system
            assert_eq!(a.cached_bytes(), MIN_BLOCK * 2);
            let small = Layout::from_size_align(100, 4).unwrap();
            let s = a.alloc(small);
            s.write_bytes(9, 100);
            let grown = a.realloc(s, small, MIN_BLOCK * 4);
            assert!(std::slice::from_raw_parts(grown, 100)
                .iter()
                .all(|&b| b == 9));
            let back = a.realloc(
                grown,
                Layout::from_size_align(MIN_BLOCK * 4, 4).unwrap(),
                50,
            );
            assert!(std::slice::from_raw_parts(back, 50).iter().all(|&b| b == 9));
            a.dealloc(back, Layout::from_size_align(50, 4).unwrap());
        }
    }

    #[test]
    fn threads_share_the_cache_without_losing_blocks() {
        static A: RecyclingAllocator = RecyclingAllocator::new(1 << 30);
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    for i in 0..200 {
                        let l = Layout::from_size_align(MIN_BLOCK * (1 + (i + t) % 3), 8).unwrap();
                        unsafe {
                            let p = A.alloc(l);
                            p.write_bytes(t as u8, l.size());
                            assert!(std::slice::from_raw_parts(p, l.size())
                                .iter()
                                .all(|&b| b == t as u8));
                            A.dealloc(p, l);
                        }
                    }
                });
            }
        });
        assert!(A.cached_bytes() <= 4 * 3 * MIN_BLOCK * 3);
    }
}
