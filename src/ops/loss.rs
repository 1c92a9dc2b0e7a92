//! Losses between a prediction (on the tape) and a constant target, plus the closed-form
//! KL divergence of a diagonal Gaussian from the standard normal.

use super::elementwise::{map, sum_f64, zip_map};
use crate::autograd::Var;
use crate::Tensor;
use ndarray::IxDyn;

/// How per-element losses become one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// Mean over every element (PyTorch's `reduction="mean"`).
    Mean,
    /// Sum over every element (PyTorch's `reduction="sum"`).
    Sum,
    /// Sum over the elements of each sample, mean over the batch (axis 0).
    BatchMean,
}

impl Reduction {
    fn factor(self, shape: &[usize]) -> f32 {
        let len: usize = shape.iter().product();
        match self {
            Reduction::Mean => 1.0 / len.max(1) as f32,
            Reduction::Sum => 1.0,
            Reduction::BatchMean => 1.0 / shape.first().copied().unwrap_or(1).max(1) as f32,
        }
    }
}

/// Reduces `loss(pred, target)` element-wise; `grad` is d loss / d pred per element.
fn pointwise(
    pred: &Var,
    target: &Tensor,
    reduction: Reduction,
    loss: impl Fn(f32, f32) -> f32 + Sync + Send,
    grad: impl Fn(f32, f32) -> f32 + Sync + Send + 'static,
) -> Var {
    assert_eq!(
        pred.shape(),
        target.shape(),
        "loss: prediction and target shapes differ"
    );
    let factor = reduction.factor(pred.shape());
    let total = sum_f64(&zip_map(pred.value(), target, loss));
    let y = Tensor::from_elem(IxDyn(&[1]), (total * factor as f64) as f32);
    let (p, t) = (pred.shared(), target.clone());
    Var::record(&[pred], y, move |g, _| {
        let k = g[[0]] * factor;
        vec![Some(zip_map(&p, &t, move |p, t| k * grad(p, t)))]
    })
}

/// Squared error `(p - t)^2`.
pub fn mse(pred: &Var, target: &Tensor, reduction: Reduction) -> Var {
    pointwise(
        pred,
        target,
        reduction,
        |p, t| (p - t) * (p - t),
        |p, t| 2.0 * (p - t),
    )
}

/// Absolute error `|p - t|` (gradient sign(p - t), 0 at the kink).
pub fn l1(pred: &Var, target: &Tensor, reduction: Reduction) -> Var {
    pointwise(
        pred,
        target,
        reduction,
        |p, t| (p - t).abs(),
        |p, t| {
            let d = p - t;
            if d > 0.0 {
                1.0
            } else if d < 0.0 {
                -1.0
            } else {
                0.0
            }
        },
    )
}

/// Binary cross-entropy on probabilities `p` in [0, 1]:
/// `-(t ln p + (1-t) ln(1-p))`, with each log clamped at -100 as PyTorch does so that
/// p = 0 or 1 stays finite; the gradient `(p - t) / max(p(1-p), 1e-12)` likewise.
pub fn bce(pred: &Var, target: &Tensor, reduction: Reduction) -> Var {
    pointwise(
        pred,
        target,
        reduction,
        |p, t| -(t * p.ln().max(-100.0) + (1.0 - t) * (1.0 - p).ln().max(-100.0)),
        |p, t| (p - t) / (p * (1.0 - p)).max(1e-12),
    )
}

/// Binary cross-entropy on logits `x`, in the overflow-free form
/// `max(x, 0) - x t + ln(1 + e^{-|x|})`; gradient `sigmoid(x) - t`.
pub fn bce_with_logits(logits: &Var, target: &Tensor, reduction: Reduction) -> Var {
    pointwise(
        logits,
        target,
        reduction,
        |x, t| x.max(0.0) - x * t + (-x.abs()).exp().ln_1p(),
        |x, t| super::activation::stable_sigmoid(x) - t,
    )
}

