//! The models built from validated configs: the VAE ([`Config`](crate::config::Config))
//! and the attribute classifier ([`ClassifierConfig`](crate::config::ClassifierConfig)).

pub mod classifier;
pub mod feature_net;
pub mod flops;
mod redundant_bias;
mod vae;

pub use crate::layers::Layer;
pub use classifier::Classifier;
pub use feature_net::FeatureNet;
pub use vae::{Vae, VaeLoss, VaeOutput};
