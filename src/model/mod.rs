//! A VAE built from a validated [`Config`](crate::config::Config).

pub mod feature_net;
pub mod flops;
mod layer;
mod vae;

pub use feature_net::FeatureNet;
pub use layer::Layer;
pub use vae::{Vae, VaeLoss, VaeOutput};
