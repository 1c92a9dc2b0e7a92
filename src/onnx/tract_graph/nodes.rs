//! Each ONNX op vae-cpu exports as tract-core ops (the forms tract-onnx gives them).

use super::{float, int, ints, tract, Import};
use crate::onnx::proto::NodeProto;
use tract_core::internal::*;
use tract_core::ops::array::{Slice, TypedConcat};
use tract_core::ops::cnn::{Conv, Deconv, KernelFormat, PaddingSpec, PoolSpec};
use tract_core::ops::einsum::EinSum;
use tract_core::ops::math;
use tract_core::ops::nn::{DataFormat, Reduce, Reducer};

type Wire = Result<OutletId, String>;

impl Import<'_> {
    /// `Conv` (weight `[O, C, kh, kw]`, optional bias).
    pub(super) fn conv(&mut self, node: &NodeProto, name: &str) -> Wire {
        let x = self.wire(node, 0)?;
        let w = self.kernel(node, 1)?;
        let (c_out, c_in) = (w.shape()[0], w.shape()[1]);
        let spec = pool_spec(node, w.shape(), c_in, c_out)?;
        let b = self.bias(node, c_out)?;
        let w = self.konst(&format!("{name}#kernel"), w)?;
        let b = self.konst(&format!("{name}#bias"), b)?;
        let conv = Conv::new(spec, KernelFormat::OIHW, 1, None);
        self.add(name, Box::new(conv), &[x, w, b])
    }

    /// `ConvTranspose` (weight `[C, O, kh, kw]`, which tract takes as `[O, C, kh, kw]`).
    pub(super) fn conv_transpose(&mut self, node: &NodeProto, name: &str) -> Wire {
        if node.attribute("output_shape").is_some() {
            return Err("output_shape is not supported (pads and output_padding are)".into());
        }
        let x = self.wire(node, 0)?;
        let w = self.kernel(node, 1)?;
        let (c_in, c_out) = (w.shape()[0], w.shape()[1]);
        let spec = pool_spec(node, w.shape(), c_in, c_out)?;
        let spatial = w.rank() - 2;
        let mut adjustments: TVec<usize> = usizes(&ints(node, "output_padding"))?.into();
        if adjustments.is_empty() {
            adjustments = tvec![0; spatial];
        }
        let mut axes: Vec<usize> = (0..w.rank()).collect();
        axes.swap(0, 1);
        let w = w.permute_axes(&axes).map_err(tract)?;
        let b = self.bias(node, c_out)?;
        let w = self.konst(&format!("{name}#kernel"), w)?;
        let b = self.konst(&format!("{name}#bias"), b)?;
        let deconv = Deconv::new(spec, KernelFormat::OIHW, adjustments, 1);
        self.add(name, Box::new(deconv), &[x, w, b])
    }

    /// `DepthToSpace` in DCR mode (ONNX's default): channels `[b, b, C]` moved behind the
    /// rows and columns.
    pub(super) fn depth_to_space(&mut self, node: &NodeProto, name: &str) -> Wire {
        if node.attribute("mode").is_some_and(|a| a.s != b"DCR") {
            return Err("only mode DCR is supported".into());
        }
        let b = usize::try_from(int(node, "blocksize", 0))
            .ok()
            .filter(|&b| b > 0)
            .ok_or("blocksize must be positive")?;
        let x = self.wire(node, 0)?;
        let [_, c, h, w]: [TDim; 4] =
            (self.shape(x)?.into_vec().try_into()).map_err(|_| "the input is not [N, C, H, W]")?;
        let c = c.to_usize().map_err(tract)?;
        if c % (b * b) != 0 {
            return Err(format!("{c} channels do not split into blocks of {b}x{b}"));
        }
        let (bd, cd) = (b.to_dim(), (c / (b * b)).to_dim());
        let steps = [
            AxisOp::Reshape(1, tvec![c.to_dim()], tvec![bd.clone(), bd.clone(), cd]),
            AxisOp::Move(2, 5),
            AxisOp::Move(1, 3),
            AxisOp::Reshape(
                2,
                tvec![h.clone(), bd.clone(), w.clone(), bd.clone()],
                tvec![h * b, w * b],
            ),
        ];
        let mut x = x;
        for (k, step) in steps.into_iter().enumerate() {
            x = self.add(&format!("{name}.{k}"), Box::new(step), &[x])?;
        }
        Ok(x)
    }

    /// `Slice` with constant starts, ends and axes (steps of 1).
    pub(super) fn slice(&mut self, node: &NodeProto, name: &str) -> Wire {
        let mut x = self.wire(node, 0)?;
        let (starts, ends) = (self.ints(node, 1)?, self.ints(node, 2)?);
        let rank = self.shape(x)?.len();
        let axes = match node.optional_input(3) {
            Some(_) => self.ints(node, 3)?,
            None => (0..starts.len() as i64).collect(),
        };
        let steps_of_one = match node.optional_input(4) {
            Some(_) => self.ints(node, 4)?.iter().all(|&s| s == 1),
            None => true,
        };
        if !steps_of_one || starts.len() != ends.len() || starts.len() != axes.len() {
            return Err("starts, ends and axes must match, with steps of 1".into());
        }
        for (k, ((&start, &end), &axis)) in starts.iter().zip(&ends).zip(&axes).enumerate() {
            let axis = axis_index(axis, rank)?;
            let dim = self.shape(x)?[axis].to_i64().map_err(tract)?;
            // Negative bounds count from the end; all are clamped to the axis (ONNX).
            let clamp = |v: i64| (if v < 0 { v + dim } else { v }).clamp(0, dim) as usize;
            let slice = Slice::new(axis, clamp(start), clamp(end));
            x = self.add(&format!("{name}.{k}"), Box::new(slice), &[x])?;
        }
        Ok(x)
    }

    /// `Gemm` as a product `x W` or `x Wᵀ` (`transB`), plus the bias.
    pub(super) fn gemm(&mut self, node: &NodeProto, name: &str) -> Wire {
        let plain = int(node, "transA", 0) == 0
            && float(node, "alpha", 1.0) == 1.0
            && float(node, "beta", 1.0) == 1.0;
        if !plain {
            return Err("only transA = 0, alpha = 1 and beta = 1 are supported".into());
        }
        let x = self.wire(node, 0)?;
        let w = self.float(node, 1)?;
        let expression = match int(node, "transB", 0) {
            0 => "nk,km->nm",
            _ => "nk,mk->nm",
        };
        let w = self.konst(&format!("{name}#weight"), w)?;
        let axes = expression.parse().map_err(tract)?;
        let product = EinSum::new(axes, f32::datum_type());
        let y = self.add(&format!("{name}.product"), Box::new(product), &[x, w])?;
        match node.optional_input(2) {
            Some(_) => {
                let b = self.float(node, 2)?;
                let b = self.konst(&format!("{name}#bias"), b)?;
                self.broadcast(name, math::add(), &[y, b])
            }
            None => Ok(y),
        }
    }

    /// `BatchNormalization` in inference form: `x * s + t` per channel, with
    /// `s = gamma / sqrt(var + eps)` and `t = beta - mean * s`.
    pub(super) fn batch_norm(&mut self, node: &NodeProto, name: &str) -> Wire {
        let x = self.wire(node, 0)?;
        let eps = float(node, "epsilon", 1e-5);
        let p = (1..=4)
            .map(|i| self.float_values(node, i).map(|(_, values)| values))
            .collect::<Result<Vec<_>, _>>()?;
        let (gamma, beta, mean, var) = (&p[0], &p[1], &p[2], &p[3]);
        if p.iter().any(|v| v.len() != gamma.len()) {
            return Err("scale, bias, mean and variance differ in length".into());
        }
        let scale: Vec<f32> = gamma
            .iter()
            .zip(var)
            .map(|(g, v)| g / (v + eps).sqrt())
            .collect();
        let shift: Vec<f32> = (beta.iter().zip(mean).zip(&scale))
            .map(|((b, m), s)| b - m * s)
            .collect();
        let rank = self.shape_of_rank(x, 2)?.len();
        self.affine(name, x, &scale, &shift, rank)
    }

    /// `InstanceNormalization`: each plane less its mean, over its standard deviation
    /// (biased variance, plus `epsilon`), then scaled and shifted per channel.
    pub(super) fn instance_norm(&mut self, node: &NodeProto, name: &str) -> Wire {
        let x = self.wire(node, 0)?;
        let eps = float(node, "epsilon", 1e-5);
        let shape = self.shape_of_rank(x, 3)?;
        let rank = shape.len();
        let count: i64 = (shape[2..].iter())
            .map(|d| d.to_i64().map_err(tract))
            .product::<Result<i64, String>>()?;
        let axes: TVec<usize> = (2..rank).collect();
        let inverse_count = self.scalar(name, 1.0 / count as f32)?;
        let mean_of = |s: &mut Self, what: &str, v: OutletId| {
            let sum = Reduce::new(axes.clone(), Reducer::Sum);
            let sum = s.add(&format!("{name}.{what}.sum"), Box::new(sum), &[v])?;
            s.broadcast(
                &format!("{name}.{what}"),
                math::mul(),
                &[sum, inverse_count],
            )
        };
        let mean = mean_of(self, "mean", x)?;
        let diff = self.add(&format!("{name}.diff"), Box::new(math::sub()), &[x, mean])?;
        let square = self.add(&format!("{name}.square"), Box::new(math::square()), &[diff])?;
        let var = mean_of(self, "var", square)?;
        let eps = self.scalar(name, eps)?;
        let var = self.broadcast(&format!("{name}.eps"), math::add(), &[var, eps])?;
        let inv_std = self.add(&format!("{name}.rsqrt"), Box::new(math::rsqrt()), &[var])?;
        let y = self.add(
            &format!("{name}.norm"),
            Box::new(math::mul()),
            &[diff, inv_std],
        )?;
        let (_, gamma) = self.float_values(node, 1)?;
        let (_, beta) = self.float_values(node, 2)?;
        self.affine(name, y, &gamma, &beta, rank)
    }

    /// `PRelu` as `max(x, 0) + slope * min(x, 0)`, exact for any slope.
    pub(super) fn prelu(&mut self, node: &NodeProto, name: &str) -> Wire {
        let x = self.wire(node, 0)?;
        let slope = self.wire(node, 1)?;
        let zero = self.scalar(name, 0.0)?;
        let pos = self.broadcast(&format!("{name}.pos"), math::max(), &[x, zero])?;
        let neg = self.broadcast(&format!("{name}.neg"), math::min(), &[x, zero])?;
        let neg = self.broadcast(&format!("{name}.slope"), math::mul(), &[neg, slope])?;
        self.broadcast(name, math::add(), &[pos, neg])
    }

    /// `Flatten` at axis 1: `[N, ...]` to `[N, product]`.
    pub(super) fn flatten(&mut self, node: &NodeProto, name: &str) -> Wire {
        if int(node, "axis", 1) != 1 {
            return Err("only axis 1 is supported".into());
        }
        let x = self.wire(node, 0)?;
        let shape = self.shape_of_rank(x, 2)?;
        let size: TDim = shape[1..].iter().product();
        let op = AxisOp::Reshape(1, shape[1..].into(), tvec![size]);
        self.add(name, Box::new(op), &[x])
    }

    /// `Reshape` to `[-1 or 0, d...]`: the batch kept, the rest fixed sizes.
    pub(super) fn reshape(&mut self, node: &NodeProto, name: &str) -> Wire {
        let x = self.wire(node, 0)?;
        let target = self.ints(node, 1)?;
        let keeps_batch = matches!(target.first(), Some(-1 | 0));
        let dims = usizes(target.get(1..).unwrap_or_default())?;
        let shape = self.shape_of_rank(x, 2)?;
        let from: TDim = shape[1..].iter().product();
        let to = (dims.iter()).try_fold(1usize, |a, &d| a.checked_mul(d));
        if !keeps_batch || to.map(|t| t.to_dim()) != Some(from) {
            return Err(format!(
                "cannot reshape {shape:?} to {target:?} keeping the batch"
            ));
        }
        let to: TVec<TDim> = dims.iter().map(|d| d.to_dim()).collect();
        let op = AxisOp::Reshape(1, shape[1..].into(), to);
        self.add(name, Box::new(op), &[x])
    }

    pub(super) fn concat(&mut self, node: &NodeProto, name: &str) -> Wire {
        let inputs = (0..node.input.len())
            .map(|i| self.wire(node, i))
            .collect::<Result<Vec<_>, _>>()?;
        let first = *inputs.first().ok_or("no inputs")?;
        let rank = self.shape(first)?.len();
        let axis = axis_index(int(node, "axis", 0), rank)?;
        self.add(name, Box::new(TypedConcat { axis }), &inputs)
    }

    /// `x * scale + shift` with one scale and shift per channel (axis 1 of a rank-`rank` x).
    fn affine(
        &mut self,
        name: &str,
        x: OutletId,
        scale: &[f32],
        shift: &[f32],
        rank: usize,
    ) -> Wire {
        let scale = self.per_channel(&format!("{name}#scale"), scale, rank)?;
        let shift = self.per_channel(&format!("{name}#shift"), shift, rank)?;
        let y = self.broadcast(&format!("{name}.scale"), math::mul(), &[x, scale])?;
        self.broadcast(name, math::add(), &[y, shift])
    }

    /// A constant `[C, 1, ...]` that broadcasts along axis 1 of a rank-`rank` value.
    fn per_channel(&mut self, name: &str, values: &[f32], rank: usize) -> Wire {
        let mut shape = vec![values.len()];
        shape.resize(rank.saturating_sub(1).max(1), 1);
        let t = Tensor::from_shape(&shape, values).map_err(tract)?;
        self.konst(name, t)
    }
}

