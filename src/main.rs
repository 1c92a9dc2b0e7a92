//! The `vae-cpu` command line. It only parses and dispatches; the work is in the library.

#[cfg(not(any(feature = "engine", feature = "decoder-runtime")))]
compile_error!("vae-cpu needs the `engine` feature, the `edge` feature, or both");

mod cli;

/// Large buffers are recycled across training steps instead of mapped anew (see
/// `vae_cpu::alloc`); at most 4 GiB of free blocks are kept.
#[cfg(feature = "engine")]
#[global_allocator]
static ALLOCATOR: vae_cpu::alloc::RecyclingAllocator =
    vae_cpu::alloc::RecyclingAllocator::new(4 << 30);

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "vae-cpu",
    version,
    about = "Train convolutional VAEs on CelebA on multi-core CPUs",
    long_about = "Train convolutional VAEs on CelebA on multi-core CPUs.\n\n\
        Start with `vae-cpu demo` (generated faces, no download). With CelebA: \
        `vae-cpu prepare --data DIR --size 32`, then \
        `vae-cpu train --config celeba32 --data cache/DIR-32x32.vaecache` \
        (`vae-cpu models` lists the built-in configs)."
)]
#[cfg_attr(
    not(feature = "engine"),
    command(
        about = "Run vae-cpu's exported ONNX decoders (edge build: generate only)",
        long_about = "Run vae-cpu's exported ONNX decoders with tract (the edge build: \
            `generate` only, no training engine). Export a decoder on a bigger machine with \
            `vae-cpu export-onnx decoder.onnx --checkpoint ...`, then \
            `vae-cpu generate --onnx decoder.onnx --n 16 --out faces.png`."
    )
)]
struct Cli {
    #[command(subcommand)]
    command: cli::Command,
    /// Where the matrix products of conv, conv-transpose and linear run: `cpu`, or `cuda`
    /// (an NVIDIA GPU through cuBLAS; needs a build with `--features cuda`, a CUDA 12
    /// driver and cuBLAS). Without a usable GPU it says why once and runs on the CPU.
    #[cfg(feature = "engine")]
    #[arg(long, global = true, env = "VAE_CPU_DEVICE", default_value = "cpu")]
    device: vae_cpu::kernels::offload::Device,
}

fn main() -> std::process::ExitCode {
    // Errors a user can cause end in one message and a non-zero status, never a backtrace.
    // A panic is a bug of ours: say so in one message (with where it happened), not with
    // the default hint to rerun with RUST_BACKTRACE.
    let default_hook = std::panic::take_hook();
    let friendly = std::env::var_os("RUST_BACKTRACE").is_none();
    std::panic::set_hook(Box::new(move |info| {
        // `vae-cpu models | head`: the reader left. End quietly, as SIGPIPE would.
        if info
            .to_string()
            .contains("failed printing to stdout: Broken pipe")
        {
            std::process::exit(141);
        }
        if friendly {
            eprintln!("error: internal error (a bug in vae-cpu; please report it): {info}");
        } else {
            default_hook(info);
        }
    }));
    // An empty VAE_CPU_DEVICE (`VAE_CPU_DEVICE= vae-cpu ...`) means "not set", not a device
    // named "". Still one thread here, so changing the environment is sound.
    if std::env::var_os("VAE_CPU_DEVICE").is_some_and(|v| v.to_string_lossy().trim().is_empty()) {
        std::env::remove_var("VAE_CPU_DEVICE");
    }
    let args = Cli::parse();
    #[cfg(feature = "engine")]
    cli::use_device(args.device);
    match cli::run(args.command, <Cli as clap::CommandFactory>::command) {
        Ok(()) => {
            #[cfg(feature = "engine")]
            cli::world::finish();
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", message(&e));
            #[cfg(feature = "engine")]
            cli::world::abort_if_ranks(1);
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text the message
/// already holds (the library's file errors print their I/O cause themselves).
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !text.contains(&s) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&s);
        }
    }
    text
}
