//! `verify-onnx`: tract runs an exported decoder at batch sizes 1 and 7 on random latents
//! and must match the engine's own eval-mode decoder.

use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use vae_cpu::onnx::run::OnnxModel;
use vae_cpu::onnx::verify::compare_decoder;

/// Run an exported decoder with tract and compare it with the engine.
#[derive(Args)]
pub struct VerifyArgs {
    /// The ONNX decoder written by `export-onnx`.
    onnx: PathBuf,
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    /// Seed of the random latents.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The largest allowed absolute difference.
    #[arg(long, default_value_t = 1e-4, value_parser = super::non_negative)]
    tolerance: f32,
}

pub fn verify_onnx(a: VerifyArgs) -> Result<()> {
    let mut model = a.checkpoint.load_model()?;
    let onnx = OnnxModel::load(&a.onnx)?;
    let diffs = compare_decoder(&mut model, &onnx, &a.onnx, a.seed)?;
    for (batch, diff) in &diffs {
        println!("batch {batch}: max |tract - engine| = {diff:.3e}");
    }
    let worst = diffs.iter().map(|(_, d)| *d).fold(0.0, f32::max);
    if worst > a.tolerance {
        bail!(
            "the ONNX decoder differs from the engine by {worst:.3e} (> {:.0e})",
            a.tolerance
        );
    }
    println!(
        "ok: {} matches the engine within {:.0e}",
        a.onnx.display(),
        a.tolerance
    );
    Ok(())
}
