//! The check behind `verify-onnx`: tract runs an exported decoder at batch sizes 1 and 7
//! on prior latents, and its images are compared with the engine's eval-mode decoder.

use super::run::OnnxModel;
use crate::model::Vae;
use crate::nn::Mode;
use crate::{prior, Error, Result, Tape, Var};
use std::path::Path;

/// The batch sizes compared (one image, and an odd batch that no kernel tiles evenly).
pub const BATCHES: [usize; 2] = [1, 7];

/// `(batch size, max |tract - engine|)` for each of [`BATCHES`]; a decoder of another
/// latent size or image shape is an error naming `path`.
pub fn compare_decoder(
    model: &mut Vae,
    onnx: &OnnxModel,
    path: &Path,
    seed: u64,
) -> Result<Vec<(usize, f32)>> {
    let bad = |message: String| Error::File {
        path: path.to_path_buf(),
        message,
    };
    let latent_size = model.config.model.latent;
    if onnx.input_width()? != latent_size {
        return Err(bad(format!(
            "the decoder takes a latent of {} but the checkpoint's model has {latent_size}: \
             exported from another checkpoint?",
            onnx.input_width()?
        )));
    }
    let mut diffs = vec![];
    for batch in BATCHES {
        let z = prior::samples(batch, latent_size, seed + batch as u64, 1.0);
        let want = model.decode(&Tape::no_grad(), &Var::constant(z.clone()), Mode::Eval);
        let got = onnx.run(z.shape(), z.iter().copied().collect())?;
        let Some(out) = got.first() else {
            return Err(bad("the model has no output".into()));
        };
        if out.shape != want.shape() {
            return Err(bad(format!(
                "output shape {:?}, the engine's is {:?} (exported from another checkpoint?)",
                out.shape,
                want.shape()
            )));
        }
        let want = want.value().as_standard_layout();
        let want = want.as_slice().expect("standard layout");
        diffs.push((batch, crate::npy::max_abs_diff(&out.values, want)));
    }
    Ok(diffs)
}
