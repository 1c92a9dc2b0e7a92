//! A VAE built from a validated [`Config`](crate::config::Config).

pub mod flops;
mod layer;
mod vae;

pub use layer::Layer;
pub use vae::{Vae, VaeLoss, VaeOutput};
