//! `conv2d` and `conv_transpose2d`: square kernels, one stride and padding for both axes.
//!
//! FLOPs: conv2d 2·C_in·k²·(C_out·H_out·W_out); conv_transpose2d 2·(C_in·H_in·W_in)·C_out·k²
//! (each output, or each input, takes C_in·k² or C_out·k² multiply-adds).

use super::onnx_node::{
    weight_and_bias, weight_owned, OnnxAttribute, OnnxAttribute::Ints, OnnxInput, OnnxNode,
};
use super::rule::{at_most, image, one, positive, size, yes};
use super::{Layer, Spec, MAX_UNITS, MAX_WINDOW};
use crate::nn::{self, Mode};
use crate::ops::sub_pixel::SubPixel;
use crate::ops::{
    conv2d_output_size, conv_transpose2d_output_size, Conv2dSpec, ConvTranspose2dSpec, Padding,
};
use crate::{Tape, Var};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Convolution padding in a config: `"same"`, one number for every side, or
/// `[top, bottom, left, right]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum PaddingSpec {
    Named(String),
    Uniform(usize),
    Sides([usize; 4]),
}

impl Default for PaddingSpec {
    fn default() -> Self {
        PaddingSpec::Uniform(0)
    }
}

impl PaddingSpec {
    pub fn to_padding(&self) -> Result<Padding, String> {
        match self {
            PaddingSpec::Named(s) if s == "same" => Ok(Padding::Same),
            PaddingSpec::Named(s) => Err(format!(
                "unknown padding \"{s}\" (use \"same\", a number, or [top, bottom, left, right])"
            )),
            PaddingSpec::Uniform(p) => Ok(Padding::symmetric(*p)),
            PaddingSpec::Sides([top, bottom, left, right]) => Ok(Padding::Explicit {
                top: *top,
                bottom: *bottom,
                left: *left,
                right: *right,
            }),
        }
    }

    fn check(&self) -> Result<(), String> {
        match self {
            PaddingSpec::Uniform(p) => at_most("padding", *p, MAX_WINDOW),
            PaddingSpec::Sides(sides) => sides
                .iter()
                .try_for_each(|p| at_most("padding", *p, MAX_WINDOW)),
            PaddingSpec::Named(_) => Ok(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2d {
    pub filters: usize,
    pub kernel: usize,
    #[serde(default = "one")]
    pub stride: usize,
    #[serde(default)]
    pub padding: PaddingSpec,
    #[serde(default = "yes")]
    pub bias: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConvTranspose2d {
    pub filters: usize,
    pub kernel: usize,
    #[serde(default = "one")]
    pub stride: usize,
    #[serde(default)]
    pub padding: usize,
    #[serde(default)]
    pub output_padding: usize,
    #[serde(default = "yes")]
    pub bias: bool,
}

/// Weights `C_in·C_out·k²`, plus `C_out` biases.
fn conv_parameters(input: &[usize], filters: usize, kernel: usize, bias: bool) -> Option<usize> {
    input
        .first()?
        .checked_mul(filters)?
        .checked_mul(kernel.checked_mul(kernel)?)?
        .checked_add(if bias { filters } else { 0 })
}

fn check_window(filters: usize, kernel: usize, stride: usize) -> Result<(), String> {
    positive("filters", filters, MAX_UNITS)?;
    positive("kernel", kernel, MAX_WINDOW)?;
    positive("stride", stride, MAX_WINDOW)
}

impl Spec for Conv2d {
    fn kind(&self) -> &'static str {
        "conv2d"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let (_, h, w) = image(self.kind(), input)?;
        check_window(self.filters, self.kernel, self.stride)?;
        self.padding.check()?;
        let spec = Conv2dSpec::new(self.stride, self.padding.to_padding()?);
        let k = self.kernel;
        let (oh, ow) = conv2d_output_size(h, w, k, k, &spec).ok_or_else(|| {
            format!("kernel {k}x{k} does not fit the {h}x{w} input with this padding")
        })?;
        Ok(vec![self.filters, oh, ow])
    }

    fn parameter_count(&self, input: &[usize]) -> Option<usize> {
        conv_parameters(input, self.filters, self.kernel, self.bias)
    }

    fn forward_flops(&self, input: &[usize], output: &[usize]) -> Option<f64> {
        Some(2.0 * (input[0] * self.kernel * self.kernel) as f64 * size(output))
    }

    fn build(&self, input: &[usize], mut rng: &mut dyn RngCore) -> Box<dyn Layer> {
        let padding = self.padding.to_padding().expect("validated config");
        let spec = Conv2dSpec::new(self.stride, padding);
        let (c, f, k) = (input[0], self.filters, self.kernel);
        Box::new(nn::Conv2d::new(c, f, k, spec, self.bias, &mut rng))
    }
}

impl Spec for ConvTranspose2d {
    fn kind(&self) -> &'static str {
        "conv_transpose2d"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let (_, h, w) = image(self.kind(), input)?;
        check_window(self.filters, self.kernel, self.stride)?;
        at_most("padding", self.padding, MAX_WINDOW)?;
        at_most("output_padding", self.output_padding, MAX_WINDOW)?;
        let spec = ConvTranspose2dSpec::new(self.stride, self.padding, self.output_padding);
        let k = self.kernel;
        let (oh, ow) = conv_transpose2d_output_size(h, w, k, k, &spec).ok_or_else(|| {
            format!("no valid output for a {h}x{w} input (output_padding must be < stride, and padding small enough)")
        })?;
        Ok(vec![self.filters, oh, ow])
    }

    fn parameter_count(&self, input: &[usize]) -> Option<usize> {
        conv_parameters(input, self.filters, self.kernel, self.bias)
    }

    fn forward_flops(&self, input: &[usize], output: &[usize]) -> Option<f64> {
        Some(2.0 * size(input) * (output[0] * self.kernel * self.kernel) as f64)
    }

    fn build(&self, input: &[usize], mut rng: &mut dyn RngCore) -> Box<dyn Layer> {
        let spec = ConvTranspose2dSpec::new(self.stride, self.padding, self.output_padding);
        let (c, f, k) = (input[0], self.filters, self.kernel);
        Box::new(nn::ConvTranspose2d::new(c, f, k, spec, self.bias, &mut rng))
    }
}

fn i64s(values: &[usize]) -> Vec<i64> {
    values.iter().map(|&v| v as i64).collect()
}

impl Layer for nn::Conv2d {
    fn kind(&self) -> &'static str {
        "conv2d"
    }

    fn forward(&mut self, tape: &Tape, x: &Var, _mode: Mode) -> Var {
        nn::Conv2d::forward(self, tape, x)
    }

    fn onnx(&self, input: &[usize]) -> Vec<OnnxNode<'_>> {
        let shape = self.weight.value().shape();
        let (k_h, k_w) = (shape[2], shape[3]);
        let (sh, sw) = self.spec.stride;
        // "same" padding resolves to explicit amounts for the known input size.
        let (top, bottom, left, right) = self
            .spec
            .padding
            .resolve(input[1], input[2], k_h, k_w, sh, sw);
        let attributes = vec![
            Ints("kernel_shape", i64s(&[k_h, k_w])),
            Ints("strides", i64s(&[sh, sw])),
            Ints("pads", i64s(&[top, left, bottom, right])),
        ];
        let inputs = weight_and_bias(&self.weight, &self.bias);
        vec![OnnxNode::with_weights("Conv", inputs, attributes)]
    }

    fn is_convolution(&self) -> bool {
        true
    }
}

impl Layer for nn::ConvTranspose2d {
    fn kind(&self) -> &'static str {
        "conv_transpose2d"
    }

