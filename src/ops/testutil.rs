//! Strategies shared by the ops' property tests.

use crate::Tensor;
use ndarray::IxDyn;
use proptest::prelude::*;

/// A tensor of `shape` with values in `[-1, 1]`.
pub(crate) fn tensor(shape: Vec<usize>) -> impl Strategy<Value = Tensor> {
    let len: usize = shape.iter().product();
    proptest::collection::vec(-1.0f32..1.0, len)
        .prop_map(move |v| Tensor::from_shape_vec(IxDyn(&shape), v).unwrap())
}

/// Like [`tensor`] but with every |value| in `[0.1, 1]`, away from the kinks of
/// piecewise-linear functions at 0 (so a finite-difference step never crosses one).
pub(crate) fn tensor_off_zero(shape: Vec<usize>) -> impl Strategy<Value = Tensor> {
    let len: usize = shape.iter().product();
    proptest::collection::vec((0.1f32..1.0, any::<bool>()), len).prop_map(move |v| {
        Tensor::from_shape_vec(
            IxDyn(&shape),
            v.into_iter()
                .map(|(m, neg)| if neg { -m } else { m })
                .collect(),
        )
        .unwrap()
    })
}

/// `cases` per property, unless `PROPTEST_CASES` is set (e.g. `PROPTEST_CASES=2000` to
/// stress the suite locally).
pub(crate) fn config(cases: u32) -> ProptestConfig {
    match std::env::var("PROPTEST_CASES") {
        Ok(_) => ProptestConfig::default(),
        Err(_) => ProptestConfig {
            cases,
            ..ProptestConfig::default()
        },
    }
}
