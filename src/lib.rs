//! vae-cpu: a dependency-light engine that trains convolutional VAEs on multi-core CPUs.
//!
//! Layers (each depends only on the ones above it): [`kernels`] (GEMM, im2col/col2im),
//! [`autograd`] (the tape), [`ops`] (differentiable operations), [`nn`] (layers with
//! parameters), [`optim`] (optimizers and schedules).
//!
//! Everything that trains or runs the engine is behind the `engine` feature (on by
//! default). Without it (`--no-default-features --features edge`) the crate keeps only what
//! running an exported decoder with tract needs: [`onnx`], [`viz`] grids, [`npy`], [`prior`].

#[cfg(feature = "engine")]
pub mod alloc;
pub mod atomic_file;
#[cfg(feature = "engine")]
pub mod autograd;
#[cfg(feature = "engine")]
pub mod checkpoint;
#[cfg(feature = "engine")]
pub mod collective;
pub mod condition_spec;
#[cfg(feature = "engine")]
pub mod config;
#[cfg(feature = "engine")]
pub mod data;
pub mod error;
pub mod file_guard;
pub mod folder_lock;
#[cfg(feature = "engine")]
pub mod kernels;
#[cfg(feature = "engine")]
pub mod latent;
#[cfg(feature = "engine")]
pub mod layers;
#[cfg(feature = "engine")]
pub mod linalg;
#[cfg(feature = "engine")]
pub mod model;
#[cfg(feature = "engine")]
pub mod nn;
pub mod npy;
pub mod onnx;
pub mod onnx_ops;
#[cfg(feature = "engine")]
pub mod ops;
#[cfg(feature = "engine")]
pub mod optim;
pub mod pixel_range;
pub mod prior;
#[cfg(feature = "engine")]
pub mod progress;
#[cfg(feature = "engine")]
pub mod quality;
#[cfg(feature = "engine")]
pub mod serve;
#[cfg(feature = "engine")]
#[doc(hidden)]
pub mod test_support;
#[cfg(feature = "engine")]
pub mod threads;
pub mod timing;
#[cfg(feature = "engine")]
pub mod train;
pub mod viz;

#[cfg(feature = "engine")]
/// Every tensor of the engine: f32, dynamic rank, NCHW for images.
pub type Tensor = ndarray::ArrayD<f32>;

#[cfg(feature = "engine")]
pub use autograd::{Gradients, Param, Tape, Var};
pub use error::{Error, Result};
