//! Training the attribute classifier with the VAE trainer's machinery: the same run folder
//! (locked; `run.toml`, `config.toml`, position-named checkpoints rotated, best.safetensors,
//! `metrics.csv`), seeded shuffles and flips per epoch (`EpochPlan`), a progress bar,
//! early stopping on the validation loss, Ctrl-C saving the position after a step, and an
//! exact resume. One process (no MPI ranks).

pub mod history;
pub mod scores;

use super::best::Best;
use super::resume::newest_checkpoint;
use super::run_dir::{Position, RunDir, RunRecord};
use super::run_owner;
use super::trainer::threads;
use super::Outcome;
use crate::checkpoint::{self, EpochSums, RunState};
use crate::config::{ClassifierConfig, Overrides};
use crate::data::loader::{batch_tensor, EpochPlan};
use crate::data::{Dataset, Split};
use crate::folder_lock::FolderLock;
use crate::model::Classifier;
use crate::nn::Mode;
use crate::optim::{Adam, Optimizer};
use crate::{progress, Error, Result, Tape, Var};
use history::ClassifierEpoch;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct ClassifierOptions {
    pub out: PathBuf,
    /// Use at most this many validation images per epoch.
    pub val_limit: Option<usize>,
    pub quiet: bool,
}

/// A classifier training run in progress.
pub struct ClassifierTrainer<'a> {
    pub model: Classifier,
    optimizer: Box<dyn Optimizer>,
    data: &'a Dataset,
    pub run: RunDir,
    _lock: FolderLock,
    run_id: String,
    opts: ClassifierOptions,
    train: Vec<usize>,
    val: Vec<usize>,
    /// The cache's columns of the model's attributes.
    columns: Vec<usize>,
    /// Each attribute's share of positives in the training split (for the class weights).
    positive_share: Vec<f64>,
    pub pos: Position,
    step: u64,
    /// The epoch so far: `loss` sums each image's mean BCE, `recon` each image's mean
    /// accuracy over the attributes (`kl` is unused).
    sums: EpochSums,
    best: Best,
    pub history: Vec<ClassifierEpoch>,
    pub notes: Vec<String>,
}

/// `config` with `model.attributes` filled with every attribute of `data` when empty.
pub fn with_attributes(mut config: ClassifierConfig, data: &Dataset) -> ClassifierConfig {
    if config.model.attributes.is_empty() {
        config.model.attributes = data.attribute_names.clone();
    }
    config
}

