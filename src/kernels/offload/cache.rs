//! Device copies of weights (or, on the CPU, their packed panels, `super::super::gemm`),
//! kept while the weight is alive and unchanged.
//!
//! An entry holds a `Weak` to the tensor the weight lives in. A shared tensor is only
//! changed through `Arc::make_mut` or `Arc::get_mut`: `get_mut` refuses while a `Weak`
//! exists, and `make_mut` then moves the value to a new allocation, which kills our
//! `Weak`. The `Weak` also keeps the allocation's address from being reused. So an entry
//! whose `Weak` still upgrades holds exactly the current values: the copy is reused
//! across the chunks of a convolution, from forward to backward, and across inference
//! batches; after an optimizer step the weight is uploaded again once.

use crate::Tensor;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    owner: usize,
    data: usize,
    len: usize,
    /// Which form of the data the buffer holds (zeros for a plain copy; a matrix's
    /// rows, columns and strides for its packing).
    form: [usize; 4],
}

impl Key {
    fn new(owner: &Arc<Tensor>, data: &[f32], form: [usize; 4]) -> Key {
        Key {
            owner: Arc::as_ptr(owner) as usize,
            data: data.as_ptr() as usize,
            len: data.len(),
            form,
        }
    }
}

struct Entry<B> {
    owner: Weak<Tensor>,
    buffer: Arc<B>,
}

/// Device buffers `B` of weights, with a cap on the bytes kept.
pub struct WeightCache<B> {
    entries: HashMap<Key, Entry<B>>,
    bytes: usize,
    cap_bytes: usize,
}

impl<B> WeightCache<B> {
    pub fn new(cap_bytes: usize) -> Self {
        WeightCache {
            entries: HashMap::new(),
            bytes: 0,
            cap_bytes,
        }
    }

    /// The device copy of `data` (a slice of `owner`), uploading it with `upload` when
    /// there is none. The flag says whether the copy was already there. The copy stays
    /// valid while the caller holds it, even if the cache lets go of it meanwhile.
    pub fn get_or_upload<E>(
        &mut self,
        owner: &Arc<Tensor>,
        data: &[f32],
        upload: impl FnOnce(&[f32]) -> Result<B, E>,
    ) -> Result<(Arc<B>, bool), E> {
        if let Some(buffer) = self.get(owner, data, [0; 4]) {
            return Ok((buffer, true));
        }
        let buffer = upload(data)?;
        Ok((self.insert(owner, data, [0; 4], buffer), false))
    }

    /// The kept form `form` of `data` (a slice of `owner`), if the cache has one for the
    /// tensor as it is now.
    pub fn get(&self, owner: &Arc<Tensor>, data: &[f32], form: [usize; 4]) -> Option<Arc<B>> {
        let entry = self.entries.get(&Key::new(owner, data, form))?;
        (entry.owner.strong_count() > 0).then(|| Arc::clone(&entry.buffer))
    }

    /// Keeps `buffer` as form `form` of `data` (a slice of `owner`), in place of any
    /// older one, and returns it.
    pub fn insert(
        &mut self,
        owner: &Arc<Tensor>,
        data: &[f32],
        form: [usize; 4],
        buffer: B,
    ) -> Arc<B> {
        self.forget_dead();
        let size = std::mem::size_of_val(data);
        if self.bytes + size > self.cap_bytes {
            self.entries.clear();
            self.bytes = 0;
        }
        let buffer = Arc::new(buffer);
        let entry = Entry {
            owner: Arc::downgrade(owner),
            buffer: Arc::clone(&buffer),
        };
        // A form made twice (by two threads at once) replaces the first: counted once.
        if self
            .entries
            .insert(Key::new(owner, data, form), entry)
            .is_none()
        {
            self.bytes += size;
        }
        buffer
    }

    /// Drops the copies of tensors that were freed or changed.
    fn forget_dead(&mut self) {
        let mut freed = 0;
        self.entries.retain(|key, e| {
            let alive = e.owner.strong_count() > 0;
            if !alive {
                freed += key.len * std::mem::size_of::<f32>();
            }
            alive
        });
        self.bytes -= freed;
    }

    /// Bytes of weights held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn tensor(values: &[f32]) -> Arc<Tensor> {
        Arc::new(Tensor::from_shape_vec(IxDyn(&[values.len()]), values.to_vec()).unwrap())
    }

    fn fetch(cache: &mut WeightCache<Vec<f32>>, t: &Arc<Tensor>) -> (Vec<f32>, bool) {
        let (b, hit) = cache
            .get_or_upload(t, t.as_slice().unwrap(), |d| Ok::<_, ()>(d.to_vec()))
            .unwrap();
        ((*b).clone(), hit)
    }

    #[test]
    fn a_kept_weight_is_uploaded_once_and_a_changed_one_again() {
        let mut cache = WeightCache::new(1 << 20);
        let mut w = tensor(&[1.0, 2.0]);
        assert_eq!(fetch(&mut cache, &w), (vec![1.0, 2.0], false));
        assert_eq!(fetch(&mut cache, &w), (vec![1.0, 2.0], true));
        // What an optimizer step does: change the values in place when no tape holds them.
        Arc::make_mut(&mut w).as_slice_mut().unwrap()[0] = 5.0;
        assert_eq!(fetch(&mut cache, &w), (vec![5.0, 2.0], false));
        assert_eq!(cache.bytes(), 8, "the stale copy was dropped");
        // A tape still holding the old values keeps them valid: make_mut copies instead.
        let held = Arc::clone(&w);
        Arc::make_mut(&mut w).as_slice_mut().unwrap()[1] = 7.0;
        assert_eq!(fetch(&mut cache, &held), (vec![5.0, 2.0], true));
        assert_eq!(fetch(&mut cache, &w), (vec![5.0, 7.0], false));
    }

    #[test]
    fn the_cap_bounds_the_bytes_kept() {
        let mut cache = WeightCache::new(16);
        let (a, b) = (tensor(&[1.0; 3]), tensor(&[2.0; 3]));
        fetch(&mut cache, &a);
        fetch(&mut cache, &b);
        assert_eq!(cache.bytes(), 12, "the cap cleared the cache before b");
        assert!(!fetch(&mut cache, &a).1);
    }
}