/// [`bce_with_logits`] with each element's loss multiplied by `weight` (same shape as the
/// logits), as PyTorch's `BCEWithLogitsLoss(weight=...)`: the class-weighted multi-label
/// loss; gradient `weight * (sigmoid(x) - t)`.
pub fn weighted_bce_with_logits(
    logits: &Var,
    target: &Tensor,
    weight: &Tensor,
    reduction: Reduction,
) -> Var {
    assert_eq!(
        logits.shape(),
        weight.shape(),
        "loss: logits and weight shapes differ"
    );
    let weighted = |loss: fn(f32, f32) -> f32| {
        let w = weight.clone();
        move |x: &Tensor, t: &Tensor| zip_map(&zip_map(x, t, loss), &w, |l, w| l * w)
    };
    let (value, gradient) = (
        weighted(|x, t| x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()),
        weighted(|x, t| super::activation::stable_sigmoid(x) - t),
    );
    assert_eq!(
        logits.shape(),
        target.shape(),
        "loss: prediction and target shapes differ"
    );
    let factor = reduction.factor(logits.shape());
    let total = sum_f64(&value(logits.value(), target));
    let y = Tensor::from_elem(IxDyn(&[1]), (total * factor as f64) as f32);
    let (x, t) = (logits.shared(), target.clone());
    Var::record(&[logits], y, move |g, _| {
        let k = g[[0]] * factor;
        vec![Some(map(&gradient(&x, &t), move |d| k * d))]
    })
}

