//! The check behind `verify-onnx`: tract runs an exported decoder at batch sizes 1 and 7
//! on prior latents (and, for a conditional decoder, a random condition), and its images
//! are compared with the engine's eval-mode decoder.

use super::run::OnnxModel;
use crate::model::Vae;
use crate::nn::Mode;
use crate::{prior, Error, Result, Tape, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// The batch sizes compared (one image, and an odd batch that no kernel tiles evenly).
pub const BATCHES: [usize; 2] = [1, 7];

/// One batch compared: the decoder's inputs, the engine's images and the largest
/// difference from tract's.
pub struct Comparison {
    pub batch: usize,
    pub max_diff: f32,
    /// `[batch, latent]`.
    pub z: Tensor,
    /// The condition of every row, for a conditional decoder.
    pub cond: Option<Vec<f32>>,
    /// `[batch, C, H, W]`.
    pub engine: Tensor,
}

/// One [`Comparison`] for each of [`BATCHES`]; a decoder of another latent size, condition
/// count or image shape is an error naming `path`.
pub fn compare_decoder(
    model: &mut Vae,
    onnx: &OnnxModel,
    path: &Path,
    seed: u64,
) -> Result<Vec<Comparison>> {
    let bad = |message: String| Error::File {
        path: path.to_path_buf(),
        message,
    };
    let m = &model.config.model;
    let (latent_size, conditions) = (m.latent, m.conditions.len());
    if onnx.input_width()? != latent_size || onnx.conditions().len() != conditions {
        return Err(bad(format!(
            "the decoder takes a latent of {} and {} conditions but the checkpoint's model \
             has {latent_size} and {conditions}: exported from another checkpoint?",
            onnx.input_width()?,
            onnx.conditions().len()
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cond = (conditions > 0).then(|| {
        (0..conditions)
            .map(|_| rng.gen_range(-1.0..=1.0))
            .collect::<Vec<f32>>()
    });
    let mut out = vec![];
    for batch in BATCHES {
        let z = prior::samples(batch, latent_size, seed + batch as u64, 1.0);
        let c = cond
            .as_ref()
            .map(|c| Tensor::from_shape_fn(vec![batch, c.len()], |d| c[d[1]]));
        let tape = Tape::no_grad();
        let want = model.decode_with(&tape, &Var::constant(z.clone()), c.as_ref(), Mode::Eval);
        let got = onnx.decode(batch, z.iter().copied().collect(), cond.as_deref())?;
        if got.shape != want.shape() {
            return Err(bad(format!(
                "output shape {:?}, the engine's is {:?} (exported from another checkpoint?)",
                got.shape,
                want.shape()
            )));
        }
        let engine = want.value().as_standard_layout().into_owned();
        let max_diff = crate::npy::max_abs_diff(&got.values, engine.as_slice().expect("standard"));
        out.push(Comparison {
            batch,
            max_diff,
            z,
            cond: cond.clone(),
            engine,
        });
    }
    Ok(out)
}
