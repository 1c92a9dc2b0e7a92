//! Differentiable operations. Each file holds one op's forward and backward side by side.
//! Shapes are checked when an op is built (a mismatch is a programming error and panics
//! with the shapes involved); configurations are validated before any op runs.

mod activation;
pub(crate) use activation::stable_sigmoid;
mod arith;
mod batch_norm;
mod channel_affine;
mod chunk_grads;
mod concat;
mod conv2d;
mod conv2d_gemm;
mod conv_transpose2d;
mod conv_transpose_up2;
mod conv_transpose_winograd;
mod direct_conv;
mod elementwise;
pub mod gradcheck;
mod instance_norm;
mod instance_norm_act;
mod linear;
mod loss;
mod max_pool;
mod norm_act;
mod norm_core;
mod prelu;
mod reparam;
mod shape;
pub mod sub_pixel;
mod sync_stats;
#[cfg(test)]
mod testutil;

pub use activation::{exp, leaky_relu, relu, sigmoid, tanh};
pub use arith::{add, mean, mul, scale, sum};
pub use batch_norm::{batch_norm, BatchNormMode, RunningStats};
pub use channel_affine::channel_affine;
pub use concat::concat_columns;
pub use conv2d::{conv2d, conv2d_output_size, Conv2dSpec, Padding};
pub use conv_transpose2d::{conv_transpose2d, conv_transpose2d_output_size, ConvTranspose2dSpec};
pub use instance_norm::instance_norm;
pub use instance_norm_act::instance_norm_act;
pub use linear::linear;
pub use loss::{bce, bce_with_logits, kl_divergence, l1, mse, weighted_bce_with_logits, Reduction};
pub use max_pool::{max_pool2d, MaxPoolSpec};
pub use norm_act::{batch_norm_act, Activation};
pub use prelu::prelu;
pub use reparam::{reparameterize, reparameterize_with, standard_normal};
pub use shape::{flatten, reshape};
