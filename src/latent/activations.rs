//! Activation maps: the output of every convolution of the encoder (for the input image)
//! and every transposed convolution of the decoder (decoding the image's latent mean).

use crate::model::Vae;
use crate::nn::Mode;
use crate::{Tape, Tensor, Var};

pub struct LayerMaps {
    /// e.g. "encoder.0 conv2d".
    pub name: String,
    /// `[N, C, H, W]`.
    pub maps: Tensor,
}

/// The feature maps after each convolution and transposed convolution, in order, for a
/// `[N, C, H, W]` batch, in eval mode.
pub fn activation_maps(model: &mut Vae, x: &Tensor) -> Vec<LayerMaps> {
    let tape = Tape::no_grad();
    let mut out = vec![];
    let mut h = Var::constant(x.clone());
    for (i, layer) in model.encoder.iter_mut().enumerate() {
        h = layer.forward(&tape, &h, Mode::Eval);
        if layer.is_convolution() {
            out.push(LayerMaps {
                name: format!("encoder.{i} {}", layer.kind()),
                maps: h.value().clone(),
            });
        }
    }
    let mut h = model.mu.forward(&tape, &h);
    for (i, layer) in model.decoder.iter_mut().enumerate() {
        h = layer.forward(&tape, &h, Mode::Eval);
        if layer.is_convolution() {
            out.push(LayerMaps {
                name: format!("decoder.{i} {}", layer.kind()),
                maps: h.value().clone(),
            });
        }
    }
    out
}
