//! Stands in for `cuda.rs` when vae-cpu is built without the `cuda` feature: the same
//! names exist, and asking for the GPU says how to get it.

use super::offload::Accelerator;
use std::sync::Arc;

/// Whether this build can use a GPU (the `cuda` feature).
pub const BUILT_IN: bool = false;

/// The GPU accelerator (never built without the `cuda` feature).
pub enum Cuda {}

/// Always an error: this build has no GPU support.
pub fn open() -> Result<Arc<dyn Accelerator>, String> {
    Err(
        "this vae-cpu was built without GPU support; rebuild it with \
         `cargo install vae-cpu --features cuda` (a CUDA 12 driver and cuBLAS are \
         needed at run time, not to build)"
            .into(),
    )
}
