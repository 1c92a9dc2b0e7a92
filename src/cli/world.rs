//! The processes a command runs in. `train`, `sweep` and `evaluate` started by
//! `mpirun -np N` (or Slurm's `srun`) in a build with the `mpi` feature work together
//! over MPI (docs/cluster.md); everything else, and every command of a build without the
//! feature, is one process. A build without the feature started as one of several ranks
//! says so instead of training N times alone, and so does every single-process command.

use anyhow::Result;
use std::sync::{Arc, Mutex};
use vae_cpu::collective::{self, Collective};

/// The group, once made; dropped (MPI finalized) by [`finish`].
static WORLD: Mutex<Option<Arc<dyn Collective>>> = Mutex::new(None);

/// The group of a data-parallel command (made on first use).
pub fn world() -> Result<Arc<dyn Collective>> {
    let mut slot = WORLD.lock().unwrap();
    if let Some(w) = slot.as_ref() {
        return Ok(w.clone());
    }
    let w = make()?;
    *slot = Some(w.clone());
    Ok(w)
}

#[cfg(feature = "mpi")]
fn make() -> Result<Arc<dyn Collective>> {
    Ok(Arc::new(collective::MpiWorld::init()?))
}

#[cfg(not(feature = "mpi"))]
fn make() -> Result<Arc<dyn Collective>> {
    match launched_ranks() {
        Some(n) if n > 1 => anyhow::bail!(
            "this vae-cpu was started as one of {n} MPI ranks but was built without MPI \
             support, so each rank would train alone; build it with `cargo install vae-cpu \
             --features mpi` (needs an MPI library and libclang, docs/cluster.md), or run \
             one process without mpirun"
        ),
        _ => Ok(collective::single()),
    }
}

/// Refuses a command that runs as one process (all but `train`, `sweep` and `evaluate`)
/// when it was started as one of several ranks: N copies would do the same work and
/// write the same files.
pub fn refuse_several_ranks() -> Result<()> {
    match launched_ranks() {
        Some(n) if n > 1 => anyhow::bail!(
            "this command runs as one process, but it was started as one of {n} MPI ranks; \
             start it without mpirun (train, sweep and evaluate run across ranks)"
        ),
        _ => Ok(()),
    }
}

/// How many ranks the launcher (MPICH/Intel MPI's hydra, Open MPI, MVAPICH, Slurm's srun)
/// says the job has, from the environment it gives each rank.
fn launched_ranks() -> Option<usize> {
    [
        "PMI_SIZE",
        "OMPI_COMM_WORLD_SIZE",
        "MV2_COMM_WORLD_SIZE",
        "SLURM_STEP_NUM_TASKS",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
}

/// Opens the data on rank 0 first (it may prepare a cache from a CelebA folder), then on
/// the others, so that the ranks do not all prepare the same cache at once.
pub fn open_data(
    world: &dyn Collective,
    open: impl Fn() -> Result<vae_cpu::data::Dataset>,
) -> Result<vae_cpu::data::Dataset> {
    let data = world.is_root().then(&open).transpose()?;
    world.sum_f64(&mut [0.0]); // a barrier: rank 0 is done
    data.map_or_else(open, Ok)
}

/// Ends the group (MPI_Finalize) after the command succeeded.
pub fn finish() {
    WORLD.lock().unwrap().take();
}

/// After a failed command: a rank of several ends the whole job (MPI_Abort), as the other
/// ranks would otherwise wait for it forever.
pub fn abort_if_ranks(code: i32) {
    let world = WORLD.lock().unwrap().clone();
    if let Some(w) = world.filter(|w| w.size() > 1) {
        w.abort(code);
    }
}
