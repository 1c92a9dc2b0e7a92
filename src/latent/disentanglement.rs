//! The disentanglement metric of Higgins et al. 2017 (β-VAE, ICLR, section 3 and appendix
//! A.4) on the procedurally drawn faces of `data::synthetic`, whose generative factors are
//! known. One "vote": pick a factor `k`, draw `L` pairs of faces that share the value of
//! `k` (every other factor and the nuisances — background, position, scale, colour jitter —
//! drawn independently), encode both faces of each pair (the latent means), and average
//! `|z_a - z_b|` over the pairs. Where one latent dimension carries factor `k` alone, that
//! average is near zero in it. A linear classifier (softmax regression) learns to name `k`
//! from the averages of training votes; its accuracy on other votes is the score. Chance
//! is `1 / factors`.

use crate::data::loader::image_to_chw;
use crate::data::prepare::{fit_image, PrepareOptions, CELEBA_CROP_FRACTION};
use crate::data::synthetic::{draw, Face};
use crate::model::Vae;
use crate::Tensor;
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The factors a vote can fix, in `Face`'s order.
pub const FACTORS: [&str; 7] = [
    "Smiling",
    "Eyeglasses",
    "Male",
    "Attractive",
    "Pale_Skin",
    "Wearing_Hat",
    "hair colour",
];

#[derive(Clone, Debug)]
pub struct HigginsOptions {
    /// Pairs averaged per vote (`L`).
    pub pairs: usize,
    /// Votes per factor the classifier learns from; half as many test it.
    pub votes: usize,
    pub seed: u64,
}

