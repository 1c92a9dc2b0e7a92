use anyhow::Result;
use clap::Args;

/// Print the engine's version, the CPU features its GEMM can use, the thread count and
/// where the matrix products run (`--device`).
#[derive(Args)]
pub struct InfoArgs {
    /// Size of the thread pool to report (defaults to the number of cores).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(a: InfoArgs) -> Result<()> {
    let pool = super::pool(a.threads)?;
    println!("vae-cpu {}", env!("CARGO_PKG_VERSION"));
    println!("threads: {}", pool.current_num_threads());
    println!("cpu features: {}", cpu_features().join(" "));
    let built = if vae_cpu::kernels::cuda::BUILT_IN {
        "built with the cuda feature"
    } else {
        "not built in (--features cuda)"
    };
    let device = vae_cpu::kernels::offload::active_name().unwrap_or_else(|| "cpu".into());
    println!("gpu support: {built}");
    println!("matrix products on: {device}");
    Ok(())
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
