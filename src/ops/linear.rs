//! Fully connected layer: `y = x W^T + b` with `x: [N, in]`, `W: [out, in]` (PyTorch layout).
//! Backward: `dx = dy W`, `dW = dy^T x`, `db = sum_rows dy`.

use super::elementwise::{row_major, standard};
use crate::autograd::Var;
use crate::kernels::gemm::{gemm_par, MatRef};
use crate::Tensor;
use ndarray::{Axis, IxDyn};

pub fn linear(x: &Var, weight: &Var, bias: Option<&Var>) -> Var {
    let (xs, ws) = (x.shape(), weight.shape());
    assert!(
        xs.len() == 2 && ws.len() == 2,
        "linear: input {xs:?} must be [N, in] and weight {ws:?} [out, in]"
    );
    assert_eq!(
        xs[1], ws[1],
        "linear: input has {} features, weight expects {}",
        xs[1], ws[1]
    );
    let (n, fan_in, fan_out) = (xs[0], xs[1], ws[0]);
    if let Some(b) = bias {
        assert_eq!(b.shape(), &[fan_out], "linear bias shape");
    }
    let x_val = standard(x.shared());
    let w_val = standard(weight.shared());
    let x_mat = || MatRef::new(x_val.as_slice().unwrap(), n, fan_in);
    let w_mat = || MatRef::new(w_val.as_slice().unwrap(), fan_out, fan_in).kept(&w_val);
    let mut y = vec![0.0f32; n * fan_out];
    gemm_par(1.0, x_mat(), w_mat().t(), 0.0, &mut y);
    if let Some(b) = bias {
        let b = row_major(b.value());
        for row in y.chunks_mut(fan_out) {
            row.iter_mut().zip(b.iter()).for_each(|(v, b)| *v += b);
        }
    }
    let y = Tensor::from_shape_vec(IxDyn(&[n, fan_out]), y).unwrap();
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    Var::record(&inputs, y, move |dy, wants| {
        let dy_data = row_major(dy);
        let dy_mat = MatRef::new(&dy_data, n, fan_out);
        let x_mat = MatRef::new(x_val.as_slice().unwrap(), n, fan_in);
        let w_mat = MatRef::new(w_val.as_slice().unwrap(), fan_out, fan_in).kept(&w_val);
        let dx = wants[0].then(|| {
            let mut dx = vec![0.0f32; n * fan_in];
            gemm_par(1.0, dy_mat, w_mat, 0.0, &mut dx);
            Tensor::from_shape_vec(IxDyn(&[n, fan_in]), dx).unwrap()
        });
        let dw = wants[1].then(|| {
            let mut dw = vec![0.0f32; fan_out * fan_in];
            gemm_par(1.0, dy_mat.t(), x_mat, 0.0, &mut dw);
            Tensor::from_shape_vec(IxDyn(&[fan_out, fan_in]), dw).unwrap()
        });
        let mut grads = vec![dx, dw];
        if wants.len() == 3 {
            grads.push(wants[2].then(|| dy.sum_axis(Axis(0))));
        }
        grads
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{config, tensor};
    use super::*;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config(32))]

        #[test]
        fn matches_definition_and_gradients(
            (x, w, b) in (1usize..6, 1usize..7, 1usize..6).prop_flat_map(|(n, i, o)| (tensor(vec![n, i]), tensor(vec![o, i]), tensor(vec![o]))),
            seed: u64,
        ) {
            let y = linear(&Var::constant(x.clone()), &Var::constant(w.clone()), Some(&Var::constant(b.clone())));
            let (n, i, o) = (x.shape()[0], x.shape()[1], w.shape()[0]);
            for r in 0..n { for c in 0..o {
                let e: f32 = b[[c]] + (0..i).map(|k| x[[r, k]] * w[[c, k]]).sum::<f32>();
                prop_assert!((y.value()[[r, c]] - e).abs() < 1e-5);
            }}
            check_gradients(&[x.clone(), w.clone(), b], seed, Tolerance::default(), |v| linear(&v[0], &v[1], Some(&v[2])))
                .map_err(TestCaseError::fail)?;
            check_gradients(&[x, w], seed, Tolerance::default(), |v| linear(&v[0], &v[1], None)).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn large_product_splits_rows_across_threads() {
        let pool = crate::threads::thread_pool(3).unwrap();
        let x = Tensor::from_shape_fn(IxDyn(&[130, 70]), |d| {
            ((d[0] * 3 + d[1]) % 13) as f32 / 13.0 - 0.5
        });
        let w = Tensor::from_shape_fn(IxDyn(&[300, 70]), |d| {
            ((d[0] + 5 * d[1]) % 7) as f32 / 7.0 - 0.5
        });
        let y = pool.install(|| {
            linear(&Var::constant(x.clone()), &Var::constant(w.clone()), None)
                .value()
                .clone()
        });
        let expect = x
            .view()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap()
            .dot(&w.view().into_dimensionality::<ndarray::Ix2>().unwrap().t());
        for (a, e) in y.iter().zip(expect.iter()) {
            assert!((a - e).abs() < 1e-4);
        }
    }
}
