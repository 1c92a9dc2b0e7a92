//! Instance normalization with a per-channel affine transform: each (image, channel)
//! plane is normalized by its own mean and biased variance. This is the batch-norm math
//! of `norm_core` applied to the input viewed as `[1, N*C, H*W]`, with gamma and beta
//! repeated for every image (and their gradients summed back over the images).

use super::batch_norm::ncp;
use super::elementwise::{row_major, standard};
use super::norm_core::{
    fold_channels, grad_sums, input_grad_batch_stats, normalize, plane_statistics, tile,
};
use crate::autograd::Var;
use crate::Tensor;

pub fn instance_norm(x: &Var, gamma: &Var, beta: &Var, eps: f32) -> Var {
    let (n, c, p) = ncp(x.shape());
    assert!(
        gamma.shape() == [c] && beta.shape() == [c],
        "instance_norm: gamma/beta must have shape [{c}]"
    );
    let planes = n * c;
    let x_val = standard(x.shared());
    let (mean, inv_std) = plane_statistics(x_val.as_slice().unwrap(), planes, p, eps);
    let gamma_tiled = tile(&row_major(gamma.value()), planes);
    let (y, xhat) = normalize(
        x_val.as_slice().unwrap(),
        planes,
        p,
        &mean,
        &inv_std,
        &gamma_tiled,
        &tile(&row_major(beta.value()), planes),
    );
    let shape = x.value().raw_dim();
    let y = Tensor::from_shape_vec(shape.clone(), y).unwrap();
    Var::record(&[x, gamma, beta], y, move |dy, wants| {
        let dy = row_major(dy);
        let (sum_dy, sum_dy_xhat) = grad_sums(&dy, &xhat, 1, planes, p);
        let dx = wants[0].then(|| {
            let dx = input_grad_batch_stats(
                &dy,
                &xhat,
                p,
                planes,
                p,
                &gamma_tiled,
                &inv_std,
                &sum_dy,
                &sum_dy_xhat,
            );
            Tensor::from_shape_vec(shape, dx).unwrap()
        });
        vec![
            dx,
            wants[1].then(|| fold_channels(&sum_dy_xhat, c)),
            wants[2].then(|| fold_channels(&sum_dy, c)),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{config, tensor};
    use super::*;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use proptest::prelude::*;

    fn problem() -> impl Strategy<Value = (Tensor, Tensor, Tensor)> {
        (1usize..4, 1usize..4, 1usize..4, 2usize..4)
            .prop_flat_map(|(n, c, h, w)| {
                (tensor(vec![n, c, h, w]), tensor(vec![c]), tensor(vec![c]))
            })
            // A plane of nearly equal values has a variance near eps, where normalization is
            // too curved for finite differences; keep planes with a real spread.
            .prop_filter("plane variance too small", |(x, _, _)| {
                x.outer_iter()
                    .flat_map(|img| img.outer_iter().map(|p| p.var(0.0)).collect::<Vec<_>>())
                    .all(|v| v > 0.01)
            })
    }

    proptest! {
        #![proptest_config(config(32))]

        /// Each (n, c) plane: y = gamma_c * (x - mean_plane) / sqrt(var_plane + eps) + beta_c.
        #[test]
        fn matches_direct_formula((x, g, b) in problem()) {
            let y = instance_norm(&Var::constant(x.clone()), &Var::constant(g.clone()), &Var::constant(b.clone()), 1e-5);
            let (n, c) = (x.shape()[0], x.shape()[1]);
            for i in 0..n { for ch in 0..c {
                let plane = x.slice(ndarray::s![i, ch, .., ..]);
                let m = plane.iter().map(|&v| v as f64).sum::<f64>() / plane.len() as f64;
                let var = plane.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / plane.len() as f64;
                for (&got, &v) in y.value().slice(ndarray::s![i, ch, .., ..]).iter().zip(plane.iter()) {
                    let want = g[[ch]] as f64 * (v as f64 - m) / (var + 1e-5).sqrt() + b[[ch]] as f64;
                    prop_assert!((got as f64 - want).abs() < 1e-4);
                }
            }}
        }

        #[test]
        fn gradients((x, g, b) in problem(), seed: u64) {
            let tol = Tolerance { step: 3e-3, atol: 3e-3, rtol: 3e-2 };
            check_gradients(&[x, g, b], seed, tol, |v| instance_norm(&v[0], &v[1], &v[2], 1e-5)).map_err(TestCaseError::fail)?;
        }
    }
}
