//! The reference accelerator: cuBLAS's contract run on the CPU, with host vectors as the
//! "device" memory and the same weight cache as the GPU. It lets the tests (and
//! `benches/offload.rs`) check the routing, the column-major plans and the copies on a
//! machine without a GPU. Its products run on one core each (matrixmultiply with the
//! plan's strides), and its "copies" are host memcpys, so its times are not a GPU's.

use super::plan::column_major_sgemm;
use super::{Accelerator, Job, Operand, TransferStats, WeightCache};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct Reference {
    weights: Mutex<WeightCache<Vec<f32>>>,
}

impl Reference {
    pub fn new() -> Arc<Reference> {
        Arc::new(Reference {
            weights: Mutex::new(WeightCache::new(1 << 30)),
        })
    }

    /// "Uploads" an operand: a copy, unless the cache holds it.
    fn upload(&self, operand: &Operand, transfer: &mut TransferStats) -> Arc<Vec<f32>> {
        match operand.owner {
            Some(owner) => {
                let mut cache = self.weights.lock().unwrap_or_else(|e| e.into_inner());
                let (buffer, kept) = cache
                    .get_or_upload(owner, operand.data, |d| Ok::<_, ()>(d.to_vec()))
                    .expect("a host copy cannot fail");
                transfer.operand(operand.data.len(), kept);
                buffer
            }
            None => {
                transfer.operand(operand.data.len(), false);
                Arc::new(operand.data.to_vec())
            }
        }
    }
}

impl Accelerator for Reference {
    fn name(&self) -> String {
        "the reference accelerator (cuBLAS's contract on the CPU)".into()
    }

    fn sgemm(&self, job: Job<'_>) -> Result<(), String> {
        let mut transfer = TransferStats::one_product();
        let start = Instant::now();
        let x = self.upload(&job.x, &mut transfer);
        let y = self.upload(&job.y, &mut transfer);
        let mut c = vec![0.0f32; job.c.len()];
        transfer.upload_time = start.elapsed();
        let start = Instant::now();
        column_major_sgemm(&job.plan, job.alpha, &x, &y, job.beta, &mut c);
        transfer.compute_time = start.elapsed();
        let start = Instant::now();
        job.c.copy_from_slice(&c);
        transfer.bytes_down = std::mem::size_of_val(job.c) as u64;
        transfer.download_time = start.elapsed();
        transfer.record();
        Ok(())
    }
}
