//! A VAE built from a validated [`Config`](crate::config::Config).

mod layer;
mod vae;

pub use layer::Layer;
pub use vae::{Vae, VaeLoss, VaeOutput};
