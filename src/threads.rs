//! The engine's one thread pool. Kernels parallelize with rayon on whatever pool they run
//! in; the caller sizes it here and runs its work inside `pool.install(..)`.
//! `matrixmultiply` is built without its own threading, so no second pool competes.

use crate::{Error, Result};

/// More worker threads than this only costs memory and start-up time.
pub const MAX_THREADS: usize = 1024;

/// A rayon pool of exactly `threads` workers (`1 <= threads <= MAX_THREADS`).
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    if threads == 0 {
        return Err(Error::Config("--threads must be at least 1".into()));
    }
    if threads > MAX_THREADS {
        return Err(Error::Config(format!(
            "--threads {threads} is more than the {MAX_THREADS} supported (this machine has {} cores)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        )));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("vae-cpu-{i}"))
        .build()
        .map_err(|e| Error::ThreadPool(e.to_string()))
}
