//! `activations`: the feature maps after each convolution of the encoder and each
//! transposed convolution of the decoder for one image, one labeled grid per layer.

use super::images::OneImage;
use super::save;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use vae_cpu::latent::activations::activation_maps;
use vae_cpu::viz::{self, feature_maps::feature_map_grid};

/// Feature maps of every convolution layer for one image.
#[derive(Args)]
pub struct ActivationsArgs {
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    #[command(flatten)]
    image: OneImage,
    /// Show at most this many channels per layer (1 to 4096).
    #[arg(long, default_value_t = 32, value_parser = super::usize_in(1..=4096))]
    max_maps: usize,
    /// Maps per row (1 to 1024).
    #[arg(long, default_value_t = 8, value_parser = super::usize_in(1..=1024))]
    cols: usize,
    /// Enlarge each map this many times, 1 to 32 (maps under 48 pixels are enlarged to
    /// about 48, and none beyond 64 times).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=32))]
    scale: u32,
    /// Folder for the pictures (one PNG per layer, plus the input and its reconstruction).
    /// `--out`, as in every command (`--out-dir` still works).
    #[arg(
        long = "out",
        alias = "out-dir",
        value_name = "FOLDER",
        default_value = "activations"
    )]
    out_dir: PathBuf,
}

pub fn run(a: ActivationsArgs) -> Result<()> {
    let mut inputs = a.image.inputs().to_vec();
    inputs.push(("--checkpoint", Some(&a.checkpoint.path)));
    super::check_files(&inputs, &[])?;
    let mut model = a.checkpoint.load_model()?;
    let (x, name) = a.image.load(&model)?;
    if a.out_dir.exists() && !a.out_dir.is_dir() {
        anyhow::bail!(
            "--out {}: is a file, not a folder; give a folder path (a new one is created)",
            a.out_dir.display()
        );
    }
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("cannot create {}", a.out_dir.display()))?;
    let layers = activation_maps(&mut model, &x);
    let range = model.config.data.pixel_range;
    let z = vae_cpu::latent::encode_means(&mut model, &x);
    let recon = vae_cpu::latent::decode(&mut model, &z);
    let mut pair = viz::to_images(&x, range);
    pair.extend(viz::to_images(&recon, range));
    save(
        &a.out_dir.join("input.png"),
        &viz::titled(&format!("{name}, reconstruction"), &viz::grid(&pair, 2, 4)),
    )?;
    for (i, layer) in layers.iter().enumerate() {
        let s = layer.maps.shape();
        let (c, h, w) = (s[1], s[2], s[3]);
        let scale = a.scale.max((48 / h.max(1)) as u32).min(64);
        let title = format!(
            "{name} {}: {c} maps of {h}x{w}{}",
            layer.name,
            if c > a.max_maps {
                format!(", first {}", a.max_maps)
            } else {
                String::new()
            }
        );
        let picture = feature_map_grid(&title, &layer.maps, 0, a.max_maps, a.cols, scale);
        let file = format!("{i:02}-{}.png", layer.name.replace([' ', '.'], "-"));
        save(&a.out_dir.join(file), &picture)?;
    }
    Ok(())
}
