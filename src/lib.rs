//! vae-cpu: a dependency-light engine that trains convolutional VAEs on multi-core CPUs.
//!
//! Layers (each depends only on the ones above it): [`kernels`] (GEMM, im2col/col2im),
//! [`autograd`] (the tape), [`ops`] (differentiable operations), [`nn`] (layers with
//! parameters), [`optim`] (optimizers and schedules).

pub mod atomic_file;
pub mod autograd;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod kernels;
pub mod latent;
pub mod model;
pub mod nn;
pub mod onnx;
pub mod ops;
pub mod optim;
pub mod progress;
pub mod threads;
pub mod train;
pub mod viz;

/// Every tensor of the engine: f32, dynamic rank, NCHW for images.
pub type Tensor = ndarray::ArrayD<f32>;

pub use autograd::{Gradients, Param, Tape, Var};
pub use error::{Error, Result};
