//! Analytic FLOP counts of a model, for benchmarks: 2 FLOPs per multiply-add of the
//! convolutions and linear layers (the GEMM work; normalizations and activations are a few
//! FLOPs per value and are left out, as is usual).
//!
//! conv2d: 2·C_in·k²·(C_out·H_out·W_out); conv_transpose2d: 2·(C_in·H_in·W_in)·C_out·k²;
//! linear: 2·in·out. A training step costs 3× the forward: the forward product, the
//! input gradient and the weight gradient are each one GEMM of the same size.

use crate::config::{Block, Config, LayerSpec};
use crate::Result;

/// FLOPs of one training image (forward, input gradient and weight gradient: 3x the
/// forward).
pub fn training_flops_per_image(config: &Config) -> Result<f64> {
    let forward: f64 = forward_flops_per_sample(config)?
        .iter()
        .map(|(_, f)| f)
        .sum();
    Ok(3.0 * forward)
}

/// Forward FLOPs of one sample, summed per layer kind (`conv2d`, `conv_transpose2d`,
/// `linear`), in the order the kinds first appear.
pub fn forward_flops_per_sample(config: &Config) -> Result<Vec<(&'static str, f64)>> {
    let shapes = config.validate()?;
    let m = &config.model;
    let mut totals: Vec<(&'static str, f64)> = vec![];
    let mut add = |kind: &'static str, flops: f64| match totals.iter_mut().find(|(k, _)| *k == kind)
    {
        Some((_, t)) => *t += flops,
        None => totals.push((kind, flops)),
    };
    let sections = [
        (&m.encoder, &shapes.input, &shapes.encoder),
        (&m.decoder, &vec![m.decoder_input()], &shapes.decoder),
    ];
    for (i, (blocks, input, outputs)) in sections.into_iter().enumerate() {
        let inputs = std::iter::once(input).chain(outputs.iter());
        for ((spec, input), output) in Block::expand(blocks).zip(inputs).zip(outputs) {
            if let Some(flops) = layer_flops(spec, input, output) {
                add(spec.kind(), flops);
            }
        }
        if i == 0 {
            // The mean and log-variance heads.
            add("linear", 2.0 * 2.0 * (shapes.features * m.latent) as f64);
        }
    }
    Ok(totals)
}

/// One layer's forward FLOPs per sample, `None` for layers without a product.
fn layer_flops(spec: &LayerSpec, input: &[usize], output: &[usize]) -> Option<f64> {
    let size = |s: &[usize]| s.iter().product::<usize>() as f64;
    match spec {
        LayerSpec::Conv2d { kernel, .. } => {
            Some(2.0 * (input[0] * kernel * kernel) as f64 * size(output))
        }
        LayerSpec::ConvTranspose2d { kernel, .. } => {
            Some(2.0 * size(input) * (output[0] * kernel * kernel) as f64)
        }
        LayerSpec::Linear { units, .. } => Some(2.0 * size(input) * *units as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn celeba32_counts_match_a_hand_count() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/celeba32.toml");
        let config = Config::load(std::path::Path::new(path)).unwrap();
        let flops = forward_flops_per_sample(&config).unwrap();
        let get = |k: &str| flops.iter().find(|(n, _)| *n == k).unwrap().1;
        // Encoder: 4 convs 4x4, 128 filters, stride 2: 3->128 at 16x16, then 128->128 at
        // 8x8, 4x4, 2x2.
        let conv = 2.0 * 16.0 * 128.0 * (3.0 * 256.0 + 128.0 * (64.0 + 16.0 + 4.0));
        assert_eq!(get("conv2d"), conv);
        // Decoder: 4 transposed convs 4x4 128->128 from 2x2, 4x4, 8x8, 16x16, then a 3x3
        // 128->3 at 32x32.
        let deconv = 2.0 * 128.0 * 128.0 * 16.0 * (4.0 + 16.0 + 64.0 + 256.0)
            + 2.0 * 128.0 * 1024.0 * 3.0 * 9.0;
        assert_eq!(get("conv_transpose2d"), deconv);
        // Heads 512 -> 200 (twice) and the decoder's 200 -> 512.
        assert_eq!(get("linear"), 2.0 * 512.0 * 200.0 * 3.0);
    }
}
