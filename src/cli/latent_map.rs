//! `latent-map`: the latent means of a split projected to 2-D (PCA, and t-SNE for the
//! non-linear picture), drawn as scatter plots colored by an attribute with the class
//! means marked; the coordinates go to a CSV beside the PNG. A model with a 2-d latent
//! (models/mnist-mlp.toml) gets the classic pictures instead: the latent means themselves,
//! and the decoded manifold (a grid of z values decoded to images).

use super::images::{open_data, split_indices};
use super::save;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use ndarray::Array2;
use std::path::PathBuf;
use vae_cpu::checkpoint::Checkpoint;
use vae_cpu::data::{Dataset, Split};
use vae_cpu::latent;
use vae_cpu::latent::pca::Pca;
use vae_cpu::latent::tsne::{tsne, TsneOptions};
use vae_cpu::viz::{self, scatter};

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
    /// A checkpoint written by `train`.
    #[arg(long)]
    checkpoint: PathBuf,
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
/// Colors of a group of one-hot attributes (matplotlib's tab10), repeated beyond ten.
const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// How the points are colored: the classes' names and colors, each point's class, and the
/// label written to the CSV for each point.
struct Coloring {
    names: Vec<String>,
    colors: Vec<[u8; 3]>,
    class_of: Vec<usize>,
    labels: Vec<String>,
}

impl Coloring {
    /// One attribute (with, without, unknown), or a group `ATTR_*` of one-hot attributes.
    fn new(ds: &Dataset, attr: &str, idx: &[usize]) -> Result<Coloring> {
        let prefix = format!("{attr}_");
        let group: Vec<usize> = (0..ds.attribute_names.len())
            .filter(|&j| ds.attribute_names[j].starts_with(&prefix))
            .collect();
        if ds.attribute_index(attr).is_err() && group.len() >= 2 {
            let mut names: Vec<String> = group
                .iter()
                .map(|&j| ds.attribute_names[j].clone())
                .collect();
            let class_of: Vec<usize> = idx
                .iter()
                .map(|&i| {
                    group
                        .iter()
                        .position(|&j| ds.attribute(i, j) == 1)
                        .unwrap_or(group.len())
                })
                .collect();
            names.push("unknown".into());
            let labels = class_of.iter().map(|&c| names[c].clone()).collect();
            let mut colors: Vec<[u8; 3]> = (0..group.len())
                .map(|k| PALETTE[k % PALETTE.len()])
                .collect();
            colors.push(UNKNOWN);
            return Ok(Coloring {
                names,
                colors,
                class_of,
                labels,
            });
        }
        let column = ds.attribute_index(attr)?;
        let attr = &ds.attribute_names[column];
        let class_of: Vec<usize> = idx
            .iter()
            .map(|&i| match ds.attribute(i, column) {
                -1 => 0,
                1 => 1,
                _ => 2,
            })
            .collect();
        let labels = idx
            .iter()
            .map(|&i| ds.attribute(i, column).to_string())
            .collect();
        Ok(Coloring {
            names: vec![format!("not {attr}"), attr.clone(), "unknown".into()],
            colors: vec![WITHOUT, WITH, UNKNOWN],
            class_of,
            labels,
        })
    }

    /// The points split into the classes of the plot (empty classes left out).
    fn classes(&self, xy: &Array2<f64>) -> Vec<scatter::Class> {
        (0..self.names.len())
            .map(|c| scatter::Class {
                name: self.names[c].clone(),
                color: self.colors[c],
                points: (0..xy.nrows())
                    .filter(|&i| self.class_of[i] == c)
                    .map(|i| (xy[[i, 0]], xy[[i, 1]]))
                    .collect(),
            })
            .filter(|c| !c.points.is_empty())
            .collect()
    }
}