impl Default for HigginsOptions {
    fn default() -> Self {
        HigginsOptions {
            pairs: 32,
            votes: 60,
            seed: 0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct HigginsReport {
    /// The classifier's accuracy on the test votes.
    pub accuracy: f64,
    /// Its accuracy per factor ([`FACTORS`] order).
    pub per_factor: Vec<f64>,
    /// `1 / FACTORS.len()`.
    pub chance: f64,
}

/// Encodes faces to latent vectors: drawn with the nuisances from the generator given.
pub type Encoder<'a> = dyn FnMut(&[Face], &mut ChaCha8Rng) -> Vec<Vec<f32>> + 'a;

/// Sets factor `k` of `face` to its value in `from`.
fn copy_factor(face: &mut Face, from: &Face, k: usize) {
    match k {
        0 => face.smiling = from.smiling,
        1 => face.eyeglasses = from.eyeglasses,
        2 => face.male = from.male,
        3 => face.attractive = from.attractive,
        4 => face.pale = from.pale,
        5 => face.hat = from.hat,
        _ => face.hair = from.hair,
    }
}

/// One vote's feature vector: the mean `|z_a - z_b|` over `pairs` pairs sharing factor `k`.
fn vote(encode: &mut Encoder, k: usize, pairs: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut faces = Vec::with_capacity(2 * pairs);
    for _ in 0..pairs {
        let a = Face::random(rng);
        let mut b = Face::random(rng);
        copy_factor(&mut b, &a, k);
        faces.extend([a, b]);
    }
    let z = encode(&faces, rng);
    let mut mean = vec![0.0f32; z[0].len()];
    for pair in z.chunks(2) {
        for (m, (a, b)) in mean.iter_mut().zip(pair[0].iter().zip(&pair[1])) {
            *m += (a - b).abs() / pairs as f32;
        }
    }
    mean
}

/// The metric for the encoder `encode` (see the module notes); `bar` counts the votes.
pub fn higgins_metric(
    encode: &mut Encoder,
    opts: &HigginsOptions,
    bar: &ProgressBar,
) -> HigginsReport {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let (train_votes, test_votes) = (opts.votes.max(1), opts.votes.div_ceil(2).max(1));
    bar.set_length(((train_votes + test_votes) * FACTORS.len()) as u64);
    let mut votes = |count: usize| -> Vec<(Vec<f32>, usize)> {
        (0..count * FACTORS.len())
            .map(|i| {
                let k = i % FACTORS.len();
                let v = vote(encode, k, opts.pairs.max(1), &mut rng);
                bar.inc(1);
                (v, k)
            })
            .collect()
    };
    let train = votes(train_votes);
    let test = votes(test_votes);
    bar.finish_and_clear();
    let classifier = Softmax::fit(&train, FACTORS.len());
    let mut right = vec![(0usize, 0usize); FACTORS.len()];
    for (x, k) in &test {
        right[*k].1 += 1;
        right[*k].0 += usize::from(classifier.predict(x) == *k);
    }
    let total: usize = right.iter().map(|r| r.0).sum();
    HigginsReport {
        accuracy: total as f64 / test.len() as f64,
        per_factor: right.iter().map(|(r, n)| *r as f64 / *n as f64).collect(),
        chance: 1.0 / FACTORS.len() as f64,
    }
}

/// Multinomial logistic regression on standardized features, fitted by full-batch
/// gradient descent on the mean cross-entropy with a small L2 penalty.
struct Softmax {
    mean: Vec<f32>,
    scale: Vec<f32>,
    /// `[classes][features + 1]`, the bias last.
    weights: Vec<Vec<f32>>,
}

impl Softmax {
    fn fit(samples: &[(Vec<f32>, usize)], classes: usize) -> Softmax {
        let d = samples[0].0.len();
        let n = samples.len() as f32;
        let mean: Vec<f32> = (0..d)
            .map(|j| samples.iter().map(|s| s.0[j]).sum::<f32>() / n)
            .collect();
        let scale: Vec<f32> = (0..d)
            .map(|j| {
                let var = samples
                    .iter()
                    .map(|s| (s.0[j] - mean[j]).powi(2))
                    .sum::<f32>()
                    / n;
                1.0 / var.sqrt().max(1e-6)
            })
            .collect();
        let mut model = Softmax {
            mean,
            scale,
            weights: vec![vec![0.0; d + 1]; classes],
        };
        let xs: Vec<Vec<f32>> = samples.iter().map(|s| model.features(&s.0)).collect();
        let (rate, l2) = (0.5f32, 1e-3f32);
        for _ in 0..300 {
            let mut grad = vec![vec![0.0f32; d + 1]; classes];
            for (x, (_, k)) in xs.iter().zip(samples) {
                let p = model.probabilities(x);
                for (c, g) in grad.iter_mut().enumerate() {
                    let err = p[c] - f32::from(c == *k);
                    g.iter_mut().zip(x).for_each(|(g, x)| *g += err * x / n);
                }
            }
            for (w, g) in model.weights.iter_mut().zip(&grad) {
                for (w, g) in w.iter_mut().zip(g) {
                    *w -= rate * (g + l2 * *w);
                }
            }
        }
        model
    }

    /// Standardized features with a constant 1 for the bias.
    fn features(&self, x: &[f32]) -> Vec<f32> {
        let mut f: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(j, v)| (v - self.mean[j]) * self.scale[j])
            .collect();
        f.push(1.0);
        f
    }

    fn probabilities(&self, f: &[f32]) -> Vec<f32> {
        let logits: Vec<f32> = self
            .weights
            .iter()
            .map(|w| w.iter().zip(f).map(|(w, x)| w * x).sum())
            .collect();
        let top = logits.iter().copied().fold(f32::MIN, f32::max);
        let e: Vec<f32> = logits.iter().map(|l| (l - top).exp()).collect();
        let sum: f32 = e.iter().sum();
        e.into_iter().map(|v| v / sum).collect()
    }

    fn predict(&self, x: &[f32]) -> usize {
        let p = self.probabilities(&self.features(x));
        (0..p.len())
            .max_by(|&a, &b| p[a].total_cmp(&p[b]))
            .unwrap_or(0)
    }
}

/// The encoder of `model`: each face drawn (nuisances from the generator), cropped and
/// resized as `prepare` does, encoded to its latent mean (eval mode; a conditional model
/// sees the neutral condition).
pub fn model_encoder(
    model: &mut Vae,
) -> impl FnMut(&[Face], &mut ChaCha8Rng) -> Vec<Vec<f32>> + '_ {
    move |faces, rng| {
        let m = &model.config.model;
        let (c, h, w) = (m.channels, m.height, m.width);
        let opts = PrepareOptions::new(w, h, CELEBA_CROP_FRACTION);
        let range = model.config.data.pixel_range;
        let mut x = Tensor::zeros(vec![faces.len(), c, h, w]);
        let dst = x.as_slice_mut().expect("fresh tensors are contiguous");
        let mut pixels = vec![0u8; h * w * 3];
        for (face, dst) in faces.iter().zip(dst.chunks_mut(c * h * w)) {
            let img = draw(face, &mut ChaCha8Rng::seed_from_u64(rng.gen()));
            fit_image(&img, &opts, &mut pixels);
            image_to_chw(&pixels, 3, h, w, false, range, dst);
        }
        let mu = super::encode_means(model, &x);
        mu.rows().into_iter().map(|r| r.to_vec()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The factors as numbers: a latent that holds each in a dimension of its own.
    fn factors(f: &Face) -> Vec<f32> {
        let b = |v: bool| f32::from(u8::from(v));
        vec![
            b(f.smiling),
            b(f.eyeglasses),
            b(f.male),
            b(f.attractive),
            b(f.pale),
            b(f.hat),
            f.hair as f32 / 3.0,
        ]
    }

    /// A random orthogonal 7x7 matrix (Gram-Schmidt on a Gaussian matrix).
    fn rotation(seed: u64) -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut rows: Vec<Vec<f32>> = vec![];
        while rows.len() < 7 {
            let mut v: Vec<f32> = (0..7)
                .map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal))
                .collect();
            for r in &rows {
                let dot: f32 = v.iter().zip(r).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(r).for_each(|(a, b)| *a -= dot * b);
            }
            let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
            rows.push(v.into_iter().map(|a| a / norm).collect());
        }
        rows
    }

