use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use vae_cpu::checkpoint::Stored;
use vae_cpu::config::{ClassifierConfig, Overrides};
use vae_cpu::train::classifier::{scores, ClassifierOptions, ClassifierTrainer};
use vae_cpu::train::Outcome;

/// The attribute classifier: train one, or measure one per attribute (`score` uses it).
#[derive(Args)]
pub struct ClassifierArgs {
    #[command(subcommand)]
    command: ClassifierCommand,
}

#[derive(Subcommand)]
enum ClassifierCommand {
    Train(TrainArgs),
    Evaluate(EvaluateArgs),
}

/// Train an attribute classifier (multi-label, one logit per attribute; flags override the
/// config file).
#[derive(Args)]
struct TrainArgs {
    /// The classifier config: a built-in name (attributes32, attributes64) or a TOML file.
    #[arg(long, required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// A cache from `vae-cpu prepare` (with attributes), or a CelebA folder.
    #[arg(long)]
    data: PathBuf,
    /// Folder for the run's checkpoints and metrics (default: runs/<model name>).
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
    /// Images per batch (at least 2).
    #[arg(long, value_parser = super::count(), conflicts_with = "resume")]
    batch_size: Option<usize>,
    /// Early stopping: stop once this many epochs in a row have not improved the validation
    /// loss (best.safetensors keeps the best epoch).
    #[arg(long, value_parser = super::count())]
    patience: Option<usize>,
    /// Adam learning rate.
    #[arg(long, conflicts_with = "resume")]
    lr: Option<f32>,
    /// Seed for initialization, shuffling and flips (0 to 2^63-1).
    #[arg(long, value_parser = super::seed(), conflicts_with = "resume")]
    seed: Option<u64>,
    /// Weight each attribute's positives and negatives by half their inverse share of the
    /// training split (sets exp.class_weighted): rare attributes count as much as common ones.
    #[arg(long, conflicts_with = "resume")]
    class_weighted: bool,
    /// Use at most this many validation images per epoch (default: all).
    #[arg(long)]
    val_limit: Option<usize>,
}

/// Per-attribute accuracy, balanced accuracy and majority-class baseline on a split.
#[derive(Args)]
struct EvaluateArgs {
    /// A classifier checkpoint (e.g. runs/attributes32/best.safetensors).
    #[arg(long)]
    checkpoint: PathBuf,
    /// A cache from `vae-cpu prepare` (with attributes), or a CelebA folder.
    #[arg(long)]
    data: PathBuf,
    /// Which split to measure: train, val or test.
    #[arg(long, default_value = "val")]
    split: String,
    /// Use at most this many images of the split.
    #[arg(long, value_parser = super::count())]
    limit: Option<usize>,
    /// Also write the table as CSV to this file.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    #[command(flatten)]
    workers: super::flags::Workers,
}

pub fn run(a: ClassifierArgs) -> Result<()> {
    match a.command {
        ClassifierCommand::Train(a) => train(a),
        ClassifierCommand::Evaluate(a) => evaluate(a),
    }
}

fn train(a: TrainArgs) -> Result<()> {
    let pool = a.workers.pool()?;
    let config = match &a.config {
        Some(path) if a.resume.is_none() => Some(requested_config(&a, path)?),
        _ => None,
    };
    let name = config.as_ref().map(|c| c.model.name.as_str());
    let out = super::run_folder(a.resume.as_deref(), a.out.as_deref(), name);
    if a.resume.is_some() && !out.is_dir() {
        bail!("--resume {}: no such run folder", out.display());
    }
    let mut inputs = vec![("--data", Some(a.data.as_path()))];
    inputs.push(("--config", a.config.as_deref()));
    super::check_files(&inputs, &[])?;
    let size = match &config {
        Some(c) => (c.model.width, c.model.height),
        None => {
            let saved = ClassifierConfig::load(&vae_cpu::train::RunDir::new(&out).config())?;
            (saved.model.width, saved.model.height)
        }
    };
    let quiet = a.workers.quiet;
    let data = vae_cpu::data::source::open(&a.data, size.0, size.1, quiet)?;
    let opts = ClassifierOptions {
        out: out.clone(),
        val_limit: a.val_limit,
        quiet,
    };
    let stop = super::stop_on_ctrl_c(super::TRAINING_STOP)?;
    pool.install(|| -> Result<()> {
        let mut trainer = match &config {
            Some(c) => ClassifierTrainer::new(c, &data, opts)?,
            None => ClassifierTrainer::resume(
                &data,
                opts,
                &Overrides::resumable(a.epochs, a.patience),
            )?,
        };
        trainer.notes.iter().for_each(|n| eprintln!("{n}"));
        let cfg = trainer.config();
        let (train, val) = trainer.split_sizes();
        if !quiet {
            eprintln!(
                "training {} ({} attributes) on {} ({train} train, {val} val images) for {} epochs, batch {}, {} threads -> {}",
                cfg.model.name,
                cfg.model.attributes.len(),
                data.path.display(),
                cfg.trainer.epochs,
                cfg.trainer.batch_size,
                rayon::current_num_threads(),
                out.display()
            );
        }
        let outcome = trainer.run(stop)?;
        report(&trainer, outcome, &a.data);
        Ok(())
    })
}

