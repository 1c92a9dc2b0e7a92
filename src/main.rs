//! The `vae-cpu` command line. It only parses and dispatches; the work is in the library.

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vae-cpu",
    version,
    about = "Train convolutional VAEs on CelebA on multi-core CPUs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the engine's version, the CPU features its GEMM can use, and the thread count.
    Info {
        /// Size of the thread pool to report (defaults to the number of cores).
        #[arg(long)]
        threads: Option<usize>,
    },
}

fn main() -> std::process::ExitCode {
    // Errors a user can cause end in one message and a non-zero status, never a backtrace.
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { threads } => {
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let pool = vae_cpu::threads::thread_pool(threads)?;
            println!("vae-cpu {}", env!("CARGO_PKG_VERSION"));
            println!("threads: {}", pool.current_num_threads());
            println!("cpu features: {}", cpu_features().join(" "));
            Ok(())
        }
    }
}

fn cpu_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut found = vec![];
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            found.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("fma") {
            found.push("fma");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            found.push("avx512f");
        }
    }
    #[cfg(target_arch = "aarch64")]
    found.push("neon");
    found
}
