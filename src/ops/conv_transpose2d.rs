//! 2-D transposed convolution (PyTorch's ConvTranspose2d) via GEMM + col2im: the adjoint
//! of a conv2d whose input is this op's output.
//!
//! Output size: `(H-1)*stride - 2*pad + k + output_padding`.
//! Forward, per chunk: `col = W^T[O*kh*kw, C] * X[C, cols]`, `y = col2im(col)`.
//! Backward: `col = im2col(dy)`, `dX = W * col`, `dW = sum_chunks X * col^T`, `db = sum dy`.

use super::conv2d::sum_partials;
use super::elementwise::{row_major, standard};
use crate::autograd::Var;
use crate::kernels::gemm::{gemm, MatRef};
use crate::kernels::layout::{add_channel_bias, as_channel_major, channel_major_to_batch, channel_sums, images_per_chunk};
use crate::kernels::{col2im::col2im, im2col::im2col, ConvGeom};
use crate::Tensor;
use ndarray::IxDyn;
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dSpec {
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub output_padding: (usize, usize),
}

impl ConvTranspose2dSpec {
    pub fn new(stride: usize, padding: usize, output_padding: usize) -> Self {
        ConvTranspose2dSpec { stride: (stride, stride), padding: (padding, padding), output_padding: (output_padding, output_padding) }
    }
}

/// Output `(oh, ow)`, or `None` when the parameters are invalid (zero stride,
/// output_padding >= stride, or a non-positive size).
pub fn conv_transpose2d_output_size(h: usize, w: usize, kh: usize, kw: usize, spec: &ConvTranspose2dSpec) -> Option<(usize, usize)> {
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
pub fn conv_transpose2d(x: &Var, weight: &Var, bias: Option<&Var>, spec: ConvTranspose2dSpec) -> Var {
    let (xs, ws) = (x.shape(), weight.shape());
    assert_eq!(xs.len(), 4, "conv_transpose2d input must be [N, C, H, W], got {xs:?}");
    assert_eq!(ws.len(), 4, "conv_transpose2d weight must be [C, O, kh, kw], got {ws:?}");
    assert_eq!(xs[1], ws[0], "conv_transpose2d: input has {} channels, weight expects {}", xs[1], ws[0]);
    let (n, c, o) = (xs[0], xs[1], ws[1]);
    let (kh, kw) = (ws[2], ws[3]);
    let (oh, ow) = conv_transpose2d_output_size(xs[2], xs[3], kh, kw, &spec)
        .unwrap_or_else(|| panic!("conv_transpose2d: invalid parameters {spec:?} for input {xs:?}, kernel {kh}x{kw}"));
    // The geometry of the adjoint conv2d: it reads our output image and yields H x W.
    let g = ConvGeom {
        c: o, h: oh, w: ow, kh, kw, sh: spec.stride.0, sw: spec.stride.1,
        pad_top: spec.padding.0, pad_left: spec.padding.1, oh: xs[2], ow: xs[3],
    };
    if let Some(b) = bias {
        assert_eq!(b.shape(), &[o], "conv_transpose2d bias shape");
    }
    let x_val = standard(x.shared());
    let w_val = standard(weight.shared());
    let mut y = forward(x_val.as_slice().unwrap(), n, c, &g, w_val.as_slice().unwrap());
    if let Some(b) = bias {
        add_channel_bias(&mut y, o, oh * ow, &row_major(b.value()));
    }
    let y = Tensor::from_shape_vec(IxDyn(&[n, o, oh, ow]), y).unwrap();
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    let x_shape = xs.to_vec();
    let w_shape = ws.to_vec();
    Var::record(&inputs, y, move |dy, wants| {
        let dy = row_major(dy);
        let (dx, dw) = backward(x_val.as_slice().unwrap(), n, c, &g, w_val.as_slice().unwrap(), &dy, wants[0], wants[1]);
        let mut grads = vec![
            dx.map(|d| Tensor::from_shape_vec(IxDyn(&x_shape), d).unwrap()),
            dw.map(|d| Tensor::from_shape_vec(IxDyn(&w_shape), d).unwrap()),
        ];
        if wants.len() == 3 {
            grads.push(wants[2].then(|| Tensor::from_shape_vec(IxDyn(&[o]), channel_sums(&dy, o, g.image_len() / o)).unwrap()));
        }
        grads
    })
}

/// `y[N, O, oh, ow]` without bias. `g` is the adjoint conv's geometry (`g.c == O`).
fn forward(x: &[f32], n: usize, c: usize, g: &ConvGeom, w: &[f32]) -> Vec<f32> {
    let (p, out_img, rows) = (g.out_positions(), g.image_len(), g.col_rows());
    let b = images_per_chunk(n, p);
    let w_t = MatRef::new(w, c, rows).t();
    let mut y = vec![0.0f32; n * out_img];
    y.par_chunks_mut(b * out_img).zip(x.par_chunks(b * c * p)).for_each(|(y_c, x_c)| {
        let bc = y_c.len() / out_img;
        let cols = bc * p;
        let x_cm = as_channel_major(x_c, bc, c, p);
        let mut col = vec![0.0f32; rows * cols];
        gemm(1.0, w_t, MatRef::new(&x_cm, c, cols), 0.0, &mut col);
        for i in 0..bc {
            col2im(g, &col[i * p..], cols, &mut y_c[i * out_img..(i + 1) * out_img]);
        }
    });
    y
}

#[allow(clippy::too_many_arguments)]
fn backward(
    x: &[f32], n: usize, c: usize, g: &ConvGeom, w: &[f32], dy: &[f32], want_dx: bool, want_dw: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let (p, out_img, rows) = (g.out_positions(), g.image_len(), g.col_rows());
    let b = images_per_chunk(n, p);
    let w_mat = MatRef::new(w, c, rows);
    let mut dx = vec![0.0f32; if want_dx { n * c * p } else { 0 }];
    let mut dx_chunks: Vec<Option<&mut [f32]>> = dx.chunks_mut(b * c * p).map(Some).collect();
    dx_chunks.resize_with(n.div_ceil(b), || None);
    let dw = dx_chunks
        .into_par_iter()
        .enumerate()
        .map(|(ci, dx_c)| {
            let first = ci * b;
            let bc = b.min(n - first);
            let cols = bc * p;
            let mut col = vec![0.0f32; rows * cols];
            for i in 0..bc {
                im2col(g, &dy[(first + i) * out_img..(first + i + 1) * out_img], &mut col[i * p..], cols);
            }
            let col_mat = MatRef::new(&col, rows, cols);
            if let Some(dx_c) = dx_c {
                if bc == 1 {
                    gemm(1.0, w_mat, col_mat, 0.0, dx_c);
                } else {
                    let mut t = vec![0.0f32; c * cols];
                    gemm(1.0, w_mat, col_mat, 0.0, &mut t);
                    channel_major_to_batch(&t, bc, c, p, dx_c);
                }
            }
            want_dw.then(|| {
                let x_c = &x[first * c * p..(first + bc) * c * p];
                let x_cm = as_channel_major(x_c, bc, c, p);
                let mut part = vec![0.0f32; c * rows];
                gemm(1.0, MatRef::new(&x_cm, c, cols), col_mat.t(), 0.0, &mut part);
                part
            })
        })
        .reduce(|| None, sum_partials);
    (want_dx.then_some(dx), dw.or_else(|| want_dw.then(|| vec![0.0; c * rows])))
}
