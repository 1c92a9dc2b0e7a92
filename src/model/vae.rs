//! The VAE: encoder layers -> two linear heads (mu, logvar) -> z = mu + exp(logvar/2)*eps
//! -> decoder layers. Loss (Kingma & Welling's negative ELBO, weighted):
//! `recon_weight * recon(x_hat, x) + kld_weight * KL(q(z|x) || N(0, I))`.
//!
//! A conditional VAE (Sohn et al. 2015; `model.conditions`) appends the condition `c`
//! (+1 / -1 attributes) to the encoder's flat features before the heads and to z before
//! the decoder: `q(z | x, c)` and `p(x | z, c)`. Without a condition given, `c = 0` (the
//! neutral point between +1 and -1).

use super::FeatureNet;
use crate::config::{Config, Plan, PlannedLayer, ReconLoss, ReductionSpec};
use crate::layers::{self, Layer};
use crate::nn::{join, Linear, Mode, Module, Slot};
use crate::{ops, Result, Tape, Tensor, Var};
use rand::{Rng, RngCore};

pub struct Vae {
    pub config: Config,
    /// The validated architecture the layers were built from.
    pub plan: Plan,
    pub encoder: Vec<Box<dyn Layer>>,
    pub mu: Linear,
    pub logvar: Linear,
    pub decoder: Vec<Box<dyn Layer>>,
    /// The perceptual loss's fixed network, once `onnx::feature_net::attach` loaded it.
    pub feature_net: Option<FeatureNet>,
}

pub struct VaeOutput {
    pub recon: Var,
    pub mu: Var,
    pub logvar: Var,
}

/// The total loss on the tape, and its two terms as numbers (the KL is positive), each
/// reduced as configured.
pub struct VaeLoss {
    pub total: Var,
    pub recon: f32,
    pub kl: f32,
    /// The terms summed over the batch's images: the term times the batch size for the
    /// `mean` and `batch_mean` reductions, the term itself for `sum`. Adding these over
    /// batches and dividing by the image count gives per-image averages that do not depend
    /// on the batch size.
    pub recon_total: f64,
    pub kl_total: f64,
}

/// A reduced term times the batch size, unless it was already a sum over the batch.
fn over_batch(value: f32, reduction: ReductionSpec, batch: usize) -> f64 {
    match reduction {
        ReductionSpec::Sum => value as f64,
        ReductionSpec::Mean | ReductionSpec::BatchMean => value as f64 * batch as f64,
    }
}

/// One layer per planned layer, each built for the input shape the plan found.
fn build(layers: &[PlannedLayer], rng: &mut dyn RngCore) -> Vec<Box<dyn Layer>> {
    layers
        .iter()
        .map(|l| l.spec.spec().build(&l.input, rng))
        .collect()
}

impl Vae {
    /// Validates `config` and initializes every layer from `rng`.
    pub fn new(config: &Config, rng: &mut impl Rng) -> Result<Vae> {
        let plan = config.plan()?;
        let latent = config.model.latent;
        let encoder = build(&plan.encoder, rng);
        let mu = Linear::new(plan.features, latent, true, rng);
        let logvar = Linear::new(plan.features, latent, true, rng);
        let decoder = build(&plan.decoder, rng);
        Ok(Vae {
            config: config.clone(),
            plan,
            encoder,
            mu,
            logvar,
            decoder,
            feature_net: None,
        })
    }

    /// `[N, C, H, W]` -> (mu, logvar), each `[N, latent]` (a conditional model sees the
    /// neutral condition 0).
    pub fn encode(&mut self, tape: &Tape, x: &Var, mode: Mode) -> (Var, Var) {
        self.encode_with(tape, x, None, mode)
    }

    /// [`Vae::encode`] under the condition `cond` (`[N, conditions]`; `None`: 0).
    pub fn encode_with(
        &mut self,
        tape: &Tape,
        x: &Var,
        cond: Option<&Tensor>,
        mode: Mode,
    ) -> (Var, Var) {
        let h = layers::forward_all(&mut self.encoder, tape, x, mode);
        let h = self.append_condition(&h, cond);
        tape.span("linear", || {
            (self.mu.forward(tape, &h), self.logvar.forward(tape, &h))
        })
    }

    /// `[N, latent]` -> `[N, C, H, W]` (a conditional model sees the neutral condition 0).
    pub fn decode(&mut self, tape: &Tape, z: &Var, mode: Mode) -> Var {
        self.decode_with(tape, z, None, mode)
    }

    /// [`Vae::decode`] under the condition `cond` (`[N, conditions]`; `None`: 0).
    pub fn decode_with(&mut self, tape: &Tape, z: &Var, cond: Option<&Tensor>, mode: Mode) -> Var {
        let z = self.append_condition(z, cond);
        layers::forward_all(&mut self.decoder, tape, &z, mode)
    }

    /// `[h | cond]` for a conditional model, `h` otherwise.
    fn append_condition(&self, h: &Var, cond: Option<&Tensor>) -> Var {
        let width = self.config.model.conditions.len();
        if width == 0 {
            return h.clone();
        }
        let n = h.shape()[0];
        let c = match cond {
            Some(c) => {
                assert_eq!(c.shape(), &[n, width], "condition shape");
                c.clone()
            }
            None => Tensor::zeros(vec![n, width]),
        };
        ops::concat_columns(h, &Var::constant(c))
    }

