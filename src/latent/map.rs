//! Latent maps: the latent means of some images projected to 2-D (PCA, and t-SNE for the
//! non-linear picture), drawn as scatter plots colored by an attribute, with the
//! coordinates as CSV. A model with a 2-d latent gets the classic pictures instead: the
//! latent means themselves, and the decoded manifold (a grid of z values decoded).

use super::pca::Pca;
use super::tsne::{tsne, TsneOptions};
use crate::data::Dataset;
use crate::model::Vae;
use crate::viz::{self, scatter};
use crate::{Error, Result, Tensor};
use indicatif::ProgressBar;
use ndarray::Array2;

/// Which pictures a map holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projection {
    /// The 2-d latent itself, beside the decoded manifold (2-d latents only).
    Latent,
    Pca,
    Tsne,
    /// PCA and t-SNE side by side.
    Both,
}

impl Projection {
    /// `Latent` for a 2-d latent, else `Both`.
    pub fn default_for(latent: usize) -> Projection {
        if latent == 2 {
            Projection::Latent
        } else {
            Projection::Both
        }
    }
}

pub struct MapOptions {
    pub projection: Projection,
    /// The attribute that colors the points, or the common prefix of a group of one-hot
    /// attributes (MNIST: `digit` for digit_0..digit_9).
    pub attr: String,
    /// The split's name, for titles and the CSV.
    pub split: String,
    pub tsne: TsneOptions,
    /// Manifold: images per side, and the z range -span..span on both axes.
    pub grid: usize,
    pub span: f32,
}

/// The map's panels (side by side in one PNG) and the CSV of every point's coordinates.
pub struct LatentMap {
    pub image: image::RgbImage,
    pub csv: String,
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
pub struct Coloring {
    names: Vec<String>,
    colors: Vec<[u8; 3]>,
    class_of: Vec<usize>,
    labels: Vec<String>,
}

impl Coloring {
    /// One attribute (with, without, unknown), or a group `ATTR_*` of one-hot attributes.
    pub fn new(ds: &Dataset, attr: &str, idx: &[usize]) -> Result<Coloring> {
        let prefix = format!("{attr}_");
        let group: Vec<usize> = (0..ds.attribute_names.len())
            .filter(|&j| ds.attribute_names[j].starts_with(&prefix))
            .collect();
        if ds.attribute_index(attr).is_err() && group.len() >= 2 {
            return Ok(Self::one_hot(ds, &group, idx));
        }
        let column = ds.attribute_index(attr)?;
        let attr = &ds.attribute_names[column];
        let values = ds.attribute_of(idx, column);
        let class_of = values
            .iter()
            .map(|v| match v {
                -1 => 0,
                1 => 1,
                _ => 2,
            })
            .collect();
        let labels = values.iter().map(i8::to_string).collect();
        Ok(Coloring {
            names: vec![format!("not {attr}"), attr.clone(), "unknown".into()],
            colors: vec![WITHOUT, WITH, UNKNOWN],
            class_of,
            labels,
        })
    }

