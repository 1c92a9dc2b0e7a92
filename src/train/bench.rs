//! Training-step benchmark (`vae-cpu bench`): full steps (forward, backward, the config's
//! optimizer) of a model on a fixed synthetic batch, timed after a warm-up, with the time
//! split by layer kind (from a profiling tape), the analytic FLOPs (`model::flops`) and the
//! process's peak memory. Data loading is not part of it: `train` reports its own
//! data-loading share.

use crate::autograd::{Profile, UNLABELED};
use crate::config::Config;
use crate::kernels::gemm::{gemm_par, MatRef};
use crate::kernels::offload::{self, TransferStats};
use crate::model::flops::{forward_flops_per_sample, training_flops_per_image};
use crate::model::Vae;
use crate::nn::Mode;
use crate::{Error, Result, Tape, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

/// What to time.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub batch: usize,
    /// Timed steps, after `warmup` untimed ones.
    pub steps: usize,
    pub warmup: usize,
}

impl BenchOptions {
    /// At least one image and one timed step.
    pub fn check(&self) -> Result<()> {
        if self.batch == 0 || self.steps == 0 {
            return Err(Error::Invalid(
                "--batch-size and --steps must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The figures of one benchmark.
#[derive(Clone, Debug)]
pub struct BenchReport {
    pub batch: usize,
    /// Wall time of each timed step.
    pub step_seconds: Vec<f64>,
    /// FLOPs of one training step (3x the forward GEMM FLOPs).
    pub flops_per_step: f64,
    /// Seconds over all timed steps per part: layer kinds (forward + backward), then
    /// `optimizer`, then `other` (loss, sampling, freeing buffers).
    pub by_part: Vec<(String, f64)>,
    /// What the accelerator copied and computed over the timed steps (all zero on the CPU).
    pub transfers: TransferStats,
    /// FLOPs of one step per layer kind that has any (convolutions, linear layers).
    pub flops_by_part: Vec<(&'static str, f64)>,
    /// GFLOP/s of a 1024 x 1024 x 1024 matrix product on the same threads (the best of a
    /// few), the yardstick for the parts' figures.
    pub sgemm_gflops: f64,
}

impl BenchReport {
    pub fn total_seconds(&self) -> f64 {
        self.step_seconds.iter().sum()
    }

    pub fn images_per_second(&self) -> f64 {
        (self.batch * self.step_seconds.len()) as f64 / self.total_seconds()
    }

    pub fn gflops_per_second(&self) -> f64 {
        self.flops_per_step * self.step_seconds.len() as f64 / self.total_seconds() / 1e9
    }

    /// GFLOP/s of one part over the timed steps, for the parts that multiply matrices.
    pub fn part_gflops(&self, part: &str) -> Option<f64> {
        let (_, flops) = self.flops_by_part.iter().find(|(k, _)| *k == part)?;
        let (_, seconds) = self.by_part.iter().find(|(k, _)| k == part)?;
        (*seconds > 0.0).then(|| flops * self.step_seconds.len() as f64 / seconds / 1e9)
    }

    pub fn median_step_seconds(&self) -> f64 {
        let mut s = self.step_seconds.clone();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    }
}

/// Runs `warmup + steps` training steps of `config`'s model at `opts.batch` on the current
/// rayon pool.
pub fn bench_training_step(config: &Config, opts: &BenchOptions) -> Result<BenchReport> {
    opts.check()?;
    super::memory::check_batch_fits(config, &config.plan()?, opts.batch)?;
    let flops_per_step = opts.batch as f64 * training_flops_per_image(config)?;
    let flops_by_part = forward_flops_per_sample(&config.plan()?, config.model.latent)
        .into_iter()
        .map(|(kind, f)| (kind, 3.0 * f * opts.batch as f64))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(config.exp.seed);
    let mut model = Vae::new(config, &mut rng)?;
    let mut optim = config.exp.optimizer();
    let m = &config.model;
    let input = Var::constant(Tensor::from_shape_simple_fn(
        vec![opts.batch, m.channels, m.height, m.width],
        || rng.gen::<f32>(),
    ));
    let mut step_seconds = vec![];
    let mut profile = Profile::default();
    let mut optimizer = Duration::ZERO;
    let mut transfers_before = offload::stats();
    for step in 0..opts.warmup + opts.steps {
        if step == opts.warmup {
            transfers_before = offload::stats();
        }
        let start = Instant::now();
        let tape = Tape::profiled();
        let out = model.forward(&tape, &input, Mode::Train, &mut rng);
        let loss = model.loss(&out, input.value());
        let grads = tape.backward(&loss.total);
        let optim_start = Instant::now();
        optim.step(&mut model, &grads);
        let optim_time = optim_start.elapsed();
        let step_profile = tape.profile().unwrap_or_default();
        drop((out, loss, grads, tape));
        if step >= opts.warmup {
            step_seconds.push(start.elapsed().as_secs_f64());
            profile.add(&step_profile);
            optimizer += optim_time;
        }
    }
    let total: f64 = step_seconds.iter().sum();
    let mut by_part: Vec<(String, f64)> = profile
        .parts()
        .iter()
        .filter(|(label, _)| *label != UNLABELED)
        .map(|(label, t)| (label.to_string(), t.as_secs_f64()))
        .collect();
    let named: f64 = by_part.iter().map(|(_, s)| s).sum::<f64>() + optimizer.as_secs_f64();
    by_part.push(("optimizer".into(), optimizer.as_secs_f64()));
    by_part.push((UNLABELED.into(), (total - named).max(0.0)));
    Ok(BenchReport {
        batch: opts.batch,
        step_seconds,
        flops_per_step,
        by_part,
        transfers: offload::stats().since(&transfers_before),
        flops_by_part,
        sgemm_gflops: sgemm_gflops(),
    })
}

/// GFLOP/s of the best of five 1024 x 1024 x 1024 products on the current pool.
fn sgemm_gflops() -> f64 {
    const N: usize = 1024;
    let a: Vec<f32> = (0..N * N).map(|i| (i % 13) as f32 * 0.1).collect();
    let mut c = vec![0.0f32; N * N];
    let m = MatRef::new(&a, N, N);
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            gemm_par(1.0, m, m, 0.0, &mut c);
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    2.0 * (N * N * N) as f64 / best / 1e9
}

/// The process's peak resident memory in bytes (Linux `VmHWM`), if the system says.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_model_reports_consistent_figures() {
        let config = Config::parse(
            r#"
            [model]
            name = "tiny"
            channels = 3
            height = 8
            width = 8
            latent = 4
            [[model.encoder]]
            layers = [
              { type = "conv2d", filters = 4, kernel = 3, stride = 2, padding = 1 },
              { type = "batch_norm" }, { type = "prelu" }, { type = "flatten" },
            ]
            [[model.decoder]]
            layers = [
              { type = "linear", units = 64 }, { type = "reshape", shape = [4, 4, 4] },
              { type = "conv_transpose2d", filters = 3, kernel = 4, stride = 2, padding = 1 },
              { type = "sigmoid" },
            ]
            "#,
        )
        .unwrap();
        let opts = BenchOptions {
            batch: 5,
            steps: 3,
            warmup: 1,
        };
        let r = bench_training_step(&config, &opts).unwrap();
        assert_eq!(r.step_seconds.len(), 3);
        // conv 2*27*64 + deconv 2*64*48 + linear 2*4*64 + heads 2*2*64*4, times 3 and 5.
        let forward = 2.0 * 27.0 * 64.0 + 2.0 * 64.0 * 48.0 + 2.0 * 4.0 * 64.0 + 4.0 * 64.0 * 4.0;
        assert_eq!(r.flops_per_step, 3.0 * 5.0 * forward);
        let parts: Vec<&str> = r.by_part.iter().map(|(p, _)| p.as_str()).collect();
        for kind in [
            "conv2d",
            "norm+activation",
            "linear",
            "conv_transpose2d",
            "sigmoid",
            "optimizer",
            "other",
        ] {
            assert!(parts.contains(&kind), "{kind} missing from {parts:?}");
        }
        let sum: f64 = r.by_part.iter().map(|(_, s)| s).sum();
        assert!(
            sum <= r.total_seconds() * 1.0001 && sum >= r.total_seconds() * 0.9999,
            "{sum}"
        );
        assert!(r.images_per_second() > 0.0 && r.gflops_per_second() > 0.0);
        // Each multiplying part's GFLOP/s is its FLOPs over its own time.
        let conv_flops = 3.0 * 5.0 * 2.0 * 27.0 * 64.0;
        assert_eq!(r.flops_by_part[0], ("conv2d", conv_flops));
        let conv_seconds = r.by_part.iter().find(|(p, _)| p == "conv2d").unwrap().1;
        let expect = conv_flops * 3.0 / conv_seconds / 1e9;
        assert!((r.part_gflops("conv2d").unwrap() - expect).abs() <= 1e-9 * expect);
        assert_eq!(r.part_gflops("sigmoid"), None);
        assert!(r.sgemm_gflops > 0.0);
        assert!(bench_training_step(&config, &BenchOptions { batch: 0, ..opts }).is_err());
    }

    #[test]
    fn peak_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_memory_bytes().unwrap() > 1 << 20);
        }
    }
}
