//! `verify-onnx`: tract runs an exported decoder at batch sizes 1 and 7 on random latents
//! and must match the engine's own eval-mode decoder, with the file read both by our own
//! reader (as the edge binary reads it) and by tract-onnx (builds with `onnx-runtime`). `--save-case` keeps the inputs and
//! the engine's images, for checking other runtimes (`scripts/onnxruntime-check.sh`).

use anyhow::{bail, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use vae_cpu::npy::{self, Array};
use vae_cpu::onnx::run::{OnnxModel, Reader};
use vae_cpu::onnx::verify::{compare_decoder, Comparison};
use vae_cpu::Tensor;

/// Run an exported decoder with tract and compare it with the engine.
#[derive(Args)]
pub struct VerifyArgs {
    /// The ONNX decoder written by `export-onnx`.
    onnx: PathBuf,
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    /// Seed of the random latents (and of the condition, for a conditional decoder).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The largest allowed absolute difference.
    #[arg(long, default_value_t = 1e-4, value_parser = super::non_negative)]
    tolerance: f32,
    /// Also write the largest batch's inputs and the engine's images to this folder:
    /// z.npy, cond.npy (conditional decoders only) and engine.npy.
    #[arg(long, value_name = "DIR")]
    save_case: Option<PathBuf>,
}

pub fn verify_onnx(a: VerifyArgs) -> Result<()> {
    let case = a.save_case.as_ref().map(|d| CASE_FILES.map(|f| d.join(f)));
    let outputs: Vec<_> = case
        .iter()
        .flatten()
        .map(|p| ("a --save-case file", Some(p.as_path())))
        .collect();
    super::check_files(
        &[
            ("the ONNX file", Some(&a.onnx)),
            ("--checkpoint", Some(&a.checkpoint.path)),
        ],
        &outputs,
    )?;
    let mut model = a.checkpoint.load_model()?;
    let mut worst = 0.0f32;
    for (k, &(reader, label)) in READERS.iter().enumerate() {
        let onnx = OnnxModel::load_with(&a.onnx, reader)?;
        let comparisons = compare_decoder(&mut model, &onnx, &a.onnx, a.seed)?;
        for c in &comparisons {
            println!(
                "batch {}: max |tract - engine| = {:.3e} ({label})",
                c.batch, c.max_diff
            );
            worst = worst.max(c.max_diff);
        }
        // The inputs and the engine's images are the same for every reader.
        if let (0, Some(dir), Some(last)) = (k, &a.save_case, comparisons.last()) {
            save_case(dir, last)?;
        }
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

/// The readers compared: ours (what the edge binary runs), and tract-onnx where built in.
const READERS: &[(Reader, &str)] = &[
    (Reader::Own, "vae-cpu's reader, as the edge binary"),
    #[cfg(feature = "onnx-runtime")]
    (Reader::TractOnnx, "tract-onnx"),
];

/// What `--save-case` writes into its folder: the latents, the condition (conditional
/// decoders only) and the engine's images.
const CASE_FILES: [&str; 3] = [Z_FILE, COND_FILE, ENGINE_FILE];
const Z_FILE: &str = "z.npy";
const COND_FILE: &str = "cond.npy";
const ENGINE_FILE: &str = "engine.npy";

fn array(t: &Tensor) -> Array {
    Array {
        shape: t.shape().to_vec(),
        values: t.iter().copied().collect(),
    }
}

fn save_case(dir: &Path, c: &Comparison) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    npy::write(&dir.join(Z_FILE), &array(&c.z))?;
    npy::write(&dir.join(ENGINE_FILE), &array(&c.engine))?;
    if let Some(cond) = &c.cond {
        let rows = cond.repeat(c.batch);
        let shape = vec![c.batch, cond.len()];
        npy::write(
            &dir.join(COND_FILE),
            &Array {
                shape,
                values: rows,
            },
        )?;
    }
    println!("wrote the batch of {} to {}", c.batch, dir.display());
    Ok(())
}
