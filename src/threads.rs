//! The engine's one thread pool. Kernels parallelize with rayon on whatever pool they run
//! in; the caller sizes it here and runs its work inside `pool.install(..)`.
//! `matrixmultiply` is built without its own threading, so no second pool competes.

use crate::{Error, Result};

/// A rayon pool of exactly `threads` workers (`threads >= 1`).
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    if threads == 0 {
        return Err(Error::Config("--threads must be at least 1".into()));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("vae-cpu-{i}"))
        .build()
        .map_err(|e| Error::ThreadPool(e.to_string()))
}
