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

/// `--disentanglement` and `--votes`: the metric of Higgins et al. 2017 on generated faces.
#[derive(Args)]
pub struct Disentanglement {
    /// Also measure disentanglement: the metric of Higgins et al. 2017 on procedurally
    /// drawn faces, whose generative factors are known (meaningful for a model trained on
    /// such faces, e.g. by `vae-cpu demo`; docs/training.md)
    #[arg(long)]
    pub disentanglement: bool,
    /// Votes per factor the metric's classifier learns from (half as many test it); each
    /// vote draws and encodes 64 faces
    #[arg(long, default_value_t = 60, value_parser = super::count())]
    pub votes: usize,
}

impl Disentanglement {
    /// The metric for `model` when asked for (a progress bar unless `quiet`).
    pub fn measure(
        &self,
        model: &mut vae_cpu::model::Vae,
        quiet: bool,
    ) -> Option<vae_cpu::latent::disentanglement::HigginsReport> {
        use vae_cpu::latent::disentanglement::{higgins_metric, model_encoder, HigginsOptions};
        let opts = HigginsOptions {
            votes: self.votes,
            ..HigginsOptions::default()
        };
        let bar = vae_cpu::progress::bar(0, "disentanglement votes", quiet);
        self.disentanglement
            .then(|| higgins_metric(&mut model_encoder(model), &opts, &bar))
    }
}
