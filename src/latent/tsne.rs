//! t-SNE (van der Maaten & Hinton, "Visualizing Data using t-SNE", JMLR 2008), exact O(n^2)
//! form, for maps of a few thousand latent means.
//!
//! Input affinities: `p_{j|i} ∝ exp(-|x_i - x_j|^2 / 2σ_i^2)` with σ_i found by bisection
//! so that the entropy of `p_{·|i}` is `ln(perplexity)`; `P = (p_{j|i} + p_{i|j}) / 2n`.
//! Output affinities: `q_ij ∝ (1 + |y_i - y_j|^2)^-1`. The cost `KL(P || Q)` has gradient
//! `∂C/∂y_i = 4 Σ_j (p_ij - q_ij)(y_i - y_j)(1 + |y_i - y_j|^2)^-1`, minimized by gradient
//! descent with momentum, per-coordinate gains and early exaggeration.

use indicatif::ProgressBar;
use ndarray::{Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

#[derive(Clone, Debug)]
pub struct TsneOptions {
    pub perplexity: f64,
    pub iterations: usize,
    pub seed: u64,
}

impl Default for TsneOptions {
    fn default() -> Self {
        TsneOptions {
            perplexity: 30.0,
            iterations: 1000,
            seed: 0,
        }
    }
}

const EXAGGERATION: f64 = 12.0;
const EXAGGERATION_ITERATIONS: usize = 250;

/// Squared Euclidean distances between the rows of `x`.
fn squared_distances(x: &Array2<f64>) -> Array2<f64> {
    let n = x.nrows();
    let mut d = Array2::zeros((n, n));
    d.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut row)| {
            for j in 0..n {
                row[j] = x
                    .row(i)
                    .iter()
                    .zip(x.row(j))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
            }
        });
    d
}

/// The conditional distribution `p_{·|i}` for one row of squared distances with the
/// precision `beta = 1/2σ^2` chosen by bisection so its entropy is `ln(perplexity)`.
fn conditional_row(dist: &[f64], i: usize, perplexity: f64) -> Vec<f64> {
    let target = perplexity.ln();
    let (mut lo, mut hi, mut beta) = (0.0f64, f64::INFINITY, 1.0f64);
    // Distances relative to the nearest other point keep exp() in range.
    let min = dist
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i)
        .map(|(_, &d)| d)
        .fold(f64::INFINITY, f64::min);
    let mut p = vec![0.0; dist.len()];
    for _ in 0..100 {
        let mut sum = 0.0;
        for (j, &d) in dist.iter().enumerate() {
            p[j] = if j == i {
                0.0
            } else {
                (-(d - min) * beta).exp()
            };
            sum += p[j];
        }
        // H = ln(sum) + beta * E[d - min]
        let mean_d: f64 = p.iter().zip(dist).map(|(p, d)| p * (d - min)).sum::<f64>() / sum;
        let entropy = sum.ln() + beta * mean_d;
        p.iter_mut().for_each(|v| *v /= sum);
        if (entropy - target).abs() < 1e-5 {
            break;
        }
        if entropy > target {
            lo = beta;
            beta = if hi.is_finite() {
                (beta + hi) / 2.0
            } else {
                beta * 2.0
            };
        } else {
            hi = beta;
            beta = (beta + lo) / 2.0;
        }
    }
    p
}

/// The symmetric joint affinities P of the rows of `x`.
pub fn joint_affinities(x: &Array2<f64>, perplexity: f64) -> Array2<f64> {
    let n = x.nrows();
    let dist = squared_distances(x);
    let perplexity = perplexity.min((n as f64 - 1.0) / 3.0).max(1.0);
    let rows: Vec<Vec<f64>> = (0..n)
        .into_par_iter()
        .map(|i| conditional_row(dist.row(i).as_slice().expect("row-major"), i, perplexity))
        .collect();
    Array2::from_shape_fn((n, n), |(i, j)| {
        ((rows[i][j] + rows[j][i]) / (2.0 * n as f64)).max(1e-12)
    })
}

/// The cost `KL(P || Q)` of the embedding `y` and its gradient.
pub fn cost_and_gradient(p: &Array2<f64>, y: &Array2<f64>) -> (f64, Array2<f64>) {
    let n = y.nrows();
    // w_ij = (1 + |y_i - y_j|^2)^-1, Q = w / Σ w.
    let w = squared_distances(y).mapv(|d| 1.0 / (1.0 + d));
    let z: f64 = w.sum() - n as f64; // without the diagonal
    let mut grad = Array2::zeros(y.dim());
    grad.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut g)| {
            for j in 0..n {
                if j == i {
                    continue;
                }
                let coef = 4.0 * (p[[i, j]] - w[[i, j]] / z) * w[[i, j]];
                for k in 0..y.ncols() {
                    g[k] += coef * (y[[i, k]] - y[[j, k]]);
                }
            }
        });
    let mut cost = 0.0;
    for i in 0..n {
        for j in 0..n {
            if i != j {
                cost += p[[i, j]] * (p[[i, j]] / (w[[i, j]] / z)).ln();
            }
        }
    }
    (cost, grad)
}

