//! Batch normalization over the channel axis 1 of `[N, C]` or `[N, C, H, W]` inputs.
//! Training mode normalizes with the batch's mean and biased variance and updates the
//! running statistics with momentum (PyTorch's rule: `running = (1-m)*running + m*stat`,
//! using the unbiased variance); eval mode normalizes with the running statistics.

use super::elementwise::{row_major, standard};
use super::norm_core::{
    channel_moments, grad_sums, input_grad_batch_stats, input_grad_fixed_stats, inv_std, normalize,
};
use super::sync_stats::{group_moments, Span};
use crate::autograd::Var;
use crate::Tensor;
use ndarray::IxDyn;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BatchNormMode {
    Train { momentum: f32 },
    Eval,
}

/// Running mean and variance of a BatchNorm layer (buffers, not learned).
#[derive(Clone, Debug, PartialEq)]
pub struct RunningStats {
    pub mean: Tensor,
    pub var: Tensor,
}

impl RunningStats {
    pub fn new(channels: usize) -> Self {
        RunningStats {
            mean: Tensor::zeros(IxDyn(&[channels])),
            var: Tensor::ones(IxDyn(&[channels])),
        }
    }
}

/// `(n, c, p)` of a `[N, C, ...]` tensor.
pub(crate) fn ncp(shape: &[usize]) -> (usize, usize, usize) {
    assert!(
        shape.len() >= 2,
        "normalization needs an input of rank >= 2, got {shape:?}"
    );
    (shape[0], shape[1], shape[2..].iter().product())
}

/// The mean and `1/sqrt(var + eps)` per channel that normalize `xs` (of shape `shape`):
/// the batch's own in training mode (updating the running statistics), the running ones in
/// eval mode; and the values they span. In training mode inside
/// [`crate::collective::with_batch_group`] the batch is the whole group's (sync batch norm,
/// see `sync_stats`).
pub(crate) fn statistics(
    xs: &[f32],
    shape: &[usize],
    stats: &mut RunningStats,
    mode: BatchNormMode,
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Span) {
    let (n, c, p) = ncp(shape);
    let (mean, var, span): (Vec<f32>, Vec<f32>, Span) = match mode {
        BatchNormMode::Train { momentum } => {
            let group = crate::collective::batch_group();
            let (moments, m) = match &group {
                None => (channel_moments(xs, n, c, p), n * p),
                Some(g) => group_moments(xs, (n, c, p), g.as_ref()),
            };
            assert!(
                m > 1,
                "batch_norm in training mode needs more than one value per channel (input {shape:?})"
            );
            let (mean, var): (Vec<f32>, Vec<f32>) = moments.into_iter().unzip();
            let unbiased = m as f32 / (m - 1) as f32;
            for ch in 0..c {
                stats.mean[ch] = (1.0 - momentum) * stats.mean[ch] + momentum * mean[ch];
                stats.var[ch] = (1.0 - momentum) * stats.var[ch] + momentum * var[ch] * unbiased;
            }
            (mean, var, Span { group, count: m })
        }
        BatchNormMode::Eval => (
            stats.mean.iter().copied().collect(),
            stats.var.iter().copied().collect(),
            Span::local(n * p),
        ),
    };
    (mean, inv_std(&var, eps), span)
}

