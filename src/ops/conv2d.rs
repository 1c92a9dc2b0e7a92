//! 2-D convolution (cross-correlation, as in PyTorch): thin convolutions through the
//! direct kernels ([`super::direct_conv`]), the others through im2col + GEMM
//! ([`super::conv2d_gemm`]).
//!
//! Forward, per chunk of images: `col = im2col(x)`, `Y = W[O, C*kh*kw] * col`.
//! Backward: `dW = sum_chunks dY * col^T`, `dx = col2im(W^T * dY)` (for a stride of 1, the
//! convolution of dY with the flipped kernel), `db = sum dY`.

use super::conv2d_gemm;
use super::conv_transpose_winograd;
use super::direct_conv;
use super::elementwise::{row_major, standard};
use crate::autograd::Var;
use crate::kernels::layout::{channel_sums, Bias};
use crate::kernels::ConvGeom;
use crate::Tensor;
use ndarray::IxDyn;
use std::sync::Arc;

/// Zero padding of a convolution's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Explicit amounts on each side (may be asymmetric).
    Explicit {
        top: usize,
        bottom: usize,
        left: usize,
        right: usize,
    },
    /// TensorFlow/Wolfram "same": output = ceil(input / stride); the total padding
    /// `max((out-1)*stride + k - in, 0)` is split with the extra pixel at the bottom/right.
    Same,
}

impl Padding {
    pub fn symmetric(p: usize) -> Padding {
        Padding::Explicit {
            top: p,
            bottom: p,
            left: p,
            right: p,
        }
    }

