//! Refusing a batch that cannot fit in memory before training starts, instead of being
//! killed by the OOM killer an hour later. The estimate is deliberately simple:
//!
//! bytes ≈ batch · values_per_image · BYTES_PER_VALUE + parameters · 4 B · 4
//!
//! where `values_per_image` counts the input and every layer's output. The per-value cost
//! covers what a training step holds at its peak: forward values kept on the tape, their
//! gradients, im2col/col2im workspaces. Measured on celeba32 (peak resident memory 590 MiB
//! at batch 128, 2,150 MiB at batch 500: 4.2 MiB more per image, for 665 k values) it is
//! 6.6 bytes; 8 leaves a margin. The parameters are stored with their gradient and Adam's
//! two moments.

use crate::config::{Config, Plan};
use crate::{Error, Result};

/// Bytes per activation value during a training step (see the module notes).
pub const BYTES_PER_VALUE: u64 = 8;

/// What training a model costs in memory: `per_image · batch + fixed` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Activations of one image (its input, every layer output and the latent values).
    pub per_image: u64,
    /// Parameters with their gradients and Adam's two moments.
    pub fixed: u64,
}

impl Footprint {
    /// The footprint of the model `plan` describes, with a `latent`-dimensional latent.
    pub fn of(plan: &Plan, latent: usize) -> Footprint {
        let input: usize = plan.input.iter().product();
        // mu, logvar and z besides the layer outputs.
        let values = (input + plan.layer_output_values() + 3 * latent) as u64;
        Footprint {
            per_image: values * BYTES_PER_VALUE,
            fixed: plan.parameters as u64 * 4 * 4,
        }
    }

    /// The estimated peak memory of a training step on `batch` images.
    pub fn bytes(&self, batch: usize) -> u64 {
        (batch as u64)
            .saturating_mul(self.per_image)
            .saturating_add(self.fixed)
    }
}

/// Memory the kernel says is available for new allocations (`MemAvailable`), if known.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses `batch` when its estimated memory exceeds what the machine has available
/// (nothing is checked where that is unknown). `plan` is `config`'s.
pub fn check_batch_fits(config: &Config, plan: &Plan, batch: usize) -> Result<()> {
    let footprint = Footprint::of(plan, config.model.latent);
    let needed = footprint.bytes(batch);
    let Some(available) = available_bytes() else {
        return Ok(());
    };
    if needed <= available {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let fits = (available.saturating_sub(footprint.fixed) / footprint.per_image.max(1)).max(1);
    Err(Error::Invalid(format!(
        "a batch of {batch} images needs about {:.1} GiB to train model \"{}\" ({:.1} MiB per image), \
         more than the {:.1} GiB this machine has available; use --batch-size {fits} or less",
        gib(needed),
        config.model.name,
        footprint.per_image as f64 / (1u64 << 20) as f64,
        gib(available)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn celeba32_estimate_covers_the_measured_peaks() {
        let text = include_str!("../../models/celeba32.toml");
        let config = Config::parse(text).unwrap();
        // Measured peak resident memory (docs/benchmarks.md, `vae-cpu bench`): batch 128 590 MiB,
        // batch 500 2150 MiB. The estimate must not be below them, nor wildly above.
        for (batch, measured_mib) in [(128, 590.0), (500, 2150.0)] {
            let footprint = Footprint::of(&config.plan().unwrap(), config.model.latent);
            let mib = footprint.bytes(batch) as f64 / (1u64 << 20) as f64;
            assert!(
                mib >= measured_mib && mib < 2.0 * measured_mib,
                "batch {batch}: {mib} MiB"
            );
        }
    }

    #[test]
    fn an_impossible_batch_is_refused_with_a_batch_that_fits() {
        let config = Config::parse(include_str!("../../models/celeba32.toml")).unwrap();
        if available_bytes().is_none() {
            return;
        }
        let plan = config.plan().unwrap();
        let e = check_batch_fits(&config, &plan, 1 << 40)
            .unwrap_err()
            .to_string();
        assert!(e.contains("GiB") && e.contains("--batch-size"), "{e}");
        check_batch_fits(&config, &plan, 2).unwrap();
    }
}
