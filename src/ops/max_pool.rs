//! 2-d max pooling over `[N, C, H, W]` (the feature network of the perceptual loss needs
//! it): `y[n,c,i,j] = max over the k x k window at (i*s - p, j*s - p)`, padding never
//! chosen. The gradient flows only to the chosen element (the first maximum in row-major
//! order on ties, as PyTorch does): `dx[argmax] += dy`.

use crate::autograd::Var;
use crate::Tensor;
use ndarray::IxDyn;
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPoolSpec {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl MaxPoolSpec {
    /// The output size `floor((n + 2p - k) / s) + 1`, or `None` if the window does not fit
    /// or the padding is more than half the kernel (PyTorch's rule: no window may be all
    /// padding).
    pub fn output_size(&self, n: usize) -> Option<usize> {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        if k == 0 || s == 0 || 2 * p > k || n + 2 * p < k {
            return None;
        }
        Some((n + 2 * p - k) / s + 1)
    }
}

pub fn max_pool2d(x: &Var, spec: MaxPoolSpec) -> Var {
    let &[n, c, h, w] = x.shape() else {
        panic!("max_pool2d needs [N, C, H, W], got {:?}", x.shape())
    };
    let (oh, ow) = spec
        .output_size(h)
        .zip(spec.output_size(w))
        .unwrap_or_else(|| panic!("max_pool2d: {spec:?} does not fit {h}x{w}"));
    let x_val = x.value().as_standard_layout().into_owned();
    let xs = x_val.as_slice().expect("standard layout");
    let (k, s, p) = (spec.kernel, spec.stride, spec.padding);
    let mut y = vec![0.0f32; n * c * oh * ow];
    // Per output: the index of its maximum within its input plane.
    let mut arg = vec![0u32; y.len()];
    y.par_chunks_mut(oh * ow)
        .zip(arg.par_chunks_mut(oh * ow))
        .zip(xs.par_chunks(h * w))
        .for_each(|((y, arg), plane)| {
            for i in 0..oh {
                for j in 0..ow {
                    let (mut best, mut at) = (f32::NEG_INFINITY, 0usize);
                    for di in 0..k {
                        for dj in 0..k {
                            let (r, q) = (
                                (i * s + di) as isize - p as isize,
                                (j * s + dj) as isize - p as isize,
                            );
                            if r < 0 || q < 0 || r >= h as isize || q >= w as isize {
                                continue;
                            }
                            let idx = r as usize * w + q as usize;
                            // NaN propagates, as in PyTorch.
                            if plane[idx] > best || plane[idx].is_nan() && !best.is_nan() {
                                (best, at) = (plane[idx], idx);
                            }
                        }
                    }
                    y[i * ow + j] = best;
                    arg[i * ow + j] = at as u32;
                }
            }
        });
    let y = Tensor::from_shape_vec(IxDyn(&[n, c, oh, ow]), y).expect("sized above");
    Var::record(&[x], y, move |dy, _| {
        let dy = dy.as_standard_layout();
        let dys = dy.as_slice().expect("standard layout");
        let mut dx = vec![0.0f32; n * c * h * w];
        dx.par_chunks_mut(h * w)
            .zip(dys.par_chunks(oh * ow))
            .zip(arg.par_chunks(oh * ow))
            .for_each(|((dx, g), arg)| {
                for (&g, &a) in g.iter().zip(arg) {
                    dx[a as usize] += g;
                }
            });
        vec![Some(
            Tensor::from_shape_vec(IxDyn(&[n, c, h, w]), dx).expect("sized above"),
        )]
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::config;
    use super::*;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use proptest::prelude::*;

    /// Distinct values 0.01 apart in a random order, so no finite-difference step changes
    /// which element of a window is the maximum.
    fn distinct(shape: Vec<usize>) -> impl Strategy<Value = Tensor> {
        let len: usize = shape.iter().product();
        Just((0..len).collect::<Vec<_>>())
            .prop_shuffle()
            .prop_map(move |v| {
                Tensor::from_shape_vec(
                    IxDyn(&shape),
                    v.into_iter().map(|i| i as f32 * 0.01 - 0.5).collect(),
                )
                .unwrap()
            })
    }

    /// The naive definition: the max over each window's in-bounds elements.
    fn naive(x: &Tensor, spec: MaxPoolSpec) -> Tensor {
        let &[n, c, h, w] = x.shape() else {
            unreachable!()
        };
        let (oh, ow) = (spec.output_size(h).unwrap(), spec.output_size(w).unwrap());
        Tensor::from_shape_fn(IxDyn(&[n, c, oh, ow]), |d| {
            let mut m = f32::NEG_INFINITY;
            for r in 0..h {
                for q in 0..w {
                    let (r0, q0) = (d[2] * spec.stride, d[3] * spec.stride);
                    let (rp, qp) = (r + spec.padding, q + spec.padding);
                    if rp >= r0 && rp < r0 + spec.kernel && qp >= q0 && qp < q0 + spec.kernel {
                        m = m.max(x[[d[0], d[1], r, q]]);
                    }
                }
            }
            m
        })
    }

    fn case() -> impl Strategy<Value = (Tensor, MaxPoolSpec)> {
        (
            1usize..4,
            1usize..4,
            0usize..2,
            1usize..3,
            1usize..3,
            3usize..8,
            3usize..8,
        )
            .prop_filter_map("window fits", |(k, s, p, n, c, h, w)| {
                let spec = MaxPoolSpec {
                    kernel: k,
                    stride: s,
                    padding: p,
                };
                (spec.output_size(h).is_some() && spec.output_size(w).is_some())
                    .then_some((spec, vec![n, c, h, w]))
            })
            .prop_flat_map(|(spec, shape)| (distinct(shape), Just(spec)))
    }

    proptest! {
        #![proptest_config(config(48))]

        #[test]
        fn max_pool_matches_naive_and_gradients((x, spec) in case(), seed: u64) {
            let y = max_pool2d(&Var::constant(x.clone()), spec);
            prop_assert_eq!(y.value(), &naive(&x, spec));
            check_gradients(&[x], seed, Tolerance::default(), |v| max_pool2d(&v[0], spec))
                .map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn vgg_pooling_halves_and_padding_is_never_the_maximum() {
        let spec = MaxPoolSpec {
            kernel: 2,
            stride: 2,
            padding: 0,
        };
        assert_eq!(spec.output_size(224), Some(112));
        let neg = Tensor::from_elem(IxDyn(&[1, 1, 2, 2]), -5.0);
        let padded = MaxPoolSpec {
            kernel: 3,
            stride: 1,
            padding: 1,
        };
        let y = max_pool2d(&Var::constant(neg), padded);
        assert!(y.value().iter().all(|&v| v == -5.0));
        assert_eq!(
            MaxPoolSpec {
                kernel: 2,
                stride: 2,
                padding: 1
            }
            .output_size(4),
            Some(3)
        );
        assert_eq!(
            MaxPoolSpec {
                kernel: 3,
                stride: 1,
                padding: 2
            }
            .output_size(4),
            None
        );
    }
}
