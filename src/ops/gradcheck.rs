//! Finite-difference gradient checking, for the engine's tests and for anyone writing a
//! new op. The scalar that is differentiated is `sum(f(inputs) * r)` with a random `r`,
//! so the upstream gradient reaching `f` is not all ones.

use crate::Tensor;
use crate::{Tape, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Step and tolerances: an entry passes when `|analytic - numeric| <= atol + rtol * max(|a|, |n|)`.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub step: f32,
    pub atol: f32,
    pub rtol: f32,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            step: 1e-2,
            atol: 2e-3,
            rtol: 2e-2,
        }
    }
}

/// Checks the gradients of `f` with respect to every input at `inputs`. Returns the first
/// mismatch as an error message naming the input, the element and both values.
pub fn check_gradients(
    inputs: &[Tensor],
    seed: u64,
    tol: Tolerance,
    f: impl Fn(&[Var]) -> Var,
) -> Result<(), String> {
    let tape = Tape::new();
    let vars: Vec<Var> = inputs.iter().map(|t| tape.leaf(t.clone())).collect();
    let out = f(&vars);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let r = Tensor::from_shape_simple_fn(out.value().raw_dim(), || rng.gen_range(-1.0..1.0));
    let head = super::sum(&super::mul(&out, &Var::constant(r.clone())));
    let grads = tape.backward(&head);

    let objective = |ins: &[Tensor]| -> f64 {
        let consts: Vec<Var> = ins.iter().map(|t| Var::constant(t.clone())).collect();
        let y = f(&consts);
        y.value()
            .iter()
            .zip(r.iter())
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum()
    };
    let mut probe: Vec<Tensor> = inputs.to_vec();
    for (i, v) in vars.iter().enumerate() {
        let zeros = Tensor::zeros(inputs[i].raw_dim());
        let analytic = grads.get(v).unwrap_or(&zeros);
        if analytic.shape() != inputs[i].shape() {
            return Err(format!(
                "input {i}: gradient shape {:?} != input shape {:?}",
                analytic.shape(),
                inputs[i].shape()
            ));
        }
        for (j, a) in analytic.iter().enumerate() {
            let orig = inputs[i].as_slice().expect("standard layout inputs")[j];
            probe[i].as_slice_mut().unwrap()[j] = orig + tol.step;
            let plus = objective(&probe);
            probe[i].as_slice_mut().unwrap()[j] = orig - tol.step;
            let minus = objective(&probe);
            probe[i].as_slice_mut().unwrap()[j] = orig;
            let numeric = ((plus - minus) / (2.0 * tol.step as f64)) as f32;
            if (a - numeric).abs() > tol.atol + tol.rtol * a.abs().max(numeric.abs()) {
                return Err(format!(
                    "input {i} element {j}: analytic {a} vs numeric {numeric}"
                ));
            }
        }
    }
    Ok(())
}