    /// A group of one-hot attribute columns: one class (and palette color) per column.
    fn one_hot(ds: &Dataset, group: &[usize], idx: &[usize]) -> Coloring {
        let mut names: Vec<String> = group
            .iter()
            .map(|&j| ds.attribute_names[j].clone())
            .collect();
        names.push("unknown".into());
        let class_of: Vec<usize> = idx
            .iter()
            .map(|&i| {
                (group.iter())
                    .position(|&j| ds.attribute(i, j) == 1)
                    .unwrap_or(group.len())
            })
            .collect();
        let labels = class_of.iter().map(|&c| names[c].clone()).collect();
        let mut colors: Vec<[u8; 3]> = (0..group.len())
            .map(|k| PALETTE[k % PALETTE.len()])
            .collect();
        colors.push(UNKNOWN);
        Coloring {
            names,
            colors,
            class_of,
            labels,
        }
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
pub fn manifold(model: &mut Vae, n: usize, span: f32) -> image::RgbImage {
    let at = |k: usize| -span + 2.0 * span * k as f32 / (n - 1) as f32;
    let z = Tensor::from_shape_fn(vec![n * n, 2], |d| {
        let (row, col) = (d[0] / n, d[0] % n);
        if d[1] == 0 {
            at(col)
        } else {
            at(n - 1 - row)
        }
    });
    let images = viz::to_images(&super::decode(model, &z), model.config.data.pixel_range);
    let side = n as u32 * images[0].height();
    let img = viz::grid(&images, n, (500 / side).max(1));
    viz::titled(
        &format!("decoded z, both axes from -{span} to {span} (z2 up)"),
        &img,
    )
}

/// The map of the images `idx` of `ds`, whose latent means are `mu` (`[N, latent]`).
/// `bar` follows t-SNE's steps.
pub fn latent_map(
    model: &mut Vae,
    ds: &Dataset,
    idx: &[usize],
    mu: &Tensor,
    opts: &MapOptions,
    bar: &ProgressBar,
) -> Result<LatentMap> {
    let latent = mu.shape()[1];
    if opts.projection == Projection::Latent && latent != 2 {
        return Err(Error::Invalid(format!(
            "the latent projection needs a model with a 2-d latent; this one has {latent} (use pca or tsne)"
        )));
    }
    let coloring = Coloring::new(ds, &opts.attr, idx)?;
    // A 1-d latent is drawn on a line: a constant second coordinate makes it 2-d.
    let z = Array2::from_shape_fn((idx.len(), latent.max(2)), |(i, d)| {
        if d < latent {
            mu[[i, d]] as f64
        } else {
            0.0
        }
    });
    let title = format!("{} latent means ({} split)", idx.len(), opts.split);
    let mut panels = vec![];
    let mut columns: Vec<(&str, Array2<f64>)> = vec![];
    let p = opts.projection;
    if p == Projection::Latent {
        let classes = coloring.classes(&z);
        panels.push(scatter::scatter(
            &title,
            "z1 (z2 vertical)",
            &classes,
            640,
            520,
        ));
        panels.push(manifold(model, opts.grid, opts.span));
        columns.push(("z", z.clone()));
    }
    if p == Projection::Pca || p == Projection::Both {
        let (panel, xy) = pca_panel(&z, &title, &coloring);
        panels.push(panel);
        columns.push(("pca", xy));
    }
    if p == Projection::Tsne || p == Projection::Both {
        let (panel, xy) = tsne_panel(&z, &title, &coloring, &opts.tsne, bar);
        panels.push(panel);
        columns.push(("tsne", xy));
    }
    Ok(LatentMap {
        image: viz::side_by_side(&panels),
        csv: csv(ds, idx, opts, &coloring, &columns),
    })
}

fn pca_panel(z: &Array2<f64>, title: &str, coloring: &Coloring) -> (image::RgbImage, Array2<f64>) {
    let pca = Pca::fit(z, 2);
    let share = |i: usize| 100.0 * pca.variances[i] / pca.total_variance.max(1e-12);
    let xy = pca.project(z);
    let panel = scatter::scatter(
        &format!("PCA of {title}; PC2 holds {:.1}% of the variance", share(1)),
        &format!("PC1 ({:.1}% of the variance)", share(0)),
        &coloring.classes(&xy),
        640,
        520,
    );
    (panel, xy)
}

fn tsne_panel(
    z: &Array2<f64>,
    title: &str,
    coloring: &Coloring,
    opts: &TsneOptions,
    bar: &ProgressBar,
) -> (image::RgbImage, Array2<f64>) {
    let xy = tsne_coordinates(z, opts, bar);
    let panel = scatter::scatter(
        &format!("t-SNE of {title}, perplexity {}", opts.perplexity),
        "t-SNE axis 1 (axis 2 vertical); only neighborhoods are meaningful",
        &coloring.classes(&xy),
        640,
        520,
    );
    (panel, xy)
}

/// The 2-d t-SNE embedding of the rows of `z`, run on their first 50 principal components
/// as van der Maaten recommends.
pub fn tsne_coordinates(z: &Array2<f64>, opts: &TsneOptions, bar: &ProgressBar) -> Array2<f64> {
    let reduced = if z.ncols() > 50 {
        Pca::fit(z, 50).project(z)
    } else {
        z.clone()
    };
    tsne(&reduced, opts, bar)
}

/// `name,split,ATTR,<projection>1,<projection>2,...`, one row per image.
fn csv(
    ds: &Dataset,
    idx: &[usize],
    opts: &MapOptions,
    coloring: &Coloring,
    columns: &[(&str, Array2<f64>)],
) -> String {
    let mut csv = format!("name,split,{}", opts.attr);
    for (name, _) in columns {
        csv.push_str(&format!(",{name}1,{name}2"));
    }
    csv.push('\n');
    for (row, &i) in idx.iter().enumerate() {
        let label = &coloring.labels[row];
        csv.push_str(&format!("{},{},{label}", ds.names[i], opts.split));
        for (_, xy) in columns {
            csv.push_str(&format!(",{},{}", xy[[row, 0]], xy[[row, 1]]));
        }
        csv.push('\n');
    }
    csv
}
