//! The condition of a conditional VAE from the command line: `"Smiling=1,Male=-1"` sets
//! those attributes, every other one stays 0 (unspecified).

use crate::model::Vae;
use crate::nn::Mode;
use crate::{Error, Result, Tape, Tensor, Var};

/// The condition vector (`[conditions]`) that `spec` describes for `model`: `NAME=VALUE`
/// pairs separated by commas, names as in `model.conditions` (any case), values +1 (has
/// it), -1 (has not), 0 (unspecified) or anything between.
pub fn parse(model: &Vae, spec: &str) -> Result<Vec<f32>> {
    let names = &model.config.model.conditions;
    if names.is_empty() {
        return Err(Error::Invalid(format!(
            "model \"{}\" is not conditional (its config has no model.conditions), so --cond \
             does not apply",
            model.config.model.name
        )));
    }
    let mut values = vec![0.0; names.len()];
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |why: String| Error::Invalid(format!("--cond \"{pair}\": {why}"));
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| bad("write NAME=VALUE, e.g. Smiling=1".into()))?;
        let column = names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                bad(format!(
                    "the model is not conditioned on \"{}\"; it is on: {}",
                    name.trim(),
                    names.join(", ")
                ))
            })?;
        values[column] = value
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|v| (-1.0..=1.0).contains(v))
            .ok_or_else(|| bad("the value must be a number from -1 to 1".into()))?;
    }
    Ok(values)
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
