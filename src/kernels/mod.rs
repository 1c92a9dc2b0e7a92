//! Low-level numeric kernels: the only place with `unsafe` or layout-sensitive loops.
//! Everything here works on plain row-major `f32` slices and is infallible once its
//! preconditions (checked with `assert!`) hold.

#[cfg(target_arch = "x86_64")]
mod avx2_micro;
pub mod col2im;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(not(feature = "cuda"))]
#[path = "cuda_stub.rs"]
pub mod cuda;
pub mod direct_conv;
#[cfg(target_arch = "x86_64")]
mod direct_conv_avx2;
pub mod direct_up2;
pub mod gemm;
pub mod gemm_col2im;
pub mod im2col;
pub mod im2col_view;
mod lane_blocks;
pub mod lanes;
pub mod layout;
pub mod matrix;
pub mod offload;
pub(crate) mod packed_gemm;
mod panel_rows;
#[cfg(target_arch = "x86_64")]
mod panel_rows_avx2;
pub mod scratch;
pub mod simd;
pub mod squash;
pub mod winograd;
pub mod winograd_planes;
pub mod zeroed;

pub use im2col::ConvGeom;
