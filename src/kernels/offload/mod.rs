//! Optional GEMM offload: with `--device cuda` (the `cuda` feature), the matrix products
//! of conv, conv-transpose and linear run on an NVIDIA GPU through cuBLAS `sgemm`.
//!
//! One accelerator serves the whole process. [`super::gemm::gemm`] offers it every
//! product; it takes those worth the copies (see [`MIN_OFFLOAD_MACS`]) and the CPU runs
//! the rest. Without a usable GPU, [`use_device`] says why and everything stays on the
//! CPU; should the GPU fail later, one warning is printed and the CPU takes over.
//! Without the `cuda` feature the same API exists ([`super::cuda`] is then a stub), so
//! callers carry no `cfg`.

mod cache;
pub mod plan;
mod reference;
mod stats;

pub use cache::WeightCache;
pub use plan::{column_major_sgemm, GemmPlan, Op};
pub use reference::Reference;
pub use stats::{stats, TransferStats};

use super::matrix::MatRef;
use crate::Tensor;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// Where the matrix products run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda),
            _ => Err(format!(
                "unknown device \"{s}\" (expected cpu or cuda; from --device, or else from \
                 the VAE_CPU_DEVICE environment variable)"
            )),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        })
    }
}

/// A matrix handed to an accelerator: exactly the values its plan reads, and the tensor
/// they belong to when they are a weight worth keeping on the device.
pub struct Operand<'a> {
    pub data: &'a [f32],
    pub owner: Option<&'a Arc<Tensor>>,
}

/// One product, already in column-major terms: `c = alpha * op(x) * op(y) + beta * c`.
pub struct Job<'a> {
    pub plan: GemmPlan,
    pub alpha: f32,
    pub beta: f32,
    pub x: Operand<'a>,
    pub y: Operand<'a>,
    pub c: &'a mut [f32],
}

/// A device that runs column-major `sgemm`. Called from many threads at once.
pub trait Accelerator: Send + Sync {
    /// What it is, for messages ("NVIDIA H100 (cuBLAS)").
    fn name(&self) -> String;
    /// Computes the job, or says why not; on an error `job.c` is left for the CPU to
    /// overwrite (only `beta == 0` jobs are offered).
    fn sgemm(&self, job: Job<'_>) -> Result<(), String>;
}

/// Products smaller than this many multiply-adds (m·k·n) stay on the CPU by default: for
/// them the copies and the launch cost more than the CPU's own product (2^21 is ~4 MFLOP,
/// well under a millisecond on one core). Not tuned on a GPU yet.
pub const MIN_OFFLOAD_MACS: usize = 1 << 21;

static MIN_MACS: AtomicUsize = AtomicUsize::new(MIN_OFFLOAD_MACS);
static ACTIVE: AtomicBool = AtomicBool::new(false);
static ACCELERATOR: RwLock<Option<Arc<dyn Accelerator>>> = RwLock::new(None);

/// Routes the products to `device` from now on. `Ok` names the accelerator in use
/// (`None` for the CPU); `Err` says why the device cannot be used, and the CPU is used.
pub fn use_device(device: Device) -> Result<Option<String>, String> {
    match device {
        Device::Cpu => {
            stop();
            Ok(None)
        }
        Device::Cuda => match super::cuda::open() {
            Ok(accelerator) => {
                let name = accelerator.name();
                use_accelerator(accelerator);
                Ok(Some(name))
            }
            Err(why) => {
                stop();
                Err(why)
            }
        },
    }
}

/// Routes the products to `accelerator` (a GPU, or the [`Reference`] in tests).
pub fn use_accelerator(accelerator: Arc<dyn Accelerator>) {
    *ACCELERATOR.write().unwrap_or_else(|e| e.into_inner()) = Some(accelerator);
    ACTIVE.store(true, Ordering::SeqCst);
}

/// Back to the CPU alone.
pub fn stop() {
    ACTIVE.store(false, Ordering::SeqCst);
    *ACCELERATOR.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Sets the smallest product (in multiply-adds) offered to the accelerator; 0 offers
/// every product (tests use it to put small shapes on the device).
pub fn set_min_offload_macs(macs: usize) {
    MIN_MACS.store(macs, Ordering::Relaxed);
}

/// The accelerator taking products now, by name.
pub fn active_name() -> Option<String> {
    let accelerator = ACCELERATOR
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    accelerator.filter(|_| is_active()).map(|a| a.name())
}

/// Whether an accelerator takes products now.
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Offers `C = alpha * A * B + beta * C` (C row-major, exactly `a.rows * b.cols` values)
/// to the accelerator; `true` when it computed C, `false` when the CPU must.
pub(crate) fn try_gemm(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut [f32]) -> bool {
    if !is_active() {
        return false;
    }
    let macs = a.rows.saturating_mul(a.cols).saturating_mul(b.cols);
    let plan =
        GemmPlan::new(&a, &b).filter(|_| macs >= MIN_MACS.load(Ordering::Relaxed) && beta == 0.0);
    let Some(plan) = plan else {
        let declined = TransferStats {
            declined: 1,
            ..TransferStats::default()
        };
        declined.record();
        return false;
    };
    let accelerator = ACCELERATOR
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let Some(accelerator) = accelerator else {
        return false;
    };
    let job = Job {
        plan,
        alpha,
        beta,
        x: Operand {
            data: &b.data[..b.span()],
            owner: b.owner,
        },
        y: Operand {
            data: &a.data[..a.span()],
            owner: a.owner,
        },
        c,
    };
    match accelerator.sgemm(job) {
        Ok(()) => true,
        Err(why) => {
            // Only the first failure is reported: the others raced with it.
            if ACTIVE.swap(false, Ordering::SeqCst) {
                eprintln!(
                    "warning: {} failed ({why}); running on the CPU from now on",
                    accelerator.name()
                );
            }
            false
        }
    }
}
