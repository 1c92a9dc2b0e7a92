//! Principal component analysis: the eigenvectors of the sample covariance
//! `C = (X - mean)^T (X - mean) / (n - 1)`, found with the cyclic Jacobi method (Golub &
//! Van Loan, "Matrix Computations", 8.5), which is exact to rounding for the few hundred
//! dimensions of a latent space.

use ndarray::{Array1, Array2, Axis};

pub struct Pca {
    pub mean: Array1<f64>,
    /// `[k, D]`: the unit principal axes, largest variance first.
    pub components: Array2<f64>,
    /// The variance along each axis (the eigenvalues).
    pub variances: Vec<f64>,
    /// The total variance of the data (the trace of C).
    pub total_variance: f64,
}

impl Pca {
    /// The first `k` principal axes of the rows of `data` (`[n, D]`, n >= 2).
    pub fn fit(data: &Array2<f64>, k: usize) -> Pca {
        let (n, d) = data.dim();
        let mean = data.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(d));
        let centered = data - &mean;
        let cov = centered.t().dot(&centered) / (n.max(2) - 1) as f64;
        let total_variance = cov.diag().sum();
        let (values, vectors) = symmetric_eigen(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let k = k.min(d);
        let mut components = Array2::zeros((k, d));
        for (row, &i) in order.iter().take(k).enumerate() {
            let mut axis = vectors.column(i).to_owned();
            // A fixed sign: the largest coordinate is positive.
            let big = axis
                .iter()
                .copied()
                .fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
            if big < 0.0 {
                axis.mapv_inplace(|v| -v);
            }
            components.row_mut(row).assign(&axis);
        }
        Pca {
            mean,
            components,
            variances: order.iter().take(k).map(|&i| values[i].max(0.0)).collect(),
            total_variance,
        }
    }

    /// The coordinates of each row of `data` along the axes: `[n, k]`.
    pub fn project(&self, data: &Array2<f64>) -> Array2<f64> {
        (data - &self.mean).dot(&self.components.t())
    }
}

/// Eigenvalues and eigenvectors (as columns) of a symmetric matrix, by cyclic Jacobi
/// rotations until the off-diagonal mass is negligible.
pub fn symmetric_eigen(mut a: Array2<f64>) -> (Vec<f64>, Array2<f64>) {
    let n = a.nrows();
    let mut v = Array2::<f64>::eye(n);
    let scale = a.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|p| (p + 1..n).map(move |q| (p, q)))
            .map(|(p, q)| a[[p, q]].powi(2))
            .sum();
        if off <= 1e-26 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[[p, q]];
                if apq.abs() < 1e-300 {
                    continue;
                }
                // The rotation angle that zeroes a[p][q]: tan(2θ) = 2 a_pq / (a_qq - a_pp).
                let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[[k, p]], a[[k, q]]);
                    a[[k, p]] = c * akp - s * akq;
                    a[[k, q]] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[[p, k]], a[[q, k]]);
                    a[[p, k]] = c * apk - s * aqk;
                    a[[q, k]] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[[k, p]], v[[k, q]]);
                    v[[k, p]] = c * vkp - s * vkq;
                    v[[k, q]] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[[i, i]]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    #[test]
    fn eigenvectors_diagonalize_the_matrix() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let b = Array2::from_shape_fn((7, 7), |_| rng.gen_range(-1.0..1.0));
        let a = &b + &b.t();
        let (values, v) = symmetric_eigen(a.clone());
        // A V = V diag(values) and V^T V = I.
        let av = a.dot(&v);
        for j in 0..7 {
            for i in 0..7 {
                assert!((av[[i, j]] - v[[i, j]] * values[j]).abs() < 1e-9);
            }
        }
        let vtv = v.t().dot(&v);
        for i in 0..7 {
            for j in 0..7 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((vtv[[i, j]] - want).abs() < 1e-9);
            }
        }
    }

    /// Data spread along three known orthonormal axes with standard deviations 5, 2 and
    /// 0.5 (plus a little isotropic noise) in 6-D: PCA finds those axes, in that order.
    #[test]
    fn pca_recovers_known_axes_and_variances() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let q = symmetric_eigen({
            let b = Array2::from_shape_fn((6, 6), |_| rng.gen_range(-1.0..1.0));
            &b + &b.t()
        })
        .1;
        let axes: Vec<Array1<f64>> = (0..3).map(|i| q.column(i).to_owned()).collect();
        let stds = [5.0, 2.0, 0.5];
        let offset = Array1::from(vec![1.0, -2.0, 3.0, 0.0, 0.5, 4.0]);
        let n = 4000;
        let mut data = Array2::zeros((n, 6));
        for mut row in data.rows_mut() {
            let mut x = offset.clone();
            for (axis, s) in axes.iter().zip(stds) {
                x = x + axis * (s * rng.sample::<f64, _>(StandardNormal));
            }
            x.mapv_inplace(|v| v + 0.01 * rng.sample::<f64, _>(StandardNormal));
            row.assign(&x);
        }
        let pca = Pca::fit(&data, 3);
        for i in 0..3 {
            let cos = pca.components.row(i).dot(&axes[i]).abs();
            assert!(cos > 0.999, "axis {i}: |cos| = {cos}");
            let rel = (pca.variances[i] / (stds[i] * stds[i]) - 1.0).abs();
            assert!(rel < 0.1, "variance {i}: {}", pca.variances[i]);
        }
        assert!((pca.mean[2] - 3.0).abs() < 0.3);
        // Projections are centered and have the found variances.
        let p = pca.project(&data);
        let var0 = p.column(0).iter().map(|v| v * v).sum::<f64>() / (n - 1) as f64;
        assert!((var0 / pca.variances[0] - 1.0).abs() < 1e-6);
        assert!(pca.total_variance > pca.variances.iter().sum::<f64>());
    }
}
