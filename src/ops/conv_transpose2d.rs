//! 2-D transposed convolution (PyTorch's ConvTranspose2d) via GEMM + col2im: the adjoint
//! of a conv2d whose input is this op's output.
//!
//! Output size: `(H-1)*stride - 2*pad + k + output_padding`.
//! Forward, per chunk: `col = W^T[O*kh*kw, C] * X[C, cols]`, `y = col2im(col)`, the
//! product in groups of output channels whose columns stay in cache (`gemm_col2im`).
//! Backward: `col = im2col(dy)`, `dX = W * col`, `dW = sum_chunks X * col^T`, `db = sum dy`.

use super::chunk_grads::backward_in_chunks;
use super::conv_transpose_up2;
use super::conv_transpose_winograd;
use super::direct_conv;
use super::elementwise::{row_major, standard};
use crate::autograd::Var;
use crate::kernels::gemm::{gemm_columns_t, gemm_packed_columns, MatRef, PackedA};
use crate::kernels::gemm_col2im::gemm_col2im;
use crate::kernels::im2col_view::Im2colView;
use crate::kernels::layout::{
    channel_sums, images_per_chunk, into_batch_major, with_channel_major, Bias,
};
use crate::kernels::ConvGeom;
use crate::Tensor;
use ndarray::IxDyn;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dSpec {
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub output_padding: (usize, usize),
}

impl ConvTranspose2dSpec {
    pub fn new(stride: usize, padding: usize, output_padding: usize) -> Self {
        ConvTranspose2dSpec {
            stride: (stride, stride),
            padding: (padding, padding),
            output_padding: (output_padding, output_padding),
        }
    }
}

/// Output `(oh, ow)`, or `None` when the parameters are invalid (zero stride,
/// output_padding >= stride, or a non-positive size).
pub fn conv_transpose2d_output_size(
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    spec: &ConvTranspose2dSpec,
) -> Option<(usize, usize)> {
    let one = |size: usize, k: usize, s: usize, p: usize, op: usize| -> Option<usize> {
        if s == 0 || k == 0 || size == 0 || op >= s {
            return None;
        }
        let full = (size - 1) * s + k + op;
        (full > 2 * p).then(|| full - 2 * p)
    };
    Some((
        one(h, kh, spec.stride.0, spec.padding.0, spec.output_padding.0)?,
        one(w, kw, spec.stride.1, spec.padding.1, spec.output_padding.1)?,
    ))
}

/// `x: [N, C, H, W]`, `weight: [C, O, kh, kw]` (PyTorch layout), `bias: [O]` -> `[N, O, oh, ow]`.
pub fn conv_transpose2d(
    x: &Var,
    weight: &Var,
    bias: Option<&Var>,
    spec: ConvTranspose2dSpec,
) -> Var {
    let (xs, ws) = (x.shape(), weight.shape());
    assert_eq!(
        xs.len(),
        4,
        "conv_transpose2d input must be [N, C, H, W], got {xs:?}"
    );
    assert_eq!(
        ws.len(),
        4,
        "conv_transpose2d weight must be [C, O, kh, kw], got {ws:?}"
    );
    assert_eq!(
        xs[1], ws[0],
        "conv_transpose2d: input has {} channels, weight expects {}",
        xs[1], ws[0]
    );
    let (n, c, o) = (xs[0], xs[1], ws[1]);
    let (kh, kw) = (ws[2], ws[3]);
    let (oh, ow) = conv_transpose2d_output_size(xs[2], xs[3], kh, kw, &spec).unwrap_or_else(|| {
        panic!("conv_transpose2d: invalid parameters {spec:?} for input {xs:?}, kernel {kh}x{kw}")
    });
    // The geometry of the adjoint conv2d: it reads our output image and yields H x W.
    let g = ConvGeom {
        c: o,
        h: oh,
        w: ow,
        kh,
        kw,
        sh: spec.stride.0,
        sw: spec.stride.1,
        pad_top: spec.padding.0,
        pad_left: spec.padding.1,
        oh: xs[2],
        ow: xs[3],
    };
    if let Some(b) = bias {
        assert_eq!(b.shape(), &[o], "conv_transpose2d bias shape");
    }
    let x_val = standard(x.shared());
    let w_val = standard(weight.shared());
    let tracked = weight.is_tracked();
    let b_val = bias.map(|b| row_major(b.value()));
    let y = forward(
        x_val.as_slice().unwrap(),
        n,
        c,
        &g,
        &w_val,
        tracked,
        b_val.as_deref(),
    );
    let y = Tensor::from_shape_vec(IxDyn(&[n, o, oh, ow]), y).unwrap();
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    let x_shape = xs.to_vec();
    let w_shape = ws.to_vec();
    Var::record(&inputs, y, move |dy, wants| {
        let dy = row_major(dy);
        let (dx, dw) = backward(
            x_val.as_slice().unwrap(),
            n,
            c,
            &g,
            &w_val,
            &dy,
            wants[0],
            wants[1],
        );
        let mut grads = vec![
            dx.map(|d| Tensor::from_shape_vec(IxDyn(&x_shape), d).unwrap()),
            dw.map(|d| Tensor::from_shape_vec(IxDyn(&w_shape), d).unwrap()),
        ];
        if wants.len() == 3 {
            grads.push(wants[2].then(|| {
                Tensor::from_shape_vec(IxDyn(&[o]), channel_sums(&dy, o, g.h * g.w)).unwrap()
            }));
        }
        grads
    })
}

