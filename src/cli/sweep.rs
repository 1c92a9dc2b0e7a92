//! `sweep`: trains every combination of `--set` values one after another, each in its own
//! run folder, then writes a table of validation metrics and the runs' sample grids side by
//! side. Running the same command again resumes: finished runs are kept, an interrupted
//! one continues from its newest checkpoint.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use vae_cpu::config::Overrides;
use vae_cpu::train::run_dir::folder_name;
use vae_cpu::train::sweep::{grid, Axis};
use vae_cpu::train::{sweep_report, Outcome, RunDir, TrainOptions};

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
    // Each finished run's disentanglement into the table (a β sweep shows how it moves
    // with the KL weight).
    #[command(flatten)]
    disentanglement: super::flags::Disentanglement,
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
    let world = super::world::world()?;
    let (root, quiet) = (world.is_root(), a.workers.quiet || !world.is_root());
    // The sweep folder is locked for the whole sweep (each run folder is locked too), by
    // the rank that writes it.
    let _lock = root.then(|| RunDir::new(&out).lock()).transpose()?;
    let stop = super::stop_on_ctrl_c(super::TRAINING_STOP)?;
    for (k, p) in points.iter().enumerate() {
        let dir = out.join(&p.name);
        if !quiet {
            eprintln!(
                "run {}/{}: {} -> {}",
                k + 1,
                points.len(),
                p.describe(),
                dir.display()
            );
        }
        let m = &p.config.model;
        let data = super::world::open_data(world.as_ref(), || {
            Ok(vae_cpu::data::source::open(
                &a.data, m.width, m.height, quiet,
            )?)
        })?;
        let opts = TrainOptions {
            out: dir.clone(),
            val_limit: a.val_limit,
            quiet,
            world: world.clone(),
        };
        let outcome =
            pool.install(|| -> Result<Outcome> { Ok(p.trainer(&data, opts)?.run(stop)?) })?;
        if root && outcome != Outcome::Interrupted {
            measure_disentanglement(&a.disentanglement, &RunDir::new(&dir), &pool)?;
        }
        if root {
            sweep_report::write(&out, &points)?;
        }
        if outcome == Outcome::Interrupted {
            if root {
                eprintln!("interrupted; run the same command again to continue the sweep");
            }
            return Ok(());
        }
    }
    if !root {
        return Ok(());
    }
    let table = sweep_report::write(&out, &points)?;
    println!("{table}");
    println!("table:   {}", out.join("sweep.csv").display());
    println!("samples: {}", out.join("sweep-samples.png").display());
    Ok(())
}

/// The run's disentanglement, into its folder for the sweep's table (once per run).
fn measure_disentanglement(
    flags: &super::flags::Disentanglement,
    run: &RunDir,
    pool: &rayon::ThreadPool,
) -> Result<()> {
    let file = run.root.join(sweep_report::DISENTANGLEMENT_FILE);
    if !flags.disentanglement || file.exists() {
        return Ok(());
    }
    let mut model = vae_cpu::checkpoint::Checkpoint::load(&run.best())?.build_model()?;
    if let Some(d) = pool.install(|| flags.measure(&mut model, true)) {
        sweep_report::record_disentanglement(&run.root, d.accuracy)?;
    }
    Ok(())
}
