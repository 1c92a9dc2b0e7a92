//! Reshape and flatten: the gradient is the upstream gradient reshaped back.

use crate::autograd::Var;
use crate::Tensor;

/// Reshapes to `shape` (same number of elements, row-major order).
pub fn reshape(x: &Var, shape: &[usize]) -> Var {
    let from = x.shape().to_vec();
    assert_eq!(
        from.iter().product::<usize>(),
        shape.iter().product::<usize>(),
        "reshape {from:?} -> {shape:?}: element counts differ"
    );
    let y = to_shape(x.value(), shape);
    Var::record(&[x], y, move |g, _| vec![Some(to_shape(g, &from))])
}

/// `[N, ...] -> [N, prod(...)]`.
pub fn flatten(x: &Var) -> Var {
    let n = x.shape()[0];
    let rest = x.value().len() / n.max(1);
    reshape(x, &[n, rest])
}

pub(crate) fn to_shape(t: &Tensor, shape: &[usize]) -> Tensor {
    let data = if t.is_standard_layout() {
        t.as_slice().unwrap().to_vec()
    } else {
        t.iter().copied().collect()
    };
    Tensor::from_shape_vec(ndarray::IxDyn(shape), data).expect("element count checked")
}

#[cfg(test)]
mod tests {
    use super::super::testutil::tensor;
    use super::*;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn reshape_and_flatten_gradients(x in tensor(vec![2, 3, 2, 2]), seed: u64) {
            check_gradients(std::slice::from_ref(&x), seed, Tolerance::default(), |v| reshape(&v[0], &[4, 6])).map_err(TestCaseError::fail)?;
            check_gradients(std::slice::from_ref(&x), seed, Tolerance::default(), |v| flatten(&v[0])).map_err(TestCaseError::fail)?;
            let f = flatten(&Var::constant(x.clone()));
            prop_assert_eq!(f.shape(), &[2, 12]);
            prop_assert_eq!(f.value().as_slice().unwrap(), x.as_slice().unwrap());
        }
    }
}