/// `y[N, O, oh, ow]`, plus `bias` (added by each path's tasks as they write their images).
/// `g` is the adjoint conv's geometry (`g.c == O`). Without `tracked` (the weight on no
/// tape), the GEMM path reuses the weight's packed panels across calls.
fn forward(
    x: &[f32],
    n: usize,
    c: usize,
    g: &ConvGeom,
    w: &Arc<Tensor>,
    tracked: bool,
    bias: Bias,
) -> Vec<f32> {
    let w_all = w.as_slice().unwrap();
    if direct_conv::applies(g, c) {
        return direct_conv::conv_transpose2d_forward(x, n, c, g, w_all, bias);
    }
    if conv_transpose_up2::applies(g, c) {
        return conv_transpose_up2::forward(x, n, c, g, w_all, bias);
    }
    if conv_transpose_winograd::applies(g, n) {
        return conv_transpose_winograd::forward(x, n, c, g, w_all, bias);
    }
    gemm_forward(x, n, c, g, w, tracked, bias)
}

/// [`forward`] through GEMM + col2im; without `tracked`, the weight's packed panels are
/// reused across calls ([`PackedA::reused`]).
pub(crate) fn gemm_forward(
    x: &[f32],
    n: usize,
    c: usize,
    g: &ConvGeom,
    w: &Arc<Tensor>,
    tracked: bool,
    bias: Bias,
) -> Vec<f32> {
    let w_t = MatRef::new(w.as_slice().unwrap(), c, g.col_rows())
        .kept(w)
        .t();
    let w_t = PackedA::weight(w_t, tracked);
    gemm_col2im(&w_t, x, n, c, g, bias)
}

#[allow(clippy::too_many_arguments)]
fn backward(
    x: &[f32],
    n: usize,
    c: usize,
    g: &ConvGeom,
    w: &Arc<Tensor>,
    dy: &[f32],
    want_dx: bool,
    want_dw: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let w_all = w.as_slice().unwrap();
    if direct_conv::applies(g, c) {
        return direct_conv::conv_transpose2d_backward(x, n, c, g, w_all, dy, want_dx, want_dw);
    }
    if conv_transpose_winograd::applies(g, n) {
        return conv_transpose_winograd::backward(x, n, c, g, w_all, dy, want_dx, want_dw);
    }
    gemm_backward(x, n, c, g, w, dy, want_dx, want_dw)
}

