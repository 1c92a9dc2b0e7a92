//! `verify-onnx`: tract runs an exported decoder at batch sizes 1 and 7 on random latents
//! and must match the engine's own eval-mode decoder.

use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use vae_cpu::checkpoint::Checkpoint;
use vae_cpu::latent;
use vae_cpu::nn::Mode;
use vae_cpu::onnx::run::OnnxModel;
use vae_cpu::{Tape, Var};

/// Run an exported decoder with tract and compare it with the engine.
#[derive(Args)]
pub struct VerifyArgs {
    /// The ONNX decoder written by `export-onnx`.
    onnx: PathBuf,
    /// The checkpoint it was exported from.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Seed of the random latents.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The largest allowed absolute difference.
    #[arg(long, default_value_t = 1e-4, value_parser = super::non_negative)]
    tolerance: f32,
}

pub fn verify_onnx(a: VerifyArgs) -> Result<()> {
    let mut model = Checkpoint::load_model(&a.checkpoint)?;
    let onnx = OnnxModel::load(&a.onnx)?;
    let latent_size = model.config.model.latent;
    if onnx.input_width()? != latent_size {
        bail!(
            "{}: the decoder takes a latent of {} but the checkpoint's model has {latent_size}: \
             exported from another checkpoint?",
            a.onnx.display(),
            onnx.input_width()?
        );
    }
    let mut worst = 0.0f32;
    for batch in [1, 7] {
        let z = latent::prior_samples(batch, latent_size, a.seed + batch as u64, 1.0);
        let tape = Tape::no_grad();
        let want = model.decode(&tape, &Var::constant(z.clone()), Mode::Eval);
        let got = onnx.run(z.shape(), z.iter().copied().collect())?;
        let Some(out) = got.first() else {
            bail!("{}: the model has no output", a.onnx.display())
        };
        if out.shape != want.shape() {
            bail!(
                "{}: output shape {:?}, the engine's is {:?} (exported from another checkpoint?)",
                a.onnx.display(),
                out.shape,
                want.shape()
            );
        }
        let want = want.value().as_standard_layout();
        let diff =
            vae_cpu::npy::max_abs_diff(&out.values, want.as_slice().expect("standard layout"));
        println!("batch {batch}: max |tract - engine| = {diff:.3e}");
        worst = worst.max(diff);
    }
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
