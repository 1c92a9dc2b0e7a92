//! `models`: the built-in model configs, listed or printed as TOML to copy and edit;
//! `completions` and `man`: shell completions and the man page from the clap definitions.

use anyhow::Result;
use clap::{Args, Subcommand};
use vae_cpu::config::{builtin, Config, BUILT_IN};
use vae_cpu::model::flops::training_flops_per_image;

/// List the built-in model configs, or print one (`vae-cpu models show celeba64 > my.toml`).
#[derive(Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    action: Option<ModelsAction>,
}

#[derive(Subcommand)]
enum ModelsAction {
    /// Print a built-in config as TOML (redirect it to a file to edit it).
    Show {
        /// A built-in name, as `vae-cpu models` lists them.
        name: String,
    },
}

pub fn run(a: ModelsArgs) -> Result<()> {
    match a.action {
        None => list(),
        Some(ModelsAction::Show { name }) => match builtin::text(&name).or_else(|| {
            (builtin::CLASSIFIERS.iter())
                .find(|(n, _)| *n == name)
                .map(|(_, t)| *t)
        }) {
            Some(text) => {
                print!("{text}");
                Ok(())
            }
            None => anyhow::bail!(
                "no built-in config \"{name}\"; the built-in configs are: {}",
                builtin::names()
            ),
        },
    }
}

/// One line per built-in config: image size, latent, parameters, GFLOP per training image.
fn list() -> Result<()> {
    println!(
        "{:<16} {:>9} {:>7} {:>11} {:>10}",
        "name", "image", "latent", "parameters", "GFLOP/img"
    );
    for (name, text) in BUILT_IN {
        let config = Config::parse(text)?;
        let m = &config.model;
        let shapes = config.plan()?;
        println!(
            "{name:<16} {:>9} {:>7} {:>11} {:>10.3}",
            format!("{}x{}x{}", m.width, m.height, m.channels),
            m.latent,
            shapes.parameters,
            training_flops_per_image(&config)? / 1e9
        );
    }
    println!("\nattribute classifiers (`vae-cpu classifier train --config NAME`):");
    for (name, text) in builtin::CLASSIFIERS {
        let config = vae_cpu::config::ClassifierConfig::parse(text)?;
        let m = &config.model;
        let plan = config.plan()?;
        // With all 40 CelebA attributes (an empty list takes the cache's).
        let head = (plan.features + 1) * 40;
        println!(
            "{name:<16} {:>9} {:>7} {:>11}",
            format!("{}x{}x{}", m.width, m.height, m.channels),
            "-",
            plan.parameters + head
        );
    }
    println!("\nuse one with --config NAME; `vae-cpu models show NAME > my.toml` to edit a copy");
    Ok(())
}

/// Print shell completions for vae-cpu.
#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell. For bash:
    /// `vae-cpu completions bash > ~/.local/share/bash-completion/completions/vae-cpu`.
    shell: clap_complete::Shell,
}

/// Prints `shell`'s completions for the command line `cli`.
pub fn completions(a: CompletionsArgs, cli: &mut clap::Command) -> Result<()> {
    let mut script = vec![];
    clap_complete::generate(a.shell, cli, "vae-cpu", &mut script);
    to_stdout(&script)
}

/// Print the man page (roff): `vae-cpu man > vae-cpu.1 && man ./vae-cpu.1`.
#[derive(Args)]
pub struct ManArgs {}

/// Prints the man page of the command line `cli`.
pub fn man(cli: clap::Command) -> Result<()> {
    let mut page = vec![];
    clap_mangen::Man::new(cli).render(&mut page)?;
    to_stdout(&page)
}

/// Writes `bytes` to standard output; a reader that left early (`| head`) is no error.
fn to_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