/// [`backward`] through im2col + GEMM (the columns of `dy` packed straight from it where
/// our kernel runs, see [`Im2colView`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_backward(
    x: &[f32],
    n: usize,
    c: usize,
    g: &ConvGeom,
    w: &Arc<Tensor>,
    dy: &[f32],
    want_dx: bool,
    want_dw: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let (p, out_img, rows) = (g.out_positions(), g.image_len(), g.col_rows());
    let b = images_per_chunk(n, p);
    let w_mat = MatRef::new(w.as_slice().unwrap(), c, rows).kept(w);
    let w_mat = want_dx.then(|| PackedA::new(w_mat));
    let dw_len = want_dw.then_some(c * rows);
    let tasks = n.div_ceil(b);
    let dx_len = if want_dx { n * c * p } else { 0 };
    let (dx, dw) = backward_in_chunks(tasks, dx_len, b * c * p, dw_len, |ci, dx_c, dw| {
        let first = ci * b;
        let bc = b.min(n - first);
        let col = Im2colView::new(g, &dy[first * out_img..(first + bc) * out_img]);
        if let (Some(dx_c), Some(w_mat)) = (dx_c, w_mat.as_ref()) {
            into_batch_major(dx_c, bc, c, p, |t| {
                gemm_packed_columns(1.0, w_mat, col, 0.0, t, tasks)
            });
        }
        if let Some((dw, beta)) = dw {
            let x_c = &x[first * c * p..(first + bc) * c * p];
            with_channel_major(x_c, bc, c, p, |x_cm| {
                gemm_columns_t(1.0, MatRef::new(x_cm, c, bc * p), col, beta, dw)
            });
        }
    });
    (want_dx.then_some(dx), dw)
}

#[cfg(test)]
mod tests {
    use super::super::conv2d::{conv2d, Conv2dSpec, Padding};
    use super::super::testutil::{config, tensor};
    use super::*;
    use crate::autograd::Tape;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use proptest::prelude::*;

