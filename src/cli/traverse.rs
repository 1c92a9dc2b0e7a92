//! `traverse`: one face, one latent dimension at a time swept over a range, the dimensions
//! ranked by their average KL (most informative first).

use super::images::{open_data, split_indices, OneImage};
use super::save;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use vae_cpu::latent::{self, traverse};
use vae_cpu::viz;

/// Vary one latent dimension at a time around one image's latent mean.
#[derive(Args)]
pub struct TraverseArgs {
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    #[command(flatten)]
    image: OneImage,
    /// Which dimensions, by KL rank (0 = the most informative): A..B or a list 0,3,5
    /// [default: 0..16, or all of a smaller latent].
    #[arg(long)]
    dims: Option<String>,
    /// The values z[d] is set to, as START:END:COUNT.
    #[arg(long, default_value = "-3:3:9", allow_hyphen_values = true)]
    range: String,
    /// Rank the dimensions by their KL over this many images of --split of --data
    /// (at least 1; without --data: by the KL of the image itself).
    #[arg(long, default_value_t = 1000, value_parser = super::usize_in(1..=u32::MAX as u64))]
    kl_images: usize,
    /// Enlarge each face by this integer factor (1 to 16).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    scale: u32,
    /// The PNG to write; a CSV of the ranking is written beside it.
    #[arg(long, default_value = "traverse.png")]
    out: PathBuf,
}

pub fn run(a: TraverseArgs) -> Result<()> {
    let csv_path = a.out.with_extension("csv");
    let mut inputs = a.image.inputs().to_vec();
    inputs.push(("--checkpoint", Some(&a.checkpoint.path)));
    super::check_files(
        &inputs,
        &[
            ("--out", Some(&a.out)),
            ("the ranking CSV", Some(&csv_path)),
        ],
    )?;
    let values = traverse::parse_range(&a.range)?;
    let mut model = a.checkpoint.load_model()?;
    let latent_size = model.config.model.latent;
    let (x, name) = a.image.load(&model)?;
    let dims = a
        .dims
        .unwrap_or_else(|| format!("0..{}", latent_size.min(16)));
    let ranks = traverse::parse_ranks(&dims, latent_size)?;
    // The image's posterior: its mean is the point traversed, and without --data its
    // per-dimension KL ranks the dimensions.
    let (image_mu, image_logvar) = {
        let tape = vae_cpu::Tape::no_grad();
        let (m, lv) = model.encode(&tape, &vae_cpu::Var::constant(x), vae_cpu::nn::Mode::Eval);
        (m.value().clone(), lv.value().clone())
    };
    let (mu, logvar) = match &a.image.data {
        Some(data) => {
            let ds = open_data(data, &model, true)?;
            let idx = split_indices(&ds, &a.image.split, Some(a.kl_images))?;
            let bar = vae_cpu::progress::bar(0, "images", false);
            latent::encode_images(&mut model, &ds, &idx, 256, &bar)
        }
        None => (image_mu.clone(), image_logvar),
    };
    let kl = traverse::kl_per_dimension(&mu, &logvar);
    let order = traverse::rank_by_kl(&kl);
    let z = latent::row(&image_mu, 0);
    let range = model.config.data.pixel_range;
    let mut rows = vec![];
    for &rank in &ranks {
        let d = order[rank];
        let decoded = latent::decode(&mut model, &traverse::traversal(&z, d, &values));
        rows.push((
            format!("z{d} KL {:.2}", kl[d]),
            viz::to_images(&decoded, range),
        ));
    }
    let columns: Vec<String> = values.iter().map(|&v| traverse::value_label(v)).collect();
    let picture = viz::titled(
        &format!("{name}: one latent dimension at a time, most informative first"),
        &viz::labeled_grid(&columns, &rows, a.scale),
    );
    let mut csv = String::from("rank,dimension,kl,z\n");
    for (rank, &d) in order.iter().enumerate() {
        csv.push_str(&format!("{rank},{d},{},{}\n", kl[d], z[d]));
    }
    vae_cpu::atomic_file::write(&csv_path, csv.as_bytes())?;
    println!("wrote {}", csv_path.display());
    save(&a.out, &picture)
}