    fn forward(&mut self, tape: &Tape, x: &Var, _mode: Mode) -> Var {
        nn::ConvTranspose2d::forward(self, tape, x)
    }

    fn onnx(&self, _input: &[usize]) -> Vec<OnnxNode<'_>> {
        let shape = self.weight.value().shape();
        let s = self.spec;
        let (ph, pw) = s.padding;
        let attributes = vec![
            Ints("kernel_shape", i64s(&[shape[2], shape[3]])),
            Ints("strides", i64s(&[s.stride.0, s.stride.1])),
            Ints("pads", i64s(&[ph, pw, ph, pw])),
            Ints(
                "output_padding",
                i64s(&[s.output_padding.0, s.output_padding.1]),
            ),
        ];
        let inputs = weight_and_bias(&self.weight, &self.bias);
        vec![OnnxNode::with_weights("ConvTranspose", inputs, attributes)]
    }

    /// Conv (stride 1, s²·O channels) -> DepthToSpace -> Slice: see [`SubPixel`].
    fn onnx_fast(&self, input: &[usize]) -> Option<Vec<OnnxNode<'_>>> {
        let shape = self.weight.value().shape();
        let (spec, kernel) = (self.spec, [shape[2], shape[3]]);
        if spec.stride.0 != spec.stride.1 {
            return None;
        }
        let output = conv_transpose2d_output_size(input[1], input[2], kernel[0], kernel[1], &spec)?;
        let sub = SubPixel::plan(
            kernel,
            spec.stride.0,
            [spec.padding.0, spec.padding.1],
            [input[1], input[2]],
            [output.0, output.1],
        );
        Some(sub_pixel_nodes(&sub, self))
    }

    fn is_convolution(&self) -> bool {
        true
    }
}

/// The nodes of a transposed convolution's sub-pixel form.
fn sub_pixel_nodes<'a>(sub: &SubPixel, layer: &nn::ConvTranspose2d) -> Vec<OnnxNode<'a>> {
    let mut inputs = vec![weight_owned("weight", sub.weight(layer.weight.value()))];
    if let Some(b) = &layer.bias {
        inputs.push(weight_owned("bias", sub.bias(b.value())));
    }
    let attributes = vec![
        Ints("kernel_shape", i64s(&sub.taps)),
        Ints("strides", vec![1, 1]),
        Ints("pads", i64s(&sub.pads)),
    ];
    let mut nodes = vec![OnnxNode::with_weights("Conv", inputs, attributes)];
    if sub.stride > 1 {
        let block = OnnxAttribute::Int("blocksize", sub.stride as i64);
        nodes.push(OnnxNode::unary("DepthToSpace", vec![block]));
    }
    if let Some((start, end)) = sub.crop {
        let ints = |name, values: [usize; 2]| OnnxInput::Ints {
            name,
            values: i64s(&values),
        };
        let inputs = vec![
            ints("starts", start),
            ints("ends", end),
            ints("axes", [2, 3]),
        ];
        nodes.push(OnnxNode::with_weights("Slice", inputs, vec![]));
    }
    nodes
}
