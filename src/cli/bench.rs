//! `bench`: times full training steps (forward, backward, the config's optimizer) of a
//! model config on a synthetic batch and prints images/s, GFLOP/s, peak memory and the
//! time per part; or, with `--mode decode|encode`, inference calls. One configuration per
//! run, so the peak memory is that configuration's.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use vae_cpu::config::Config;
use vae_cpu::train::bench::{bench_training_step, peak_memory_bytes, BenchOptions};
use vae_cpu::train::inference_bench::{bench_inference, Half};

/// Time training steps (forward, backward, the config's optimizer), or decoding or
/// encoding, of a model on synthetic data.
#[derive(Args)]
pub struct BenchArgs {
    /// The model config: a built-in name (celeba32, celeba64, ...; see `vae-cpu models`)
    /// or a TOML file. A file that exists wins over a built-in name.
    #[arg(long)]
    config: PathBuf,
    /// Images per step (default: the config's trainer.batch_size).
    #[arg(long)]
    batch_size: Option<usize>,
    #[command(flatten)]
    threads: super::flags::Threads,
    /// Timed steps.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed steps before them (buffers, caches and the allocator warm up).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// What a step is: train (forward, backward, the config's optimizer: Adam unless its
    /// exp.optimizer says sgd), decode (latent points to images, eval mode, no gradients;
    /// batch 1 is one face's latency) or encode (images to their latent means and
    /// log-variances, as evaluate and the latent tools do).
    #[arg(long, default_value = "train", value_parser = ["train", "decode", "encode"])]
    mode: String,
}

pub fn run(a: BenchArgs) -> Result<()> {
    let config = Config::load_named(&a.config)?;
    let pool = a.threads.pool()?;
    let opts = BenchOptions {
        batch: a.batch_size.unwrap_or(config.trainer.batch_size),
        steps: a.steps,
        warmup: a.warmup,
    };
    let threads = pool.current_num_threads();
    let half = match a.mode.as_str() {
        "decode" => Some(Half::Decode),
        "encode" => Some(Half::Encode),
        _ => None,
    };
    if let Some(half) = half {
        let r = pool
            .install(|| bench_inference(&config, &opts, half))
            .with_context(|| format!("benchmarking {}", a.config.display()))?;
        println!(
            "vae-cpu {}, {}, {} batch {}, {threads} thread{}: {} calls after {} warm-up",
            env!("CARGO_PKG_VERSION"),
            config.model.name,
            a.mode,
            opts.batch,
            if threads == 1 { "" } else { "s" },
            opts.steps,
            opts.warmup
        );
        println!("images/s    {:.1}", opts.batch as f64 / (r.median_ms / 1e3));
        println!("call        {:.3} ms (median)", r.median_ms);
        if let Some(peak) = peak_memory_bytes() {
            println!("peak memory {:.0} MiB", peak as f64 / (1u64 << 20) as f64);
        }
        return Ok(());
    }
    let report = pool
        .install(|| bench_training_step(&config, &opts))
        .with_context(|| format!("benchmarking {}", a.config.display()))?;
    println!(
        "vae-cpu {}, {}, batch {}, {threads} thread{}: {} steps after {} warm-up",
        env!("CARGO_PKG_VERSION"),
        config.model.name,
        opts.batch,
        if threads == 1 { "" } else { "s" },
        opts.steps,
        opts.warmup
    );
    println!("images/s    {:.1}", report.images_per_second());
    println!("step        {:.4} s (median)", report.median_step_seconds());
    println!(
        "GFLOP/s     {:.1} ({:.2} GFLOP per step)",
        report.gflops_per_second(),
        report.flops_per_step / 1e9
    );
    if let Some(peak) = peak_memory_bytes() {
        println!("peak memory {:.0} MiB", peak as f64 / (1u64 << 20) as f64);
    }
    let t = &report.transfers;
    if t.offloaded > 0 {
        println!("device, per step: {}", t.per(opts.steps as u32));
    }
    println!(
        "sgemm       {:.1} GFLOP/s (1024 x 1024 x 1024 on the same threads)",
        report.sgemm_gflops
    );
    println!("time by part (forward + backward), and GFLOP/s of the parts that multiply:");
    let total = report.total_seconds();
    for (part, seconds) in &report.by_part {
        match report.part_gflops(part) {
            Some(g) => println!(
                "  {part:<18} {:5.1}%  {g:6.1} GFLOP/s",
                100.0 * seconds / total
            ),
            None => println!("  {part:<18} {:5.1}%", 100.0 * seconds / total),
        }
    }
    Ok(())
}