    /// Encode, sample z with `rng`, decode (under `cond` for a conditional model).
    pub fn forward(&mut self, tape: &Tape, x: &Var, mode: Mode, rng: &mut impl Rng) -> VaeOutput {
        self.forward_with(tape, x, None, mode, rng)
    }

    /// [`Vae::forward`] under the condition `cond` (`[N, conditions]`; `None`: 0).
    pub fn forward_with(
        &mut self,
        tape: &Tape,
        x: &Var,
        cond: Option<&Tensor>,
        mode: Mode,
        rng: &mut impl Rng,
    ) -> VaeOutput {
        let (mu, logvar) = self.encode_with(tape, x, cond, mode);
        let eps = ops::standard_normal(mu.shape(), rng);
        self.sample_and_decode(tape, (mu, logvar), eps, cond, mode)
    }

    /// [`Vae::forward_with`] with the reparameterization noise `eps` (`[N, latent]`) given.
    pub fn forward_with_noise(
        &mut self,
        tape: &Tape,
        x: &Var,
        cond: Option<&Tensor>,
        mode: Mode,
        eps: Tensor,
    ) -> VaeOutput {
        let heads = self.encode_with(tape, x, cond, mode);
        self.sample_and_decode(tape, heads, eps, cond, mode)
    }

    fn sample_and_decode(
        &mut self,
        tape: &Tape,
        (mu, logvar): (Var, Var),
        eps: Tensor,
        cond: Option<&Tensor>,
        mode: Mode,
    ) -> VaeOutput {
        let z = ops::reparameterize_with(&mu, &logvar, eps);
        VaeOutput {
            recon: self.decode_with(tape, &z, cond, mode),
            mu,
            logvar,
        }
    }

    /// The configured loss against the input batch `target`.
    pub fn loss(&self, out: &VaeOutput, target: &Tensor) -> VaeLoss {
        self.loss_of_part(out, target, 1.0)
    }

    /// The loss of one part of a batch split over the ranks of a data-parallel run, where
    /// this part holds the fraction `share` of the batch's images: every term averaged over
    /// images is weighted by `share`, terms summed over images are not, so the parts'
    /// `total`s (and `recon`, `kl`) add up to the whole batch's. `share` 1: the whole batch.
    pub fn loss_of_part(&self, out: &VaeOutput, target: &Tensor, share: f32) -> VaeLoss {
        let exp = &self.config.exp;
        let part = |v: Var, reduction: ReductionSpec| match reduction {
            ReductionSpec::Sum => v,
            _ if share == 1.0 => v,
            _ => ops::scale(&v, share),
        };
        let reduction = exp.recon_reduction.into();
        let recon = match exp.recon_loss {
            ReconLoss::Mse => ops::mse(&out.recon, target, reduction),
            ReconLoss::L1 => ops::l1(&out.recon, target, reduction),
            ReconLoss::Bce => ops::bce(&out.recon, target, reduction),
        };
        let recon = part(recon, exp.recon_reduction);
        let recon = match &self.feature_net {
            Some(net) => ops::add(
                &recon,
                &part(
                    ops::scale(&net.loss(&out.recon, target), exp.feature_weight),
                    ReductionSpec::Mean,
                ),
            ),
            None => recon,
        };
        // kl_divergence is the batch mean of the per-image sums over latent dimensions.
        let (batch, latent) = (target.shape()[0], self.config.model.latent);
        let kl = match exp.kl_reduction {
            ReductionSpec::BatchMean => ops::kl_divergence(&out.mu, &out.logvar),
            ReductionSpec::Mean => ops::scale(
                &ops::kl_divergence(&out.mu, &out.logvar),
                1.0 / latent as f32,
            ),
            ReductionSpec::Sum => {
                ops::scale(&ops::kl_divergence(&out.mu, &out.logvar), batch as f32)
            }
        };
        let kl = part(kl, exp.kl_reduction);
        let total = ops::add(
            &ops::scale(&recon, exp.recon_weight),
            &ops::scale(&kl, exp.kld_weight),
        );
        let (recon, kl) = (recon.item(), kl.item());
        // The per-image sums of this part (the weighted terms divided back by `share`).
        let unshare = |v: f32, reduction| match reduction {
            ReductionSpec::Sum => v,
            _ => v / share,
        };
        VaeLoss {
            recon,
            kl,
            recon_total: over_batch(
                unshare(recon, exp.recon_reduction),
                exp.recon_reduction,
                batch,
            ),
            kl_total: over_batch(unshare(kl, exp.kl_reduction), exp.kl_reduction, batch),
            total,
        }
    }
}

impl Module for Vae {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        for (i, l) in self.encoder.iter_mut().enumerate() {
            l.visit(&join(prefix, &format!("encoder.{i}")), f);
        }
        self.mu.visit(&join(prefix, "mu"), f);
        self.logvar.visit(&join(prefix, "logvar"), f);
        for (i, l) in self.decoder.iter_mut().enumerate() {
            l.visit(&join(prefix, &format!("decoder.{i}")), f);
        }
    }
}
