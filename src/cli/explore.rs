//! Latent-space commands: `sample`, `reconstruct`, `interpolate`. Each reads a checkpoint
//! and writes one PNG grid.

use super::images::ImageSource;
use super::save;
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use vae_cpu::data::prepare::CELEBA_CROP_FRACTION;
use vae_cpu::latent;
use vae_cpu::viz;

/// Decode a grid of faces from z ~ N(0, T^2 I).
#[derive(Args)]
pub struct SampleArgs {
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    /// Number of faces.
    #[arg(long, default_value_t = 40)]
    n: usize,
    /// Seed of the latent samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Scale of z (below 1: more typical, less varied faces).
    #[arg(long, default_value_t = 1.0, value_parser = super::non_negative)]
    temperature: f32,
    /// Conditional models: the attributes to generate, e.g. "Smiling=1,Male=-1" (+1 has
    /// it, -1 has not; the attributes not named are 0, unspecified).
    #[arg(long, value_name = "NAME=VALUE,...")]
    cond: Option<String>,
    /// Faces per row (1 to 1024).
    #[arg(long, default_value_t = 8, value_parser = super::usize_in(1..=1024))]
    cols: usize,
    /// Enlarge each face by this integer factor (1 to 16; Catmull-Rom).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    scale: u32,
    /// The PNG to write.
    #[arg(long, default_value = "samples.png")]
    out: PathBuf,
}

pub fn sample(a: SampleArgs) -> Result<()> {
    super::check_files(
        &[("--checkpoint", Some(&a.checkpoint.path))],
        &[("--out", Some(&a.out))],
    )?;
    if a.n == 0 || a.n > 10_000 {
        bail!("--n must be between 1 and 10000, got {}", a.n);
    }
    let mut model = a.checkpoint.load_model()?;
    let cond = match &a.cond {
        Some(spec) => latent::condition::parse(&model, spec)?,
        None => vec![0.0; model.config.model.conditions.len()],
    };
    let z = latent::prior_samples(a.n, model.config.model.latent, a.seed, a.temperature);
    let images = viz::to_images(
        &latent::condition::decode(&mut model, &z, &cond),
        model.config.data.pixel_range,
    );
    save(&a.out, &viz::grid(&images, a.cols, a.scale))
}

/// Inputs above their reconstructions (z = the latent mean).
#[derive(Args)]
pub struct ReconstructArgs {
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    #[command(flatten)]
    source: ImageSource,
    /// Enlarge each face by this integer factor (1 to 16).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    scale: u32,
    /// The PNG to write.
    #[arg(long, default_value = "reconstructions.png")]
    out: PathBuf,
}

pub fn reconstruct(a: ReconstructArgs) -> Result<()> {
    let mut inputs = a.source.inputs();
    inputs.push(("--checkpoint", Some(&a.checkpoint.path)));
    super::check_files(&inputs, &[("--out", Some(&a.out))])?;
    let mut model = a.checkpoint.load_model()?;
    let range = model.config.data.pixel_range;
    let (x, _) = a.source.load(&model, 16)?;
    let z = latent::encode_means(&mut model, &x);
    let recon = latent::decode(&mut model, &z);
    let grid = viz::reconstruction_grid(
        &viz::to_images(&x, range),
        &viz::to_images(&recon, range),
        8,
        a.scale,
    );
    save(&a.out, &grid)
}

/// Decode along the path between two images' latent means.
#[derive(Args)]
pub struct InterpolateArgs {
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    /// The first image.
    a: PathBuf,
    /// The second image.
    b: PathBuf,
    /// Points on the path, both ends included.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Follow the great circle (slerp) instead of the straight line.
    #[arg(long)]
    spherical: bool,
    /// Enlarge each face by this integer factor (1 to 16).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    scale: u32,
    /// The PNG to write.
    #[arg(long, default_value = "interpolation.png")]
    out: PathBuf,
}

pub fn interpolate(a: InterpolateArgs) -> Result<()> {
    super::check_files(
        &[
            ("--checkpoint", Some(&a.checkpoint.path)),
            ("the first image", Some(&a.a)),
            ("the second image", Some(&a.b)),
        ],
        &[("--out", Some(&a.out))],
    )?;
    if !(2..=100).contains(&a.steps) {
        bail!("--steps must be between 2 and 100, got {}", a.steps);
    }
    let mut model = a.checkpoint.load_model()?;
    let range = model.config.data.pixel_range;
    let x = latent::load_images(
        &model,
        &[a.a.as_path(), a.b.as_path()],
        CELEBA_CROP_FRACTION,
    )?;
    let z = latent::encode_means(&mut model, &x);
    let path = latent::interpolate(
        &latent::row(&z, 0),
        &latent::row(&z, 1),
        a.steps,
        a.spherical,
    );
    let decoded = viz::to_images(&latent::decode(&mut model, &path), range);
    let inputs = viz::to_images(&x, range);
    let rows = vec![
        ("A, B".to_string(), inputs),
        (
            if a.spherical { "slerp" } else { "lerp" }.to_string(),
            decoded,
        ),
    ];
    save(&a.out, &viz::labeled_rows(&rows, a.scale))
}
