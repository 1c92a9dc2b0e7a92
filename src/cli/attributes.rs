//! `attribute-vector` (Δ = mean latent of the images with an attribute minus the mean of
//! those without) and `morph` (decode z + nΔ for a range of n).

use super::images::{open_data, split_indices, ImageSource};
use super::save;
use anyhow::{bail, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use vae_cpu::checkpoint::Stored;
use vae_cpu::config::ClassifierConfig;
use vae_cpu::data::{Dataset, Split};
use vae_cpu::latent::attribute::AttributeVector;
use vae_cpu::latent::{self, traverse};
use vae_cpu::model::Vae;
use vae_cpu::quality::morph_score::{morph_score, morph_table, Edit};
use vae_cpu::{viz, Tensor};

/// Compute and save the latent direction of a CelebA attribute.
#[derive(Args)]
pub struct AttributeVectorArgs {
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    /// A cache from `vae-cpu prepare` (or a CelebA folder) with attributes.
    #[arg(long)]
    data: PathBuf,
    /// One of the 40 CelebA attributes, e.g. Smiling, Eyeglasses, Attractive.
    #[arg(long)]
    attr: String,
    /// Split whose images are encoded (train, val or test).
    #[arg(long, default_value = "train")]
    split: String,
    /// Use at most this many images of the split (at least 1; default: all).
    #[arg(long, value_parser = super::usize_in(1..=u32::MAX as u64))]
    limit: Option<usize>,
    /// The file to write (default: <attr>.attrvec, lower case).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    workers: super::flags::Workers,
}

/// Encodes up to `limit` images of `split` and returns their latent means and labels.
fn encode_labeled(
    model: &mut Vae,
    ds: &Dataset,
    attr: usize,
    split: &str,
    limit: Option<usize>,
    quiet: bool,
) -> Result<(Tensor, Vec<i8>)> {
    let idx = split_indices(ds, split, limit)?;
    let bar = vae_cpu::progress::bar(0, "images", quiet);
    bar.set_prefix(format!("encoding {split}"));
    let (mu, _) = latent::encode_images(model, ds, &idx, 256, &bar);
    Ok((mu, ds.attribute_of(&idx, attr)))
}

/// Δ of `attr` over a split of `ds`, with the probe accuracy on that split.
fn compute(
    model: &mut Vae,
    ds: &Dataset,
    attr: &str,
    split: &str,
    limit: Option<usize>,
    quiet: bool,
) -> Result<(AttributeVector, f64)> {
    let column = ds.attribute_index(attr)?;
    let name = ds.attribute_names[column].clone();
    let (mu, labels) = encode_labeled(model, ds, column, split, limit, quiet)?;
    let v = AttributeVector::compute(&name, &mu, &labels)?;
    let accuracy = v.probe_accuracy(&mu, &labels);
    Ok((v, accuracy))
}

pub fn attribute_vector(a: AttributeVectorArgs) -> Result<()> {
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.attrvec", a.attr.to_lowercase())));
    super::check_files(
        &[
            ("--checkpoint", Some(&a.checkpoint.path)),
            ("--data", Some(&a.data)),
        ],
        &[("--out", Some(&out))],
    )?;
    let pool = a.workers.pool()?;
    let mut model = a.checkpoint.load_model()?;
    let ds = open_data(&a.data, &model, a.workers.quiet)?;
    let (v, accuracy) =
        pool.install(|| compute(&mut model, &ds, &a.attr, &a.split, a.limit, a.workers.quiet))?;
    v.save(&out)?;
    println!(
        "{}: {} images with it, {} without ({} split); |Δ| = {:.3}",
        v.attribute,
        v.positives,
        v.negatives,
        a.split,
        v.norm()
    );
    println!(
        "linear probe (projection on Δ above the midpoint of the class means): {:.1}% right on {}",
        100.0 * accuracy,
        a.split
    );
    // The honest figure: the same probe on images Δ was not computed from.
    let other = if a.split == "train" { "val" } else { "train" };
    if Split::parse(other).is_some_and(|s| !ds.indices(s).is_empty()) {
        let column = ds.attribute_index(&v.attribute)?;
        let (mu, labels) = pool
            .install(|| encode_labeled(&mut model, &ds, column, other, a.limit, a.workers.quiet))?;
        println!(
            "                 ... and {:.1}% right on {other}",
            100.0 * v.probe_accuracy(&mu, &labels)
        );
    }
    let mut dims: Vec<usize> = (0..v.delta.len()).collect();
    dims.sort_by(|&x, &y| v.delta[y].abs().total_cmp(&v.delta[x].abs()));
    let top: Vec<String> = dims
        .iter()
        .take(5)
        .map(|&d| format!("z{d} {:+.2}", v.delta[d]))
        .collect();
    println!("largest components: {}", top.join(", "));
    println!("wrote {}", out.display());
    Ok(())
}

/// Add an attribute to faces: decode z + nΔ for each n of a range (or, for a conditional
/// model with --by-condition, set the attribute's condition to n); --classifier scores it.
#[derive(Args)]
pub struct MorphArgs {
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    /// The attribute (computed from the train split of --data unless --vector is given).
    #[arg(long)]
    attr: Option<String>,
    /// A vector saved by `attribute-vector` (instead of computing it).
    #[arg(long)]
    vector: Option<PathBuf>,
    /// A conditional model: set the condition of --attr (one of the model's conditions) to
    /// n instead of adding n times an attribute vector. The picture's faces are encoded and
    /// decoded under the neutral condition (0) but for --attr; the --classifier score keeps
    /// each face's own attribute labels but for --attr.
    #[arg(long, conflicts_with = "vector")]
    by_condition: bool,
    #[command(flatten)]
    source: ImageSource,
    /// The values of n as START:END:COUNT.
    #[arg(long, default_value = "-3:3:7", allow_hyphen_values = true)]
    range: String,
    /// Enlarge each face by this integer factor (1 to 16).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    scale: u32,
    /// The PNG to write (default: morph-<attr>.png, lower case).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Score the morph with an attribute classifier (`vae-cpu classifier train`): on held-out
    /// faces of --data without the attribute, per n, the classifier's mean probability of
    /// it, how many other attributes flip against n = 0, and the pixel distance to n = 0.
    #[arg(long, value_name = "FILE")]
    classifier: Option<PathBuf>,
    /// Faces the score averages over (the first of the val split of --data that lack the
    /// attribute).
    #[arg(long, default_value_t = 200, value_parser = super::count())]
    score_faces: usize,
}

pub fn morph(a: MorphArgs) -> Result<()> {
    let mut inputs = a.source.inputs();
    inputs.extend([
        ("--checkpoint", Some(a.checkpoint.path.as_path())),
        ("--vector", a.vector.as_deref()),
        ("--classifier", a.classifier.as_deref()),
    ]);
    super::check_files(&inputs, &[("--out", a.out.as_deref())])?;
    if a.classifier.is_some() && a.source.data.is_none() {
        bail!("--classifier needs --data: the held-out faces the morph is scored on");
    }
    let steps = traverse::parse_range(&a.range)?;
    let mut model = a.checkpoint.load_model()?;
    let vector = match a.by_condition {
        true => None,
        false => Some(morph_vector(&a, &mut model)?),
    };
    let edit = match &vector {
        Some(v) => Edit::Vector(v),
        None => condition_edit(&model, a.attr.as_deref())?,
    };
    let picture = morph_picture(&a, &mut model, &edit, &steps)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("morph-{}.png", edit.attribute().to_lowercase())));
    save(&out, &picture)?;
    if let (Some(clf), Some(data)) = (&a.classifier, &a.source.data) {
        let ds = open_data(data, &model, false)?;
        let score = score_morph(&mut model, clf, &edit, &ds, &steps, a.score_faces)?;
        print!("{}", morph_table(&score));
    }
    Ok(())
}

