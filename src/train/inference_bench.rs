//! Inference benchmark (`vae-cpu bench --mode decode|encode`): the model in eval mode
//! without a tape, as `sample`, `serve` and `evaluate` run it: decoding latent points
//! (batch 1 is the latency of one face) or encoding images to their latent means and
//! log-variances. A freshly initialized model: the weights do not change the time.

use super::bench::BenchOptions;
use crate::config::Config;
use crate::model::Vae;
use crate::nn::Mode;
use crate::timing::{self, Latency};
use crate::{Result, Tape, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// Which half of the model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// `[B, latent]` -> images.
    Decode,
    /// Images -> latent means and log-variances.
    Encode,
}

/// Times `opts.steps` calls of `half` at `opts.batch` on the current pool, after
/// `opts.warmup` untimed ones.
pub fn bench_inference(config: &Config, opts: &BenchOptions, half: Half) -> Result<Latency> {
    opts.check()?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.exp.seed);
    let mut model = Vae::new(config, &mut rng)?;
    let m = &config.model;
    let shape = match half {
        Half::Decode => vec![opts.batch, m.latent],
        Half::Encode => vec![opts.batch, m.channels, m.height, m.width],
    };
    let input = Var::constant(Tensor::from_shape_simple_fn(shape, || rng.gen::<f32>()));
    let (runs, budget) = (opts.steps, Duration::ZERO);
    timing::measure(opts.warmup, runs, runs, budget, || {
        let tape = Tape::no_grad();
        let out = match half {
            Half::Decode => model.decode(&tape, &input, Mode::Eval),
            Half::Encode => model.encode(&tape, &input, Mode::Eval).0,
        };
        drop((out, tape));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_halves_time_every_call() {
        let config = Config::load_named(std::path::Path::new("celeba32")).unwrap();
        let opts = BenchOptions {
            batch: 2,
            steps: 3,
            warmup: 1,
        };
        for half in [Half::Decode, Half::Encode] {
            let r = bench_inference(&config, &opts, half).unwrap();
            assert_eq!(r.runs, 3);
            assert!(r.median_ms > 0.0 && r.median_ms <= r.p90_ms);
        }
        let zero = BenchOptions { steps: 0, ..opts };
        assert!(bench_inference(&config, &zero, Half::Decode).is_err());
    }
}
