//! A VAE built from a validated [`Config`](crate::config::Config).

pub mod feature_net;
pub mod flops;
mod redundant_bias;
mod vae;

pub use crate::layers::Layer;
pub use feature_net::FeatureNet;
pub use vae::{Vae, VaeLoss, VaeOutput};
