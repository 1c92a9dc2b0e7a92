//! The training-step benchmark of issue 6: `cargo bench --bench training_step`. Runs
//! `vae-cpu bench` (forward, backward, Adam on a synthetic batch) in a fresh process per
//! row, so each row's peak memory is its own: celeba32 at batch 128 and 500, celeba64 at
//! batch 64, each at 1 and 2 threads. `VAE_CPU_BENCH_STEPS` sets the timed steps (5).
//! For the comparison with PyTorch, see scripts/bench-vs-pytorch.sh.

use std::process::Command;

fn main() {
    let steps = std::env::var("VAE_CPU_BENCH_STEPS").unwrap_or_else(|_| "5".into());
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/models");
    for (model, batch) in [("celeba32", 128), ("celeba32", 500), ("celeba64", 64)] {
        for threads in [1, 2] {
            let out = Command::new(env!("CARGO_BIN_EXE_vae-cpu"))
                .args(["bench", "--config", &format!("{models}/{model}.toml")])
                .args(["--batch-size", &batch.to_string()])
                .args(["--threads", &threads.to_string(), "--steps", &steps])
                .output()
                .expect("run vae-cpu bench");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            println!("{}", String::from_utf8_lossy(&out.stdout));
        }
    }
}
