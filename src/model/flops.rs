//! Analytic FLOP counts of a model, for benchmarks: 2 FLOPs per multiply-add of the
//! convolutions and linear layers (the GEMM work; normalizations and activations are a few
//! FLOPs per value and are left out, as is usual).
//!
//! conv2d: 2·C_in·k²·(C_out·H_out·W_out); conv_transpose2d: 2·(C_in·H_in·W_in)·C_out·k²;
//! linear: 2·in·out. A training step costs 3× the forward: the forward product, the
//! input gradient and the weight gradient are each one GEMM of the same size.

use crate::config::{Config, Plan};
use crate::Result;

/// FLOPs of one training image (forward, input gradient and weight gradient: 3x the
/// forward).
pub fn training_flops_per_image(config: &Config) -> Result<f64> {
    let forward: f64 = forward_flops_per_sample(&config.plan()?, config.model.latent)
        .iter()
        .map(|(_, f)| f)
        .sum();
    Ok(3.0 * forward)
}

/// Forward FLOPs of one sample, summed per layer kind (`conv2d`, `conv_transpose2d`,
/// `linear`), in the order the kinds first appear.
pub fn forward_flops_per_sample(plan: &Plan, latent: usize) -> Vec<(&'static str, f64)> {
    let mut totals: Vec<(&'static str, f64)> = vec![];
    let mut add = |kind: &'static str, flops: f64| match totals.iter_mut().find(|(k, _)| *k == kind)
    {
        Some((_, t)) => *t += flops,
        None => totals.push((kind, flops)),
    };
    let layer_flops = |l: &crate::config::PlannedLayer| {
        let spec = l.spec.spec();
        spec.forward_flops(&l.input, &l.output)
            .map(|f| (spec.kind(), f))
    };
    for (kind, flops) in plan.encoder.iter().filter_map(layer_flops) {
        add(kind, flops);
    }
    // The mean and log-variance heads.
    add("linear", 2.0 * 2.0 * (plan.features * latent) as f64);
    for (kind, flops) in plan.decoder.iter().filter_map(layer_flops) {
        add(kind, flops);
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn celeba32_counts_match_a_hand_count() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/celeba32.toml");
        let config = Config::load(std::path::Path::new(path)).unwrap();
        let flops = forward_flops_per_sample(&config.plan().unwrap(), config.model.latent);
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
