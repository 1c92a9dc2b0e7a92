//! `export-onnx` (the decoder or encoder of a checkpoint as an ONNX file), `verify-onnx`
//! (tract runs it and must match the engine) and `generate` (faces from a decoder file with
//! tract alone).

use super::explore::{load_model, save};
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use vae_cpu::latent;
use vae_cpu::nn::Mode;
use vae_cpu::onnx::{check::check_model, export, run::OnnxModel};
use vae_cpu::{viz, Tape, Var};

#[derive(Clone, Copy, ValueEnum)]
enum PartArg {
    Decoder,
    Encoder,
}

/// Write a checkpoint's decoder (or encoder) as an ONNX model.
#[derive(Args)]
pub struct ExportArgs {
    /// The ONNX file to write.
    out: PathBuf,
    /// A checkpoint written by `train`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// decoder (z -> image) or encoder (image -> mu, logvar).
    #[arg(long, value_enum, default_value = "decoder")]
    part: PartArg,
}

pub fn export_onnx(a: ExportArgs) -> Result<()> {
    let model = load_model(&a.checkpoint)?;
    let part = match a.part {
        PartArg::Decoder => export::Part::Decoder,
        PartArg::Encoder => export::Part::Encoder,
    };
    let proto = export::export(&model, part)?;
    let problems = check_model(&proto);
    if !problems.is_empty() {
        bail!(
            "the exported graph is malformed (a bug): {}",
            problems.join("; ")
        );
    }
    export::write(&a.out, &proto)?;
    let graph = proto.graph.as_ref().expect("export builds a graph");
    println!(
        "wrote {} ({} nodes, {} initializers, opset {}, batch dimension \"N\")",
        a.out.display(),
        graph.node.len(),
        graph.initializer.len(),
        export::OPSET
    );
    Ok(())
}

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
    #[arg(long, default_value_t = 1e-4)]
    tolerance: f32,
}

pub fn verify_onnx(a: VerifyArgs) -> Result<()> {
    let mut model = load_model(&a.checkpoint)?;
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
        let diff = out
            .values
            .iter()
            .zip(want.value().iter())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        println!("batch {batch}: max |tract - engine| = {diff:.3e}");
        worst = worst.max(diff);
    }
    if !(worst <= a.tolerance) {
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

/// Decode random faces with an ONNX decoder, using tract only.
#[derive(Args)]
pub struct GenerateArgs {
    /// The ONNX decoder written by `export-onnx`.
    #[arg(long)]
    onnx: PathBuf,
    /// Number of faces.
    #[arg(long, default_value_t = 16)]
    n: usize,
    /// Seed of the latents z ~ N(0, I).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Faces per row.
    #[arg(long, default_value_t = 8)]
    cols: usize,
    /// Enlarge each face by this integer factor.
    #[arg(long, default_value_t = 2)]
    scale: u32,
    /// The PNG to write.
    #[arg(long, default_value = "generated.png")]
    out: PathBuf,
}

pub fn generate(a: GenerateArgs) -> Result<()> {
    if a.n == 0 || a.n > 10_000 {
        bail!("--n must be between 1 and 10000, got {}", a.n);
    }
    let onnx = OnnxModel::load(&a.onnx)?;
    let latent_size = onnx.input_width()?;
    let z = latent::prior_samples(a.n, latent_size, a.seed, 1.0);
    let out = onnx.run(z.shape(), z.iter().copied().collect())?;
    let Some(images) = out.first().filter(|o| o.shape.len() == 4) else {
        bail!(
            "{}: expected an image output [N, C, H, W]",
            a.onnx.display()
        )
    };
    let t = vae_cpu::Tensor::from_shape_vec(images.shape.clone(), images.values.clone())?;
    let range = if onnx.symmetric_pixels() {
        vae_cpu::config::PixelRange::Symmetric
    } else {
        vae_cpu::config::PixelRange::Unit
    };
    save(
        &a.out,
        &viz::grid(&viz::to_images(&t, range), a.cols, a.scale.clamp(1, 16)),
    )
}
