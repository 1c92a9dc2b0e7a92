//! `latent-map`: the latent means of a split projected to 2-D, drawn colored by an
//! attribute, the coordinates in a CSV beside the PNG (the work is in
//! `vae_cpu::latent::map`).

use super::images::{open_data, split_indices};
use super::save;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use vae_cpu::data::Split;
use vae_cpu::latent;
use vae_cpu::latent::map::{latent_map, MapOptions, Projection};
use vae_cpu::latent::tsne::TsneOptions;

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Method {
    /// `latent` for a 2-d latent, else `both`.
    Auto,
    /// The 2-d latent itself, beside the decoded manifold (2-d latents only).
    Latent,
    Pca,
    Tsne,
    Both,
}

/// Scatter plot of the latent means, colored by an attribute.
#[derive(Args)]
pub struct LatentMapArgs {
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    /// A cache from `vae-cpu prepare` (or a CelebA folder) with attributes.
    #[arg(long)]
    data: PathBuf,
    /// The attribute that colors the points, e.g. Attractive; or the common prefix of a
    /// group of one-hot attributes, one color each (MNIST: `digit` for digit_0..digit_9).
    #[arg(long)]
    attr: String,
    /// Split whose images are mapped (train, val or test).
    #[arg(long, default_value = "val")]
    split: String,
    /// Map at most this many images (t-SNE costs grow with the square of this).
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// The projection: pca, tsne, both side by side, or latent (the 2-d latent itself and
    /// its decoded manifold); auto picks latent for a 2-d latent and both otherwise.
    #[arg(long, value_enum, default_value = "auto")]
    method: Method,
    /// Manifold (2-d latents): decoded images per side of the grid.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=40))]
    grid: u64,
    /// Manifold (2-d latents): the grid spans z from -SPAN to +SPAN on both axes (prior
    /// standard deviations).
    #[arg(long, default_value_t = 2.0, value_parser = super::non_negative)]
    span: f32,
    /// t-SNE perplexity (about the number of neighbors each point keeps close).
    #[arg(long, default_value_t = 30.0)]
    perplexity: f64,
    /// t-SNE gradient steps (1 to 10000).
    #[arg(long, default_value_t = 1000, value_parser = super::usize_in(1..=10_000))]
    iterations: usize,
    /// Seed of the t-SNE starting positions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    workers: super::flags::Workers,
    /// The PNG to write; a CSV of the coordinates is written beside it.
    #[arg(long, default_value = "latent-map.png")]
    out: PathBuf,
}

pub fn run(a: LatentMapArgs) -> Result<()> {
    if !(5.0..=100.0).contains(&a.perplexity) {
        bail!(
            "--perplexity must be between 5 and 100, got {}",
            a.perplexity
        );
    }
    if !(2..=20_000).contains(&a.limit) {
        bail!("--limit must be between 2 and 20000, got {}", a.limit);
    }
    let csv_path = a.out.with_extension("csv");
    super::check_files(
        &[
            ("--checkpoint", Some(&a.checkpoint.path)),
            ("--data", Some(&a.data)),
        ],
        &[
            ("--out", Some(&a.out)),
            ("the coordinates CSV", Some(&csv_path)),
        ],
    )?;
    let pool = a.workers.pool()?;
    let mut model = a.checkpoint.load_model()?;
    let latent_dims = model.config.model.latent;
    let projection = match a.method {
        Method::Auto => Projection::default_for(latent_dims),
        Method::Latent if latent_dims != 2 => bail!(
            "--method latent needs a model with a 2-d latent; this one has {latent_dims} (use pca or tsne)"
        ),
        Method::Latent => Projection::Latent,
        Method::Pca => Projection::Pca,
        Method::Tsne => Projection::Tsne,
        Method::Both => Projection::Both,
    };
    let ds = open_data(&a.data, &model, a.workers.quiet)?;
    let idx = split_indices(&ds, &a.split, Some(a.limit))?;
    if idx.len() < 3 {
        bail!(
            "a map needs at least 3 images; {} of the {} split's {} images are used (--limit {})",
            idx.len(),
            a.split,
            Split::parse(&a.split).map_or(0, |s| ds.indices(s).len()),
            a.limit
        );
    }
    let opts = MapOptions {
        projection,
        attr: a.attr.clone(),
        split: a.split.clone(),
        tsne: TsneOptions {
            perplexity: a.perplexity,
            iterations: a.iterations,
            seed: a.seed,
        },
        grid: a.grid as usize,
        span: a.span,
    };
    let map = pool.install(|| {
        let bar = vae_cpu::progress::bar(0, "images", a.workers.quiet);
        bar.set_prefix("encoding");
        let (mu, _) = latent::encode_images(&mut model, &ds, &idx, 256, &bar);
        let uses_tsne = matches!(projection, Projection::Tsne | Projection::Both);
        let bar = vae_cpu::progress::bar(0, "steps", a.workers.quiet || !uses_tsne);
        bar.set_prefix("t-SNE");
        latent_map(&mut model, &ds, &idx, &mu, &opts, &bar)
    })?;
    vae_cpu::atomic_file::write(&csv_path, map.csv.as_bytes())?;
    println!("wrote {}", csv_path.display());
    save(&a.out, &map.image)
}