pub fn batch_norm(
    x: &Var,
    gamma: &Var,
    beta: &Var,
    stats: &mut RunningStats,
    mode: BatchNormMode,
    eps: f32,
) -> Var {
    let (n, c, p) = ncp(x.shape());
    assert!(
        gamma.shape() == [c] && beta.shape() == [c],
        "batch_norm: gamma/beta must have shape [{c}]"
    );
    assert!(
        stats.mean.shape() == [c] && stats.var.shape() == [c],
        "batch_norm: running statistics must have shape [{c}]"
    );
    let x_val = standard(x.shared());
    let xs = x_val.as_slice().unwrap();
    let (mean, inv_std, span) = statistics(xs, x.shape(), stats, mode, eps);
    let gamma_v = row_major(gamma.value()).into_owned();
    let (y, xhat) = normalize(
        xs,
        c,
        p,
        &mean,
        &inv_std,
        &gamma_v,
        &row_major(beta.value()),
    );
    let shape = x.value().raw_dim();
    let y = Tensor::from_shape_vec(shape.clone(), y).unwrap();
    let batch_stats = matches!(mode, BatchNormMode::Train { .. });
    Var::record(&[x, gamma, beta], y, move |dy, wants| {
        let dy = row_major(dy);
        let (sum_dy, sum_dy_xhat) = grad_sums(&dy, &xhat, n, c, p);
        let dx = wants[0].then(|| {
            let dx = if batch_stats {
                let (all_dy, all_dy_xhat) = span.grad_sums(&sum_dy, &sum_dy_xhat);
                input_grad_batch_stats(
                    &dy,
                    &xhat,
                    span.count,
                    c,
                    p,
                    &gamma_v,
                    &inv_std,
                    &all_dy,
                    &all_dy_xhat,
                )
            } else {
                input_grad_fixed_stats(&dy, c, p, &gamma_v, &inv_std)
            };
            Tensor::from_shape_vec(shape, dx).unwrap()
        });
        let to_tensor = |v: Vec<f32>| Tensor::from_shape_vec(IxDyn(&[c]), v).unwrap();
        vec![
            dx,
            wants[1].then(|| to_tensor(sum_dy_xhat)),
            wants[2].then(|| to_tensor(sum_dy)),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{config, tensor};
    use super::*;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use proptest::prelude::*;

    fn shapes() -> impl Strategy<Value = Vec<usize>> {
        prop_oneof![
            (2usize..5, 1usize..4).prop_map(|(n, c)| vec![n, c]),
            (1usize..4, 1usize..4, 1usize..4, 2usize..4).prop_map(|(n, c, h, w)| vec![n, c, h, w]),
        ]
    }

    fn problem() -> impl Strategy<Value = (Tensor, Tensor, Tensor, RunningStats)> {
        shapes()
            .prop_flat_map(|s| {
                let c = s[1];
                (
                    tensor(s),
                    tensor(vec![c]),
                    tensor(vec![c]),
                    tensor(vec![c]),
                    tensor(vec![c]),
                )
                    .prop_map(|(x, g, b, rm, rv)| {
                        (
                            x,
                            g,
                            b,
                            RunningStats {
                                mean: rm,
                                var: rv.mapv(|v| v.abs() + 0.5),
                            },
                        )
                    })
            })
            // Channels of nearly equal values have a variance near eps, where normalization is
            // too curved for finite differences; keep channels with a real spread.
            .prop_filter("channel variance too small", |(x, ..)| {
                let (n, c, p) = ncp(x.shape());
                let x3 = x.to_shape((n, c, p)).unwrap();
                (0..c).all(|ch| x3.slice(ndarray::s![.., ch, ..]).var(0.0) > 0.01)
            })
    }

    proptest! {
        #![proptest_config(config(32))]

        /// y = gamma * (x - mean_batch) / sqrt(var_batch + eps) + beta, and the running
        /// statistics move by momentum towards the batch mean and unbiased variance.
        #[test]
        fn training_mode_matches_direct_formula((x, g, b, stats) in problem()) {
            let (n, c, p) = ncp(x.shape());
            let mut s = stats.clone();
            let y = batch_norm(&Var::constant(x.clone()), &Var::constant(g.clone()), &Var::constant(b.clone()), &mut s, BatchNormMode::Train { momentum: 0.1 }, 1e-5);
            let x3 = x.to_shape((n, c, p)).unwrap();
            let y3 = y.value().to_shape((n, c, p)).unwrap().to_owned();
            for ch in 0..c {
                let vals: Vec<f64> = x3.slice(ndarray::s![.., ch, ..]).iter().map(|&v| v as f64).collect();
                let m = vals.iter().sum::<f64>() / vals.len() as f64;
                let var = vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / vals.len() as f64;
                for i in 0..n { for q in 0..p {
                    let want = g[[ch]] as f64 * (x3[[i, ch, q]] as f64 - m) / (var + 1e-5).sqrt() + b[[ch]] as f64;
                    prop_assert!((y3[[i, ch, q]] as f64 - want).abs() < 1e-4);
                }}
                let unbiased = var * vals.len() as f64 / (vals.len() - 1) as f64;
                prop_assert!((s.mean[ch] as f64 - (0.9 * stats.mean[ch] as f64 + 0.1 * m)).abs() < 1e-5);
                prop_assert!((s.var[ch] as f64 - (0.9 * stats.var[ch] as f64 + 0.1 * unbiased)).abs() < 1e-5);
            }
        }

        #[test]
        fn eval_mode_uses_running_statistics((x, g, b, stats) in problem()) {
            let mut s = stats.clone();
            let y = batch_norm(&Var::constant(x.clone()), &Var::constant(g.clone()), &Var::constant(b.clone()), &mut s, BatchNormMode::Eval, 1e-5);
            prop_assert_eq!(&s, &stats);
            for (idx, &v) in x.indexed_iter() {
                let ch = idx[1];
                let want = g[[ch]] * (v - stats.mean[ch]) / (stats.var[ch] + 1e-5).sqrt() + b[[ch]];
                prop_assert!((y.value()[&idx] - want).abs() < 1e-5);
            }
        }

        #[test]
        fn gradients_in_both_modes((x, g, b, stats) in problem(), seed: u64) {
            let tol = Tolerance { step: 3e-3, atol: 3e-3, rtol: 3e-2 };
            for mode in [BatchNormMode::Train { momentum: 0.1 }, BatchNormMode::Eval] {
                check_gradients(&[x.clone(), g.clone(), b.clone()], seed, tol, |v| {
                    batch_norm(&v[0], &v[1], &v[2], &mut stats.clone(), mode, 1e-5)
                }).map_err(TestCaseError::fail)?;
            }
        }
    }

    /// Golden values from PyTorch 2.15:
    /// ```python
    /// x = det([4,3,2,2], 0.53, 0.2) * 2 + 0.5      # det as in conv_transpose2d's test
    /// bn = torch.nn.BatchNorm2d(3); bn.weight.data = torch.tensor([1.0, 0.5, -2.0]); bn.bias.data = torch.tensor([0.0, 0.3, 1.0])
    /// y = bn(x); print([y.flatten()[i].item() for i in [0,13,29,47]], bn.running_mean, bn.running_var)
    /// bn.eval(); y = bn(x); print([y.flatten()[i].item() for i in [0,13,29,47]])
    /// ```
    #[test]
    fn matches_pytorch_golden_values() {
        let x = Tensor::from_shape_vec(
            IxDyn(&[4, 3, 2, 2]),
            (0..48)
                .map(|i| (i as f32 * 0.53 + 0.2).sin() * 2.0 + 0.5)
                .collect(),
        )
        .unwrap();
        let vec3 =
            |v: [f32; 3]| Var::constant(Tensor::from_shape_vec(IxDyn(&[3]), v.to_vec()).unwrap());
        let (g, b) = (vec3([1.0, 0.5, -2.0]), vec3([0.0, 0.3, 1.0]));
        let mut stats = RunningStats::new(3);
        let x = Var::constant(x);
        let check = |y: &Var, want: [f32; 4]| {
            for (&i, w) in [0usize, 13, 29, 47].iter().zip(want) {
                let got = y.value().as_slice().unwrap()[i];
                assert!((got - w).abs() < 2e-5, "index {i}: {got} vs PyTorch {w}");
            }
        };
        let y = batch_norm(
            &x,
            &g,
            &b,
            &mut stats,
            BatchNormMode::Train { momentum: 0.1 },
            1e-5,
        );
        check(&y, [-2.009817, -0.077827, 0.495849, -2.776876]);
        for (got, want) in stats.mean.iter().zip([0.1986344, 0.0353135, -0.0833015]) {
            assert!((got - want).abs() < 1e-6);
        }
        for (got, want) in stats.var.iter().zip([0.9313156, 1.0237594, 0.949583]) {
            assert!((got - want).abs() < 1e-6);
        }
        let y = batch_norm(&x, &g, &b, &mut stats, BatchNormMode::Eval, 1e-5);
        check(&y, [0.724007, 1.808752, 0.66555, -0.103826]);
    }
}
