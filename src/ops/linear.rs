//! Fully connected layer: `y = x W^T + b` with `x: [N, in]`, `W: [out, in]` (PyTorch layout).
//! Backward: `dx = dy W`, `dW = dy^T x`, `db = sum_rows dy`.

use super::elementwise::{row_major, standard};
use crate::autograd::Var;
use crate::kernels::gemm::{gemm_par, MatRef};
use crate::Tensor;
use ndarray::{Axis, IxDyn};

pub fn linear(x: &Var, weight: &Var, bias: Option<&Var>) -> Var {
    let (xs, ws) = (x.shape(), weight.shape());
    assert!(xs.len() == 2 && ws.len() == 2, "linear: input {xs:?} must be [N, in] and weight {ws:?} [out, in]");
    assert_eq!(xs[1], ws[1], "linear: input has {} features, weight expects {}", xs[1], ws[1]);
    let (n, fan_in, fan_out) = (xs[0], xs[1], ws[0]);
    if let Some(b) = bias {
        assert_eq!(b.shape(), &[fan_out], "linear bias shape");
    }
    let x_val = standard(x.shared());
    let w_val = standard(weight.shared());
    let x_mat = || MatRef::new(x_val.as_slice().unwrap(), n, fan_in);
    let w_mat = || MatRef::new(w_val.as_slice().unwrap(), fan_out, fan_in);
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
        let w_mat = MatRef::new(w_val.as_slice().unwrap(), fan_out, fan_in);
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