impl<'a> ClassifierTrainer<'a> {
    /// A new run in `opts.out`, which must not hold checkpoints already.
    pub fn new(
        config: &ClassifierConfig,
        data: &'a Dataset,
        opts: ClassifierOptions,
    ) -> Result<ClassifierTrainer<'a>> {
        let config = with_attributes(config.clone(), data);
        let m = &config.model;
        data.check_image_size(&m.name, [m.channels, m.height, m.width])?;
        let model = Classifier::new(&config, &mut ChaCha8Rng::seed_from_u64(config.exp.seed))?;
        let run = RunDir::new(&opts.out);
        let lock = run.lock()?;
        if !run.list_checkpoints().is_empty() {
            return Err(Error::File {
                path: opts.out.clone(),
                message: "this folder already holds a training run; continue it with \
                          --resume, or choose another --out"
                    .into(),
            });
        }
        let columns = attribute_columns(data, &config)?;
        run.create()?;
        run.remove_stale_temporaries();
        let record = RunRecord::new();
        run.write_record(&record)?;
        crate::atomic_file::write(&run.config(), config.to_toml().as_bytes())?;
        let exp = &config.exp;
        let optimizer = Box::new(Adam::new(exp.lr).with_weight_decay(exp.weight_decay));
        let run = (run, lock, record.run_id);
        ClassifierTrainer::assemble(model, optimizer, data, columns, opts, run)
    }

    /// Continues the run in `opts.out` from its newest checkpoint; `overrides` may change
    /// the `[trainer]` values (the CLI passes only epochs and patience, as for a VAE run).
    pub fn resume(
        data: &'a Dataset,
        opts: ClassifierOptions,
        overrides: &Overrides,
    ) -> Result<ClassifierTrainer<'a>> {
        let run = RunDir::new(&opts.out);
        let lock = run.lock()?;
        run.remove_stale_temporaries();
        let ckpt = newest_checkpoint::<ClassifierConfig>(&run)?;
        // Classifier runs always had ids: a checkpoint and a folder without one are no run.
        let why = || "neither it nor the folder has a run id".to_string();
        let record = run_owner::check_id(&run, &ckpt.path, ckpt.state.run_id.as_ref())?
            .ok_or_else(|| run_owner::foreign(&run, &ckpt.path, why()))?;
        let mut config = ckpt.config.clone();
        overrides.apply_to_trainer(&mut config.trainer);
        let mut model = ckpt.build_model()?;
        model.config = config;
        let m = &model.config.model;
        data.check_image_size(&m.name, [m.channels, m.height, m.width])?;
        let columns = attribute_columns(data, &model.config)?;
        let run = (run, lock, record.run_id);
        let mut t = ClassifierTrainer::assemble(model, ckpt.optimizer, data, columns, opts, run)?;
        t.pos = Position {
            epoch: ckpt.epoch,
            batch: ckpt.state.batch,
        };
        (t.step, t.sums) = (ckpt.step, ckpt.state.sums);
        t.best = Best {
            score: ckpt.state.best_loss,
            epoch: ckpt.state.best_epoch.unwrap_or(0),
        };
        t.history = history::read(&t.run.metrics())?;
        t.history.retain(|row| row.epoch <= ckpt.epoch);
        t.notes.push(format!(
            "resuming from {} (epoch {}, batch {}, step {})",
            ckpt.path.display(),
            t.pos.epoch,
            t.pos.batch,
            t.step
        ));
        Ok(t)
    }

    /// The trainer at the start of its run folder `run` (locked, with the run's id).
    fn assemble(
        model: Classifier,
        optimizer: Box<dyn Optimizer>,
        data: &'a Dataset,
        columns: Vec<usize>,
        opts: ClassifierOptions,
        (run, lock, run_id): (RunDir, FolderLock, String),
    ) -> Result<ClassifierTrainer<'a>> {
        let train = data.indices(Split::Train);
        if train.len() < 2 {
            return Err(Error::File {
                path: data.path.clone(),
                message: format!("too few training images ({})", data.split_summary()),
            });
        }
        let mut val = data.indices(Split::Val);
        val.truncate(opts.val_limit.unwrap_or(usize::MAX));
        let positive_share = columns
            .iter()
            .map(|&j| {
                let has = train.iter().filter(|&&i| data.attribute(i, j) > 0).count();
                // Kept inside (0, 1) so a class absent from the split has a finite weight.
                has.clamp(1, train.len() - 1) as f64 / train.len() as f64
            })
            .collect();
        Ok(ClassifierTrainer {
            model,
            optimizer,
            data,
            run,
            _lock: lock,
            run_id,
            opts,
            train,
            val,
            columns,
            positive_share,
            pos: Position::default(),
            step: 0,
            sums: EpochSums::default(),
            best: Best::default(),
            history: vec![],
            notes: vec![],
        })
    }

    pub fn config(&self) -> &ClassifierConfig {
        &self.model.config
    }

    pub fn split_sizes(&self) -> (usize, usize) {
        (self.train.len(), self.val.len())
    }

    /// Trains until the configured number of epochs, early stopping, or `stop` (checked
    /// after every step; the position is then saved in a checkpoint).
    pub fn run(&mut self, stop: &AtomicBool) -> Result<Outcome> {
        let cfg = self.model.config.clone();
        let (epochs, bs) = (cfg.trainer.epochs, cfg.trainer.batch_size);
        while self.pos.epoch < epochs {
            if self.best.patience_exhausted(cfg.trainer.patience, self.pos) {
                return Ok(Outcome::EarlyStopped {
                    best_epoch: self.best.epoch,
                });
            }
            let plan = EpochPlan::new(&self.train, cfg.exp.seed, self.pos.epoch, cfg.data.flip);
            let batches = plan.batches(bs);
            let bar = progress::bar(batches.len() as u64, "batches", self.opts.quiet);
            bar.set_prefix(format!("epoch {}/{epochs}", self.pos.epoch + 1));
            bar.set_position(self.pos.batch as u64);
            for (b, range) in batches.iter().enumerate().skip(self.pos.batch) {
                let start = Instant::now();
                let rows = &plan.order[range.clone()];
                let x = batch_tensor(
                    self.data,
                    rows,
                    &plan.flips[range.clone()],
                    cfg.data.pixel_range,
                );
                let (loss, accuracy) = self.train_step(x, rows)?;
                let n = rows.len() as f64;
                self.sums.loss += loss * n;
                self.sums.recon += accuracy * n;
                self.sums.images += rows.len();
                self.sums.seconds += start.elapsed().as_secs_f64();
                self.pos.batch = b + 1;
                self.step += 1;
                bar.set_message(format!("loss {loss:.4} accuracy {accuracy:.3}"));
                bar.inc(1);
                if stop.load(Ordering::SeqCst) {
                    bar.finish_and_clear();
                    let path = self.run.checkpoint(self.pos);
                    self.save(&path)?;
                    self.rotate()?;
                    self.notes
                        .push(format!("interrupted: saved {}", path.display()));
                    return Ok(Outcome::Interrupted);
                }
            }
            bar.finish_and_clear();
            self.finish_epoch()?;
        }
        Ok(Outcome::Finished)
    }

    /// One Adam step on the images `rows` (pixels `x`); returns the batch's mean BCE and
    /// mean accuracy. A non-finite loss is an error and changes no parameter.
    fn train_step(&mut self, x: crate::Tensor, rows: &[usize]) -> Result<(f64, f64)> {
        let tape = Tape::new();
        let target = scores::targets(self.data, rows, &self.columns);
        let weight = (self.model.config.exp.class_weighted)
            .then(|| scores::class_weights(&target, &self.positive_share));
        let (logits, _) = self.model.forward(&tape, &Var::constant(x), Mode::Train);
        let loss = Classifier::loss(&logits, &target, weight.as_ref());
        let value = loss.item() as f64;
        if !value.is_finite() {
            return Err(Error::Training(format!(
                "the loss became {value} at step {}; a lower --lr may help",
                self.step + 1
            )));
        }
        let right = (logits.value().iter().zip(target.iter()))
            .filter(|(x, t)| (**x > 0.0) == (**t > 0.5))
            .count();
        let grads = tape.backward(&loss);
        self.optimizer.step(&mut self.model, &grads);
        Ok((value, right as f64 / target.len().max(1) as f64))
    }

    fn finish_epoch(&mut self) -> Result<()> {
        let s = self.sums;
        let images = s.images.max(1) as f64;
        let val = (!self.val.is_empty()).then(|| {
            let bar = progress::bar(self.val.len() as u64, "val images", self.opts.quiet);
            let batch = self.model.config.trainer.batch_size;
            let p = scores::predict(
                &mut self.model,
                self.data,
                &self.val,
                &self.columns,
                batch,
                &bar,
            );
            let mean = scores::mean_score(&scores::attribute_scores(
                self.model.attributes(),
                &p.confusion,
            ));
            (p.loss, mean.accuracy, mean.balanced_accuracy)
        });
        let (val_loss, val_accuracy, val_balanced) = val.unwrap_or((f64::NAN, f64::NAN, f64::NAN));
        let row = ClassifierEpoch {
            epoch: self.pos.epoch + 1,
            step: self.step,
            train_loss: s.loss / images,
            train_accuracy: s.recon / images,
            val_loss,
            val_accuracy,
            val_balanced_accuracy: val_balanced,
            lr: self.optimizer.lr() as f64,
            images_per_s: s.images as f64 / s.seconds.max(1e-9),
            seconds: s.seconds,
        };
        self.pos = Position {
            epoch: self.pos.epoch + 1,
            batch: 0,
        };
        self.sums = EpochSums::default();
        self.history.push(row.clone());
        let improved = self.best.record(row.score(), row.epoch);
        history::write(&self.run.metrics(), &self.history)?;
        let path = self.run.checkpoint(self.pos);
        self.save(&path)?;
        if improved {
            self.run.keep_as_best(&path)?;
        }
        self.rotate()?;
        if !self.opts.quiet {
            eprintln!(
                "epoch {:>3}  train loss {:.4} (accuracy {:.4})  val loss {:.4} (accuracy {:.4}, balanced {:.4})  {:.0} img/s  {:.1}s",
                row.epoch, row.train_loss, row.train_accuracy, row.val_loss, row.val_accuracy,
                row.val_balanced_accuracy, row.images_per_s, row.seconds
            );
        }
        Ok(())
    }

    fn save(&mut self, path: &std::path::Path) -> Result<()> {
        let seed = self.model.config.exp.seed;
        let state = RunState {
            batch: self.pos.batch,
            sums: self.sums,
            best_loss: self.best.score,
            best_epoch: Some(self.best.epoch),
            threads: Some(threads()),
            run_id: Some(self.run_id.clone()),
            seed,
            rng: format!("shuffle and flips as a VAE run's (seed {seed}, stream = epoch)"),
        };
        let cfg = self.model.config.clone();
        let optimizer = self.optimizer.as_ref();
        checkpoint::save(
            path,
            &cfg,
            &mut self.model,
            optimizer,
            self.pos.epoch,
            self.step,
            &state,
        )
    }

    /// Keeps the newest `trainer.keep_last` checkpoints of this run.
    fn rotate(&self) -> Result<()> {
        let id = &self.run_id;
        self.run.rotate(self.model.config.trainer.keep_last, |p| {
            checkpoint::read_header(p).is_some_and(|(state, _)| state.run_id.as_ref() == Some(id))
        })
    }
}

/// The cache's columns of the config's attributes; one the cache lacks is an error.
pub fn attribute_columns(data: &Dataset, config: &ClassifierConfig) -> Result<Vec<usize>> {
    (config.model.attributes.iter())
        .map(|name| data.attribute_index(name))
        .collect()
}
