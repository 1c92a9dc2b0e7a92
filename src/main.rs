//! The `vae-cpu` command line. It only parses and dispatches; the work is in the library.

mod cli;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "vae-cpu",
    version,
    about = "Train convolutional VAEs on CelebA on multi-core CPUs",
    long_about = "Train convolutional VAEs on CelebA on multi-core CPUs.\n\n\
        Start with `vae-cpu demo` (generated faces, no download). With CelebA: \
        `vae-cpu prepare --data DIR --size 32`, then \
        `vae-cpu train --config models/celeba32.toml --data cache/DIR-32x32.vaecache`."
)]
struct Cli {
    #[command(subcommand)]
    command: cli::Command,
}

fn main() -> std::process::ExitCode {
    // Errors a user can cause end in one message and a non-zero status, never a backtrace.
    match cli::run(Cli::parse().command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
