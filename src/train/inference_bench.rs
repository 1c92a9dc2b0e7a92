//! Inference benchmark (`vae-cpu bench --mode decode|encode`): the model in eval mode
//! without a tape, as `sample`, `serve` and `evaluate` run it: decoding latent points
//! (batch 1 is the latency of one face) or encoding images to their latent means and
//! log-variances. A freshly initialized model: the weights do not change the time.

use super::bench::BenchOptions;
use crate::config::Config;
use crate::model::Vae;
use crate::nn::Mode;
use crate::{Error, Result, Tape, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Which half of the model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// `[B, latent]` -> images.
    Decode,
    /// Images -> latent means and log-variances.
    Encode,
}

/// The wall time of each timed call.
#[derive(Clone, Debug)]
pub struct InferenceReport {
    pub batch: usize,
    pub call_seconds: Vec<f64>,
}

impl InferenceReport {
    pub fn median_seconds(&self) -> f64 {
        let mut s = self.call_seconds.clone();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    }

    /// Images per second at the median call time.
    pub fn images_per_second(&self) -> f64 {
        self.batch as f64 / self.median_seconds()
    }
}

/// Times `opts.warmup + opts.steps` calls of `half` at `opts.batch` on the current pool.
pub fn bench_inference(
    config: &Config,
    opts: &BenchOptions,
    half: Half,
) -> Result<InferenceReport> {
    if opts.batch == 0 || opts.steps == 0 {
        return Err(Error::Invalid(
            "--batch-size and --steps must be at least 1".into(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.exp.seed);
    let mut model = Vae::new(config, &mut rng)?;
    let m = &config.model;
    let shape = match half {
        Half::Decode => vec![opts.batch, m.latent],
        Half::Encode => vec![opts.batch, m.channels, m.height, m.width],
    };
    let input = Var::constant(Tensor::from_shape_simple_fn(shape, || rng.gen::<f32>()));
    let mut call_seconds = vec![];
    for call in 0..opts.warmup + opts.steps {
        let start = Instant::now();
        let tape = Tape::no_grad();
        let out = match half {
            Half::Decode => model.decode(&tape, &input, Mode::Eval),
            Half::Encode => model.encode(&tape, &input, Mode::Eval).0,
        };
        drop((out, tape));
        if call >= opts.warmup {
            call_seconds.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(InferenceReport {
        batch: opts.batch,
        call_seconds,
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
            assert_eq!(r.call_seconds.len(), 3);
            assert!(r.images_per_second() > 0.0 && r.median_seconds() > 0.0);
        }
        let zero = BenchOptions { steps: 0, ..opts };
        assert!(bench_inference(&config, &zero, Half::Decode).is_err());
    }
}
