//! Low-level numeric kernels: the only place with `unsafe` or layout-sensitive loops.
//! Everything here works on plain row-major `f32` slices and is infallible once its
//! preconditions (checked with `assert!`) hold.

pub mod col2im;
pub mod gemm;
pub mod im2col;
pub mod lanes;
pub mod layout;

pub use im2col::ConvGeom;
