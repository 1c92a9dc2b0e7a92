//! A validated architecture: every layer of the encoder and the decoder with the
//! per-sample shapes it takes and gives. [`Config::plan`](super::Config::plan) makes it
//! once; the model keeps it, and the export, the FLOP count and the memory estimate read it.

use super::Block;
use crate::layers::LayerSpec;
use crate::{Error, Result};

/// The most layers an encoder or a decoder may have, repeats expanded.
pub const MAX_LAYERS: usize = 1024;
/// The most values one layer may produce per sample (1 GiB of f32).
pub const MAX_VALUES_PER_SAMPLE: usize = 1 << 28;
/// The most parameters one layer may have (1 GiB of f32).
pub const MAX_LAYER_PARAMETERS: usize = 1 << 28;

/// One layer of the architecture, repeats expanded, with its per-sample shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedLayer {
    pub spec: LayerSpec,
    pub input: Vec<usize>,
    pub output: Vec<usize>,
}

/// The shapes a validated config produces, per sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The image, `[C, H, W]`.
    pub input: Vec<usize>,
    pub encoder: Vec<PlannedLayer>,
    /// The decoder's input, `[latent + conditions]`.
    pub decoder_input: Vec<usize>,
    pub decoder: Vec<PlannedLayer>,
    /// The inputs of the mean and log-variance heads: the encoder's flat features, plus the
    /// condition for a conditional VAE.
    pub features: usize,
    /// Learned numbers of the whole model, both heads included.
    pub parameters: usize,
    /// The fewest images a training batch may hold: 2 when a batch_norm layer normalizes
    /// flat features (its statistics are over the batch alone), else 1.
    pub min_batch: usize,
}

impl Plan {
    /// The values every layer of the encoder and decoder outputs for one image.
    pub fn layer_output_values(&self) -> usize {
        self.layers()
            .map(|l| l.output.iter().product::<usize>())
            .sum()
    }

    /// The encoder's layers, then the decoder's.
    pub fn layers(&self) -> impl Iterator<Item = &PlannedLayer> {
        self.encoder.iter().chain(&self.decoder)
    }

    /// The encoder's output (its input when it has no layers).
    pub fn encoder_output(&self) -> &[usize] {
        self.encoder.last().map_or(&self.input, |l| &l.output)
    }

    /// The decoder's output (its input when it has no layers).
    pub fn decoder_output(&self) -> &[usize] {
        self.decoder
            .last()
            .map_or(&self.decoder_input, |l| &l.output)
    }
}

/// The number of values of a per-sample shape, if it is within [`MAX_VALUES_PER_SAMPLE`].
pub fn values_within_limit(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_VALUES_PER_SAMPLE)
}

/// Every layer of `blocks` (repeats expanded) with its shapes, starting from `input`;
/// errors name the section, block, layer (and repeat) that cannot take its input.
pub fn walk(section: &str, blocks: &[Block], input: &[usize]) -> Result<Vec<PlannedLayer>> {
    let mut shape = input.to_vec();
    let mut planned = vec![];
    for (b, block) in blocks.iter().enumerate() {
        // "model.decoder block 2: ..." or "model.decoder block 2 layer 3 (conv2d): ...".
        let at_block = |message: &str| Error::Config(format!("{section} block {}{message}", b + 1));
        if block.repeat == 0 {
            return Err(at_block(": repeat must be at least 1"));
        }
        let layers = block
            .repeat
            .checked_mul(block.layers.len())
            .and_then(|n| n.checked_add(planned.len()));
        if layers.is_none_or(|n| n > MAX_LAYERS) {
            return Err(at_block(&format!(": more than {MAX_LAYERS} layers in all")));
        }
        for r in 0..block.repeat {
            for (l, spec) in block.layers.iter().enumerate() {
                let output = checked_output(spec, &shape).map_err(|e| {
                    let rep = if block.repeat > 1 {
                        format!(" (repeat {})", r + 1)
                    } else {
                        String::new()
                    };
                    at_block(&format!(" layer {}{rep} ({}): {e}", l + 1, spec.kind()))
                })?;
                let input = std::mem::replace(&mut shape, output.clone());
                planned.push(PlannedLayer {
                    spec: spec.clone(),
                    input,
                    output,
                });
            }
        }
    }
    Ok(planned)
}

/// The layer's output shape, within the size limits.
fn checked_output(spec: &LayerSpec, input: &[usize]) -> std::result::Result<Vec<usize>, String> {
    let out = spec.spec().output_shape(input)?;
    if values_within_limit(&out).is_none() {
        return Err(format!(
            "its output {out:?} has more than {MAX_VALUES_PER_SAMPLE} values per image"
        ));
    }
    match spec.spec().parameter_count(input) {
        Some(n) if n <= MAX_LAYER_PARAMETERS => Ok(out),
        _ => Err(format!(
            "it would have more than {MAX_LAYER_PARAMETERS} parameters"
        )),
    }
}

/// The parameters of planned layers (every count is within the limits once planned).
pub fn parameter_total(layers: &[PlannedLayer]) -> usize {
    layers
        .iter()
        .map(|l| l.spec.spec().parameter_count(&l.input).unwrap_or(0))
        .sum()
}

/// Whether a batch_norm layer takes a flat `[F]` input.
pub fn flat_batch_norm(layers: &[PlannedLayer]) -> bool {
    layers
        .iter()
        .any(|l| matches!(l.spec, LayerSpec::BatchNorm(_)) && l.input.len() == 1)
}
