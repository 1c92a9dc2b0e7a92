use crate::Tensor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

static NEXT_PARAM_ID: AtomicU64 = AtomicU64::new(0);

/// A learnable tensor owned by a layer. Its `id` lets a tape map gradients back to it;
/// the value is shared (not copied) with the tape while a step runs.
#[derive(Debug)]
pub struct Param {
    id: u64,
    value: Arc<Tensor>,
}

impl Param {
    pub fn new(value: Tensor) -> Self {
        Param {
            id: NEXT_PARAM_ID.fetch_add(1, Ordering::Relaxed),
            value: Arc::new(value),
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn value(&self) -> &Tensor {
        &self.value
    }

    pub(crate) fn shared(&self) -> Arc<Tensor> {
        Arc::clone(&self.value)
    }

    /// Mutable access for optimizers and checkpoint loading. Copies the tensor only if a
    /// tape still holds it (drop the tape before stepping to avoid that copy).
    pub fn value_mut(&mut self) -> &mut Tensor {
        Arc::make_mut(&mut self.value)
    }
}

impl Clone for Param {
    /// A clone is a new parameter with its own id and a copy of the value.
    fn clone(&self) -> Self {
        Param::new((*self.value).clone())
    }
}
