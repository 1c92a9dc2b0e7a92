use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use vae_cpu::config::{Config, Overrides};
use vae_cpu::train::{Outcome, TrainOptions, Trainer};

/// Train a VAE (flags override the config file).
#[derive(Args)]
pub struct TrainArgs {
    /// The model config: a built-in name (celeba32, celeba64, ...; see `vae-cpu models`)
    /// or a TOML file. A file that exists wins over a built-in name.
    /// Flags override it.
    #[arg(long, required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// A cache from `vae-cpu prepare`, or a CelebA folder (prepared into cache/ on first use).
    #[arg(long)]
    data: PathBuf,
    /// Folder for this run's checkpoints, metrics and pictures (default: runs/<model name>).
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its newest checkpoint.
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    #[command(flatten)]
    workers: super::flags::Workers,
    /// Number of epochs, at least 1 (with --resume: train a finished run further).
    #[arg(long, value_parser = super::count())]
    epochs: Option<usize>,
    /// Images per batch (at least 1).
    #[arg(long, value_parser = super::count())]
    batch_size: Option<usize>,
    /// Early stopping: stop once this many epochs in a row have not improved the validation
    /// loss (best.safetensors keeps the best epoch). Allowed with --resume.
    #[arg(long, value_parser = super::count())]
    patience: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    lr: Option<f32>,
    /// Seed for initialization, shuffling, flips and sampling (0 to 2^63-1).
    #[arg(long, value_parser = super::seed())]
    seed: Option<u64>,
    /// Perceptual loss: an ONNX feature network (Conv/Relu/MaxPool layers, e.g. VGG19)
    /// whose feature maps of input and reconstruction are compared (sets exp.feature_net;
    /// exp.feature_weight, exp.feature_layers and exp.feature_normalize tune it).
    #[arg(long, value_name = "ONNX")]
    feature_net: Option<PathBuf>,
    /// Use at most this many validation images per epoch (default: all).
    #[arg(long)]
    val_limit: Option<usize>,
}

pub fn run(a: TrainArgs) -> Result<()> {
    let pool = a.workers.pool()?;
    let world = super::world::world()?;
    let quiet = a.workers.quiet || !world.is_root();
    let mut run_lock = None;
    let config = match (&a.config, &a.resume) {
        (Some(path), None) => Some(requested_config(&a, Config::load_named(path)?, path)?),
        (_, Some(run)) => {
            if !run.is_dir() {
                bail!(
                    "--resume {}: no such run folder (give the --out folder of a training run)",
                    run.display()
                );
            }
            // Locked before its config is read: another process may be writing it.
            if world.is_root() {
                run_lock = Some(vae_cpu::train::RunDir::new(run).lock()?);
            }
            check_resume_flags(&a, run)?;
            None
        }
        (None, None) => unreachable!("clap requires --config without --resume"),
    };
    let name = config.as_ref().map(|c| c.model.name.as_str());
    let out = super::run_folder(a.resume.as_deref(), a.out.as_deref(), name);
    let mut inputs = vec![("--data", a.data.as_path())];
    inputs.extend(a.config.as_deref().map(|c| ("--config", c)));
    inputs.extend(a.feature_net.as_deref().map(|f| ("--feature-net", f)));
    vae_cpu::file_guard::check_command(&inputs, &[])?;
    let size = match &config {
        Some(c) => (c.model.width, c.model.height),
        None => resumed_size(&out)?,
    };
    let data = super::world::open_data(world.as_ref(), || {
        Ok(vae_cpu::data::source::open(&a.data, size.0, size.1, quiet)?)
    })?;
    let opts = TrainOptions {
        out: out.clone(),
        val_limit: a.val_limit,
        quiet,
        world: world.clone(),
    };
    let stop = super::stop_on_ctrl_c(super::TRAINING_STOP)?;
    let _run_lock = run_lock;
    pool.install(|| -> Result<()> {
        let mut trainer = match &config {
            Some(c) => Trainer::new(c, &data, opts)?,
            None => Trainer::resume(&data, opts, &Overrides::resumable(a.epochs, a.patience))?,
        };
        if !world.is_root() {
            trainer.run(stop)?;
            return Ok(()); // rank 0 says what happened
        }
        for note in &trainer.notes {
            eprintln!("{note}");
        }
        let notes_before_run = trainer.notes.len();
        let cfg = trainer.config().clone();
        if !quiet {
            let ranks = match world.size() {
                1 => String::new(),
                n => {
                    let values = vae_cpu::train::data_parallel::gradient_values(&mut trainer.model);
                    format!(
                        " x {n} ranks (each step sums {values} gradient values, {:.1} MiB)",
                        values as f64 * 4.0 / (1 << 20) as f64
                    )
                }
            };
            eprintln!(
                "training {} on {} ({}) for {} epochs, batch {}, {} threads{ranks} -> {}",
                cfg.model.name,
                data.path.display(),
                data.split_summary(),
                cfg.trainer.epochs,
                cfg.trainer.batch_size,
                rayon::current_num_threads(),
                out.display()
            );
        }
        let outcome = trainer.run(stop)?;
        for note in trainer.notes.iter().skip(notes_before_run) {
            eprintln!("{note}");
        }
        let device = vae_cpu::kernels::offload::stats();
        if device.offloaded > 0 && !quiet {
            eprintln!("device: {device}");
        }
        report(&trainer, outcome, &a.data);
        Ok(())
    })
}