/// The decoded manifold of a 2-d latent: `n x n` images, z1 from -span (left) to +span
/// (right), z2 from +span (top) to -span (bottom).
fn manifold(model: &mut vae_cpu::model::Vae, n: usize, span: f32) -> image::RgbImage {
    let at = |k: usize| -span + 2.0 * span * k as f32 / (n - 1) as f32;
    let z = vae_cpu::Tensor::from_shape_fn(vec![n * n, 2], |d| {
        let (row, col) = (d[0] / n, d[0] % n);
        if d[1] == 0 {
            at(col)
        } else {
            at(n - 1 - row)
        }
    });
    let images = viz::to_images(&latent::decode(model, &z), model.config.data.pixel_range);
    let side = n as u32 * images[0].height();
    let img = viz::grid(&images, n, (500 / side).max(1));
    viz::titled(
        &format!("decoded z, both axes from -{span} to {span} (z2 up)"),
        &img,
    )
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
            ("--checkpoint", Some(&a.checkpoint)),
            ("--data", Some(&a.data)),
        ],
        &[
            ("--out", Some(&a.out)),
            ("the coordinates CSV", Some(&csv_path)),
        ],
    )?;
    let pool = super::pool(a.threads)?;
    let mut model = Checkpoint::load_model(&a.checkpoint)?;
    let ds = open_data(&a.data, &model, a.quiet)?;
    let idx = split_indices(&ds, &a.split, Some(a.limit))?;
    let coloring = Coloring::new(&ds, &a.attr, &idx)?;
    let latent_dims = model.config.model.latent;
    let method = match a.method {
        Method::Auto if latent_dims == 2 => Method::Latent,
        Method::Auto => Method::Both,
        Method::Latent if latent_dims != 2 => bail!(
            "--method latent needs a model with a 2-d latent; this one has {latent_dims} (use pca or tsne)"
        ),
        m => m,
    };
    if idx.len() < 3 {
        bail!(
            "a map needs at least 3 images; {} of the {} split's {} images are used (--limit {})",
            idx.len(),
            a.split,
            Split::parse(&a.split).map_or(0, |s| ds.indices(s).len()),
            a.limit
        );
    }
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
    if method == Method::Latent {
        panels.push(scatter::scatter(
            &title,
            "z1 (z2 vertical)",
            &coloring.classes(&z),
            640,
            520,
        ));
        columns.push(("z".into(), z.clone()));
        panels.push(pool.install(|| manifold(&mut model, a.grid as usize, a.span)));
    }
    if method == Method::Pca || method == Method::Both {
        let pca = Pca::fit(&z, 2);
        let share = |i: usize| 100.0 * pca.variances[i] / pca.total_variance.max(1e-12);
        let xy = pca.project(&z);
        panels.push(scatter::scatter(
            &format!("PCA of {title}; PC2 holds {:.1}% of the variance", share(1)),
            &format!("PC1 ({:.1}% of the variance)", share(0)),
            &coloring.classes(&xy),
            640,
            520,
        ));
        columns.push(("pca".into(), xy));
    }
    if method == Method::Tsne || method == Method::Both {
        // t-SNE on the first 50 principal components, as van der Maaten recommends.
        let reduced = if z.ncols() > 50 {
            Pca::fit(&z, 50).project(&z)
        } else {
            z.clone()
        };
        let opts = TsneOptions {
            perplexity: a.perplexity,
            iterations: a.iterations,
            seed: a.seed,
        };
        let bar = vae_cpu::progress::bar(0, "steps", a.quiet);
        bar.set_prefix("t-SNE");
        let xy = pool.install(|| tsne(&reduced, &opts, &bar));
        panels.push(scatter::scatter(
            &format!("t-SNE of {title}, perplexity {}", a.perplexity),
            "t-SNE axis 1 (axis 2 vertical); only neighborhoods are meaningful",
            &coloring.classes(&xy),
            640,
            520,
        ));
        columns.push(("tsne".into(), xy));
    }
    let mut csv = String::from("name,split,");
    csv.push_str(&a.attr);
    for (name, _) in &columns {
        csv.push_str(&format!(",{name}1,{name}2"));
    }
    csv.push('\n');
    for (row, &i) in idx.iter().enumerate() {
        csv.push_str(&format!(
            "{},{},{}",
            ds.names[i], a.split, coloring.labels[row]
        ));
        for (_, xy) in &columns {
            csv.push_str(&format!(",{},{}", xy[[row, 0]], xy[[row, 1]]));
        }
        csv.push('\n');
    }
    vae_cpu::atomic_file::write(&csv_path, csv.as_bytes())?;
    println!("wrote {}", csv_path.display());
    save(&a.out, &viz::side_by_side(&panels))
}
