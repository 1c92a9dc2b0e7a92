//! Decoder latency, the edge use case: `cargo bench --bench decoder_latency`. For each
//! model (random weights: they do not change the time) the decoder is exported to ONNX
//! twice, literal (`--plain-conv-transpose --keep-batch-norm`) and fast (the default:
//! sub-pixel transposed convolutions, batch norms folded), and timed at batch 1 and 16 with
//! tract (each file read by our own reader, as the edge binary reads it, and by
//! tract-onnx) and with the engine (eval mode, 1 thread and 2 threads). Prints the median and
//! 90th percentile over the runs after a warm-up. `VAE_CPU_MODELS=celeba32,celeba64` picks
//! models; the files are left in `target/decoder-latency/` for other runtimes
//! (`scripts/onnxruntime-check.py`).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;
use vae_cpu::config::Config;
use vae_cpu::model::Vae;
use vae_cpu::nn::Mode;
use vae_cpu::onnx::export::{export, write, ExportOptions, Part};
use vae_cpu::onnx::run::{OnnxModel, Reader};
use vae_cpu::threads::thread_pool;
use vae_cpu::timing::{measure, Latency};
use vae_cpu::{latent, Tape, Var};

fn time(f: impl FnMut()) -> Latency {
    let mut f = f;
    measure::<()>(5, 20, 2000, Duration::from_secs(3), || {
        f();
        Ok(())
    })
    .unwrap()
}

fn main() {
    let wanted = std::env::var("VAE_CPU_MODELS").unwrap_or_else(|_| "celeba32,celeba64".into());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/decoder-latency");
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "{:<10} {:>5}  {:<26} {:>10} {:>10}",
        "model", "batch", "runtime", "median ms", "p90 ms"
    );
    for name in wanted.split(',') {
        let path = format!("{}/models/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        let config = Config::load(std::path::Path::new(&path)).expect("a model config");
        let mut model = Vae::new(&config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        let mut files = vec![];
        for (style, options) in [
            ("literal", ExportOptions::literal()),
            ("fast", ExportOptions::default()),
        ] {
            let file = dir.join(format!("{name}-{style}.onnx"));
            write(&file, &export(&model, Part::Decoder, &options).unwrap()).unwrap();
            for (reader, label) in [(Reader::Own, "ours"), (Reader::TractOnnx, "tract-onnx")] {
                let onnx = OnnxModel::load_with(&file, reader).unwrap();
                files.push((format!("{style}, {label}"), onnx));
            }
        }
        for batch in [1, 16] {
            let z = latent::prior_samples(batch, config.model.latent, 1, 1.0);
            let values: Vec<f32> = z.iter().copied().collect();
            let row = |runtime: &str, l: Latency| {
                println!(
                    "{name:<10} {batch:>5}  {runtime:<26} {:>10.3} {:>10.3}",
                    l.median_ms, l.p90_ms
                );
            };
            for (style, onnx) in &files {
                let l = time(|| {
                    onnx.run(z.shape(), values.clone()).unwrap();
                });
                row(&format!("tract, {style}"), l);
            }
            for threads in [1, 2] {
                let pool = thread_pool(threads).unwrap();
                let l = pool.install(|| {
                    time(|| {
                        let tape = Tape::no_grad();
                        model.decode(&tape, &Var::constant(z.clone()), Mode::Eval);
                    })
                });
                let plural = if threads > 1 { "s" } else { "" };
                row(&format!("engine, {threads} thread{plural}"), l);
            }
        }
    }
}
