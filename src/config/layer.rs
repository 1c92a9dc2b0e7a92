//! One layer of an architecture as written in a model TOML file, and how it changes the
//! shape of the values flowing through it.

use crate::ops::{
    conv2d_output_size, conv_transpose2d_output_size, Conv2dSpec, ConvTranspose2dSpec, Padding,
};
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
}

/// The largest filter or unit count a layer may have.
pub const MAX_UNITS: usize = 1 << 20;
/// The largest kernel, stride or padding.
pub const MAX_WINDOW: usize = 1 << 12;

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn leaky_default() -> f32 {
    0.01
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    // Field-less layers are written `Name {}` so that unknown keys on them are refused too.
    Conv2d {
        filters: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: PaddingSpec,
        #[serde(default = "yes")]
        bias: bool,
    },
    ConvTranspose2d {
        filters: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: usize,
        #[serde(default)]
        output_padding: usize,
        #[serde(default = "yes")]
        bias: bool,
    },
    Linear {
        units: usize,
        #[serde(default = "yes")]
        bias: bool,
    },
    BatchNorm {},
    InstanceNorm {},
    Relu {},
    LeakyRelu {
        #[serde(default = "leaky_default")]
        alpha: f32,
    },
    Prelu {
        /// One slope shared by all channels instead of one per channel.
        #[serde(default)]
        shared: bool,
    },
    Sigmoid {},
    Tanh {},
    Flatten {},
    /// Reshape each sample to `[C, H, W]` (or any shape with the same size).
    Reshape {
        shape: Vec<usize>,
    },
}

impl LayerSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Conv2d { .. } => "conv2d",
            LayerSpec::ConvTranspose2d { .. } => "conv_transpose2d",
            LayerSpec::Linear { .. } => "linear",
            LayerSpec::BatchNorm {} => "batch_norm",
            LayerSpec::InstanceNorm {} => "instance_norm",
            LayerSpec::Relu {} => "relu",
            LayerSpec::LeakyRelu { .. } => "leaky_relu",
            LayerSpec::Prelu { .. } => "prelu",
            LayerSpec::Sigmoid {} => "sigmoid",
            LayerSpec::Tanh {} => "tanh",
            LayerSpec::Flatten {} => "flatten",
            LayerSpec::Reshape { .. } => "reshape",
        }
    }

    /// How many numbers the layer learns (weights, biases, norm scales and shifts, PReLU
    /// slopes) for a per-sample `input` shape it accepts; `None` if the count overflows.
    pub fn parameter_count(&self, input: &[usize]) -> Option<usize> {
        let channels = input.first().copied().unwrap_or(0);
        let bias = |on: bool, n: usize| if on { n } else { 0 };
        match self {
            LayerSpec::Conv2d {
                filters,
                kernel,
                bias: b,
                ..
            }
            | LayerSpec::ConvTranspose2d {
                filters,
                kernel,
                bias: b,
                ..
            } => channels
                .checked_mul(*filters)?
                .checked_mul(kernel.checked_mul(*kernel)?)?
                .checked_add(bias(*b, *filters)),
            LayerSpec::Linear { units, bias: b } => input
                .iter()
                .product::<usize>()
                .checked_mul(*units)?
                .checked_add(bias(*b, *units)),
            LayerSpec::BatchNorm {} | LayerSpec::InstanceNorm {} => channels.checked_mul(2),
            LayerSpec::Prelu { shared } => Some(if *shared { 1 } else { channels }),
            _ => Some(0),
        }
    }

    /// The per-sample output shape for a per-sample input shape (`[C, H, W]` or `[F]`),
    /// or why the layer cannot take that input.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let image = |what: &str| -> Result<(usize, usize, usize), String> {
            match input {
                [c, h, w] => Ok((*c, *h, *w)),
                _ => Err(format!(
                    "{what} needs an image input [C, H, W], got {input:?} (add a reshape layer)"
                )),
            }
        };
        // Sizes beyond any real model are refused before shape arithmetic could overflow.
        let at_most = |name: &str, v: usize, max: usize| {
            if v > max {
                Err(format!("{name} = {v} is more than the {max} supported"))
            } else {
                Ok(())
            }
        };
        let positive = |name: &str, v: usize, max: usize| {
            if v == 0 {
                Err(format!("{name} must be at least 1"))
            } else {
                at_most(name, v, max)
            }
        };
        match self {
            LayerSpec::Conv2d {
                filters,
                kernel,
                stride,
                padding,
                ..
            } => {
                let (_, h, w) = image("conv2d")?;
                positive("filters", *filters, MAX_UNITS)?;
                positive("kernel", *kernel, MAX_WINDOW)?;
                positive("stride", *stride, MAX_WINDOW)?;
                match padding {
                    PaddingSpec::Uniform(p) => at_most("padding", *p, MAX_WINDOW)?,
                    PaddingSpec::Sides(sides) => sides
                        .iter()
                        .try_for_each(|p| at_most("padding", *p, MAX_WINDOW))?,
                    PaddingSpec::Named(_) => {}
                }
                let spec = Conv2dSpec::new(*stride, padding.to_padding()?);
                let (oh, ow) = conv2d_output_size(h, w, *kernel, *kernel, &spec)
                    .ok_or_else(|| format!("kernel {kernel}x{kernel} does not fit the {h}x{w} input with this padding"))?;
                Ok(vec![*filters, oh, ow])
            }
            LayerSpec::ConvTranspose2d {
                filters,
                kernel,
                stride,
                padding,
                output_padding,
                ..
            } => {
                let (_, h, w) = image("conv_transpose2d")?;
                positive("filters", *filters, MAX_UNITS)?;
                positive("kernel", *kernel, MAX_WINDOW)?;
                positive("stride", *stride, MAX_WINDOW)?;
                at_most("padding", *padding, MAX_WINDOW)?;
                at_most("output_padding", *output_padding, MAX_WINDOW)?;
                let spec = ConvTranspose2dSpec::new(*stride, *padding, *output_padding);
                let (oh, ow) = conv_transpose2d_output_size(h, w, *kernel, *kernel, &spec).ok_or_else(|| {
                    format!("no valid output for a {h}x{w} input (output_padding must be < stride, and padding small enough)")
                })?;
                Ok(vec![*filters, oh, ow])
            }
            LayerSpec::Linear { units, .. } => match input {
                [_] => {
                    positive("units", *units, MAX_UNITS)?;
                    Ok(vec![*units])
                }
                _ => Err(format!(
                    "linear needs a flat input [F], got {input:?} (add a flatten layer)"
                )),
            },
            LayerSpec::InstanceNorm {} => image("instance_norm").map(|_| input.to_vec()),
            LayerSpec::Flatten {} => Ok(vec![input.iter().product()]),
            LayerSpec::Reshape { shape } => {
                let from: usize = input.iter().product();
                let to = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                if to == Some(from) && !shape.is_empty() {
                    Ok(shape.clone())
                } else {
                    let to = to.map_or("too many".into(), |t| t.to_string());
                    Err(format!(
                        "cannot reshape {input:?} ({from} values) to {shape:?} ({to} values)"
                    ))
                }
            }
            LayerSpec::BatchNorm {}
            | LayerSpec::Relu {}
            | LayerSpec::LeakyRelu { .. }
            | LayerSpec::Prelu { .. }
            | LayerSpec::Sigmoid {}
            | LayerSpec::Tanh {} => Ok(input.to_vec()),
        }
    }
}
