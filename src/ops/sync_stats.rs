//! Batch statistics over the whole batch of a data-parallel group (sync batch norm): when
//! the ranks of a job each hold a part of the batch, batch norm in training mode must
//! normalize with the mean and variance of the whole batch and, backward, use the whole
//! batch's gradient sums, or N ranks would not compute what one process computes.
//!
//! Forward costs two all-reduces per layer (the channel sums with the value count, then the
//! squared deviations from the global mean: the same two-pass formula as one process);
//! backward one (`Σ dy` and `Σ dy·xhat` together). The gradients of gamma and beta stay
//! this rank's own sums: the trainer's all-reduce of every parameter gradient adds them.

use crate::collective::Collective;
use crate::kernels::lanes;
use rayon::prelude::*;
use std::sync::Arc;

/// Which values a batch norm's statistics span: this process's batch, or the group's.
#[derive(Clone)]
pub(crate) struct Span {
    pub group: Option<Arc<dyn Collective>>,
    /// Values per channel behind the statistics (over every rank of the group).
    pub count: usize,
}

impl Span {
    /// This process's own `count` values per channel.
    pub fn local(count: usize) -> Span {
        Span { group: None, count }
    }

    /// Replaces `v` by its sum over the group (nothing to do for one process).
    pub fn sum(&self, v: &mut [f64]) {
        if let Some(g) = &self.group {
            g.sum_f64(v);
        }
    }

    /// `(Σ dy, Σ dy·xhat)` per channel over the group, from this rank's sums (f32 or f64).
    pub fn grad_sums<T: Copy + Into<f64>>(
        &self,
        sum_dy: &[T],
        sum_dy_xhat: &[T],
    ) -> (Vec<f32>, Vec<f32>) {
        let mut both: Vec<f64> = sum_dy
            .iter()
            .chain(sum_dy_xhat)
            .map(|&v| v.into())
            .collect();
        self.sum(&mut both);
        let (a, b) = both.split_at(sum_dy.len());
        let f32s = |v: &[f64]| v.iter().map(|&s| s as f32).collect();
        (f32s(a), f32s(b))
    }
}