/// What the run left, or how to continue it.
fn report(trainer: &Trainer, outcome: Outcome, data: &Path) {
    let r = &trainer.run.root;
    if outcome == Outcome::Interrupted {
        eprintln!(
            "continue with: vae-cpu train --resume {} --data {}",
            r.display(),
            data.display()
        );
        return;
    }
    if let Outcome::EarlyStopped { best_epoch } = outcome {
        println!(
            "stopped early: no better validation loss in the {} epochs after epoch {best_epoch}",
            trainer.config().trainer.patience.unwrap_or(0)
        );
    }
    if let Some(m) = trainer.progress.history.last() {
        println!(
            "trained {} epochs; last: train loss {:.4}, val loss {:.4}",
            m.epoch, m.train_loss, m.val_loss
        );
    }
    println!("samples:         {}", r.join("samples.png").display());
    println!(
        "reconstructions: {}",
        r.join("reconstructions.png").display()
    );
    println!("loss curve:      {}", r.join("loss.png").display());
    println!("metrics:         {}", r.join("metrics.csv").display());
    println!("best checkpoint: {}", trainer.run.best().display());
}

/// `base` with the flags applied, validated.
fn requested_config(a: &TrainArgs, base: Config, path: &Path) -> Result<Config> {
    // Absolute, so that a resume from another folder finds it.
    let feature_net = a
        .feature_net
        .as_ref()
        .map(|net| {
            net.canonicalize()
                .with_context(|| format!("--feature-net {}", net.display()))
        })
        .transpose()?;
    let overrides = Overrides {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
        patience: a.patience,
        feature_net,
    };
    let c = overrides.apply(base);
    c.plan().with_context(|| format!("{}", path.display()))?;
    Ok(c)
}

/// With --resume, the flags that shape the run (--config, --batch-size, --lr, --seed,
/// --feature-net) may be given only as the run already has them.
fn check_resume_flags(a: &TrainArgs, run: &Path) -> Result<()> {
    let saved_path = run.join("config.toml");
    let saved = Config::load(&saved_path)
        .with_context(|| format!("{} does not look like a training run", run.display()))?;
    let base = match &a.config {
        Some(path) => Config::load_named(path)?,
        None => saved.clone(),
    };
    let requested = requested_config(a, base, a.config.as_deref().unwrap_or(&saved_path))?;
    let differ = saved.run_differences(&requested);
    if !differ.is_empty() {
        bail!(
            "--resume {}: the run was trained with other values of {}; they cannot change \
             when resuming (the run would no longer match its checkpoints). Only --epochs and \
             --patience can; start a new run with --out for other settings",
            run.display(),
            differ.join(", ")
        );
    }
    Ok(())
}

/// The image size of a run being resumed, from its config.toml.
fn resumed_size(out: &Path) -> Result<(usize, usize)> {
    let c = Config::load(&out.join("config.toml"))
        .with_context(|| format!("{} does not look like a training run", out.display()))?;
    Ok((c.model.width, c.model.height))
}
