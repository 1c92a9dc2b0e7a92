//! Dense symmetric matrices in f64, for the Fréchet distance of `vae-cpu score`: the
//! eigendecomposition (Householder reduction to tridiagonal form, then the implicit QL
//! algorithm with Wilkinson-style shifts: Wilkinson & Reinsch, "Handbook for Automatic
//! Computation II", 1971; Golub & Van Loan §8.3), the square root of a positive
//! semi-definite matrix, and products. Matrices are row-major `n * n` slices.

use rayon::prelude::*;

/// `A = V diag(values) V^T`: `vectors` holds the eigenvectors as rows (row `k` belongs to
/// `values[k]`), so `V[i][k] = vectors[k * n + i]`.
pub struct SymmetricEigen {
    pub values: Vec<f64>,
    pub vectors: Vec<f64>,
}

/// The eigendecomposition of the symmetric `n x n` matrix `a` (only its lower triangle is
/// read). Values are not sorted.
pub fn symmetric_eigen(a: &[f64], n: usize) -> SymmetricEigen {
    assert_eq!(a.len(), n * n, "symmetric_eigen: not an n x n matrix");
    let mut z = a.to_vec();
    let (mut d, mut e) = (vec![0.0; n], vec![0.0; n]);
    tridiagonalize(&mut z, n, &mut d, &mut e);
    let mut rows = transpose(&z, n);
    tridiagonal_ql(&mut d, &mut e, &mut rows, n);
    SymmetricEigen {
        values: d,
        vectors: rows,
    }
}

/// Householder reduction: on return `z` is the orthogonal Q with `Q^T A Q` tridiagonal,
/// `d` its diagonal and `e[1..]` its sub-diagonal.
fn tridiagonalize(z: &mut [f64], n: usize, d: &mut [f64], e: &mut [f64]) {
    for i in (1..n).rev() {
        let l = i - 1;
        let mut h = 0.0;
        let scale: f64 = (0..i).map(|k| z[i * n + k].abs()).sum();
        if l == 0 || scale == 0.0 {
            e[i] = z[i * n + l];
        } else {
            for k in 0..i {
                z[i * n + k] /= scale;
                h += z[i * n + k] * z[i * n + k];
            }
            let f = z[i * n + l];
            let g = if f >= 0.0 { -h.sqrt() } else { h.sqrt() };
            e[i] = scale * g;
            h -= f * g;
            z[i * n + l] = f - g;
            // e = A u / h with u = row i (the Householder vector), A the lower triangle
            // of rows 0..i read as a symmetric matrix: row by row, so memory runs forward.
            let u = z[i * n..i * n + i].to_vec();
            let mut g = vec![0.0; i];
            for j in 0..i {
                z[j * n + i] = u[j] / h;
                let row = &z[j * n..j * n + j + 1];
                let mut below = 0.0;
                for (k, (&a, gk)) in row[..j].iter().zip(&mut g[..j]).enumerate() {
                    below += a * u[k];
                    *gk += a * u[j];
                }
                g[j] += below + row[j] * u[j];
            }
            let mut f = 0.0;
            for j in 0..i {
                e[j] = g[j] / h;
                f += e[j] * u[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                let f = z[i * n + j];
                let g = e[j] - hh * f;
                e[j] = g;
                for k in 0..=j {
                    z[j * n + k] -= f * e[k] + g * z[i * n + k];
                }
            }
        }
        d[i] = h;
    }
    accumulate_transforms(z, n, d);
}

/// Turns the stored Householder vectors into Q, reading the diagonal into `d`.
fn accumulate_transforms(z: &mut [f64], n: usize, d: &mut [f64]) {
    for i in 0..n {
        if i > 0 && d[i] != 0.0 {
            // g = z[i][..i] Z[..i][..i], then Z[..i][..i] -= z[..i][i] g: row by row.
            let mut g = vec![0.0; i];
            for k in 0..i {
                let zik = z[i * n + k];
                for (gj, &zkj) in g.iter_mut().zip(&z[k * n..k * n + i]) {
                    *gj += zik * zkj;
                }
            }
            for k in 0..i {
                let zki = z[k * n + i];
                for (zkj, gj) in z[k * n..k * n + i].iter_mut().zip(&g) {
                    *zkj -= gj * zki;
                }
            }
        }
        d[i] = z[i * n + i];
        z[i * n + i] = 1.0;
        for j in 0..i {
            z[j * n + i] = 0.0;
            z[i * n + j] = 0.0;
        }
    }
}

/// The implicit QL iteration on the tridiagonal `(d, e)`; each plane rotation is applied to
/// the rows of `rows` (the transposed Q), which end as the eigenvectors.
fn tridiagonal_ql(d: &mut [f64], e: &mut [f64], rows: &mut [f64], n: usize) {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    if n > 0 {
        e[n - 1] = 0.0;
    }
    for l in 0..n {
        for _ in 0..100 {
            // The first negligible off-diagonal element at or after l splits the matrix.
            let m = (l..n.saturating_sub(1))
                .find(|&m| e[m].abs() <= f64::EPSILON * (d[m].abs() + d[m + 1].abs()))
                .unwrap_or(n - 1);
            if m == l {
                break;
            }
            ql_sweep(d, e, rows, n, l, m);
        }
    }
}

/// One shifted QL sweep over the block `l..=m`.
fn ql_sweep(d: &mut [f64], e: &mut [f64], rows: &mut [f64], n: usize, l: usize, m: usize) {
    let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
    let mut r = g.hypot(1.0);
    g = d[m] - d[l] + e[l] / (g + r.copysign(g));
    let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
    for i in (l..m).rev() {
        let f = s * e[i];
        let b = c * e[i];
        r = f.hypot(g);
        e[i + 1] = r;
        if r == 0.0 {
            // Underflow: the block splits here; the sweep restarts.
            d[i + 1] -= p;
            e[m] = 0.0;
            return;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2.0 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        let (lo, hi) = rows.split_at_mut((i + 1) * n);
        let (row_i, row_next) = (&mut lo[i * n..], &mut hi[..n]);
        for (zi, zn) in row_i.iter_mut().zip(row_next.iter_mut()) {
            let f = *zn;
            *zn = s * *zi + c * f;
            *zi = c * *zi - s * f;
        }
    }
    d[l] -= p;
    e[l] = g;
    e[m] = 0.0;
}

pub fn transpose(a: &[f64], n: usize) -> Vec<f64> {
    let mut t = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            t[j * n + i] = a[i * n + j];
        }
    }
    t
}