    /// (top, bottom, left, right) for an `h x w` input.
    pub fn resolve(
        &self,
        h: usize,
        w: usize,
        kh: usize,
        kw: usize,
        sh: usize,
        sw: usize,
    ) -> (usize, usize, usize, usize) {
        match *self {
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            } => (top, bottom, left, right),
            Padding::Same => {
                let split = |size: usize, k: usize, s: usize| {
                    let out = size.div_ceil(s);
                    let total = ((out.max(1) - 1) * s + k).saturating_sub(size);
                    (total / 2, total - total / 2)
                };
                let (t, b) = split(h, kh, sh);
                let (l, r) = split(w, kw, sw);
                (t, b, l, r)
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dSpec {
    pub stride: (usize, usize),
    pub padding: Padding,
}

impl Conv2dSpec {
    pub fn new(stride: usize, padding: Padding) -> Self {
        Conv2dSpec {
            stride: (stride, stride),
            padding,
        }
    }
}

/// Output `(oh, ow)` of a convolution, or `None` when the kernel does not fit the padded
/// input or a stride is zero.
pub fn conv2d_output_size(
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    spec: &Conv2dSpec,
) -> Option<(usize, usize)> {
    let (sh, sw) = spec.stride;
    if sh == 0 || sw == 0 || kh == 0 || kw == 0 {
        return None;
    }
    let (t, b, l, r) = spec.padding.resolve(h, w, kh, kw, sh, sw);
    if h + t + b < kh || w + l + r < kw {
        return None;
    }
    Some(((h + t + b - kh) / sh + 1, (w + l + r - kw) / sw + 1))
}

/// `x: [N, C, H, W]`, `weight: [O, C, kh, kw]`, `bias: [O]` -> `[N, O, oh, ow]`.
pub fn conv2d(x: &Var, weight: &Var, bias: Option<&Var>, spec: Conv2dSpec) -> Var {
    let (n, g, o) = geometry(x.shape(), weight.shape(), &spec);
    if let Some(b) = bias {
        assert_eq!(b.shape(), &[o], "conv2d bias shape");
    }
    let x_val = standard(x.shared());
    let w_val = standard(weight.shared());
    // The weight gradient multiplies by the same columns as the forward: keep them.
    let tracked = weight.is_tracked();
    let b_val = bias.map(|b| row_major(b.value()));
    let xs = x_val.as_slice().unwrap();
    let (y, columns) = forward(xs, n, &g, (&w_val, o), tracked, b_val.as_deref());
    let y = Tensor::from_shape_vec(IxDyn(&[n, o, g.oh, g.ow]), y).unwrap();
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    let x_shape = x.shape().to_vec();
    let w_shape = weight.shape().to_vec();
    Var::record(&inputs, y, move |dy, wants| {
        let dy = row_major(dy);
        let xs = x_val.as_slice().unwrap();
        let wanted = (wants[0], wants[1]);
        let (dx, dw) = backward(xs, n, &g, &w_val, o, &dy, wanted, columns.as_deref());
        let mut grads = vec![
            dx.map(|d| Tensor::from_shape_vec(IxDyn(&x_shape), d).unwrap()),
            dw.map(|d| Tensor::from_shape_vec(IxDyn(&w_shape), d).unwrap()),
        ];
        if wants.len() == 3 {
            grads.push(wants[2].then(|| {
                Tensor::from_shape_vec(IxDyn(&[o]), channel_sums(&dy, o, g.out_positions()))
                    .unwrap()
            }));
        }
        grads
    })
}

pub(crate) fn geometry(xs: &[usize], ws: &[usize], spec: &Conv2dSpec) -> (usize, ConvGeom, usize) {
    assert_eq!(xs.len(), 4, "conv2d input must be [N, C, H, W], got {xs:?}");
    assert_eq!(
        ws.len(),
        4,
        "conv2d weight must be [O, C, kh, kw], got {ws:?}"
    );
    assert_eq!(
        xs[1], ws[1],
        "conv2d: input has {} channels, weight expects {}",
        xs[1], ws[1]
    );
    let (h, w, kh, kw) = (xs[2], xs[3], ws[2], ws[3]);
    let (oh, ow) = conv2d_output_size(h, w, kh, kw, spec).unwrap_or_else(|| {
        panic!("conv2d: kernel {kh}x{kw} does not fit input {h}x{w} with {spec:?}")
    });
    let (t, _, l, _) = spec
        .padding
        .resolve(h, w, kh, kw, spec.stride.0, spec.stride.1);
    let g = ConvGeom {
        c: xs[1],
        h,
        w,
        kh,
        kw,
        sh: spec.stride.0,
        sw: spec.stride.1,
        pad_top: t,
        pad_left: l,
        oh,
        ow,
    };
    (xs[0], g, ws[0])
}

/// Each chunk's im2col columns, in chunk order, kept from the forward for the backward.
pub(crate) type Columns = Vec<Vec<f32>>;

/// `y[N, O, P] = conv(x) + bias` (added by each path's tasks as they write their
/// images). With `tracked` (the weight is on a tape, as in training) the GEMM path keeps
/// the im2col columns where it writes them out (the direct kernels have none); without,
/// it reuses the weight's packed panels across calls.
pub(crate) fn forward(
    x: &[f32],
    n: usize,
    g: &ConvGeom,
    (w, o): (&Arc<Tensor>, usize),
    tracked: bool,
    bias: Bias,
) -> (Vec<f32>, Option<Columns>) {
    if direct_conv::applies(g, o) {
        let y = direct_conv::conv2d_forward(x, n, g, (w.as_slice().unwrap(), o), bias);
        return (y, None);
    }
    conv2d_gemm::gemm_forward(x, n, g, (w, o), tracked, bias)
}

/// Gradients of [`forward`] with respect to x and w, each only when `wanted`
/// (`(dx, dw)`); `columns`: the forward's, when it kept them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    x: &[f32],
    n: usize,
    g: &ConvGeom,
    w: &Arc<Tensor>,
    o: usize,
    dy: &[f32],
    wanted: (bool, bool),
    columns: Option<&[Vec<f32>]>,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let w_all = w.as_slice().unwrap();
    let (want_dx, want_dw) = wanted;
    if direct_conv::applies(g, o) {
        return direct_conv::conv2d_backward(x, n, g, w_all, o, dy, want_dx, want_dw);
    }
    if want_dx && conv_transpose_winograd::applies_to_input_gradient(g, o) {
        // The input gradient of a 4x4 stride-2 padding-1 convolution is the transposed
        // convolution of `dy` with the same weight ([O, C, 4, 4] read as a transposed
        // layer's [in, out, 4, 4]), of which `g` is the adjoint geometry.
        let dx = conv_transpose_winograd::forward(dy, n, o, g, w_all, None);
        let (_, dw) = conv2d_gemm::gemm_backward(x, n, g, w, o, dy, (false, want_dw), columns);
        return (Some(dx), dw);
    }
    conv2d_gemm::gemm_backward(x, n, g, w, o, dy, wanted, columns)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{config, tensor};
    use super::*;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use proptest::prelude::*;

    /// The definition: y[n,o,i,j] = b[o] + sum_{c,ki,kj} w[o,c,ki,kj] * x[n,c,i*s+ki-pt, j*s+kj-pl].
    pub(crate) fn naive_conv2d(
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        spec: Conv2dSpec,
    ) -> Tensor {
        let (xs, ws) = (x.shape(), w.shape());
        let (oh, ow) = conv2d_output_size(xs[2], xs[3], ws[2], ws[3], &spec).unwrap();
        let (pt, _, pl, _) =
            spec.padding
                .resolve(xs[2], xs[3], ws[2], ws[3], spec.stride.0, spec.stride.1);
        let mut y = Tensor::zeros(IxDyn(&[xs[0], ws[0], oh, ow]));
        for n in 0..xs[0] {
            for o in 0..ws[0] {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut s = b.map_or(0.0, |b| b[[o]] as f64);
                        for c in 0..xs[1] {
                            for ki in 0..ws[2] {
                                for kj in 0..ws[3] {
                                    let yy = (i * spec.stride.0 + ki) as isize - pt as isize;
                                    let xx = (j * spec.stride.1 + kj) as isize - pl as isize;
                                    if yy >= 0
                                        && xx >= 0
                                        && (yy as usize) < xs[2]
                                        && (xx as usize) < xs[3]
                                    {
                                        s += w[[o, c, ki, kj]] as f64
                                            * x[[n, c, yy as usize, xx as usize]] as f64;
                                    }
                                }
                            }
                        }
                        y[[n, o, i, j]] = s as f32;
                    }
                }
            }
        }
        y
    }

