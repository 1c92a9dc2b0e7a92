//! A fixed per-channel affine map of `[N, C, ...]`: `y = x * scale[c] + shift[c]` (the
//! input normalization a pretrained feature network expects). `dx = dy * scale[c]`.

use crate::autograd::Var;
use crate::Tensor;
use ndarray::Axis;

pub fn channel_affine(x: &Var, scale: &[f32], shift: &[f32]) -> Var {
    let c = x.shape().get(1).copied().unwrap_or(0);
    assert!(
        scale.len() == c && shift.len() == c,
        "channel_affine: {c} channels, {} scales, {} shifts",
        scale.len(),
        shift.len()
    );
    let map = |t: &Tensor, with_shift: bool, scale: &[f32], shift: &[f32]| {
        let mut out = t.to_owned();
        for (k, mut lane) in out.axis_iter_mut(Axis(1)).enumerate() {
            let b = if with_shift { shift[k] } else { 0.0 };
            lane.mapv_inplace(|v| v * scale[k] + b);
        }
        out
    };
    let y = map(x.value(), true, scale, shift);
    let scale = scale.to_vec();
    Var::record(&[x], y, move |dy, _| {
        vec![Some(map(dy, false, &scale, &[]))]
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::tensor;
    use super::*;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn values_and_gradients(x in tensor(vec![2, 3, 2, 2]), seed: u64) {
            let (scale, shift) = ([2.0, -0.5, 4.0], [0.1, 0.2, -0.3]);
            let y = channel_affine(&Var::constant(x.clone()), &scale, &shift);
            for ((idx, &v), &want) in x.indexed_iter().zip(y.value().iter()) {
                prop_assert!((v * scale[idx[1]] + shift[idx[1]] - want).abs() < 1e-6);
            }
            check_gradients(&[x], seed, Tolerance::default(), |v| channel_affine(&v[0], &scale, &shift))
                .map_err(TestCaseError::fail)?;
        }
    }
}
