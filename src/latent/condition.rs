//! The condition of a conditional VAE from the command line (`"Smiling=1,Male=-1"`, read
//! by [`crate::condition_spec`]) for an engine model, and decoding under it.

use crate::model::Vae;
use crate::nn::Mode;
use crate::{Error, Result, Tape, Tensor, Var};

/// The condition vector (`[conditions]`) that `spec` describes for `model`; an error for a
/// model that is not conditional.
pub fn parse(model: &Vae, spec: &str) -> Result<Vec<f32>> {
    let names = &model.config.model.conditions;
    if names.is_empty() {
        return Err(Error::Invalid(format!(
            "model \"{}\" is not conditional (its config has no model.conditions), so --cond \
             does not apply",
            model.config.model.name
        )));
    }
    crate::condition_spec::parse(names, spec)
}

/// Decodes `z` (`[N, latent]`) under the same condition `cond` for every row.
pub fn decode(model: &mut Vae, z: &Tensor, cond: &[f32]) -> Tensor {
    let n = z.shape()[0];
    let c = Tensor::from_shape_fn(vec![n, cond.len()], |d| cond[d[1]]);
    let tape = Tape::no_grad();
    model
        .decode_with(&tape, &Var::constant(z.clone()), Some(&c), Mode::Eval)
        .value()
        .clone()
}