/// KL(N(mu, exp(logvar)) || N(0, I)) summed over the latent dimensions and averaged over
/// the batch: `-1/2 * mean_n sum_j (1 + logvar - mu^2 - exp(logvar))` (Kingma & Welling,
/// appendix B). Always >= 0. Gradients: `mu / N` and `(exp(logvar) - 1) / (2N)`.
pub fn kl_divergence(mu: &Var, logvar: &Var) -> Var {
    assert_eq!(
        mu.shape(),
        logvar.shape(),
        "kl_divergence: mu and logvar shapes differ"
    );
    let n = mu.shape().first().copied().unwrap_or(1).max(1) as f32;
    let terms = zip_map(mu.value(), logvar.value(), |m, lv| {
        -0.5 * (1.0 + lv - m * m - lv.exp())
    });
    let total = sum_f64(&terms);
    let y = Tensor::from_elem(IxDyn(&[1]), (total / n as f64) as f32);
    let (m, lv) = (mu.shared(), logvar.shared());
    Var::record(&[mu, logvar], y, move |g, wants| {
        let k = g[[0]] / n;
        vec![
            wants[0].then(|| map(&m, move |m| k * m)),
            wants[1].then(|| map(&lv, move |lv| k * 0.5 * (lv.exp() - 1.0))),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{config, tensor};
    use super::*;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use proptest::prelude::*;

    fn pair() -> impl Strategy<Value = (Tensor, Tensor)> {
        (1usize..4, 1usize..6).prop_flat_map(|(n, d)| (tensor(vec![n, d]), tensor(vec![n, d])))
    }

    const REDUCTIONS: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::BatchMean];

    proptest! {
        #![proptest_config(config(32))]

        #[test]
        fn mse_and_l1_values_and_gradients((p, t) in pair(), seed: u64) {
            let n = p.shape()[0] as f64;
            let sq: f64 = p.iter().zip(t.iter()).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
            let ab: f64 = p.iter().zip(t.iter()).map(|(a, b)| ((a - b) as f64).abs()).sum();
            for (r, div) in REDUCTIONS.iter().zip([p.len() as f64, 1.0, n]) {
                prop_assert!((mse(&Var::constant(p.clone()), &t, *r).item() as f64 - sq / div).abs() < 1e-4);
                prop_assert!((l1(&Var::constant(p.clone()), &t, *r).item() as f64 - ab / div).abs() < 1e-4);
                check_gradients(std::slice::from_ref(&p), seed, Tolerance::default(), |v| mse(&v[0], &t, *r)).map_err(TestCaseError::fail)?;
            }
            // L1 only where no finite-difference step crosses the kink at p == t.
            if p.iter().zip(t.iter()).all(|(a, b)| (a - b).abs() > 0.05) {
                check_gradients(&[p], seed, Tolerance::default(), |v| l1(&v[0], &t, Reduction::Mean)).map_err(TestCaseError::fail)?;
            }
        }

        #[test]
        fn bce_matches_logits_form_and_gradients((x, t) in pair(), seed: u64) {
            let t = t.mapv(|v| (v + 1.0) / 2.0);
            let probs = x.mapv(|v| super::super::activation::stable_sigmoid(3.0 * v));
            let direct: f64 = probs.iter().zip(t.iter())
                .map(|(&p, &t)| -(t as f64 * (p as f64).ln() + (1.0 - t as f64) * (1.0 - p as f64).ln())).sum();
            let on_probs = bce(&Var::constant(probs.clone()), &t, Reduction::Sum).item() as f64;
            let on_logits = bce_with_logits(&Var::constant(x.mapv(|v| 3.0 * v)), &t, Reduction::Sum).item() as f64;
            prop_assert!((on_probs - direct).abs() < 1e-3 * (1.0 + direct));
            prop_assert!((on_logits - direct).abs() < 1e-3 * (1.0 + direct));
            check_gradients(&[probs], seed, Tolerance { step: 1e-3, ..Tolerance::default() }, |v| bce(&v[0], &t, Reduction::Mean))
                .map_err(TestCaseError::fail)?;
            check_gradients(&[x], seed, Tolerance::default(), |v| bce_with_logits(&v[0], &t, Reduction::BatchMean))
                .map_err(TestCaseError::fail)?;
        }

        #[test]
        fn weighted_bce_scales_each_element((x, t) in pair(), seed: u64) {
            let t = t.mapv(|v| f32::from(v > 0.0));
            let w = x.mapv(|v| 0.5 + (7.0 * v).sin().abs());
            let plain = |x: f32, t: f32| x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
            let want: f64 = x.iter().zip(t.iter()).zip(w.iter())
                .map(|((&x, &t), &w)| (w * plain(x, t)) as f64).sum();
            let got = weighted_bce_with_logits(&Var::constant(x.clone()), &t, &w, Reduction::Sum).item() as f64;
            prop_assert!((got - want).abs() < 1e-4 * (1.0 + want));
            let ones = Tensor::ones(IxDyn(x.shape()));
            let unweighted = bce_with_logits(&Var::constant(x.clone()), &t, Reduction::Mean).item();
            prop_assert_eq!(weighted_bce_with_logits(&Var::constant(x.clone()), &t, &ones, Reduction::Mean).item(), unweighted);
            check_gradients(&[x], seed, Tolerance::default(), |v| weighted_bce_with_logits(&v[0], &t, &w, Reduction::BatchMean))
                .map_err(TestCaseError::fail)?;
        }

        /// KL = mean_n sum_j 1/2 (mu^2 + e^lv - 1 - lv) >= 0.
        #[test]
        fn kl_values_and_gradients((mu, lv) in pair(), seed: u64) {
            let n = mu.shape()[0] as f64;
            let want: f64 = mu.iter().zip(lv.iter())
                .map(|(&m, &l)| 0.5 * ((m as f64).powi(2) + (l as f64).exp() - 1.0 - l as f64)).sum::<f64>() / n;
            let got = kl_divergence(&Var::constant(mu.clone()), &Var::constant(lv.clone())).item() as f64;
            prop_assert!((got - want).abs() < 1e-4 * (1.0 + want));
            prop_assert!(got >= 0.0);
            check_gradients(&[mu, lv], seed, Tolerance::default(), |v| kl_divergence(&v[0], &v[1])).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn losses_stay_finite_at_extremes() {
        let t = Tensor::from_shape_vec(IxDyn(&[1, 2]), vec![1.0, 0.0]).unwrap();
        let p = Var::constant(Tensor::from_shape_vec(IxDyn(&[1, 2]), vec![0.0, 1.0]).unwrap());
        assert_eq!(bce(&p, &t, Reduction::Sum).item(), 200.0); // each log clamped at -100
        let logits =
            Var::constant(Tensor::from_shape_vec(IxDyn(&[1, 2]), vec![-1000.0, 1000.0]).unwrap());
        assert!((bce_with_logits(&logits, &t, Reduction::Sum).item() - 2000.0).abs() < 1e-2);
        let zeros = Var::constant(Tensor::zeros(IxDyn(&[3, 4])));
        assert_eq!(kl_divergence(&zeros, &zeros).item(), 0.0);
    }
}