/// Per-channel mean and biased variance of `x` (`[n, c, p]`) over every rank of
/// `group`, and the number of values per channel behind them: the global mean first (the
/// count rides along with the sums), then the squared deviations from it.
pub(crate) fn group_moments(
    x: &[f32],
    (n, c, p): (usize, usize, usize),
    group: &dyn Collective,
) -> (Vec<(f32, f32)>, usize) {
    let planes = |ch: usize| (0..n).map(move |i| &x[(i * c + ch) * p..(i * c + ch + 1) * p]);
    let mut sums: Vec<f64> = (0..c)
        .into_par_iter()
        .map(|ch| planes(ch).map(lanes::sum).sum::<f64>())
        .collect();
    sums.push((n * p) as f64);
    group.sum_f64(&mut sums);
    let m = sums.pop().unwrap_or(0.0);
    let means: Vec<f32> = sums.iter().map(|s| (s / m) as f32).collect();
    let mut dev: Vec<f64> = (0..c)
        .into_par_iter()
        .map(|ch| {
            planes(ch)
                .map(|s| lanes::sum_sq_dev(s, means[ch]))
                .sum::<f64>()
        })
        .collect();
    group.sum_f64(&mut dev);
    let moments = means
        .into_iter()
        .zip(dev)
        .map(|(mean, d)| (mean, (d / m) as f32));
    (moments.collect(), m as usize)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{config, tensor};
    use crate::collective::{local::LocalGroup, shard, with_batch_group};
    use crate::ops::RunningStats;
    use crate::ops::{batch_norm, batch_norm_act, mul, sum, Activation, BatchNormMode};
    use crate::{Tape, Tensor, Var};
    use ndarray::{Axis, Slice};
    use proptest::prelude::*;

    /// What one rank (or the whole batch) computes: the output, the gradients of x, gamma,
    /// beta (and the PReLU slope), and the running statistics after the step.
    struct Result {
        y: Tensor,
        grads: Vec<Tensor>,
        stats: RunningStats,
    }

    fn run(x: &Tensor, params: &[Tensor], r: &Tensor, fused: bool) -> Result {
        let tape = Tape::new();
        let x_var = tape.leaf(x.clone());
        let vars: Vec<Var> = params.iter().map(|p| tape.leaf(p.clone())).collect();
        let mut stats = RunningStats::new(params[0].len());
        let mode = BatchNormMode::Train { momentum: 0.1 };
        let y = if fused {
            let act = Activation::PRelu(vars[2].clone());
            batch_norm_act(&x_var, &vars[0], &vars[1], &mut stats, mode, 1e-5, &act)
        } else {
            batch_norm(&x_var, &vars[0], &vars[1], &mut stats, mode, 1e-5)
        };
        let g = tape.backward(&sum(&mul(&y, &Var::constant(r.clone()))));
        let mut grads = vec![g.get(&x_var).unwrap().clone()];
        let used = if fused { 3 } else { 2 };
        grads.extend(vars[..used].iter().map(|v| g.get(v).unwrap().clone()));
        Result {
            y: y.value().clone(),
            grads,
            stats,
        }
    }

    fn close(a: &Tensor, b: &Tensor) -> std::result::Result<(), TestCaseError> {
        prop_assert_eq!(a.shape(), b.shape());
        for (u, v) in a.iter().zip(b) {
            prop_assert!((u - v).abs() <= 1e-4 * (1.0 + v.abs()), "{} vs {}", u, v);
        }
        Ok(())
    }

    fn problem() -> impl Strategy<Value = (Tensor, Vec<Tensor>, Tensor, usize)> {
        (2usize..7, 1usize..4, 1usize..4, 2usize..4)
            .prop_flat_map(|(n, c, h, ranks)| {
                let shape = vec![n, c, h, 3];
                (
                    tensor(shape.clone()),
                    (tensor(vec![c]), tensor(vec![c]), tensor(vec![c])),
                    tensor(shape),
                    Just(ranks.min(n)),
                )
            })
            .prop_map(|(x, (g, b, a), r, ranks)| (x, vec![g, b, a], r, ranks))
    }

    proptest! {
        #![proptest_config(config(24))]

        /// The batch split over a group of threads, each normalizing its part inside
        /// `with_batch_group`: the parts' outputs and input gradients are the whole
        /// batch's, their parameter gradients add up to the whole batch's, and every rank
        /// updates the running statistics as one process does.
        #[test]
        fn parts_normalize_as_the_whole_batch((x, params, r, ranks) in problem(), fused: bool) {
            let whole = run(&x, &params, &r, fused);
            let n = x.shape()[0];
            let members = LocalGroup::members(ranks);
            let parts: Vec<Result> = std::thread::scope(|s| {
                let handles: Vec<_> = members.into_iter().map(|m| {
                    let (x, r, params) = (&x, &r, &params);
                    s.spawn(move || {
                        let mine: Slice = shard(0..n, m.rank(), m.size()).into();
                        let (x, r) = (x.slice_axis(Axis(0), mine).to_owned(), r.slice_axis(Axis(0), mine).to_owned());
                        with_batch_group(&m, || run(&x, params, &r, fused))
                    })
                }).collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let joined = |f: &dyn Fn(&Result) -> Tensor| {
                let views: Vec<Tensor> = parts.iter().map(f).collect();
                let views: Vec<_> = views.iter().map(|t| t.view()).collect();
                ndarray::concatenate(Axis(0), &views).unwrap()
            };
            close(&joined(&|p| p.y.clone()), &whole.y)?;
            close(&joined(&|p| p.grads[0].clone()), &whole.grads[0])?;
            for k in 1..whole.grads.len() {
                let total = parts.iter().fold(Tensor::zeros(whole.grads[k].raw_dim()), |acc, p| acc + &p.grads[k]);
                close(&total, &whole.grads[k])?;
            }
            for p in &parts {
                close(&p.stats.mean, &whole.stats.mean)?;
                close(&p.stats.var, &whole.stats.var)?;
            }
        }
    }
}
