//! Evaluation of a model on a set of images: the configured loss terms with a sampled z
//! (the training objective), pixel MSE, PSNR and SSIM of the mean reconstruction (z = mu),
//! and the number of active latent dimensions.

use super::data_parallel::{noise_rows, BatchPart};
use crate::collective::Collective;
use crate::config::{Config, PixelRange};
use crate::data::loader::{batch_conditions, batch_tensor};
use crate::data::Dataset;
use crate::model::Vae;
use crate::nn::Mode;
use crate::{Tape, Var};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Debug)]
pub struct EvalReport {
    pub images: usize,
    /// The configured reconstruction term (e.g. MSE with mean reduction), averaged over
    /// images (a `sum` term per image).
    pub recon: f64,
    /// The configured KL term (by default KL(q(z|x) || N(0, I)) summed over latent
    /// dimensions), averaged over images.
    pub kl: f64,
    /// The training objective `recon_weight * recon + kld_weight * kl`: the negative ELBO
    /// up to the constants the weights stand for.
    pub loss: f64,
    /// Mean squared error per pixel of the mean reconstruction, on the [0, 1] scale.
    pub mse: f64,
    /// `10 log10(1 / mse)` on the [0, 1] scale.
    pub psnr: f64,
    /// Mean structural similarity of the mean reconstructions to the images
    /// ([`super::ssim`]: 11x11 Gaussian window, σ = 1.5, [0, 1] scale).
    pub ssim: f64,
    /// Latent dimensions whose mean varies across images: `Var_x(E[z_d | x]) > 0.01`
    /// (Burda, Grosse & Salakhutdinov 2016).
    pub active_dims: usize,
    pub latent: usize,
}

/// The threshold on `Var_x(mu_d)` above which a dimension counts as active.
pub const ACTIVE_THRESHOLD: f64 = 0.01;

