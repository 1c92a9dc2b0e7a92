//! Flag groups that several commands share, defined once (`#[command(flatten)]`), so the
//! same thing has the same name and help everywhere.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// `--threads` alone (commands without progress output).
#[derive(Args)]
pub struct Threads {
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl Threads {
    pub fn pool(&self) -> Result<rayon::ThreadPool> {
        super::pool(self.threads)
    }
}

/// `--threads` and `--quiet`.
#[derive(Args)]
pub struct Workers {
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bars or per-epoch lines (results and errors still print).
    #[arg(long)]
    pub quiet: bool,
}

impl Workers {
    pub fn pool(&self) -> Result<rayon::ThreadPool> {
        super::pool(self.threads)
    }
}

/// `--checkpoint FILE`: the model a command starts from.
#[derive(Args)]
pub struct CheckpointArg {
    /// A checkpoint written by `train` (e.g. runs/NAME/checkpoints/best.safetensors).
    #[arg(long = "checkpoint", value_name = "FILE")]
    pub path: PathBuf,
}

impl CheckpointArg {
    /// The model it holds.
    pub fn load_model(&self) -> Result<vae_cpu::model::Vae> {
        Ok(vae_cpu::checkpoint::Checkpoint::load_model(&self.path)?)
    }
}
