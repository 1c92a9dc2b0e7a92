//! cuBLAS `sgemm` on the first NVIDIA GPU (the `cuda` feature), through `cudarc` with
//! the CUDA libraries loaded at run time.
//!
//! cudarc panics when it cannot load a library, so [`open`] first looks for them
//! itself under the names cudarc tries, and runs cudarc's first calls under
//! `catch_unwind` (a library too old for the pinned CUDA 12.4 API also panics there).
//! Products arrive from many rayon threads; one lock serializes them on one stream,
//! while the other threads go on preparing their next product on the CPU.

use super::offload::{Accelerator, Job, Op, Operand, TransferStats, WeightCache};
use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{CudaContext, CudaSlice, CudaStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Whether this build can use a GPU (the `cuda` feature).
pub const BUILT_IN: bool = true;

/// Weights kept on the GPU, at most (the rest of the memory is for the products).
const WEIGHT_CACHE_BYTES: usize = 1 << 30;

/// The GPU accelerator.
pub struct Cuda {
    name: String,
    state: Mutex<State>,
}

struct State {
    context: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    weights: WeightCache<CudaSlice<f32>>,
    /// Reused device buffers for X, Y and C: grown, never shrunk.
    scratch: [Option<CudaSlice<f32>>; 3],
}

/// The GPU, or why it cannot be used.
pub fn open() -> Result<Arc<dyn Accelerator>, String> {
    find_library("cuda", "the NVIDIA driver")?;
    find_library("cublas", "cuBLAS (the CUDA toolkit's libcublas)")?;
    let opened = quietly(|| -> Result<Cuda, String> {
        let context = CudaContext::new(0).map_err(|e| format!("no usable GPU: {e}"))?;
        let name = context.name().unwrap_or_else(|_| "GPU 0".into());
        // One stream: cudarc's events between streams would only cost time.
        unsafe { context.disable_event_tracking() };
        let stream = context.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(|e| format!("cuBLAS: {e}"))?;
        Ok(Cuda {
            name: format!("{name} (cuBLAS)"),
            state: Mutex::new(State {
                context,
                stream,
                blas,
                weights: WeightCache::new(WEIGHT_CACHE_BYTES),
                scratch: [None, None, None],
            }),
        })
    })?;
    Ok(Arc::new(opened))
}

/// Looks for `lib` under every name cudarc would try (CUDA 12.4 build), so that cudarc
/// finds it too instead of panicking.
fn find_library(lib: &str, what: &str) -> Result<(), String> {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    let (major, minor) = (12, 4);
    let names = [
        format!("{DLL_PREFIX}{lib}{DLL_SUFFIX}"),
        format!("{DLL_PREFIX}{lib}64{DLL_SUFFIX}"),
        format!("{DLL_PREFIX}{lib}64_{major}{DLL_SUFFIX}"),
        format!("{DLL_PREFIX}{lib}64_{major}{minor}{DLL_SUFFIX}"),
        format!("{DLL_PREFIX}{lib}64_{major}{minor}_0{DLL_SUFFIX}"),
        format!("{DLL_PREFIX}{lib}64_{major}0_{minor}{DLL_SUFFIX}"),
        format!("{DLL_PREFIX}{lib}64_10{DLL_SUFFIX}"),
        format!("{DLL_PREFIX}{lib}64_{major}0_0{DLL_SUFFIX}"),
        format!("{DLL_PREFIX}{lib}64_9{DLL_SUFFIX}"),
        format!("{DLL_PREFIX}{lib}{DLL_SUFFIX}.{major}"),
        format!("{DLL_PREFIX}{lib}{DLL_SUFFIX}.11"),
        format!("{DLL_PREFIX}{lib}{DLL_SUFFIX}.10"),
        format!("{DLL_PREFIX}{lib}{DLL_SUFFIX}.1"),
    ];
    // SAFETY: loading a library runs its initializers; these are the system's CUDA
    // libraries, which cudarc would load anyway.
    let found = names
        .iter()
        .any(|name| unsafe { libloading::Library::new(name) }.is_ok());
    if found {
        Ok(())
    } else {
        Err(format!(
            "{what} was not found: no {} or {} on the library path ({} other names tried)",
            names[0],
            names[names.len() - 1],
            names.len() - 2
        ))
    }
}

/// Runs `f`, turning a panic inside cudarc into an error, without printing it.
fn quietly<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.unwrap_or_else(|payload| {
        let text = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown cause".into());
        Err(format!("the CUDA libraries could not be used: {text}"))
    })
}

