//! GEMM offload figures: `cargo bench --features cuda --bench offload`. Times celeba32
//! training steps on the CPU, then with the products on the accelerator, and prints what
//! crossed to the device per step (bytes up, bytes down, weight bytes the device already
//! held, and the time of each). The accelerator is the GPU when one is usable; otherwise
//! the reference accelerator (cuBLAS's contract on the CPU), whose byte counts are what a
//! GPU would copy but whose times are not a GPU's. `VAE_CPU_BENCH_STEPS` sets the timed
//! steps (5).

use vae_cpu::config::Config;
use vae_cpu::kernels::offload::{self, Device, Reference};
use vae_cpu::train::bench::{bench_training_step, BenchOptions};

fn main() {
    let steps: usize = std::env::var("VAE_CPU_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/celeba32.toml");
    let config = Config::load(std::path::Path::new(path)).expect("models/celeba32.toml");
    let device = match offload::use_device(Device::Cuda) {
        Ok(Some(name)) => name,
        other => {
            let why = other.err().unwrap_or_default();
            println!(
                "no GPU ({why}): the reference accelerator stands in; its times are the CPU's"
            );
            offload::use_accelerator(Reference::new());
            "the reference accelerator".into()
        }
    };
    offload::stop();
    let threads = rayon::current_num_threads();
    for batch in [64, 128] {
        let opts = BenchOptions {
            batch,
            steps,
            warmup: 1,
        };
        let cpu = bench_training_step(&config, &opts).expect("CPU bench");
        if offload::use_device(Device::Cuda).is_err() {
            offload::use_accelerator(Reference::new());
        }
        let dev = bench_training_step(&config, &opts).expect("device bench");
        offload::stop();
        println!("celeba32, batch {batch}, {threads} threads, {steps} steps:");
        println!("  cpu      {:7.1} images/s", cpu.images_per_second());
        println!(
            "  device   {:7.1} images/s ({device})",
            dev.images_per_second()
        );
        println!("  per step {}", dev.transfers.per(steps as u32));
    }
}