/// A 2-D embedding (`[n, 2]`) of the rows of `x`.
pub fn tsne(x: &Array2<f64>, opts: &TsneOptions, bar: &ProgressBar) -> Array2<f64> {
    let n = x.nrows();
    if n < 3 {
        return Array2::zeros((n, 2));
    }
    let p = joint_affinities(x, opts.perplexity);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut y =
        Array2::from_shape_simple_fn((n, 2), || 1e-4 * rng.sample::<f64, _>(StandardNormal));
    let mut velocity = Array2::<f64>::zeros((n, 2));
    let mut gains = Array2::<f64>::ones((n, 2));
    // The "auto" learning rate of Belkina et al. 2019: n / exaggeration, at least 50.
    let rate = (n as f64 / EXAGGERATION).max(50.0);
    let exaggerated = &p * EXAGGERATION;
    bar.set_length(opts.iterations as u64);
    for it in 0..opts.iterations {
        let early = it < EXAGGERATION_ITERATIONS;
        let (_, grad) = cost_and_gradient(if early { &exaggerated } else { &p }, &y);
        let momentum = if early { 0.5 } else { 0.8 };
        for ((g, v), gain) in grad.iter().zip(velocity.iter_mut()).zip(gains.iter_mut()) {
            // Delta-bar-delta: grow the gain while the step keeps its direction.
            *gain = if g * *v < 0.0 {
                *gain + 0.2
            } else {
                (*gain * 0.8).max(0.01)
            };
            *v = momentum * *v - rate * *gain * g;
        }
        y += &velocity;
        let mean = y.mean_axis(Axis(0)).expect("n >= 3");
        y -= &mean;
        bar.inc(1);
    }
    bar.finish_and_clear();
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, d: usize, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_simple_fn((n, d), || rng.sample::<f64, _>(StandardNormal))
    }

    #[test]
    fn conditional_rows_have_the_requested_perplexity() {
        let x = random(60, 5, 1);
        let dist = squared_distances(&x);
        for perplexity in [5.0, 20.0] {
            for i in [0, 17, 59] {
                let p = conditional_row(dist.row(i).as_slice().unwrap(), i, perplexity);
                assert_eq!(p[i], 0.0);
                assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                let h: f64 = -p
                    .iter()
                    .filter(|&&v| v > 0.0)
                    .map(|v| v * v.ln())
                    .sum::<f64>();
                assert!(
                    (h.exp() - perplexity).abs() < 1e-3 * perplexity,
                    "{}",
                    h.exp()
                );
            }
        }
        let p = joint_affinities(&x, 10.0);
        assert!((p.sum() - 1.0).abs() < 1e-6);
        assert_eq!(p[[3, 8]], p[[8, 3]]);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let p = joint_affinities(&random(12, 4, 2), 3.0);
        let y = random(12, 2, 3);
        let (_, grad) = cost_and_gradient(&p, &y);
        let h = 1e-6;
        for (i, k) in [(0, 0), (5, 1), (11, 0)] {
            let mut plus = y.clone();
            plus[[i, k]] += h;
            let mut minus = y.clone();
            minus[[i, k]] -= h;
            let numeric =
                (cost_and_gradient(&p, &plus).0 - cost_and_gradient(&p, &minus).0) / (2.0 * h);
            assert!(
                (numeric - grad[[i, k]]).abs() < 1e-6 * (1.0 + numeric.abs()),
                "{numeric} vs {}",
                grad[[i, k]]
            );
        }
    }

    /// Three well-separated clusters in 10-D stay separate in the map: every point's
    /// nearest neighbor in 2-D is from its own cluster.
    #[test]
    fn clusters_stay_apart() {
        let per = 40;
        let mut x = random(3 * per, 10, 4);
        for c in 0..3 {
            for i in 0..per {
                x[[c * per + i, c]] += 20.0;
            }
        }
        let opts = TsneOptions {
            perplexity: 15.0,
            iterations: 400,
            seed: 5,
        };
        let y = tsne(&x, &opts, &ProgressBar::hidden());
        let d = squared_distances(&y);
        let mut right = 0;
        for i in 0..3 * per {
            let nearest = (0..3 * per)
                .filter(|&j| j != i)
                .min_by(|&a, &b| d[[i, a]].total_cmp(&d[[i, b]]))
                .unwrap();
            right += usize::from(nearest / per == i / per);
        }
        assert_eq!(right, 3 * per);
        // And the map is not collapsed: between-cluster distances dwarf within-cluster ones.
        let mean = |f: &dyn Fn(usize, usize) -> bool| {
            let v: Vec<f64> = (0..3 * per)
                .flat_map(|i| (0..3 * per).map(move |j| (i, j)))
                .filter(|&(i, j)| i != j && f(i, j))
                .map(|(i, j)| d[[i, j]].sqrt())
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let within = mean(&|i, j| i / per == j / per);
        let between = mean(&|i, j| i / per != j / per);
        assert!(between > 3.0 * within, "between {between}, within {within}");
    }
}