impl Accelerator for Cuda {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn sgemm(&self, job: Job<'_>) -> Result<(), String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sgemm(job)
    }
}

impl State {
    fn sgemm(&mut self, job: Job<'_>) -> Result<(), String> {
        let err = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
        self.context
            .bind_to_thread()
            .map_err(|e| err("binding the context", &e))?;
        let mut transfer = TransferStats::one_product();
        let start = Instant::now();
        let x = self.upload(&job.x, 0, &mut transfer)?;
        let y = self.upload(&job.y, 1, &mut transfer)?;
        let c_len = job.c.len();
        let mut c = self.scratch_buffer(2, c_len)?;
        transfer.upload_time = start.elapsed();

        let start = Instant::now();
        let p = &job.plan;
        let op = |o: Op| match o {
            Op::N => cublasOperation_t::CUBLAS_OP_N,
            Op::T => cublasOperation_t::CUBLAS_OP_T,
        };
        // The plan checked that every size fits an i32.
        let config = GemmConfig {
            transa: op(p.transa),
            transb: op(p.transb),
            m: p.m as i32,
            n: p.n as i32,
            k: p.k as i32,
            alpha: job.alpha,
            lda: p.lda as i32,
            ldb: p.ldb as i32,
            beta: job.beta,
            ldc: p.ldc as i32,
        };
        let x_buf = x
            .as_deref()
            .unwrap_or_else(|| self.scratch[0].as_ref().unwrap());
        let y_buf = y
            .as_deref()
            .unwrap_or_else(|| self.scratch[1].as_ref().unwrap());
        // SAFETY: the plan's sizes and leading dimensions stay inside the operands
        // (GemmPlan::new), and C's buffer holds m*n values.
        unsafe { self.blas.gemm(config, x_buf, y_buf, &mut c) }
            .map_err(|e| err("cuBLAS sgemm", &e))?;
        self.stream
            .synchronize()
            .map_err(|e| err("the GPU product", &e))?;
        transfer.compute_time = start.elapsed();

        let start = Instant::now();
        let copied = self
            .stream
            .memcpy_dtoh(&c.slice(0..c_len), job.c)
            .and_then(|_| self.stream.synchronize());
        self.scratch[2] = Some(c);
        copied.map_err(|e| err("copying the product back", &e))?;
        transfer.bytes_down = std::mem::size_of_val(job.c) as u64;
        transfer.download_time = start.elapsed();
        transfer.record();
        Ok(())
    }

    /// Puts an operand on the device: a weight from the cache (uploaded when missing),
    /// anything else into scratch buffer `slot`. Returns the cached buffer, if any.
    fn upload(
        &mut self,
        operand: &Operand,
        slot: usize,
        transfer: &mut TransferStats,
    ) -> Result<Option<Arc<CudaSlice<f32>>>, String> {
        let stream = self.stream.clone();
        if let Some(owner) = operand.owner {
            let (buffer, kept) = self
                .weights
                .get_or_upload(owner, operand.data, |d| stream.memcpy_stod(d))
                .map_err(|e| format!("copying a weight to the GPU: {e}"))?;
            transfer.operand(operand.data.len(), kept);
            return Ok(Some(buffer));
        }
        let mut buffer = self.scratch_buffer(slot, operand.data.len())?;
        let copied = stream.memcpy_htod(operand.data, &mut buffer);
        self.scratch[slot] = Some(buffer);
        copied.map_err(|e| format!("copying to the GPU: {e}"))?;
        transfer.operand(operand.data.len(), false);
        Ok(None)
    }

    /// Takes scratch buffer `slot`, at least `len` values long (callers put it back).
    fn scratch_buffer(&mut self, slot: usize, len: usize) -> Result<CudaSlice<f32>, String> {
        match self.scratch[slot].take() {
            Some(buffer) if buffer.len() >= len => Ok(buffer),
            old => {
                drop(old);
                // SAFETY: uninitialised device memory; every use writes before reading.
                unsafe { self.stream.alloc::<f32>(len.max(1)) }
                    .map_err(|e| format!("allocating {len} values on the GPU: {e}"))
            }
        }
    }
}
