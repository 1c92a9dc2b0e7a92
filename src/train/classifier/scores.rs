//! How well the attribute classifier predicts: per attribute, accuracy, balanced accuracy
//! (the mean of the true-positive and true-negative rates, 0.5 for a constant guess) and
//! the majority-class baseline (the accuracy of always guessing the commoner answer).

use crate::data::loader::batch_tensor;
use crate::data::Dataset;
use crate::model::Classifier;
use crate::nn::Mode;
use crate::{Tape, Tensor, Var};
use indicatif::ProgressBar;
use ndarray::{Array2, IxDyn};

/// The four counts of one attribute's yes/no predictions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Confusion {
    pub true_pos: usize,
    pub true_neg: usize,
    pub false_pos: usize,
    pub false_neg: usize,
}

impl Confusion {
    pub fn add(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.true_pos += 1,
            (false, false) => self.true_neg += 1,
            (true, false) => self.false_pos += 1,
            (false, true) => self.false_neg += 1,
        }
    }

    pub fn count(&self) -> usize {
        self.true_pos + self.true_neg + self.false_pos + self.false_neg
    }

    pub fn positives(&self) -> usize {
        self.true_pos + self.false_neg
    }

    pub fn accuracy(&self) -> f64 {
        (self.true_pos + self.true_neg) as f64 / self.count().max(1) as f64
    }

    /// (TPR + TNR) / 2; a class absent from the set counts with the other's rate alone.
    pub fn balanced_accuracy(&self) -> f64 {
        let pos = self.positives();
        let neg = self.count() - pos;
        let tpr = self.true_pos as f64 / pos.max(1) as f64;
        let tnr = self.true_neg as f64 / neg.max(1) as f64;
        match (pos, neg) {
            (0, _) => tnr,
            (_, 0) => tpr,
            _ => (tpr + tnr) / 2.0,
        }
    }

    /// The accuracy of always answering the commoner class.
    pub fn majority_baseline(&self) -> f64 {
        let pos = self.positives();
        pos.max(self.count() - pos) as f64 / self.count().max(1) as f64
    }
}

/// 1 where the cache says the image has the attribute (+1), else 0: `[n, columns]`.
pub fn targets(data: &Dataset, indices: &[usize], columns: &[usize]) -> Tensor {
    let rows = Array2::from_shape_fn((indices.len(), columns.len()), |(i, j)| {
        f32::from(data.attribute(indices[i], columns[j]) > 0)
    });
    rows.into_dyn()
}

/// What one pass over a set of images found.
pub struct Predictions {
    /// The mean binary cross-entropy (unweighted) over images and attributes.
    pub loss: f64,
    pub confusion: Vec<Confusion>,
    /// Each image's probability of each attribute, `[n, attributes]` row-major.
    pub probabilities: Vec<f32>,
}

/// Runs the classifier (eval mode) over `indices` in batches; `columns` are the cache's
/// columns of the classifier's attributes.
pub fn predict(
    model: &mut Classifier,
    data: &Dataset,
    indices: &[usize],
    columns: &[usize],
    batch: usize,
    bar: &ProgressBar,
) -> Predictions {
    let range = model.config.data.pixel_range;
    let mut out = Predictions {
        loss: 0.0,
        confusion: vec![Confusion::default(); columns.len()],
        probabilities: Vec::with_capacity(indices.len() * columns.len()),
    };
    for chunk in indices.chunks(batch.max(1)) {
        let x = batch_tensor(data, chunk, &vec![false; chunk.len()], range);
        let target = targets(data, chunk, columns);
        let tape = Tape::no_grad();
        let (logits, _) = model.forward(&tape, &Var::constant(x), Mode::Eval);
        let loss = Classifier::loss(&logits, &target, None).item() as f64;
        out.loss += loss * chunk.len() as f64;
        let a = columns.len();
        for (k, (x, t)) in logits.value().iter().zip(target.iter()).enumerate() {
            out.confusion[k % a].add(*x > 0.0, *t > 0.5);
            out.probabilities.push(crate::ops::stable_sigmoid(*x));
        }
        bar.inc(chunk.len() as u64);
    }
    out.loss /= indices.len().max(1) as f64;
    bar.finish_and_clear();
    out
}

/// One attribute's scores on a split.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeScore {
    pub name: String,
    pub images: usize,
    /// The share of images with the attribute.
    pub positive_share: f64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub majority_baseline: f64,
}

