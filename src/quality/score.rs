//! `vae-cpu score`: what a trained VAE is worth, in numbers. Reconstruction (MSE, PSNR,
//! SSIM of z = mu reconstructions, from [`crate::train::evaluate()`]); samples from the prior
//! against real images through the attribute classifier's penultimate features (a Fréchet
//! distance in our own feature space, not comparable with published FIDs) and its
//! attribute predictions (how often each attribute appears in samples and in real faces);
//! and, when the user gives an Inception network, the true FID.

use super::frechet::{frechet_distance, GaussianStats};
use crate::collective;
use crate::config::PixelRange;
use crate::data::loader::batch_tensor;
use crate::data::Dataset;
use crate::model::{Classifier, Vae};
use crate::nn::Mode;
use crate::train::EvalReport;
use crate::{Error, Result, Tape, Tensor, Var};
use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Images (NCHW, [0, 1] pixels) to feature rows: an Inception network for the true FID.
pub type FeatureFn<'a> = dyn FnMut(&Tensor) -> Result<Vec<f32>> + Send + 'a;

#[derive(Clone, Copy, Debug)]
pub struct ScoreOptions {
    /// Prior samples drawn, and real images compared with them (at most the split's).
    pub samples: usize,
    pub batch: usize,
    pub seed: u64,
}

/// How often the classifier finds an attribute (probability > 0.5).
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeFrequency {
    pub name: String,
    pub real: f64,
    pub samples: f64,
}

pub struct ScoreReport {
    pub recon: EvalReport,
    /// Real images compared (the split's, at most `samples`), and samples drawn.
    pub real_images: usize,
    pub samples: usize,
    /// The Fréchet distance between the classifier's features of samples and real images.
    pub frechet_classifier: f64,
    /// The FID, with an Inception network.
    pub frechet_inception: Option<f64>,
    pub frequencies: Vec<AttributeFrequency>,
}

impl ScoreReport {
    /// The mean absolute difference of the attribute frequencies, samples vs real.
    pub fn frequency_gap(&self) -> f64 {
        let n = self.frequencies.len().max(1) as f64;
        (self.frequencies.iter())
            .map(|f| (f.samples - f.real).abs())
            .sum::<f64>()
            / n
    }
}

/// Features and attribute frequencies of a set of images, gathered batch by batch.
struct Gathered {
    classifier_features: Vec<f32>,
    inception_features: Vec<f32>,
    /// Per attribute, the images the classifier finds it in.
    found: Vec<usize>,
    images: usize,
}

impl Gathered {
    fn new(attributes: usize) -> Gathered {
        Gathered {
            classifier_features: vec![],
            inception_features: vec![],
            found: vec![0; attributes],
            images: 0,
        }
    }

    /// Adds a batch of images in [0, 1].
    fn add(
        &mut self,
        classifier: &mut Classifier,
        unit: &Tensor,
        inception: Option<&mut FeatureFn>,
    ) -> Result<()> {
        let (logits, features) = super::classify(classifier, unit);
        self.classifier_features.extend(features.iter());
        let a = self.found.len();
        for (k, v) in logits.iter().enumerate() {
            self.found[k % a] += usize::from(*v > 0.0);
        }
        if let Some(f) = inception {
            self.inception_features.extend(f(unit)?);
        }
        self.images += unit.shape()[0];
        Ok(())
    }

    fn frequencies(&self) -> Vec<f64> {
        (self.found.iter())
            .map(|&f| f as f64 / self.images.max(1) as f64)
            .collect()
    }

    fn stats(rows: &[f32], images: usize) -> GaussianStats {
        GaussianStats::of(rows, rows.len() / images.max(1))
    }
}

/// Scores `vae` on `indices` of `data` (a seeded subset of at most `opts.samples`) with the
/// attribute classifier `classifier`, and with `inception` when given.
pub fn score(
    vae: &mut Vae,
    classifier: &mut Classifier,
    data: &Dataset,
    indices: &[usize],
    opts: ScoreOptions,
    mut inception: Option<&mut FeatureFn>,
    bar: &ProgressBar,
) -> Result<ScoreReport> {
    check_sizes(vae, classifier)?;
    let mut real = indices.to_vec();
    real.shuffle(&mut ChaCha8Rng::seed_from_u64(opts.seed));
    real.truncate(opts.samples);
    if real.len() < 2 || opts.samples < 2 {
        return Err(Error::Invalid(format!(
            "scoring needs at least 2 real images and 2 samples; the split has {} images",
            indices.len()
        )));
    }
    let world = collective::single();
    let recon =
        crate::train::evaluate(vae, data, &real, opts.batch, opts.seed, world.as_ref(), bar);
    bar.reset();
    bar.set_length((real.len() + opts.samples) as u64);
    let attributes = classifier.attributes().len();
    let (mut of_real, mut of_samples) = (Gathered::new(attributes), Gathered::new(attributes));
    for chunk in real.chunks(opts.batch.max(1)) {
        let x = batch_tensor(data, chunk, &[], PixelRange::Unit);
        of_real.add(classifier, &x, inception.as_deref_mut())?;
        bar.inc(chunk.len() as u64);
    }
    let latent = vae.config.model.latent;
    let z = crate::prior::normal_values(opts.samples * latent, opts.seed, 1.0);
    for rows in z.chunks(opts.batch.max(1) * latent) {
        let n = rows.len() / latent;
        let z = Tensor::from_shape_vec(vec![n, latent], rows.to_vec()).expect("n rows");
        let tape = Tape::no_grad();
        let images = vae
            .decode(&tape, &Var::constant(z), Mode::Eval)
            .value()
            .clone();
        let unit = super::decoded_to_unit(&images, vae.config.data.pixel_range);
        of_samples.add(classifier, &unit, inception.as_deref_mut())?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    let fd = |a: &[f32], b: &[f32]| {
        frechet_distance(
            &Gathered::stats(a, of_real.images),
            &Gathered::stats(b, of_samples.images),
        )
    };
    let frechet_classifier = fd(
        &of_real.classifier_features,
        &of_samples.classifier_features,
    );
    let frechet_inception = (inception.is_some())
        .then(|| fd(&of_real.inception_features, &of_samples.inception_features));
    let frequencies = (classifier.attributes().iter())
        .zip(
            of_real
                .frequencies()
                .into_iter()
                .zip(of_samples.frequencies()),
        )
        .map(|(name, (real, samples))| AttributeFrequency {
            name: name.clone(),
            real,
            samples,
        })
        .collect();
    Ok(ScoreReport {
        recon,
        real_images: real.len(),
        samples: opts.samples,
        frechet_classifier,
        frechet_inception,
        frequencies,
    })
}

/// The classifier must take the images the VAE makes.
fn check_sizes(vae: &Vae, classifier: &Classifier) -> Result<()> {
    let (v, c) = (&vae.config.model, &classifier.config.model);
    if [v.channels, v.height, v.width] == [c.channels, c.height, c.width] {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "the classifier \"{}\" takes {}x{}x{} images, the VAE \"{}\" makes {}x{}x{}; train \
         a classifier of that size (e.g. --config attributes{})",
        c.name, c.width, c.height, c.channels, v.name, v.width, v.height, v.channels, v.width
    )))
}