/// The config file with the flags applied, validated.
fn requested_config(a: &TrainArgs, path: &std::path::Path) -> Result<ClassifierConfig> {
    let mut c = ClassifierConfig::load_named(path)?;
    let trainer = Overrides {
        epochs: a.epochs,
        batch_size: a.batch_size,
        patience: a.patience,
        ..Overrides::default()
    };
    trainer.apply_to_trainer(&mut c.trainer);
    c.exp.lr = a.lr.unwrap_or(c.exp.lr);
    c.exp.seed = a.seed.unwrap_or(c.exp.seed);
    c.exp.class_weighted |= a.class_weighted;
    c.plan()?;
    Ok(c)
}

fn report(trainer: &ClassifierTrainer, outcome: Outcome, data: &std::path::Path) {
    let r = &trainer.run.root;
    if let Some(n) = trainer
        .notes
        .last()
        .filter(|_| outcome == Outcome::Interrupted)
    {
        eprintln!("{n}");
        eprintln!(
            "continue with: vae-cpu classifier train --resume {} --data {}",
            r.display(),
            data.display()
        );
        return;
    }
    if let Outcome::EarlyStopped { best_epoch } = outcome {
        println!("stopped early: no better validation loss after epoch {best_epoch}");
    }
    if let Some(m) = trainer.history.last() {
        println!(
            "trained {} epochs; last: val loss {:.4}, mean accuracy {:.4}, balanced {:.4}",
            m.epoch, m.val_loss, m.val_accuracy, m.val_balanced_accuracy
        );
    }
    println!("metrics:         {}", r.join("metrics.csv").display());
    println!("best checkpoint: {}", trainer.run.best().display());
}

fn evaluate(a: EvaluateArgs) -> Result<()> {
    super::check_files(
        &[
            ("--checkpoint", Some(&a.checkpoint)),
            ("--data", Some(&a.data)),
        ],
        &[("--csv", a.csv.as_deref())],
    )?;
    let pool = a.workers.pool()?;
    let ckpt = Stored::<ClassifierConfig>::load(&a.checkpoint)?;
    let mut model = ckpt.build_model()?;
    let m = &ckpt.config.model;
    let data = vae_cpu::data::source::open(&a.data, m.width, m.height, a.workers.quiet)?;
    data.check_image_size(&m.name, [m.channels, m.height, m.width])?;
    let columns = vae_cpu::train::classifier::attribute_columns(&data, &ckpt.config)?;
    let indices = super::images::split_indices(&data, &a.split, a.limit)?;
    let bar = vae_cpu::progress::bar(indices.len() as u64, "images", a.workers.quiet);
    let batch = ckpt.config.trainer.batch_size;
    let p = pool.install(|| scores::predict(&mut model, &data, &indices, &columns, batch, &bar));
    let table = scores::attribute_scores(model.attributes(), &p.confusion);
    println!(
        "{} on the {} split of {} ({} images), mean BCE {:.4}",
        a.checkpoint.display(),
        a.split,
        data.path.display(),
        indices.len(),
        p.loss
    );
    print!("{}", scores::scores_table(&table));
    if let Some(csv) = &a.csv {
        vae_cpu::atomic_file::write(csv, scores::scores_csv(&table).as_bytes())?;
        println!("wrote {}", csv.display());
    }
    Ok(())
}