pub fn attribute_scores(names: &[String], confusion: &[Confusion]) -> Vec<AttributeScore> {
    names
        .iter()
        .zip(confusion)
        .map(|(name, c)| AttributeScore {
            name: name.clone(),
            images: c.count(),
            positive_share: c.positives() as f64 / c.count().max(1) as f64,
            accuracy: c.accuracy(),
            balanced_accuracy: c.balanced_accuracy(),
            majority_baseline: c.majority_baseline(),
        })
        .collect()
}

/// The mean of each score over the attributes, named "mean".
pub fn mean_score(scores: &[AttributeScore]) -> AttributeScore {
    let n = scores.len().max(1) as f64;
    let mean = |f: fn(&AttributeScore) -> f64| scores.iter().map(f).sum::<f64>() / n;
    AttributeScore {
        name: "mean".into(),
        images: scores.first().map_or(0, |s| s.images),
        positive_share: mean(|s| s.positive_share),
        accuracy: mean(|s| s.accuracy),
        balanced_accuracy: mean(|s| s.balanced_accuracy),
        majority_baseline: mean(|s| s.majority_baseline),
    }
}

/// The scores as CSV (a header, one row per attribute, then the mean).
pub fn scores_csv(scores: &[AttributeScore]) -> String {
    let mut out = String::from(
        "attribute,images,positive_share,accuracy,balanced_accuracy,majority_baseline\n",
    );
    for s in scores.iter().chain([&mean_score(scores)]) {
        out += &format!(
            "{},{},{:.6},{:.6},{:.6},{:.6}\n",
            s.name,
            s.images,
            s.positive_share,
            s.accuracy,
            s.balanced_accuracy,
            s.majority_baseline
        );
    }
    out
}

/// The scores as an aligned table for a terminal.
pub fn scores_table(scores: &[AttributeScore]) -> String {
    let mut out = format!(
        "{:<20} {:>8} {:>9} {:>9} {:>9}\n",
        "attribute", "has it", "accuracy", "balanced", "majority"
    );
    for s in scores.iter().chain([&mean_score(scores)]) {
        out += &format!(
            "{:<20} {:>7.1}% {:>9.3} {:>9.3} {:>9.3}\n",
            s.name,
            100.0 * s.positive_share,
            s.accuracy,
            s.balanced_accuracy,
            s.majority_baseline
        );
    }
    out
}

/// Each attribute's class weights from a training split's confusion-free counts: half the
/// inverse share for positives and negatives, so both classes weigh the same in all
/// (`w_pos * share_pos = w_neg * share_neg = 1/2`). `[n, a]` for the batch's `target`.
pub fn class_weights(target: &Tensor, positive_share: &[f64]) -> Tensor {
    let a = positive_share.len();
    let mut w = Tensor::zeros(IxDyn(target.shape()));
    for (k, (w, t)) in w.iter_mut().zip(target.iter()).enumerate() {
        let p = positive_share[k % a];
        *w = (0.5 / if *t > 0.5 { p } else { 1.0 - p }) as f32;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_scores_follow_their_definitions() {
        let mut c = Confusion::default();
        // 8 positives (6 found), 2 negatives (1 found).
        for (p, a) in [(true, true); 6].into_iter().chain([(false, true); 2]) {
            c.add(p, a);
        }
        c.add(false, false);
        c.add(true, false);
        assert_eq!(c.count(), 10);
        assert!((c.accuracy() - 0.7).abs() < 1e-12);
        assert!((c.balanced_accuracy() - (0.75 + 0.5) / 2.0).abs() < 1e-12);
        assert!((c.majority_baseline() - 0.8).abs() < 1e-12);
        let mut always_yes = Confusion::default();
        (0..8).for_each(|_| always_yes.add(true, true));
        (0..2).for_each(|_| always_yes.add(true, false));
        assert_eq!(always_yes.balanced_accuracy(), 0.5, "a constant guess");
    }

    #[test]
    fn class_weights_balance_the_classes() {
        let target = Tensor::from_shape_vec(IxDyn(&[4, 1]), vec![1.0, 0.0, 0.0, 0.0]).unwrap();
        let w = class_weights(&target, &[0.25]);
        let pos: f32 = w
            .iter()
            .zip(target.iter())
            .filter(|(_, t)| **t > 0.5)
            .map(|(w, _)| w)
            .sum();
        let neg: f32 = w
            .iter()
            .zip(target.iter())
            .filter(|(_, t)| **t < 0.5)
            .map(|(w, _)| w)
            .sum();
        assert!(
            (pos - neg).abs() < 1e-6 && (pos + neg - 4.0).abs() < 1e-5,
            "{pos} {neg}"
        );
    }
}