/// Evaluates `model` in eval mode on `indices` of `data`, in batches of `batch_size`.
/// The z samples come from ChaCha8 seeded with `seed`, so the result is reproducible.
/// In a data-parallel run each rank evaluates its part of every batch (with that part's
/// rows of the batch's noise) and the sums are added over the ranks: every rank gets the
/// report one process would.
pub fn evaluate(
    model: &mut Vae,
    data: &Dataset,
    indices: &[usize],
    batch_size: usize,
    seed: u64,
    world: &dyn Collective,
    bar: &ProgressBar,
) -> EvalReport {
    let cfg = model.config.clone();
    let latent = cfg.model.latent;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sums = Sums::new(latent);
    // check_fits has checked that the data has the condition's attributes.
    let columns = data.condition_columns(&cfg).unwrap_or_default();
    bar.set_length(indices.len() as u64);
    for chunk in indices.chunks(batch_size.max(1)) {
        let part = BatchPart::of(chunk.len(), world);
        let eps = noise_rows(&part, latent, &mut rng);
        if !part.mine.is_empty() {
            sums.add_batch(model, data, &chunk[part.mine], &columns, eps);
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    world.sum_f64(&mut sums.0);
    sums.report(&cfg, indices.len(), latent)
}

/// The running sums of an evaluation, in one buffer so that one all-reduce adds them
/// over ranks: `[recon, kl, squared error, SSIM, pixels, Σ mu_d (latent), Σ mu_d² (latent)]`.
struct Sums(Vec<f64>);

const RECON: usize = 0;
const KL: usize = 1;
const SQ_ERR: usize = 2;
const SSIM: usize = 3;
const PIXELS: usize = 4;
const MU: usize = 5;

impl Sums {
    fn new(latent: usize) -> Sums {
        Sums(vec![0.0; MU + 2 * latent])
    }

    fn add_batch(
        &mut self,
        model: &mut Vae,
        data: &Dataset,
        images: &[usize],
        columns: &[usize],
        eps: crate::Tensor,
    ) {
        let range = model.config.data.pixel_range;
        let x = batch_tensor(data, images, &[], range);
        let cond = batch_conditions(data, images, columns);
        let tape = Tape::no_grad();
        let input = Var::constant(x.clone());
        let out = model.forward_with_noise(&tape, &input, cond.as_ref(), Mode::Eval, eps);
        let loss = model.loss(&out, &x);
        self.0[RECON] += loss.recon_total;
        self.0[KL] += loss.kl_total;
        let mean_recon = model.decode_with(&tape, &out.mu, cond.as_ref(), Mode::Eval);
        // Differences on the [0, 1] scale: halve them for the [-1, 1] range.
        let unit = if range == PixelRange::Symmetric {
            0.5
        } else {
            1.0
        };
        self.0[SQ_ERR] += mean_recon
            .value()
            .iter()
            .zip(x.iter())
            .map(|(a, b)| ((a - b) as f64 * unit).powi(2))
            .sum::<f64>();
        self.0[PIXELS] += x.len() as f64;
        self.0[SSIM] += batch_ssim(mean_recon.value(), &x, range);
        let latent = model.config.model.latent;
        let (mu_sum, mu_sq) = self.0[MU..].split_at_mut(latent);
        for row in out.mu.value().rows() {
            for (d, &m) in row.iter().enumerate() {
                mu_sum[d] += m as f64;
                mu_sq[d] += (m as f64).powi(2);
            }
        }
    }

    fn report(&self, cfg: &Config, count: usize, latent: usize) -> EvalReport {
        let s = &self.0;
        let images = count.max(1) as f64;
        let (recon, kl) = (s[RECON] / images, s[KL] / images);
        let mse = s[SQ_ERR] / s[PIXELS].max(1.0);
        let (mu_sum, mu_sq) = s[MU..].split_at(latent);
        let active_dims = (0..latent)
            .filter(|&d| {
                let mean = mu_sum[d] / images;
                mu_sq[d] / images - mean * mean > ACTIVE_THRESHOLD
            })
            .count();
        EvalReport {
            images: count,
            recon,
            kl,
            loss: cfg.exp.objective(recon, kl),
            mse,
            psnr: 10.0 * (1.0 / mse.max(1e-12)).log10(),
            ssim: s[SSIM] / images,
            active_dims,
            latent,
        }
    }
}

/// The summed SSIM of each reconstruction in `recon` to its image in `x` (`[N, C, H, W]`),
/// on the [0, 1] scale.
fn batch_ssim(recon: &crate::Tensor, x: &crate::Tensor, range: PixelRange) -> f64 {
    let s = x.shape();
    let (c, h, w) = (s[1], s[2], s[3]);
    let to_unit = |t: &crate::Tensor| -> Vec<f32> { t.iter().map(|&v| range.to_unit(v)).collect() };
    let (r, x) = (to_unit(recon), to_unit(x));
    let img = c * h * w;
    r.chunks(img)
        .zip(x.chunks(img))
        .map(|(a, b)| super::ssim::ssim(a, b, c, h, w))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssim_of_a_batch_is_the_sum_over_images_on_the_unit_scale() {
        let x = crate::Tensor::from_shape_fn(vec![2, 3, 12, 12], |i| {
            ((i[0] * 7 + i[1] * 5 + i[2] * 3 + i[3]) % 11) as f32 / 10.0
        });
        let r = x.mapv(|v| (v * 0.8 + 0.1).min(1.0));
        let one = |k: usize| {
            let (a, b) = (
                r.index_axis(ndarray::Axis(0), k),
                x.index_axis(ndarray::Axis(0), k),
            );
            let (a, b): (Vec<f32>, Vec<f32>) =
                (a.iter().copied().collect(), b.iter().copied().collect());
            super::super::ssim::ssim(&a, &b, 3, 12, 12)
        };
        let unit = batch_ssim(&r, &x, PixelRange::Unit);
        assert!((unit - one(0) - one(1)).abs() < 1e-12 && unit < 2.0);
        // The same images on [-1, 1] give the same SSIM.
        let symmetric = batch_ssim(
            &r.mapv(|v| 2.0 * v - 1.0),
            &x.mapv(|v| 2.0 * v - 1.0),
            PixelRange::Symmetric,
        );
        assert!((symmetric - unit).abs() < 1e-6, "{symmetric} vs {unit}");
    }
}