/// The pool spec of a `Conv` or `ConvTranspose` node whose weight has the 4-D shape
/// `kernel`; grouped, dilated and `auto_pad` forms are refused.
fn pool_spec(
    node: &NodeProto,
    kernel: &[usize],
    c_in: usize,
    c_out: usize,
) -> Result<PoolSpec, String> {
    let spatial = kernel.len() - 2;
    let dilated = ints(node, "dilations").iter().any(|&d| d != 1);
    if int(node, "group", 1) != 1 || dilated || node.auto_pads() {
        return Err("grouped, dilated and auto_pad convolutions are not supported".into());
    }
    let mut strides = usizes(&ints(node, "strides"))?;
    if strides.is_empty() {
        strides = vec![1; spatial];
    }
    let mut pads = usizes(&ints(node, "pads"))?;
    if pads.is_empty() {
        pads = vec![0; 2 * spatial];
    }
    if strides.len() != spatial || pads.len() != 2 * spatial {
        return Err(format!(
            "strides {strides:?} or pads {pads:?} do not fit {spatial} axes"
        ));
    }
    let padding = PaddingSpec::Explicit(pads[..spatial].into(), pads[spatial..].into());
    let (kernel, strides) = (kernel[2..].into(), Some(strides.into()));
    Ok(PoolSpec::new(
        DataFormat::NCHW,
        kernel,
        padding,
        None,
        strides,
        c_in,
        c_out,
    ))
}

fn usizes(values: &[i64]) -> Result<Vec<usize>, String> {
    (values.iter())
        .map(|&v| usize::try_from(v).map_err(|_| format!("{v} is negative")))
        .collect()
}

/// An ONNX axis (negative: from the end) as an index below `rank`.
fn axis_index(axis: i64, rank: usize) -> Result<usize, String> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    usize::try_from(a)
        .ok()
        .filter(|&a| a < rank)
        .ok_or(format!("axis {axis} is out of range"))
}
