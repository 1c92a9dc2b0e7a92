//! The fixed feature network of the perceptual (feature-consistent) loss of Hou et al.
//! 2017 ("Deep Feature Consistent VAE"): a VGG-style stack of Conv, Relu and MaxPool read
//! from an ONNX file the user provides. Its weights never train; the loss is
//! `sum over chosen layers l of mean((phi_l(x_hat) - phi_l(x))^2)`.
//!
//! `onnx::feature_net` reads it from the file (a chain of Conv / Relu / MaxPool nodes). The
//! chosen layers are node outputs named in `exp.feature_layers`; by default the first ReLU
//! of each of the first three stages (the stages split by MaxPool: VGG's relu1_1, relu2_1,
//! relu3_1, as DFC-VAE-123 uses).

use crate::config::{FeatureNormalize, PixelRange};
use crate::ops::{self, Conv2dSpec, MaxPoolSpec};
use crate::{Tensor, Var};

/// One step of the network.
pub enum Stage {
    Conv {
        weight: Box<Tensor>,
        bias: Option<Tensor>,
        spec: Conv2dSpec,
    },
    Relu,
    MaxPool(MaxPoolSpec),
}

pub struct FeatureNet {
    stages: Vec<Stage>,
    /// The output names of the stages (ONNX node outputs).
    names: Vec<String>,
    /// Indices of the stages whose outputs the loss compares, ascending.
    taps: Vec<usize>,
    normalize: FeatureNormalize,
    range: PixelRange,
}

