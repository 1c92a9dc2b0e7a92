//! The engine end to end: a small convolutional VAE (the celeba32 architecture scaled down)
//! built from the layers, trained with Adam on synthetic pictures. Its loss must fall, and
//! two runs with the same seed and thread count must agree bit for bit.
#![cfg(feature = "engine")]

use ndarray::IxDyn;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use vae_cpu::nn::{BatchNorm, Conv2d, ConvTranspose2d, Linear, Mode, Module, PRelu, Slot};
use vae_cpu::ops::{self, Conv2dSpec, ConvTranspose2dSpec, Padding, Reduction};
use vae_cpu::optim::{Adam, Optimizer};
use vae_cpu::{Tape, Tensor, Var};

const LATENT: usize = 4;

struct TinyVae {
    conv: Conv2d,
    bn1: BatchNorm,
    act1: PRelu,
    mu: Linear,
    logvar: Linear,
    fc: Linear,
    deconv: ConvTranspose2d,
    bn2: BatchNorm,
    act2: PRelu,
    out: ConvTranspose2d,
}

impl TinyVae {
    fn new(rng: &mut ChaCha8Rng) -> Self {
        TinyVae {
            conv: Conv2d::new(3, 8, 4, Conv2dSpec::new(2, Padding::Same), true, rng),
            bn1: BatchNorm::new(8),
            act1: PRelu::new(8),
            mu: Linear::new(8 * 4 * 4, LATENT, true, rng),
            logvar: Linear::new(8 * 4 * 4, LATENT, true, rng),
            fc: Linear::new(LATENT, 8 * 4 * 4, true, rng),
            deconv: ConvTranspose2d::new(8, 8, 4, ConvTranspose2dSpec::new(2, 1, 0), true, rng),
            bn2: BatchNorm::new(8),
            act2: PRelu::new(1),
            out: ConvTranspose2d::new(8, 3, 3, ConvTranspose2dSpec::new(1, 1, 0), true, rng),
        }
    }

    /// Returns (reconstruction, mu, logvar).
    fn forward(
        &mut self,
        tape: &Tape,
        x: &Var,
        mode: Mode,
        rng: &mut ChaCha8Rng,
    ) -> (Var, Var, Var) {
        let n = x.shape()[0];
        let h = self.conv.forward(tape, x);
        let h = self.act1.forward(tape, &self.bn1.forward(tape, &h, mode));
        let h = ops::flatten(&h);
        let (mu, logvar) = (self.mu.forward(tape, &h), self.logvar.forward(tape, &h));
        let z = ops::reparameterize(&mu, &logvar, rng);
        let d = ops::reshape(&self.fc.forward(tape, &z), &[n, 8, 4, 4]);
        let d = self.deconv.forward(tape, &d);
        let d = self.act2.forward(tape, &self.bn2.forward(tape, &d, mode));
        (ops::sigmoid(&self.out.forward(tape, &d)), mu, logvar)
    }
}

impl Module for TinyVae {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        let j = |n: &str| vae_cpu::nn::join(prefix, n);
        self.conv.visit(&j("conv"), f);
        self.bn1.visit(&j("bn1"), f);
        self.act1.visit(&j("act1"), f);
        self.mu.visit(&j("mu"), f);
        self.logvar.visit(&j("logvar"), f);
        self.fc.visit(&j("fc"), f);
        self.deconv.visit(&j("deconv"), f);
        self.bn2.visit(&j("bn2"), f);
        self.act2.visit(&j("act2"), f);
        self.out.visit(&j("out"), f);
    }
}

/// 16 pictures of 8x8: a bright square at one of four places, in one of four colours.
fn pictures() -> Tensor {
    Tensor::from_shape_fn(IxDyn(&[16, 3, 8, 8]), |d| {
        let (i, c, y, x) = (d[0], d[1], d[2], d[3]);
        let (qy, qx) = ((i % 4) / 2 * 4, (i % 2) * 4);
        let inside = y >= qy && y < qy + 4 && x >= qx && x < qx + 4;
        if inside && (i / 4 + c) % 2 == 0 {
            0.9
        } else {
            0.1
        }
    })
}

fn train(steps: usize, threads: usize) -> Vec<f32> {
    let pool = vae_cpu::threads::thread_pool(threads).unwrap();
    pool.install(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut model = TinyVae::new(&mut rng);
        let mut opt = Adam::new(5e-3);
        let data = pictures();
        let mut losses = vec![];
        for _ in 0..steps {
            let tape = Tape::new();
            let (recon, mu, logvar) =
                model.forward(&tape, &Var::constant(data.clone()), Mode::Train, &mut rng);
            let rec = ops::mse(&recon, &data, Reduction::Mean);
            let loss = ops::add(&ops::scale(&rec, 200.0), &ops::kl_divergence(&mu, &logvar));
            losses.push(loss.item());
            let grads = tape.backward(&loss);
            drop((tape, recon, mu, logvar, rec, loss));
            opt.step(&mut model, &grads);
        }
        // Eval mode without a tape records nothing and keeps shapes.
        let (recon, ..) =
            model.forward(&Tape::no_grad(), &Var::constant(data), Mode::Eval, &mut rng);
        assert_eq!(recon.shape(), &[16, 3, 8, 8]);
        assert!(!recon.is_tracked());
        losses
    })
}

#[test]
fn loss_falls_while_training() {
    let losses = train(80, 2);
    let first = losses[0];
    let last = losses[losses.len() - 5..].iter().sum::<f32>() / 5.0;
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(last < 0.5 * first, "loss went from {first} to {last}");
}

#[test]
fn same_seed_same_threads_same_losses() {
    assert_eq!(train(5, 2), train(5, 2));
}
