//! `sweep`: trains every combination of `--set` values one after another, each in its own
//! run folder, then writes a table of validation metrics and the runs' sample grids side by
//! side. Running the same command again resumes: finished runs are kept, an interrupted
//! one continues from its newest checkpoint.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use vae_cpu::config::Overrides;
use vae_cpu::train::metrics;
use vae_cpu::train::run_dir::folder_name;
use vae_cpu::train::sweep::{grid, Axis, GridPoint, Summary};
use vae_cpu::train::{Outcome, RunDir, TrainOptions, Trainer};
use vae_cpu::viz;

/// Train a grid of hyperparameters one run after another (or resume the grid), then
/// tabulate the validation metrics and put the sample grids side by side.
#[derive(Args)]
pub struct SweepArgs {
    /// The base config every run starts from: a built-in name (see `vae-cpu models`) or a
    /// TOML file.
    #[arg(long)]
    config: PathBuf,
    /// A cache from `vae-cpu prepare`, or a CelebA folder.
    #[arg(long)]
    data: PathBuf,
    /// A config key and its values, e.g. exp.kld_weight=1e-3,1e-4,1e-5. Repeat for more
    /// axes: the grid is every combination.
    #[arg(long = "set", value_name = "KEY=V1,V2,...", required = true)]
    set: Vec<String>,
    /// The sweep's folder: one run folder per combination, the table and the picture
    /// (default: runs/sweep-<model name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Epochs per run, at least 1 (overrides the config).
    #[arg(long, value_parser = super::count())]
    epochs: Option<usize>,
    /// Early stopping per run (see `train --patience`).
    #[arg(long, value_parser = super::count())]
    patience: Option<usize>,
    /// Use at most this many validation images per epoch.
    #[arg(long)]
    val_limit: Option<usize>,
    #[command(flatten)]
    workers: super::flags::Workers,
}

pub fn run(a: SweepArgs) -> Result<()> {
    let pool = a.workers.pool()?;
    let (text, _) = vae_cpu::config::builtin::read(&a.config)?;
    let axes = a
        .set
        .iter()
        .map(|s| Axis::parse(s))
        .collect::<vae_cpu::Result<Vec<_>>>()?;
    let mut points = grid(&text, &axes).with_context(|| format!("{}", a.config.display()))?;
    let overrides = Overrides::resumable(a.epochs, a.patience);
    for p in &mut points {
        p.config = overrides.apply(p.config.clone());
        p.config.plan()?;
    }
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(folder_name(&format!(
            "sweep-{}",
            points[0].config.model.name
        )))
    });
    let inputs = [
        ("--config", a.config.as_path()),
        ("--data", a.data.as_path()),
    ];
    vae_cpu::file_guard::check_command(&inputs, &[])?;
    // The sweep folder is locked for the whole sweep (each run folder is locked too).
    let _lock = RunDir::new(&out).lock()?;
    let stop = super::stop_on_ctrl_c()?;
    for (k, p) in points.iter().enumerate() {
        let dir = out.join(&p.name);
        if !a.workers.quiet {
            eprintln!(
                "run {}/{}: {} -> {}",
                k + 1,
                points.len(),
                describe(p),
                dir.display()
            );
        }
        let m = &p.config.model;
        let data = super::data_source::open(&a.data, m.width, m.height, a.workers.quiet)?;
        let opts = TrainOptions {
            out: dir.clone(),
            val_limit: a.val_limit,
            quiet: a.workers.quiet,
        };
        let outcome = pool.install(|| -> Result<Outcome> {
            let mut trainer = if RunDir::new(&dir).list_checkpoints().is_empty() {
                Trainer::new(&p.config, &data, opts)?
            } else {
                check_same_run(&dir, p)?;
                let resumed =
                    Overrides::resumable(Some(p.config.trainer.epochs), p.config.trainer.patience);
                Trainer::resume(&data, opts, &resumed)?
            };
            Ok(trainer.run(stop)?)
        })?;
        write_report(&out, &points)?;
        if outcome == Outcome::Interrupted {
            eprintln!("interrupted; run the same command again to continue the sweep");
            return Ok(());
        }
    }
    let table = write_report(&out, &points)?;
    println!("{table}");
    println!("table:   {}", out.join("sweep.csv").display());
    println!("samples: {}", out.join("sweep-samples.png").display());
    Ok(())
}

fn describe(p: &GridPoint) -> String {
    p.settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A run folder of an earlier sweep must hold the same model and settings.
fn check_same_run(dir: &Path, p: &GridPoint) -> Result<()> {
    let saved = vae_cpu::config::Config::load(&dir.join("config.toml"))?;
    let differ = saved.run_differences(&p.config);
    if !differ.is_empty() {
        bail!(
            "{}: this folder holds a run with another config than {} (it differs in {}); move it away or use another --out",
            dir.display(),
            describe(p),
            differ.join(", ")
        );
    }
    Ok(())
}

/// Writes sweep.csv, sweep.md and sweep-samples.png from the runs' files so far; returns
/// the markdown table.
fn write_report(out: &Path, points: &[GridPoint]) -> Result<String> {
    let keys: Vec<&str> = points[0].settings.iter().map(|(k, _)| k.as_str()).collect();
    let columns = [
        "epochs",
        "best_epoch",
        "val_loss",
        "val_recon",
        "val_kl",
        "last_val_loss",
    ];
    let mut csv = format!("run,{},{}\n", keys.join(","), columns.join(","));
    let mut md = format!(
        "| run | {} | {} |\n|{}\n",
        keys.join(" | "),
        columns.join(" | "),
        "---|".repeat(1 + keys.len() + columns.len())
    );
    let mut pictures = vec![];
    for p in points {
        let dir = out.join(&p.name);
        let rows = metrics::read(&dir.join("metrics.csv")).unwrap_or_default();
        let values: Vec<&str> = p.settings.iter().map(|(_, v)| v.as_str()).collect();
        let figures = match Summary::of(&rows) {
            Some(s) => vec![
                s.epochs.to_string(),
                s.best.epoch.to_string(),
                format!("{:.5}", s.best.val_loss),
                format!("{:.5}", s.best.val_recon),
                format!("{:.4}", s.best.val_kl),
                format!("{:.5}", s.last_val_loss),
            ],
            None => vec![
                "0".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
        };
        csv.push_str(&format!(
            "{},{},{}\n",
            p.name,
            values.join(","),
            figures.join(",")
        ));
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            p.name,
            values.join(" | "),
            figures.join(" | ")
        ));
        if let Ok(img) = image::open(dir.join("samples.png")) {
            pictures.push(viz::titled(&p.name, &img.to_rgb8()));
        }
    }
    vae_cpu::atomic_file::write(&out.join("sweep.csv"), csv.as_bytes())?;
    vae_cpu::atomic_file::write(&out.join("sweep.md"), md.as_bytes())?;
    if !pictures.is_empty() {
        viz::save_png(
            &out.join("sweep-samples.png"),
            &viz::side_by_side(&pictures),
        )?;
    }
    Ok(md)
}
