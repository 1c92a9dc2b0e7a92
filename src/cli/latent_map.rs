//! `latent-map`: the latent means of a split projected to 2-D (PCA, and t-SNE for the
//! non-linear picture), drawn as scatter plots colored by an attribute with the two class
//! means marked; the coordinates go to a CSV beside the PNG.

use super::explore::{load_model, save};
use super::images::{open_data, split_indices};
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use ndarray::Array2;
use std::path::PathBuf;
use vae_cpu::latent;
use vae_cpu::latent::pca::Pca;
use vae_cpu::latent::tsne::{tsne, TsneOptions};
use vae_cpu::viz::{self, scatter};

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Method {
    Pca,
    Tsne,
    Both,
}

/// Scatter plot of the latent means, colored by an attribute.
#[derive(Args)]
pub struct LatentMapArgs {
    /// A checkpoint written by `train`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// A cache from `vae-cpu prepare` (or a CelebA folder) with attributes.
    #[arg(long)]
    data: PathBuf,
    /// The attribute that colors the points, e.g. Attractive.
    #[arg(long)]
    attr: String,
    /// Split whose images are mapped (train, val or test).
    #[arg(long, default_value = "val")]
    split: String,
    /// Map at most this many images (t-SNE costs grow with the square of this).
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// The projection: pca, tsne, or both side by side.
    #[arg(long, value_enum, default_value = "both")]
    method: Method,
    /// t-SNE perplexity (about the number of neighbors each point keeps close).
    #[arg(long, default_value_t = 30.0)]
    perplexity: f64,
    /// t-SNE gradient steps.
    #[arg(long, default_value_t = 1000)]
    iterations: usize,
    /// Seed of the t-SNE starting positions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// The PNG to write; a CSV of the coordinates is written beside it.
    #[arg(long, default_value = "latent-map.png")]
    out: PathBuf,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

const WITH: [u8; 3] = [230, 120, 20];
const WITHOUT: [u8; 3] = [40, 110, 200];
const UNKNOWN: [u8; 3] = [170, 170, 170];

/// The points split by label into the classes of the plot.
fn classes(attr: &str, xy: &Array2<f64>, labels: &[i8]) -> Vec<scatter::Class> {
    let pick = |l: i8| -> Vec<(f64, f64)> {
        labels
            .iter()
            .enumerate()
            .filter(|&(_, &x)| x == l)
            .map(|(i, _)| (xy[[i, 0]], xy[[i, 1]]))
            .collect()
    };
    let mut out = vec![
        scatter::Class {
            name: format!("not {attr}"),
            color: WITHOUT,
            points: pick(-1),
        },
        scatter::Class {
            name: attr.to_string(),
            color: WITH,
            points: pick(1),
        },
    ];
    let unknown = pick(0);
    if !unknown.is_empty() {
        out.push(scatter::Class {
            name: "unknown".into(),
            color: UNKNOWN,
            points: unknown,
        });
    }
    out
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
    let pool = super::pool(a.threads)?;
    let mut model = load_model(&a.checkpoint)?;
    let ds = open_data(&a.data, &model, a.quiet)?;
    let column = ds.attribute_index(&a.attr)?;
    let attr = ds.attribute_names[column].clone();
    let idx = split_indices(&ds, &a.split, Some(a.limit))?;
    if idx.len() < 3 {
        bail!(
            "a map needs at least 3 images; the {} split has {}",
            a.split,
            idx.len()
        );
    }
    let labels: Vec<i8> = idx.iter().map(|&i| ds.attribute(i, column)).collect();
    let bar = vae_cpu::progress::bar(0, "images", a.quiet);
    bar.set_prefix("encoding");
    let (mu, _) = pool.install(|| latent::encode_images(&mut model, &ds, &idx, 256, &bar));
    // A 1-d latent is drawn on a line: a constant second coordinate makes it 2-d.
    let latent = mu.shape()[1];
    let z = Array2::from_shape_fn((idx.len(), latent.max(2)), |(i, d)| {
        if d < latent {
            mu[[i, d]] as f64
        } else {
            0.0
        }
    });
    let title = format!("{} latent means ({} split)", idx.len(), a.split);
    let mut panels = vec![];
    let mut columns: Vec<(String, Array2<f64>)> = vec![];
    if a.method != Method::Tsne {
        let pca = Pca::fit(&z, 2);
        let share = |i: usize| 100.0 * pca.variances[i] / pca.total_variance.max(1e-12);
        let xy = pca.project(&z);
        panels.push(scatter::scatter(
            &format!("PCA of {title}; PC2 holds {:.1}% of the variance", share(1)),
            &format!("PC1 ({:.1}% of the variance)", share(0)),
            &classes(&attr, &xy, &labels),
            640,
            520,
        ));
        columns.push(("pca".into(), xy));
    }
    if a.method != Method::Pca {
        // t-SNE on the first 50 principal components, as van der Maaten recommends.
        let reduced = if z.ncols() > 50 {
            Pca::fit(&z, 50).project(&z)
        } else {
            z.clone()
        };
        let opts = TsneOptions {
            perplexity: a.perplexity,
            iterations: a.iterations.clamp(1, 10_000),
            seed: a.seed,
        };
        let bar = vae_cpu::progress::bar(0, "steps", a.quiet);
        bar.set_prefix("t-SNE");
        let xy = pool.install(|| tsne(&reduced, &opts, &bar));
        panels.push(scatter::scatter(
            &format!("t-SNE of {title}, perplexity {}", a.perplexity),
            "t-SNE axis 1 (axis 2 vertical); only neighborhoods are meaningful",
            &classes(&attr, &xy, &labels),
            640,
            520,
        ));
        columns.push(("tsne".into(), xy));
    }
    let mut csv = String::from("name,split,");
    csv.push_str(&attr);
    for (name, _) in &columns {
        csv.push_str(&format!(",{name}1,{name}2"));
    }
    csv.push('\n');
    for (row, &i) in idx.iter().enumerate() {
        csv.push_str(&format!("{},{},{}", ds.names[i], a.split, labels[row]));
        for (_, xy) in &columns {
            csv.push_str(&format!(",{},{}", xy[[row, 0]], xy[[row, 1]]));
        }
        csv.push('\n');
    }
    let csv_path = a.out.with_extension("csv");
    vae_cpu::atomic_file::write(&csv_path, csv.as_bytes())?;
    println!("wrote {}", csv_path.display());
    save(&a.out, &viz::side_by_side(&panels))
}