    #[derive(Debug, Clone)]
    struct Problem {
        x: Tensor,
        w: Tensor,
        b: Option<Tensor>,
        spec: Conv2dSpec,
    }

    fn padding() -> impl Strategy<Value = Padding> {
        prop_oneof![
            Just(Padding::Same),
            (0usize..3, 0usize..3, 0usize..3, 0usize..3).prop_map(|(top, bottom, left, right)| {
                Padding::Explicit {
                    top,
                    bottom,
                    left,
                    right,
                }
            }),
        ]
    }

    fn problem(max_n: usize) -> impl Strategy<Value = Problem> {
        (
            1..=max_n,
            1usize..4,
            1usize..4,
            3usize..9,
            3usize..9,
            1usize..5,
            1usize..5,
            1usize..4,
            padding(),
            any::<bool>(),
        )
            .prop_filter("kernel must fit", |&(_, _, _, h, w, kh, kw, s, pad, _)| {
                conv2d_output_size(h, w, kh, kw, &Conv2dSpec::new(s, pad)).is_some()
            })
            .prop_flat_map(|(n, c, o, h, w, kh, kw, s, pad, bias)| {
                let b = if bias {
                    tensor(vec![o]).prop_map(Some).boxed()
                } else {
                    Just(None).boxed()
                };
                (tensor(vec![n, c, h, w]), tensor(vec![o, c, kh, kw]), b).prop_map(
                    move |(x, w, b)| Problem {
                        x,
                        w,
                        b,
                        spec: Conv2dSpec::new(s, pad),
                    },
                )
            })
    }

    fn run(p: &Problem, vars: &[Var]) -> Var {
        conv2d(&vars[0], &vars[1], vars.get(2), p.spec)
    }

    fn inputs(p: &Problem) -> Vec<Tensor> {
        let mut v = vec![p.x.clone(), p.w.clone()];
        v.extend(p.b.clone());
        v
    }

