//! How well an attribute edit works, measured by the attribute classifier on held-out
//! faces that lack the attribute: for each step n of the edit (z + nΔ with an attribute
//! vector, or the attribute's condition set to n in a conditional VAE), the classifier's
//! mean probability of the attribute (it should rise with n), how many of the other
//! attributes' predictions change against the face at n = 0 (should stay low), and how far
//! the pixels move from the face at n = 0 (RMS on the [0, 1] scale).

use crate::data::loader::{batch_conditions, batch_tensor};
use crate::data::Dataset;
use crate::latent::attribute::AttributeVector;
use crate::model::{Classifier, Vae};
use crate::nn::Mode;
use crate::{Error, Result, Tape, Tensor, Var};

/// The edit applied to each face's latent mean.
pub enum Edit<'a> {
    /// `z + n Δ`, decoded under the neutral condition.
    Vector(&'a AttributeVector),
    /// A conditional VAE: z encoded under the face's own condition, decoded with the
    /// condition entry `index` (the attribute) set to n.
    Condition { attribute: String, index: usize },
}

impl Edit<'_> {
    pub fn attribute(&self) -> &str {
        match self {
            Edit::Vector(v) => &v.attribute,
            Edit::Condition { attribute, .. } => attribute,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MorphScore {
    pub attribute: String,
    pub faces: usize,
    pub steps: Vec<f32>,
    /// Per step: the classifier's mean probability of the attribute.
    pub probability: Vec<f64>,
    /// Per step: the mean number of other attributes whose prediction differs from the
    /// face at the step nearest n = 0.
    pub other_flips: Vec<f64>,
    /// Per step: the mean RMS pixel distance to the face at the step nearest n = 0.
    pub pixel_distance: Vec<f64>,
}

/// Scores `edit` on the faces `indices` of `data` (which should lack the attribute), in
/// batches of `batch`. The classifier must know the attribute.
pub fn morph_score(
    vae: &mut Vae,
    classifier: &mut Classifier,
    edit: &Edit,
    data: &Dataset,
    indices: &[usize],
    steps: &[f32],
    batch: usize,
) -> Result<MorphScore> {
    let target = (classifier.attributes().iter())
        .position(|a| a == edit.attribute())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "the classifier does not predict {} (it predicts {})",
                edit.attribute(),
                classifier.attributes().join(", ")
            ))
        })?;
    let origin = (0..steps.len())
        .min_by(|&a, &b| steps[a].abs().total_cmp(&steps[b].abs()))
        .ok_or_else(|| Error::Invalid("the morph has no steps".into()))?;
    let columns = data.condition_columns(&vae.config)?;
    let k = steps.len();
    let (mut prob, mut flips, mut dist) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
    for chunk in indices.chunks(batch.max(1)) {
        let x = batch_tensor(data, chunk, &[], vae.config.data.pixel_range);
        let cond = batch_conditions(data, chunk, &columns);
        let faces: Vec<Tensor> = (steps.iter())
            .map(|&n| edited(vae, &x, cond.as_ref(), edit, n))
            .collect();
        let logits: Vec<Tensor> = (faces.iter())
            .map(|f| super::classify(classifier, f).0)
            .collect();
        for (s, (face, logit)) in faces.iter().zip(&logits).enumerate() {
            for (i, row) in logit.outer_iter().enumerate() {
                prob[s] += crate::ops::stable_sigmoid(row[target]) as f64;
                let base = logits[origin].outer_iter().nth(i).expect("same rows");
                flips[s] += (row.iter().zip(base.iter()).enumerate())
                    .filter(|(j, (a, b))| *j != target && (**a > 0.0) != (**b > 0.0))
                    .count() as f64;
            }
            dist[s] += rms_per_image(face, &faces[origin]).iter().sum::<f64>();
        }
    }
    let n = indices.len().max(1) as f64;
    let mean = |v: Vec<f64>| v.into_iter().map(|s| s / n).collect();
    Ok(MorphScore {
        attribute: edit.attribute().to_string(),
        faces: indices.len(),
        steps: steps.to_vec(),
        probability: mean(prob),
        other_flips: mean(flips),
        pixel_distance: mean(dist),
    })
}

/// The faces `x` edited by `n`, in [0, 1].
fn edited(vae: &mut Vae, x: &Tensor, cond: Option<&Tensor>, edit: &Edit, n: f32) -> Tensor {
    let tape = Tape::no_grad();
    let x = Var::constant(x.clone());
    let out = match edit {
        Edit::Vector(v) => {
            let (mu, _) = vae.encode(&tape, &x, Mode::Eval);
            let z = mu.value() + &Tensor::from_shape_fn(mu.shape().to_vec(), |d| n * v.delta[d[1]]);
            vae.decode(&tape, &Var::constant(z), Mode::Eval)
        }
        Edit::Condition { index, .. } => {
            let (mu, _) = vae.encode_with(&tape, &x, cond, Mode::Eval);
            let mut c = cond
                .expect("a conditional model's faces have conditions")
                .clone();
            c.outer_iter_mut().for_each(|mut row| row[*index] = n);
            vae.decode_with(&tape, &mu, Some(&c), Mode::Eval)
        }
    };
    super::decoded_to_unit(out.value(), vae.config.data.pixel_range)
}

/// Each image's RMS difference between `a` and `b`.
fn rms_per_image(a: &Tensor, b: &Tensor) -> Vec<f64> {
    a.outer_iter()
        .zip(b.outer_iter())
        .map(|(a, b)| {
            let sq: f64 = a
                .iter()
                .zip(b.iter())
                .map(|(x, y)| ((x - y) as f64).powi(2))
                .sum();
            (sq / a.len().max(1) as f64).sqrt()
        })
        .collect()
}

/// The score as a small table: one column per step.
pub fn morph_table(s: &MorphScore) -> String {
    let row = |label: &str, v: &[f64], digits: usize| {
        let cells: Vec<String> = v.iter().map(|x| format!("{x:>7.digits$}")).collect();
        format!("{label:<24}{}\n", cells.join(""))
    };
    let steps: Vec<String> = s.steps.iter().map(|n| format!("{n:>7}")).collect();
    let mut out = format!("{:<24}{}\n", "n", steps.join(""));
    out += &row(&format!("P({})", s.attribute), &s.probability, 3);
    out += &row("other attributes flipped", &s.other_flips, 2);
    out += &row("pixel RMS to n = 0", &s.pixel_distance, 3);
    out
}