/// ImageNet's per-channel mean and standard deviation, on [0, 1] pixels.
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl FeatureNet {
    /// The network of `stages` (each with its output's name, in order); `layers` names
    /// the outputs to compare (empty: the default taps). The stages after the last
    /// compared one are dropped.
    pub fn new(
        stages: Vec<(String, Stage)>,
        layers: &[String],
        normalize: FeatureNormalize,
        range: PixelRange,
    ) -> std::result::Result<FeatureNet, String> {
        if stages.is_empty() {
            return Err("the graph does not start with Conv, Relu or MaxPool nodes".into());
        }
        let (names, mut stages): (Vec<String>, Vec<Stage>) = stages.into_iter().unzip();
        let mut taps = if layers.is_empty() {
            default_taps(&stages)
        } else {
            layers
                .iter()
                .map(|l| {
                    names.iter().position(|n| n == l).ok_or_else(|| {
                        format!("exp.feature_layers names \"{l}\", which is not among the Conv/Relu/MaxPool outputs: {}", names.join(", "))
                    })
                })
                .collect::<std::result::Result<Vec<_>, _>>()?
        };
        if taps.is_empty() {
            return Err("no ReLU to compare (name the layers in exp.feature_layers)".into());
        }
        taps.sort_unstable();
        taps.dedup();
        stages.truncate(taps[taps.len() - 1] + 1);
        Ok(FeatureNet {
            stages,
            names,
            taps,
            normalize,
            range,
        })
    }

    /// The names of the compared outputs.
    pub fn layer_names(&self) -> Vec<&str> {
        self.taps.iter().map(|&t| self.names[t].as_str()).collect()
    }

    /// The compared feature maps of a `[N, 3, H, W]` batch in the model's pixel range.
    pub fn features(&self, x: &Var) -> Vec<Var> {
        let channels = x.shape()[1];
        // To [0, 1], then ImageNet's normalization if asked for.
        let (mut scale, mut shift) = match self.range {
            PixelRange::Unit => (vec![1.0; channels], vec![0.0; channels]),
            PixelRange::Symmetric => (vec![0.5; channels], vec![0.5; channels]),
        };
        if self.normalize == FeatureNormalize::Imagenet && channels == 3 {
            for c in 0..3 {
                scale[c] /= IMAGENET_STD[c];
                shift[c] = (shift[c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            }
        }
        let mut h = ops::channel_affine(x, &scale, &shift);
        let mut out = vec![];
        for (i, stage) in self.stages.iter().enumerate() {
            h = match stage {
                Stage::Conv { weight, bias, spec } => {
                    let bias = bias.clone().map(Var::constant);
                    ops::conv2d(&h, &Var::constant((**weight).clone()), bias.as_ref(), *spec)
                }
                Stage::Relu => ops::relu(&h),
                Stage::MaxPool(spec) => ops::max_pool2d(&h, *spec),
            };
            if self.taps.contains(&i) {
                out.push(h.clone());
            }
        }
        out
    }

    /// `sum_l mean((phi_l(recon) - phi_l(target))^2)`; the target's features are constants.
    pub fn loss(&self, recon: &Var, target: &Tensor) -> Var {
        // A constant input records nothing on the tape.
        let want = self.features(&Var::constant(target.clone()));
        let got = self.features(recon);
        got.iter()
            .zip(want)
            .map(|(g, w)| ops::mse(g, w.value(), ops::Reduction::Mean))
            .reduce(|a, b| ops::add(&a, &b))
            .expect("at least one layer")
    }

    /// Checks that the network takes images of `channels x height x width` and that every
    /// compared layer has an output; the message says where it fails. Returns the most
    /// values one layer holds per image (its output, or a convolution's unfolded input).
    pub fn check_input(
        &self,
        channels: usize,
        height: usize,
        width: usize,
    ) -> std::result::Result<usize, String> {
        let (mut c, mut h, mut w) = (channels, height, width);
        let mut most = c * h * w;
        for (i, stage) in self.stages.iter().enumerate() {
            match stage {
                Stage::Conv { weight, spec, .. } => {
                    let s = weight.shape();
                    if s[1] != c {
                        return Err(format!(
                            "{} takes {} channels, it gets {c}",
                            self.names[i], s[1]
                        ));
                    }
                    (h, w) = ops::conv2d_output_size(h, w, s[2], s[3], spec).ok_or_else(|| {
                        format!("{}: the {h}x{w} input is too small", self.names[i])
                    })?;
                    c = s[0];
                    // The unfolded (im2col) input: in-channels x kernel x output positions.
                    let unfolded = (s[1] * s[2] * s[3]).saturating_mul(h.saturating_mul(w));
                    most = most.max(unfolded);
                }
                Stage::Relu => {}
                Stage::MaxPool(spec) => {
                    (h, w) = spec
                        .output_size(h)
                        .zip(spec.output_size(w))
                        .ok_or_else(|| {
                            format!("{}: the {h}x{w} input is too small", self.names[i])
                        })?;
                }
            }
            most = most.max(c.saturating_mul(h).saturating_mul(w));
        }
        Ok(most)
    }
}

/// The first ReLU of each of the first three stages between MaxPools.
fn default_taps(stages: &[Stage]) -> Vec<usize> {
    let mut taps = vec![];
    let mut want = true;
    for (i, s) in stages.iter().enumerate() {
        match s {
            Stage::Relu if want && taps.len() < 3 => {
                taps.push(i);
                want = false;
            }
            Stage::MaxPool(_) => want = true,
            _ => {}
        }
    }
    taps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use crate::test_support::tiny_vgg::tiny_vgg;

    fn net(layers: &[&str]) -> std::result::Result<FeatureNet, String> {
        let layers: Vec<String> = layers.iter().map(|s| s.to_string()).collect();
        crate::onnx::feature_net::from_model(
            &tiny_vgg(3, 1, None),
            None,
            &layers,
            FeatureNormalize::Imagenet,
            PixelRange::Unit,
        )
    }

    #[test]
    fn default_layers_are_the_first_relu_of_each_stage_and_the_tail_is_cut() {
        let n = net(&[]).unwrap();
        assert_eq!(n.layer_names(), ["relu1_1", "relu2_1", "relu3_1"]);
        // Flatten ends the chain; nothing after relu3_1 runs.
        assert_eq!(
            n.stages.len(),
            n.names.iter().position(|s| s == "relu3_1").unwrap() + 1
        );
        let chosen = net(&["pool1", "relu1_2"]).unwrap();
        assert_eq!(chosen.layer_names(), ["relu1_2", "pool1"]);
        assert!(net(&["flat"])
            .err()
            .unwrap()
            .contains("relu1_2, pool1, conv2_1"));
        assert!(n.check_input(3, 16, 16).is_ok());
        assert!(n.check_input(1, 16, 16).unwrap_err().contains("3 channels"));
        assert!(n.check_input(3, 2, 2).unwrap_err().contains("too small"));
    }

    /// The loss is 0 for identical images, positive otherwise, and its gradient with
    /// respect to the reconstruction matches finite differences.
    #[test]
    fn loss_and_gradient() {
        let n = net(&["relu1_2", "relu2_1"]).unwrap();
        let x = Tensor::from_shape_fn(vec![2, 3, 8, 8], |d| {
            ((d[1] * 7 + d[2] * 3 + d[3] * 5 + d[0]) % 11) as f32 / 11.0
        });
        let y = x.mapv(|v| (v * 0.8 + 0.1).clamp(0.0, 1.0));
        assert_eq!(n.loss(&Var::constant(x.clone()), &x).item(), 0.0);
        assert!(n.loss(&Var::constant(y.clone()), &x).item() > 0.0);
        check_gradients(
            &[y],
            7,
            Tolerance {
                step: 1e-3,
                atol: 2e-3,
                rtol: 2e-2,
            },
            |v| n.loss(&v[0], &x),
        )
        .unwrap();
    }
}
