//! The processes of an MPI job (`mpirun -np N vae-cpu ...`) as a [`Collective`], through
//! rsmpi and the system's MPI library (MPICH or Open MPI).

use super::Collective;
use crate::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::CommunicatorCollectives;
use mpi::Threading;
use std::sync::Mutex;

/// `MPI_COMM_WORLD`. MPI is finalized when this is dropped (at the end of the command).
pub struct MpiWorld {
    world: SimpleCommunicator,
    /// Every MPI call takes this lock: calls are serialized, as `MPI_THREAD_SERIALIZED`
    /// (the level requested) requires when several threads may call.
    calls: Mutex<()>,
    _universe: mpi::environment::Universe,
}

// SAFETY: MPI was initialized with at least MPI_THREAD_SERIALIZED, under which any thread
// may call MPI as long as no two calls overlap; `calls` makes every call exclusive.
unsafe impl Send for MpiWorld {}
unsafe impl Sync for MpiWorld {}

impl MpiWorld {
    /// Initializes MPI (started by `mpirun`, or alone as a group of one).
    pub fn init() -> Result<MpiWorld> {
        let (universe, level) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| Error::Training("MPI was already initialized".into()))?;
        if level < Threading::Serialized {
            return Err(Error::Training(format!(
                "the MPI library offers thread level {level:?}; vae-cpu needs Serialized"
            )));
        }
        Ok(MpiWorld {
            world: universe.world(),
            calls: Mutex::new(()),
            _universe: universe,
        })
    }
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }
    fn size(&self) -> usize {
        self.world.size() as usize
    }
    fn sum_f32(&self, buf: &mut [f32]) {
        let _one = self.calls.lock().unwrap();
        let send = buf.to_vec();
        self.world
            .all_reduce_into(&send[..], buf, SystemOperation::sum());
    }
    fn sum_f64(&self, buf: &mut [f64]) {
        let _one = self.calls.lock().unwrap();
        let send = buf.to_vec();
        self.world
            .all_reduce_into(&send[..], buf, SystemOperation::sum());
    }
    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