/// `a b` of two `n x n` matrices (rows in parallel).
pub fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    c.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, row)| {
        for k in 0..n {
            let aik = a[i * n + k];
            for (c, b) in row.iter_mut().zip(&b[k * n..(k + 1) * n]) {
                *c += aik * b;
            }
        }
    });
    c
}

/// `V diag(f(values)) V^T` of an eigendecomposition.
pub fn apply(eig: &SymmetricEigen, n: usize, f: impl Fn(f64) -> f64 + Sync) -> Vec<f64> {
    let scaled: Vec<f64> = (0..n * n)
        .map(|idx| eig.vectors[idx] * f(eig.values[idx / n]))
        .collect();
    // (V diag V^T)[i][j] = sum_k vectors[k][i] f(l_k) vectors[k][j].
    matmul(&transpose(&scaled, n), &eig.vectors, n)
}

/// The square root of a symmetric positive semi-definite matrix (negative eigenvalues from
/// rounding count as 0).
pub fn sqrt_psd(a: &[f64], n: usize) -> Vec<f64> {
    apply(&symmetric_eigen(a, n), n, |v| v.max(0.0).sqrt())
}

pub fn trace(a: &[f64], n: usize) -> f64 {
    (0..n).map(|i| a[i * n + i]).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn symmetric(n: usize) -> impl Strategy<Value = Vec<f64>> {
        proptest::collection::vec(-3.0f64..3.0, n * n).prop_map(move |v| {
            let mut a = v.clone();
            for i in 0..n {
                for j in 0..n {
                    a[i * n + j] = v[i * n + j] + v[j * n + i];
                }
            }
            a
        })
    }

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn eigenvectors_rebuild_the_matrix((n, a) in (1usize..14).prop_flat_map(|n| (Just(n), symmetric(n)))) {
            let eig = symmetric_eigen(&a, n);
            prop_assert!(close(&apply(&eig, n, |v| v), &a, 1e-9));
            let gram = matmul(&eig.vectors, &transpose(&eig.vectors, n), n);
            let identity: Vec<f64> = (0..n * n).map(|k| f64::from(k / n == k % n)).collect();
            prop_assert!(close(&gram, &identity, 1e-10));
        }

        #[test]
        fn the_square_root_squares_back((n, b) in (1usize..10).prop_flat_map(|n| (Just(n), symmetric(n)))) {
            let psd = matmul(&b, &b, n); // B B^T with B symmetric
            let root = sqrt_psd(&psd, n);
            prop_assert!(close(&matmul(&root, &root, n), &psd, 1e-7));
        }
    }

    /// Timing of a 2048 x 2048 decomposition (Inception's feature size), by hand:
    /// `cargo test --release --lib linalg::tests::size_2048 -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn size_2048() {
        let n = 2048;
        let a: Vec<f64> = (0..n * n)
            .map(|k| {
                let (i, j) = (k / n, k % n);
                (((i * 31 + j * 17) % 97) as f64 + ((j * 31 + i * 17) % 97) as f64) / 97.0
            })
            .collect();
        let t = std::time::Instant::now();
        let eig = symmetric_eigen(&a, n);
        eprintln!("n = {n}: {:.2} s", t.elapsed().as_secs_f64());
        assert!(close(&apply(&eig, n, |v| v), &a, 1e-8));
    }

    #[test]
    fn repeated_and_zero_eigenvalues() {
        let n = 5;
        let identity: Vec<f64> = (0..n * n).map(|k| f64::from(k / n == k % n)).collect();
        let eig = symmetric_eigen(&identity, n);
        assert!(eig.values.iter().all(|v| (v - 1.0).abs() < 1e-12));
        let zero = vec![0.0; n * n];
        assert!(symmetric_eigen(&zero, n)
            .values
            .iter()
            .all(|v| v.abs() < 1e-12));
        assert_eq!(symmetric_eigen(&[], 0).values.len(), 0);
    }
}
