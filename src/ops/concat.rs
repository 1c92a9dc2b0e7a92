//! Concatenation of `[N, A]` and `[N, B]` into `[N, A + B]` (a conditional VAE appends the
//! condition to the features and to z); the gradient is the upstream gradient's column
//! blocks, `[:, ..A]` for the first input and `[:, A..]` for the second.

use crate::autograd::Var;
use crate::Tensor;
use ndarray::{concatenate, s, Axis, Ix2};

fn as2(t: &Tensor) -> ndarray::ArrayView2<'_, f32> {
    t.view().into_dimensionality::<Ix2>().expect("2-d")
}

/// `[a | b]` along the columns of two 2-d batches with the same number of rows.
pub fn concat_columns(a: &Var, b: &Var) -> Var {
    let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
    assert!(
        sa.len() == 2 && sb.len() == 2 && sa[0] == sb[0],
        "concat_columns: {sa:?} and {sb:?} are not [N, A] and [N, B]"
    );
    let y = concatenate(Axis(1), &[as2(a.value()), as2(b.value())])
        .expect("same row count")
        .into_dyn();
    let width = sa[1];
    Var::record(&[a, b], y, move |g, wants| {
        let g = as2(g);
        vec![
            wants[0].then(|| g.slice(s![.., ..width]).to_owned().into_dyn()),
            wants[1].then(|| g.slice(s![.., width..]).to_owned().into_dyn()),
        ]
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
        fn concat_values_and_gradients(
            (a, b) in (1usize..4, 1usize..5, 1usize..5)
                .prop_flat_map(|(n, p, q)| (tensor(vec![n, p]), tensor(vec![n, q]))),
            seed: u64,
        ) {
            let y = concat_columns(&Var::constant(a.clone()), &Var::constant(b.clone()));
            let (n, p, q) = (a.shape()[0], a.shape()[1], b.shape()[1]);
            prop_assert_eq!(y.shape(), &[n, p + q]);
            for i in 0..n {
                for j in 0..p + q {
                    let want = if j < p { a[[i, j]] } else { b[[i, j - p]] };
                    prop_assert_eq!(y.value()[[i, j]], want);
                }
            }
            check_gradients(&[a, b], seed, Tolerance::default(), |v| concat_columns(&v[0], &v[1]))
                .map_err(TestCaseError::fail)?;
        }
    }
}