    /// The definition as a scatter: every input pixel adds `x * w` onto a k x k window of
    /// the (uncropped) output at `i*s, j*s`; the window is then cropped by the padding.
    fn naive(x: &Tensor, w: &Tensor, b: Option<&Tensor>, spec: ConvTranspose2dSpec) -> Tensor {
        let (xs, ws) = (x.shape(), w.shape());
        let (oh, ow) = conv_transpose2d_output_size(xs[2], xs[3], ws[2], ws[3], &spec).unwrap();
        let mut y = Tensor::zeros(IxDyn(&[xs[0], ws[1], oh, ow]));
        for n in 0..xs[0] {
            for o in 0..ws[1] {
                if let Some(b) = b {
                    for i in 0..oh {
                        for j in 0..ow {
                            y[[n, o, i, j]] = b[[o]];
                        }
                    }
                }
                for c in 0..xs[1] {
                    for i in 0..xs[2] {
                        for j in 0..xs[3] {
                            for ki in 0..ws[2] {
                                for kj in 0..ws[3] {
                                    let yy =
                                        (i * spec.stride.0 + ki) as isize - spec.padding.0 as isize;
                                    let xx =
                                        (j * spec.stride.1 + kj) as isize - spec.padding.1 as isize;
                                    if yy >= 0
                                        && xx >= 0
                                        && (yy as usize) < oh
                                        && (xx as usize) < ow
                                    {
                                        y[[n, o, yy as usize, xx as usize]] +=
                                            x[[n, c, i, j]] * w[[c, o, ki, kj]];
                                    }
                                }
                            }
                        }
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
        spec: ConvTranspose2dSpec,
    }

    fn problem(max_n: usize) -> impl Strategy<Value = Problem> {
        (
            1..=max_n,
            1usize..4,
            1usize..4,
            1usize..5,
            1usize..5,
            1usize..5,
            1usize..4,
            0usize..3,
            0usize..3,
            any::<bool>(),
        )
            .prop_map(|(n, c, o, h, w, k, s, p, op, bias)| {
                (
                    n,
                    c,
                    o,
                    h,
                    w,
                    k,
                    ConvTranspose2dSpec::new(s, p, op % s),
                    bias,
                )
            })
            .prop_filter("valid output size", |(_, _, _, h, w, k, spec, _)| {
                conv_transpose2d_output_size(*h, *w, *k, *k, spec).is_some()
            })
            .prop_flat_map(|(n, c, o, h, w, k, spec, bias)| {
                let b = if bias {
                    tensor(vec![o]).prop_map(Some).boxed()
                } else {
                    Just(None).boxed()
                };
                (tensor(vec![n, c, h, w]), tensor(vec![c, o, k, k]), b)
                    .prop_map(move |(x, w, b)| Problem { x, w, b, spec })
            })
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
            let y = conv_transpose2d(&Var::constant(p.x.clone()), &Var::constant(p.w.clone()), p.b.clone().map(Var::constant).as_ref(), p.spec);
            let expect = naive(&p.x, &p.w, p.b.as_ref(), p.spec);
            prop_assert_eq!(y.shape(), expect.shape());
            for (a, e) in y.value().iter().zip(expect.iter()) {
                prop_assert!((a - e).abs() < 1e-4, "{} vs {}", a, e);
            }
        }

        /// A single image on a pool of several threads takes the split paths (the product
        /// split by rows, col2im by channels): the same values as on one thread.
        #[test]
        fn one_image_on_many_threads_matches_one_thread(p in problem(1), threads in 2usize..5) {
            let run = |t: usize| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap().install(|| {
                conv_transpose2d(&Var::constant(p.x.clone()), &Var::constant(p.w.clone()), p.b.clone().map(Var::constant).as_ref(), p.spec).value().clone()
            });
            let (one, many) = (run(1), run(threads));
            for (a, b) in one.iter().zip(many.iter()) {
                prop_assert!((a - b).abs() < 1e-5, "{} vs {}", a, b);
            }
            let conv = |t: usize| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap().install(|| {
                conv2d(&Var::constant(one.clone()), &Var::constant(p.w.clone()), None, Conv2dSpec::new(p.spec.stride.0, Padding::symmetric(p.spec.padding.0))).value().clone()
            });
            let (one, many) = (conv(1), conv(threads));
            for (a, b) in one.iter().zip(many.iter()) {
                prop_assert!((a - b).abs() < 1e-4, "{} vs {}", a, b);
            }
        }

        #[test]
        fn gradients_match_finite_differences(p in problem(3), seed: u64) {
            check_gradients(&inputs(&p), seed, Tolerance::default(), |v| conv_transpose2d(&v[0], &v[1], v.get(2), p.spec))
                .map_err(TestCaseError::fail)?;
        }

        /// The decoder's upsampling: stride 2, padding 1, output_padding 1.
        #[test]
        fn gradients_s2_p1_op1(x in tensor(vec![2, 3, 3, 2]), w in tensor(vec![3, 2, 3, 3]), b in tensor(vec![2]), seed: u64) {
            let spec = ConvTranspose2dSpec::new(2, 1, 1);
            check_gradients(&[x, w, b], seed, Tolerance::default(), |v| conv_transpose2d(&v[0], &v[1], Some(&v[2]), spec))
                .map_err(TestCaseError::fail)?;
        }

        /// <conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for the same stride and padding
        /// (conv_transpose2d's output_padding picks the input size that conv2d maps down).
        #[test]
        fn is_the_adjoint_of_conv2d(n in 1usize..3, c in 1usize..4, o in 1usize..4, h in 2usize..9, w_ in 2usize..9,
                                    k in 1usize..5, s in 1usize..4, p in 0usize..3, seed: u64) {
            let cspec = Conv2dSpec::new(s, Padding::symmetric(p));
            let Some((oh, ow)) = super::super::conv2d_output_size(h, w_, k, k, &cspec) else { return Ok(()) };
            let (oph, opw) = ((h + 2 * p - k) % s, (w_ + 2 * p - k) % s);
            let tspec = ConvTranspose2dSpec { stride: (s, s), padding: (p, p), output_padding: (oph, opw) };
            prop_assume!(conv_transpose2d_output_size(oh, ow, k, k, &tspec) == Some((h, w_)));
            let gen = |shape: &[usize], salt: u64| Tensor::from_shape_fn(IxDyn(shape), |d| {
                let i = ndarray::Dimension::slice(&d).iter().fold(seed ^ salt, |a, &v| a.wrapping_mul(31).wrapping_add(v as u64 + 1));
                ((i >> 7) % 200) as f32 / 100.0 - 1.0
            });
            let (x, wt, y) = (gen(&[n, c, h, w_], 1), gen(&[o, c, k, k], 2), gen(&[n, o, oh, ow], 3));
            let conv = conv2d(&Var::constant(x.clone()), &Var::constant(wt.clone()), None, cspec);
            let back = conv_transpose2d(&Var::constant(y.clone()), &Var::constant(wt), None, tspec);
            let lhs: f64 = conv.value().iter().zip(y.iter()).map(|(a, b)| *a as f64 * *b as f64).sum();
            let rhs: f64 = x.iter().zip(back.value().iter()).map(|(a, b)| *a as f64 * *b as f64).sum();
            prop_assert!((lhs - rhs).abs() < 1e-3 * (1.0 + lhs.abs()), "{} vs {}", lhs, rhs);
        }
    }

    /// Golden values from PyTorch 2.15 (inputs are sin sequences, reproducible without numpy):
    /// ```python
    /// import torch, math
    /// def det(shape, a, b):
    ///     n = math.prod(shape)
    ///     return torch.tensor([math.sin(i * a + b) for i in range(n)]).reshape(shape)
    /// x = det([2,3,3,3], 0.37, 0.1).requires_grad_(); w = (det([3,2,3,3], 0.91, 0.3) * 0.5).requires_grad_()
    /// y = torch.nn.functional.conv_transpose2d(x, w, torch.tensor([0.1, -0.2]), stride=2, padding=1, output_padding=1)
    /// (y * det(list(y.shape), 0.13, 0.7)).sum().backward()
    /// print([y.flatten()[i].item() for i in [0,7,20,71,143]], [x.grad.flatten()[i].item() for i in [0,5,53]],
    ///       [w.grad.flatten()[i].item() for i in [0,17,53]])
    /// ```
    #[test]
    fn matches_pytorch_golden_values() {
        let det = |shape: &[usize], a: f32, b: f32| {
            let n: usize = shape.iter().product();
            Tensor::from_shape_vec(
                IxDyn(shape),
                (0..n).map(|i| (i as f32 * a + b).sin()).collect(),
            )
            .unwrap()
        };
        let tape = Tape::new();
        let x = tape.leaf(det(&[2, 3, 3, 3], 0.37, 0.1));
        let w = tape.leaf(det(&[3, 2, 3, 3], 0.91, 0.3) * 0.5);
        let b = Var::constant(Tensor::from_shape_vec(IxDyn(&[2]), vec![0.1, -0.2]).unwrap());
        let y = conv_transpose2d(&x, &w, Some(&b), ConvTranspose2dSpec::new(2, 1, 1));
        assert_eq!(y.shape(), &[2, 2, 6, 6]);
        let r = det(&[2, 2, 6, 6], 0.13, 0.7);
        let grads = tape.backward_with(&y, r);
        let close = |t: &Tensor, idx: &[usize], want: &[f32]| {
            for (&i, &v) in idx.iter().zip(want) {
                let got = t.as_slice().unwrap()[i];
                assert!((got - v).abs() < 2e-5, "index {i}: {got} vs PyTorch {v}");
            }
        };
        close(
            y.value(),
            &[0, 7, 20, 71, 143],
            &[-0.270237, 2.019614, 1.521995, -0.023309, -0.796885],
        );
        close(
            grads.get(&x).unwrap(),
            &[0, 5, 53],
            &[0.033027, 0.772351, 0.772581],
        );
        close(
            grads.get(&w).unwrap(),
            &[0, 17, 53],
            &[3.359704, 6.214714, 5.938567],
        );
    }
}
