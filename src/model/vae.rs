//! The VAE: encoder layers -> two linear heads (mu, logvar) -> z = mu + exp(logvar/2)*eps
//! -> decoder layers. Loss (Kingma & Welling's negative ELBO, weighted):
//! `recon_weight * recon(x_hat, x) + kld_weight * KL(q(z|x) || N(0, I))`.

use super::Layer;
use crate::config::{Block, Config, ReconLoss};
use crate::nn::{join, Linear, Mode, Module, Slot};
use crate::{ops, Result, Tape, Tensor, Var};
use rand::Rng;

pub struct Vae {
    pub config: Config,
    pub encoder: Vec<Layer>,
    pub mu: Linear,
    pub logvar: Linear,
    pub decoder: Vec<Layer>,
}

pub struct VaeOutput {
    pub recon: Var,
    pub mu: Var,
    pub logvar: Var,
}

/// The total loss on the tape, and its two terms as numbers (the KL is positive).
pub struct VaeLoss {
    pub total: Var,
    pub recon: f32,
    pub kl: f32,
}

impl Vae {
    /// Validates `config` and initializes every layer from `rng`.
    pub fn new(config: &Config, rng: &mut impl Rng) -> Result<Vae> {
        let shapes = config.validate()?;
        let m = &config.model;
        // One layer per expanded spec, each built for the input shape validation found.
        let build = |blocks: &[Block], input: &[usize], outputs: &[Vec<usize>], rng: &mut _| {
            let inputs = std::iter::once(input).chain(outputs.iter().map(Vec::as_slice));
            Block::expand(blocks)
                .zip(inputs)
                .map(|(spec, shape)| Layer::build(spec, shape, rng))
                .collect::<Vec<_>>()
        };
        let encoder = build(&m.encoder, &shapes.input, &shapes.encoder, rng);
        let mu = Linear::new(shapes.features, m.latent, true, rng);
        let logvar = Linear::new(shapes.features, m.latent, true, rng);
        let decoder = build(&m.decoder, &[m.latent], &shapes.decoder, rng);
        Ok(Vae {
            config: config.clone(),
            encoder,
            mu,
            logvar,
            decoder,
        })
    }

    /// `[N, C, H, W]` -> (mu, logvar), each `[N, latent]`.
    pub fn encode(&mut self, tape: &Tape, x: &Var, mode: Mode) -> (Var, Var) {
        let h = self
            .encoder
            .iter_mut()
            .fold(x.clone(), |h, l| l.forward(tape, &h, mode));
        tape.span("linear", || {
            (self.mu.forward(tape, &h), self.logvar.forward(tape, &h))
        })
    }

    /// `[N, latent]` -> `[N, C, H, W]`.
    pub fn decode(&mut self, tape: &Tape, z: &Var, mode: Mode) -> Var {
        self.decoder
            .iter_mut()
            .fold(z.clone(), |h, l| l.forward(tape, &h, mode))
    }

    /// Encode, sample z with `rng`, decode.
    pub fn forward(&mut self, tape: &Tape, x: &Var, mode: Mode, rng: &mut impl Rng) -> VaeOutput {
        let (mu, logvar) = self.encode(tape, x, mode);
        let z = ops::reparameterize(&mu, &logvar, rng);
        VaeOutput {
            recon: self.decode(tape, &z, mode),
            mu,
            logvar,
        }
    }

    /// The configured loss against the input batch `target`.
    pub fn loss(&self, out: &VaeOutput, target: &Tensor) -> VaeLoss {
        let exp = &self.config.exp;
        let reduction = exp.recon_reduction.into();
        let recon = match exp.recon_loss {
            ReconLoss::Mse => ops::mse(&out.recon, target, reduction),
            ReconLoss::L1 => ops::l1(&out.recon, target, reduction),
            ReconLoss::Bce => ops::bce(&out.recon, target, reduction),
        };
        let kl = ops::kl_divergence(&out.mu, &out.logvar);
        let total = ops::add(
            &ops::scale(&recon, exp.recon_weight),
            &ops::scale(&kl, exp.kld_weight),
        );
        VaeLoss {
            recon: recon.item(),
            kl: kl.item(),
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