/// The attribute vector of `--vector` or computed for `--attr` from the train split.
fn morph_vector(a: &MorphArgs, model: &mut Vae) -> Result<AttributeVector> {
    match (&a.vector, &a.attr) {
        (Some(path), _) => load_vector(path, model, a.attr.as_deref()),
        (None, Some(attr)) => {
            let Some(data) = &a.source.data else {
                bail!("--attr needs --data to compute the vector from (or give --vector FILE)")
            };
            let ds = open_data(data, model, false)?;
            let (v, accuracy) = compute(model, &ds, attr, "train", None, false)?;
            eprintln!(
                "{}: {} with, {} without; probe {:.1}% right on train",
                v.attribute,
                v.positives,
                v.negatives,
                100.0 * accuracy
            );
            Ok(v)
        }
        (None, None) => bail!("give --attr NAME (with --data) or --vector FILE"),
    }
}

/// `--by-condition`: the condition entry of `--attr`.
fn condition_edit(model: &Vae, attr: Option<&str>) -> Result<Edit<'static>> {
    let Some(attr) = attr else {
        bail!("--by-condition needs --attr NAME, one of the model's conditions")
    };
    let names = &model.config.model.conditions;
    let Some(index) = names.iter().position(|c| c.eq_ignore_ascii_case(attr)) else {
        bail!(
            "--by-condition: model \"{}\" is not conditioned on {attr} (its conditions: {})",
            model.config.model.name,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )
    };
    Ok(Edit::Condition {
        attribute: names[index].clone(),
        index,
    })
}

