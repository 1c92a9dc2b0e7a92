//! Measuring what a trained VAE is worth with an attribute classifier: the Fréchet
//! distance of feature statistics (`frechet`), the `score` report (reconstruction, samples
//! against real images, attribute frequencies, the FID with an Inception network) and the
//! morph scores of attribute vectors (`morph_score`).

pub mod frechet;
pub mod morph_score;
pub mod score;

use crate::config::PixelRange;
use crate::model::Classifier;
use crate::nn::Mode;
use crate::{Tape, Tensor, Var};

/// A decoder's output in `range` as pictures on the [0, 1] scale, clamped.
fn decoded_to_unit(x: &Tensor, range: PixelRange) -> Tensor {
    x.mapv(|v| range.to_unit(v).clamp(0.0, 1.0))
}

/// The classifier's logits `[N, attributes]` and penultimate features `[N, F]` of images
/// on the [0, 1] scale (converted to its pixel range), in eval mode.
fn classify(classifier: &mut Classifier, unit: &Tensor) -> (Tensor, Tensor) {
    let range = classifier.config.data.pixel_range;
    let x = unit.mapv(|v| range.from_unit(v));
    let tape = Tape::no_grad();
    let (logits, features) = classifier.forward(&tape, &Var::constant(x), Mode::Eval);
    (logits.value().clone(), features.value().clone())
}
