//! PReLU: `y = x` for `x > 0`, else `a_c * x`, with one learnable slope per channel
//! (axis 1) or one shared slope. `dx = dy * (x > 0 ? 1 : a_c)`, `da_c = sum_{x<=0} dy * x`.

use super::batch_norm::ncp;
use super::elementwise::{row_major, standard};
use crate::autograd::Var;
use crate::kernels::lanes;
use crate::Tensor;
use ndarray::IxDyn;
use rayon::prelude::*;

pub fn prelu(x: &Var, slope: &Var) -> Var {
    let (_, c, p) = ncp(x.shape());
    let k = slope.value().len();
    assert!(
        slope.shape().len() == 1 && (k == 1 || k == c),
        "prelu: slope must have shape [1] or [{c}], got {:?}",
        slope.shape()
    );
    let a = row_major(slope.value()).into_owned();
    let slope_of = move |plane: usize| if k == 1 { a[0] } else { a[plane % c] };
    let x_val = standard(x.shared());
    let xs = x_val.as_slice().unwrap();
    let mut y = vec![0.0f32; xs.len()];
    y.par_chunks_mut(p)
        .zip(xs.par_chunks(p))
        .enumerate()
        .for_each(|(plane, (y, x))| {
            let a = slope_of(plane);
            y.iter_mut()
                .zip(x)
                .for_each(|(y, &x)| *y = if x > 0.0 { x } else { a * x });
        });
    let shape = x.value().raw_dim();
    let y = Tensor::from_shape_vec(shape.clone(), y).unwrap();
    Var::record(&[x, slope], y, move |dy, wants| {
        let dy = row_major(dy);
        let xs = x_val.as_slice().unwrap();
        let dx = wants[0].then(|| {
            let mut dx = vec![0.0f32; xs.len()];
            dx.par_chunks_mut(p)
                .zip(xs.par_chunks(p))
                .zip(dy.par_chunks(p))
                .enumerate()
                .for_each(|(plane, ((d, x), g))| {
                    let a = slope_of(plane);
                    for ((d, &x), &g) in d.iter_mut().zip(x).zip(g) {
                        *d = if x > 0.0 { g } else { a * g };
                    }
                });
            Tensor::from_shape_vec(shape, dx).unwrap()
        });
        let da = wants[1].then(|| {
            // One f64 sum per plane in parallel, then added per slope in plane order (the
            // same order whatever the thread count).
            let planes: Vec<f64> = xs
                .par_chunks(p)
                .zip(dy.par_chunks(p))
                .map(|(x, g)| lanes::dot_nonpositive(x, g))
                .collect();
            let mut da = vec![0.0f64; k];
            for (plane, s) in planes.into_iter().enumerate() {
                da[if k == 1 { 0 } else { plane % c }] += s;
            }
            Tensor::from_shape_vec(IxDyn(&[k]), da.into_iter().map(|v| v as f32).collect()).unwrap()
        });
        vec![dx, da]
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{config, tensor_off_zero};
    use super::*;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config(32))]

        #[test]
        fn per_channel_and_shared_slopes(
            (x, a_c, a_1) in (1usize..4, 1usize..4, 1usize..4, 1usize..4).prop_flat_map(|(n, c, h, w)| {
                (tensor_off_zero(vec![n, c, h, w]), tensor_off_zero(vec![c]), tensor_off_zero(vec![1]))
            }),
            seed: u64,
        ) {
            let y = prelu(&Var::constant(x.clone()), &Var::constant(a_c.clone()));
            for (idx, &v) in x.indexed_iter() {
                let want = if v > 0.0 { v } else { a_c[[idx[1]]] * v };
                prop_assert_eq!(y.value()[&idx], want);
            }
            check_gradients(&[x.clone(), a_c], seed, Tolerance::default(), |v| prelu(&v[0], &v[1])).map_err(TestCaseError::fail)?;
            check_gradients(&[x.clone(), a_1.clone()], seed, Tolerance::default(), |v| prelu(&v[0], &v[1])).map_err(TestCaseError::fail)?;
            // A 1-D (`[N, C]`) input with a shared slope.
            let (n, per_image) = (x.shape()[0], x.len() / x.shape()[0]);
            let flat = x.into_shape_with_order(IxDyn(&[n, per_image])).unwrap();
            check_gradients(&[flat, a_1], seed, Tolerance::default(), |v| prelu(&v[0], &v[1])).map_err(TestCaseError::fail)?;
        }
    }
}
