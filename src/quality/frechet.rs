//! The Fréchet distance between two Gaussians fitted to feature vectors (Heusel et al.
//! 2017, "GANs Trained by a Two Time-Scale Update Rule...", the FID's formula; Dowson &
//! Landau 1982):
//! `d² = |mu_a - mu_b|² + tr(S_a) + tr(S_b) - 2 tr((S_a^½ S_b S_a^½)^½)`.
//! The last trace equals `tr((S_a S_b)^½)` and is computed in this symmetric form, so
//! only eigendecompositions of symmetric matrices are needed.

use crate::linalg;

/// The mean and covariance of a set of feature vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianStats {
    pub dim: usize,
    pub count: usize,
    pub mean: Vec<f64>,
    /// `dim x dim`, row-major, with the unbiased `1 / (count - 1)` (as numpy's `np.cov`).
    pub cov: Vec<f64>,
}

impl GaussianStats {
    /// The statistics of `rows` (each `dim` values, concatenated).
    pub fn of(rows: &[f32], dim: usize) -> GaussianStats {
        assert!(
            dim > 0 && rows.len().is_multiple_of(dim),
            "GaussianStats: ragged rows"
        );
        let count = rows.len() / dim;
        let mut mean = vec![0.0; dim];
        for row in rows.chunks(dim) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= count.max(1) as f64);
        // The centred rows as a `dim x count` matrix's columns: cov = X X^T / (count - 1).
        let mut cov = vec![0.0; dim * dim];
        for row in rows.chunks(dim) {
            let c: Vec<f64> = row.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect();
            for i in 0..dim {
                let ci = c[i];
                for (out, cj) in cov[i * dim..i * dim + i + 1].iter_mut().zip(&c) {
                    *out += ci * cj;
                }
            }
        }
        let denom = count.saturating_sub(1).max(1) as f64;
        for i in 0..dim {
            for j in 0..=i {
                let v = cov[i * dim + j] / denom;
                cov[i * dim + j] = v;
                cov[j * dim + i] = v;
            }
        }
        GaussianStats {
            dim,
            count,
            mean,
            cov,
        }
    }
}

/// The Fréchet distance (squared, as the FID reports it) between `a` and `b`; rounding
/// below zero is reported as 0.
pub fn frechet_distance(a: &GaussianStats, b: &GaussianStats) -> f64 {
    assert_eq!(a.dim, b.dim, "frechet_distance: feature sizes differ");
    let n = a.dim;
    let shift: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    let root_a = linalg::sqrt_psd(&a.cov, n);
    let middle = linalg::matmul(&linalg::matmul(&root_a, &b.cov, n), &root_a, n);
    let cross: f64 = linalg::symmetric_eigen(&middle, n)
        .values
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum();
    (shift + linalg::trace(&a.cov, n) + linalg::trace(&b.cov, n) - 2.0 * cross).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn gaussian_rows(n: usize, dim: usize, scale: &[f32], shift: f32, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * dim)
            .map(|k| shift + scale[k % dim] * rng.sample::<f32, _>(rand_distr::StandardNormal))
            .collect()
    }

    #[test]
    fn a_set_against_itself_is_zero_and_a_shift_adds_its_square() {
        let rows = gaussian_rows(500, 6, &[1.0, 2.0, 0.5, 1.0, 3.0, 1.0], 0.0, 1);
        let a = GaussianStats::of(&rows, 6);
        assert!(
            frechet_distance(&a, &a) < 1e-9,
            "{}",
            frechet_distance(&a, &a)
        );
        let shifted: Vec<f32> = rows.iter().map(|v| v + 0.5).collect();
        let b = GaussianStats::of(&shifted, 6);
        let d = frechet_distance(&a, &b);
        assert!((d - 6.0 * 0.25).abs() < 1e-6, "{d}");
        let further: Vec<f32> = rows.iter().map(|v| v + 1.0).collect();
        assert!(frechet_distance(&a, &GaussianStats::of(&further, 6)) > d);
    }

    /// Diagonal covariances: `d² = Σ (m_a - m_b)² + (σ_a - σ_b)²` per dimension.
    #[test]
    fn diagonal_covariances_match_the_closed_form() {
        let dim = 4;
        let diag = |var: [f64; 4], mean: f64| GaussianStats {
            dim,
            count: 2,
            mean: vec![mean; dim],
            cov: (0..dim * dim)
                .map(|k| {
                    if k / dim == k % dim {
                        var[k / dim]
                    } else {
                        0.0
                    }
                })
                .collect(),
        };
        let (va, vb): ([f64; 4], [f64; 4]) = ([1.0, 4.0, 0.25, 9.0], [4.0, 1.0, 1.0, 9.0]);
        let want: f64 = (0..dim)
            .map(|i| 0.09 + (va[i].sqrt() - vb[i].sqrt()).powi(2))
            .sum();
        let got = frechet_distance(&diag(va, 0.0), &diag(vb, 0.3));
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }

    /// `S_b = c S_a` (any S_a): the cross term is `√c tr(S_a)`, so
    /// `d² = (1 - √c)² tr(S_a)`.
    #[test]
    fn a_scaled_covariance_matches_the_closed_form() {
        let rows = gaussian_rows(300, 5, &[1.0, 0.3, 2.0, 1.5, 0.7], 0.0, 2);
        let mixed: Vec<f32> = rows
            .chunks(5)
            .flat_map(|r| {
                [
                    r[0] + r[1],
                    r[1] - r[2],
                    r[2] + 0.5 * r[3],
                    r[3],
                    r[4] - r[0],
                ]
            })
            .collect();
        let a = GaussianStats::of(&mixed, 5);
        let mut b = a.clone();
        b.cov.iter_mut().for_each(|v| *v *= 4.0);
        let want = (1.0f64 - 2.0).powi(2) * linalg::trace(&a.cov, 5);
        let got = frechet_distance(&a, &b);
        assert!((got - want).abs() < 1e-7 * want, "{got} vs {want}");
    }

    #[test]
    fn covariance_is_numpys_unbiased_one() {
        let s = GaussianStats::of(&[1.0, 2.0, 3.0, 6.0, 5.0, 10.0], 2);
        assert_eq!(s.mean, vec![3.0, 6.0]);
        // x: 1,3,5 (var 4), y: 2,6,10 (var 16), cov 8.
        assert_eq!(s.cov, vec![4.0, 8.0, 8.0, 16.0]);
    }
}