/// The faces of `--data` or the image files, one row each: the input, then each step.
fn morph_picture(
    a: &MorphArgs,
    model: &mut Vae,
    edit: &Edit,
    steps: &[f32],
) -> Result<image::RgbImage> {
    let range = model.config.data.pixel_range;
    // With image files, --data only served to compute the vector.
    let source = ImageSource {
        data: a.source.data.clone().filter(|_| a.source.images.is_empty()),
        ..a.source.clone()
    };
    let (x, names) = source.load(model, 4)?;
    let z = latent::encode_means(model, &x);
    let inputs = viz::to_images(&x, range);
    let mut rows = vec![];
    for (i, name) in names.into_iter().enumerate() {
        let z_i = latent::row(&z, i);
        let decoded = match edit {
            Edit::Vector(v) => latent::decode(model, &v.morph(&z_i, steps)),
            Edit::Condition { index, .. } => {
                let conditions = model.config.model.conditions.len();
                let mut faces = vec![];
                for &n in steps {
                    let mut cond = vec![0.0; conditions];
                    cond[*index] = n;
                    let z = Tensor::from_shape_vec(vec![1, z_i.len()], z_i.clone())?;
                    faces.push(latent::condition::decode(model, &z, &cond));
                }
                let views: Vec<_> = faces.iter().map(|f| f.view()).collect();
                ndarray::concatenate(ndarray::Axis(0), &views)?
            }
        };
        let mut cells = vec![inputs[i].clone()];
        cells.extend(viz::to_images(&decoded, range));
        rows.push((name, cells));
    }
    let mut columns = vec!["input".to_string()];
    columns.extend(steps.iter().map(|&n| traverse::value_label(n)));
    let title = match edit {
        Edit::Vector(_) => format!("{}: z + n * delta", edit.attribute()),
        Edit::Condition { .. } => format!("{}: condition = n", edit.attribute()),
    };
    Ok(viz::titled(
        &title,
        &viz::labeled_grid(&columns, &rows, a.scale),
    ))
}

/// The morph score on up to `faces` faces of the val split of `ds` without the attribute.
fn score_morph(
    model: &mut Vae,
    classifier: &Path,
    edit: &Edit,
    ds: &Dataset,
    steps: &[f32],
    faces: usize,
) -> Result<vae_cpu::quality::morph_score::MorphScore> {
    let mut clf = Stored::<ClassifierConfig>::load(classifier)?.build_model()?;
    let column = ds.attribute_index(edit.attribute())?;
    let mut without: Vec<usize> = (ds.indices(Split::Val).into_iter())
        .filter(|&i| ds.attribute(i, column) < 0)
        .collect();
    without.truncate(faces);
    if without.is_empty() {
        bail!(
            "{}: no face of the val split lacks {} to score the morph on",
            ds.path.display(),
            edit.attribute()
        );
    }
    let score = morph_score(model, &mut clf, edit, ds, &without, steps, 100)?;
    println!(
        "morph score: {} faces of the val split without {}, classifier {}",
        score.faces,
        edit.attribute(),
        classifier.display()
    );
    Ok(score)
}

/// A saved vector, checked against the model's latent size (and `--attr` if given).
fn load_vector(path: &Path, model: &Vae, attr: Option<&str>) -> Result<AttributeVector> {
    let v = AttributeVector::load(path)?;
    let latent = model.config.model.latent;
    if v.delta.len() != latent {
        bail!(
            "{}: the vector has {} dimensions but the model's latent has {latent}",
            path.display(),
            v.delta.len()
        );
    }
    if let Some(attr) = attr {
        if !attr.eq_ignore_ascii_case(&v.attribute) {
            bail!(
                "{}: the vector is for {}, not {attr}",
                path.display(),
                v.attribute
            );
        }
    }
    Ok(v)
}
