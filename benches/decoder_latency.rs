//! Decoder latency, the edge use case: `cargo bench --bench decoder_latency`. For each
//! model in `models/` (random weights: they do not change the time) the decoder is exported
//! to ONNX and timed at batch 1 and 16 with tract and with the engine (eval mode, 1 thread
//! and 2 threads). Prints the median and 90th percentile over the runs after a warm-up.
//! `VAE_CPU_MODELS=celeba32,celeba64` picks models.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};
use vae_cpu::config::Config;
use vae_cpu::model::Vae;
use vae_cpu::nn::Mode;
use vae_cpu::onnx::export::{export, write, Part};
use vae_cpu::onnx::run::OnnxModel;
use vae_cpu::threads::thread_pool;
use vae_cpu::{latent, Tape, Var};

/// (median, 90th percentile) in milliseconds of `f` over runs filling about `budget`.
fn timings(budget: Duration, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..5 {
        f();
    }
    let start = Instant::now();
    let mut ms = vec![];
    while ms.len() < 20 || (start.elapsed() < budget && ms.len() < 2000) {
        let t = Instant::now();
        f();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[ms.len() * 9 / 10])
}

fn main() {
    let wanted = std::env::var("VAE_CPU_MODELS").unwrap_or_else(|_| "celeba32,celeba64".into());
    let dir = tempfile::tempdir().unwrap();
    println!(
        "{:<10} {:>5}  {:<18} {:>10} {:>10}",
        "model", "batch", "runtime", "median ms", "p90 ms"
    );
    for name in wanted.split(',') {
        let path = format!("{}/models/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        let config = Config::load(std::path::Path::new(&path)).expect("a model config");
        let mut model = Vae::new(&config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        let file = dir.path().join(format!("{name}.onnx"));
        write(&file, &export(&model, Part::Decoder).unwrap()).unwrap();
        let onnx = OnnxModel::load(&file).unwrap();
        for batch in [1, 16] {
            let z = latent::prior_samples(batch, config.model.latent, 1, 1.0);
            let budget = Duration::from_secs(3);
            let values: Vec<f32> = z.iter().copied().collect();
            let row = |runtime: &str, (median, p90): (f64, f64)| {
                println!("{name:<10} {batch:>5}  {runtime:<18} {median:>10.3} {p90:>10.3}");
            };
            row(
                "tract",
                timings(budget, || {
                    onnx.run(z.shape(), values.clone()).unwrap();
                }),
            );
            for threads in [1, 2] {
                let pool = thread_pool(threads).unwrap();
                let t = pool.install(|| {
                    timings(budget, || {
                        let tape = Tape::no_grad();
                        model.decode(&tape, &Var::constant(z.clone()), Mode::Eval);
                    })
                });
                row(
                    &format!(
                        "engine, {threads} thread{}",
                        if threads > 1 { "s" } else { "" }
                    ),
                    t,
                );
            }
        }
    }
}