    proptest! {
        #![proptest_config(config(48))]

        #[test]
        fn matches_naive_reference(p in problem(9)) {
            let y = run(&p, &inputs(&p).into_iter().map(Var::constant).collect::<Vec<_>>());
            let expect = naive_conv2d(&p.x, &p.w, p.b.as_ref(), p.spec);
            prop_assert_eq!(y.shape(), expect.shape());
            for (a, e) in y.value().iter().zip(expect.iter()) {
                prop_assert!((a - e).abs() < 1e-4, "{} vs {}", a, e);
            }
        }

        #[test]
        fn gradients_match_finite_differences(p in problem(3), seed: u64) {
            check_gradients(&inputs(&p), seed, Tolerance::default(), |v| run(&p, v)).map_err(TestCaseError::fail)?;
        }

        /// The case the celeba32 encoder uses: kernel 4, stride 2, "same" padding.
        #[test]
        fn gradients_k4_s2_same(x in tensor(vec![2, 2, 6, 5]), w in tensor(vec![3, 2, 4, 4]), b in tensor(vec![3]), seed: u64) {
            let spec = Conv2dSpec::new(2, Padding::Same);
            check_gradients(&[x, w, b], seed, Tolerance::default(), |v| conv2d(&v[0], &v[1], Some(&v[2]), spec))
                .map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn same_padding_follows_tensorflow() {
        // out = ceil(in / s); total = (out-1)*s + k - in; extra pixel at the bottom/right.
        assert_eq!(Padding::Same.resolve(32, 32, 4, 4, 2, 2), (1, 1, 1, 1));
        assert_eq!(Padding::Same.resolve(5, 6, 4, 4, 2, 2), (1, 2, 1, 1));
        assert_eq!(Padding::Same.resolve(7, 7, 3, 3, 1, 1), (1, 1, 1, 1));
        assert_eq!(
            conv2d_output_size(5, 6, 4, 4, &Conv2dSpec::new(2, Padding::Same)),
            Some((3, 3))
        );
    }

    #[test]
    fn large_batch_uses_chunks_and_still_matches() {
        // 2x2 outputs force many images per GEMM chunk; run it in a 3-thread pool.
        let pool = crate::threads::thread_pool(3).unwrap();
        let x = Tensor::from_shape_fn(IxDyn(&[37, 3, 4, 4]), |d| {
            ((d[0] * 7 + d[1] * 3 + d[2] * 5 + d[3]) % 11) as f32 / 11.0 - 0.5
        });
        let w = Tensor::from_shape_fn(IxDyn(&[5, 3, 3, 3]), |d| {
            ((d[0] + 2 * d[1] + 3 * d[2] + 5 * d[3]) % 7) as f32 / 7.0 - 0.5
        });
        let spec = Conv2dSpec::new(2, Padding::symmetric(1));
        let y = pool.install(|| {
            conv2d(
                &Var::constant(x.clone()),
                &Var::constant(w.clone()),
                None,
                spec,
            )
            .value()
            .clone()
        });
        let expect = naive_conv2d(&x, &w, None, spec);
        for (a, e) in y.iter().zip(expect.iter()) {
            assert!((a - e).abs() < 1e-4);
        }
    }

    proptest! {
        #![proptest_config(config(8))]

        /// A 4x4 stride-2 padding-1 convolution with 128 channels or more on both sides
        /// whose output is 8 wide and high or more takes its input gradient from minimal
        /// filtering (where that path runs): the same gradients, each alone and both
        /// together, as the GEMM path's.
        #[test]
        fn stride2_input_gradient_by_minimal_filtering_matches_gemm(
            (n, c, o) in (1usize..3, 128usize..131, 128usize..131), oh in 8usize..11, ow in 8usize..11,
            threads in 1usize..4, seed: u64,
        ) {
            let values = |len: usize, salt: u64| -> Vec<f32> {
                (0..len).map(|i| (((i as u64 * 2654435761 + seed) ^ salt) % 1000) as f32 / 500.0 - 1.0).collect()
            };
            let spec = Conv2dSpec::new(2, Padding::symmetric(1));
            let w = Arc::new(Tensor::from_shape_vec(IxDyn(&[o, c, 4, 4]), values(o * c * 16, 1)).unwrap());
            let (n, g, o) = geometry(&[n, c, 2 * oh, 2 * ow], w.shape(), &spec);
            prop_assert_eq!(conv_transpose_winograd::applies_to_input_gradient(&g, o), conv_transpose_winograd::runs_here());
            let x = values(n * g.image_len(), 2);
            let dy = values(n * o * g.out_positions(), 3);
            let pool = crate::threads::thread_pool(threads).unwrap();
            for wanted in [(true, true), (true, false), (false, true)] {
                let (dx, dw) = pool.install(|| backward(&x, n, &g, &w, o, &dy, wanted, None));
                let (want_dx, want_dw) = conv2d_gemm::gemm_backward(&x, n, &g, &w, o, &dy, wanted, None);
                prop_assert_eq!((dx.is_some(), dw.is_some()), wanted);
                // Each value sums 512 or more products of values in [-1, 1], often to a
                // small result: minimal filtering rounds differently from the GEMM's dot
                // products, by up to 2e-4 (seen against matrixmultiply's), so the bound is
                // absolute, far below the error of a wrong tap (order 1).
                for (got, want) in [(dx, want_dx), (dw, want_dw)] {
                    for (a, e) in got.iter().flatten().zip(want.iter().flatten()) {
                        prop_assert!((a - e).abs() <= 1e-3 + 1e-4 * e.abs(), "{:?}: {} vs {}", wanted, a, e);
                    }
                }
            }
        }
    }
}