    /// Factors in dimensions of their own, plus two dimensions of pure noise.
    fn score(rotate: Option<&[Vec<f32>]>) -> HigginsReport {
        let mut encode = |faces: &[Face], rng: &mut ChaCha8Rng| -> Vec<Vec<f32>> {
            faces
                .iter()
                .map(|f| {
                    let v = factors(f);
                    let mut z = match rotate {
                        Some(r) => r
                            .iter()
                            .map(|row| row.iter().zip(&v).map(|(a, b)| a * b).sum())
                            .collect(),
                        None => v,
                    };
                    z.extend((0..2).map(|_| rng.gen_range(-1.0f32..1.0)));
                    z
                })
                .collect()
        };
        higgins_metric(
            &mut encode,
            &HigginsOptions {
                pairs: 16,
                votes: 40,
                seed: 3,
            },
            &ProgressBar::hidden(),
        )
    }

    /// A latent whose dimensions are the factors scores near 1; a random rotation of the
    /// same latent (no dimension holds one factor) scores clearly lower.
    #[test]
    fn factors_in_their_own_dimensions_score_above_a_rotation_of_them() {
        let aligned = score(None);
        assert!(aligned.accuracy > 0.95, "{aligned:?}");
        for seed in 1..4 {
            let rotated = score(Some(&rotation(seed)));
            assert!(
                rotated.accuracy < aligned.accuracy - 0.15,
                "{rotated:?} vs {aligned:?}"
            );
        }
    }

    /// Noise alone scores about chance.
    #[test]
    fn a_latent_of_noise_scores_near_chance() {
        let mut encode = |faces: &[Face], rng: &mut ChaCha8Rng| -> Vec<Vec<f32>> {
            faces
                .iter()
                .map(|_| (0..5).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
                .collect()
        };
        let r = higgins_metric(
            &mut encode,
            &HigginsOptions {
                pairs: 16,
                votes: 40,
                seed: 4,
            },
            &ProgressBar::hidden(),
        );
        assert!(r.accuracy < 0.35, "{r:?}");
    }
}
