//! `export-onnx`: the decoder or encoder of a checkpoint as an ONNX file. `verify-onnx`
//! (tract must match the engine) is in `verify.rs`, `generate` (tract alone, no engine) in
//! `generate.rs`.

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use vae_cpu::onnx::{check::check_model, export};

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
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    /// decoder (z -> image) or encoder (image -> mu, logvar).
    #[arg(long, value_enum, default_value = "decoder")]
    part: PartArg,
    /// Write each transposed convolution as one ConvTranspose node, as the layer is
    /// defined. By default each is written as the same function in sub-pixel form (a
    /// stride-1 Conv, then DepthToSpace and Slice when strided), which tract runs faster;
    /// onnxruntime runs the literal form faster (docs/onnx-edge.md). This also keeps PReLU
    /// as one PRelu node (by default `Max(x, a·x)`).
    #[arg(long)]
    plain_conv_transpose: bool,
    /// Keep each batch norm as a BatchNormalization node. By default one that follows a
    /// Conv, ConvTranspose or Gemm is folded into its weights (the same function, one
    /// node less).
    #[arg(long)]
    keep_batch_norm: bool,
}

impl ExportArgs {
    fn options(&self) -> export::ExportOptions {
        export::ExportOptions {
            fast_layers: !self.plain_conv_transpose,
            fold_batch_norm: !self.keep_batch_norm,
        }
    }
}

pub fn export_onnx(a: ExportArgs) -> Result<()> {
    super::check_files(
        &[("--checkpoint", Some(&a.checkpoint.path))],
        &[("the ONNX file", Some(&a.out))],
    )?;
    let model = a.checkpoint.load_model()?;
    let part = match a.part {
        PartArg::Decoder => export::Part::Decoder,
        PartArg::Encoder => export::Part::Encoder,
    };
    let proto = export::export(&model, part, &a.options())?;
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
