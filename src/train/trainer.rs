//! The training loop: seeded batches, forward/backward/Adam per step, and per epoch a
//! validation pass, a metrics row, pictures and a checkpoint. Everything random is a pure
//! function of `(seed, epoch)` or `(seed, step)`, so a run resumed from a checkpoint
//! reproduces the uninterrupted run exactly (same thread count).

use super::best::Best;
use super::data_parallel::{self as dp, BatchPart};
use super::evaluate::evaluate;
use super::metrics::{self, EpochMetrics};
use super::pictures::Pictures;
use super::run_dir::{Position, RunDir, RunRecord};
use super::{run_owner, seeds};
use crate::checkpoint::{self, EpochSums, RunState};
use crate::collective::{self, Collective};
use crate::config::Config;
use crate::data::loader::{batch_conditions, batch_tensor, EpochPlan};
use crate::data::{Dataset, Split};
use crate::folder_lock::FolderLock;
use crate::model::Vae;
use crate::nn::Mode;
use crate::optim::Optimizer;
use crate::{progress, Error, Result, Tape, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub out: PathBuf,
    /// Use at most this many validation images per epoch.
    pub val_limit: Option<usize>,
    /// No progress bars or per-epoch lines.
    pub quiet: bool,
    /// The processes training together (data parallel, docs/cluster.md); rank 0 alone
    /// writes the run folder and prints. [`collective::single`] for one process.
    pub world: Arc<dyn Collective>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// Stopped on request (Ctrl-C) after a step; a checkpoint holds the position.
    Interrupted,
    /// Stopped early: `trainer.patience` epochs in a row did not improve on the best
    /// epoch (1-based), whose weights are in best.safetensors.
    EarlyStopped {
        best_epoch: usize,
    },
}

/// A training run in progress: the model and its optimizer, the data, the run folder
/// (locked), and where the run stands. Resuming is in `resume.rs`, the pictures in
/// `pictures.rs`, early stopping in `best.rs`, the random streams in `seeds.rs`.
pub struct Trainer<'a> {
    pub model: Vae,
    optimizer: Box<dyn Optimizer>,
    data: &'a Dataset,
    pub run: RunDir,
    /// Held while the trainer lives: no other process writes the run folder meanwhile
    /// (rank 0 of a data-parallel run holds it, the only rank that writes).
    _lock: Option<FolderLock>,
    /// The run's id (`run.toml`), written into each checkpoint.
    run_id: String,
    opts: TrainOptions,
    split: TrainSplit,
    pictures: Pictures,
    pub progress: Progress,
    /// Things the user should know (e.g. a thread count differing from the checkpoint's).
    pub notes: Vec<String>,
    /// Seconds this epoch spent summing gradients over the ranks, and in how many steps.
    comm: (f64, usize),
}

/// Where a run stands (a new run: at the start; a resumed one: at its checkpoint).
#[derive(Default)]
pub struct Progress {
    pub pos: Position,
    /// Optimization steps taken.
    pub step: u64,
    /// The current epoch's running sums.
    pub sums: EpochSums,
    pub best: Best,
    /// One row per finished epoch (metrics.csv).
    pub history: Vec<EpochMetrics>,
}

/// A step's loss terms over the whole batch (every rank's part added).
struct StepTerms {
    total: f64,
    recon: f64,
    kl: f64,
    /// Summed over the batch's images (see [`crate::model::VaeLoss`]).
    recon_total: f64,
    kl_total: f64,
    /// Some rank was asked to stop (Ctrl-C): all stop after this step.
    stop: bool,
}

impl StepTerms {
    /// This rank's part's terms summed over the ranks with one small all-reduce.
    fn summed(loss: &crate::model::VaeLoss, stop: bool, world: &dyn Collective) -> StepTerms {
        let mut v = [
            loss.total.item() as f64,
            loss.recon as f64,
            loss.kl as f64,
            loss.recon_total,
            loss.kl_total,
            f64::from(u8::from(stop)),
        ];
        world.sum_f64(&mut v);
        StepTerms {
            total: v[0],
            recon: v[1],
            kl: v[2],
            recon_total: v[3],
            kl_total: v[4],
            stop: v[5] > 0.0,
        }
    }
}

/// The images a run trains and validates on.
struct TrainSplit {
    train: Vec<usize>,
    val: Vec<usize>,
    /// The attribute columns of a conditional model's condition (empty otherwise).
    cond_columns: Vec<usize>,
}

pub(super) fn threads() -> usize {
    rayon::current_num_threads()
}

impl<'a> Trainer<'a> {
    /// A new run in `opts.out`, which must not hold checkpoints already.
    pub fn new(config: &Config, data: &'a Dataset, opts: TrainOptions) -> Result<Trainer<'a>> {
        data.check_fits(config)?;
        let mut model = Vae::new(config, &mut ChaCha8Rng::seed_from_u64(config.exp.seed))?;
        // Before the folder is made: a bad feature network leaves nothing behind.
        crate::onnx::feature_net::attach(&mut model)?;
        let run = RunDir::new(&opts.out);
        let (lock, run_id) = if opts.world.is_root() {
            let (lock, id) = Self::create_run(&run, config, &opts)?;
            (Some(lock), id)
        } else {
            (None, String::new())
        };
        let optimizer = config.exp.optimizer();
        let run = (run, lock, run_id);
        Self::assemble(model, optimizer, data, run, opts, Progress::default())
    }

    /// Makes the run folder of a new run (locked) and returns the lock and the run's id.
    fn create_run(
        run: &RunDir,
        config: &Config,
        opts: &TrainOptions,
    ) -> Result<(FolderLock, String)> {
        let lock = run.lock()?;
        if !run.list_checkpoints().is_empty() {
            return Err(Error::File {
                path: opts.out.clone(),
                message: "this folder already holds a training run; continue it with \
                          --resume, or choose another --out"
                    .into(),
            });
        }
        run.create()?;
        run.remove_stale_temporaries();
        let record = RunRecord::new();
        run.write_record(&record)?;
        crate::atomic_file::write(&run.config(), config.to_toml().as_bytes())?;
        Ok((lock, record.run_id))
    }

    pub(super) fn assemble(
        mut model: Vae,
        optimizer: Box<dyn Optimizer>,
        data: &'a Dataset,
        (run, lock, run_id): (RunDir, Option<FolderLock>, String),
        mut opts: TrainOptions,
        progress: Progress,
    ) -> Result<Trainer<'a>> {
        opts.quiet |= !opts.world.is_root();
        if model.feature_net.is_none() {
            crate::onnx::feature_net::attach(&mut model)?;
        }
        let train_idx = data.indices(Split::Train);
        let min_batch = model.plan.min_batch;
        if train_idx.len() < min_batch {
            return Err(Error::File {
                path: data.path.clone(),
                message: format!(
                    "{} training images, the model needs at least {min_batch} ({})",
                    train_idx.len(),
                    data.split_summary()
                ),
            });
        }
        let batch = model.config.trainer.batch_size.min(train_idx.len());
        let ranks = opts.world.size();
        if batch < ranks {
            return Err(Error::Invalid(format!(
                "a batch of {batch} images cannot be split over {ranks} ranks; use \
                 --batch-size {ranks} or more, or fewer ranks"
            )));
        }
        super::memory::check_batch_fits(&model.config, &model.plan, batch.div_ceil(ranks))?;
        dp::check_ranks_agree(opts.world.as_ref(), &mut model, data, progress.step)?;
        let mut val_idx = data.indices(Split::Val);
        val_idx.truncate(opts.val_limit.unwrap_or(usize::MAX));
        let cfg = &model.config;
        let pictures = Pictures::new(&val_idx, &train_idx, cfg.exp.seed, cfg.model.latent);
        let cond_columns = data.condition_columns(cfg)?;
        Ok(Trainer {
            model,
            optimizer,
            data,
            run,
            _lock: lock,
            run_id,
            opts,
            split: TrainSplit {
                train: train_idx,
                val: val_idx,
                cond_columns,
            },
            pictures,
            progress,
            notes: vec![],
            comm: (0.0, 0),
        })
    }

    pub fn config(&self) -> &Config {
        &self.model.config
    }

    /// Trains until the configured number of epochs, or until `stop` is set (checked after
    /// every step; the position is then saved in a checkpoint).
    pub fn run(&mut self, stop: &AtomicBool) -> Result<Outcome> {
        let cfg = self.model.config.clone();
        let (epochs, bs) = (cfg.trainer.epochs, cfg.trainer.batch_size);
        while self.progress.pos.epoch < epochs {
            if (self.progress.best).patience_exhausted(cfg.trainer.patience, self.progress.pos) {
                return Ok(Outcome::EarlyStopped {
                    best_epoch: self.progress.best.epoch,
                });
            }
            let epoch = self.progress.pos.epoch;
            self.optimizer.set_lr(cfg.exp.lr_at(epoch));
            let plan = EpochPlan::new(&self.split.train, cfg.exp.seed, epoch, cfg.data.flip);
            let batches = dp::usable_batches(plan.batches(bs), self.opts.world.size());
            let bar = progress::bar(batches.len() as u64, "batches", self.opts.quiet);
            bar.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
            bar.set_position(self.progress.pos.batch as u64);
            for (b, range) in batches.iter().enumerate().skip(self.progress.pos.batch) {
                let start = Instant::now();
                let part = BatchPart::of(range.len(), self.opts.world.as_ref());
                let mine = range.start + part.mine.start..range.start + part.mine.end;
                let x = batch_tensor(
                    self.data,
                    &plan.order[mine.clone()],
                    &plan.flips[mine.clone()],
                    cfg.data.pixel_range,
                );
                let cond = batch_conditions(self.data, &plan.order[mine], &self.split.cond_columns);
                let data_seconds = start.elapsed().as_secs_f64();
                let step = self.train_step(x, cond.as_ref(), &part, stop)?;
                let s = &mut self.progress.sums;
                s.loss += cfg.exp.objective(step.recon_total, step.kl_total);
                s.recon += step.recon_total;
                s.kl += step.kl_total;
                s.images += range.len();
                s.seconds += start.elapsed().as_secs_f64();
                s.data_seconds += data_seconds;
                self.progress.pos.batch = b + 1;
                self.progress.step += 1;
                bar.set_message(format!(
                    "loss {:.3} recon {:.5} KL {:.2} {:.0} img/s",
                    step.total,
                    step.recon,
                    step.kl,
                    s.images as f64 / s.seconds.max(1e-9)
                ));
                bar.inc(1);
                if step.stop {
                    bar.finish_and_clear();
                    let path = self.run.checkpoint(self.progress.pos);
                    if self.opts.world.is_root() {
                        self.save(&path)?;
                        self.rotate()?;
                    }
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

    /// One optimization step on this rank's part `x` of a batch; a non-finite loss is an
    /// error and changes no parameter. Returns the whole batch's loss terms, summed over
    /// the ranks with `stop` as it stands after the forward pass (so that every rank stops
    /// after the same step).
    fn train_step(
        &mut self,
        x: Tensor,
        cond: Option<&Tensor>,
        part: &BatchPart,
        stop: &AtomicBool,
    ) -> Result<StepTerms> {
        let tape = Tape::new();
        let mut rng = seeds::noise(self.model.config.exp.seed, self.progress.step);
        let eps = dp::noise_rows(part, self.model.config.model.latent, &mut rng);
        let input = Var::constant(x);
        let world = self.opts.world.clone();
        collective::with_batch_group(&world, || {
            let out = (self.model).forward_with_noise(&tape, &input, cond, Mode::Train, eps);
            let loss = self.model.loss_of_part(&out, input.value(), part.share());
            let terms = StepTerms::summed(&loss, stop.load(Ordering::SeqCst), world.as_ref());
            if !terms.total.is_finite() {
                return Err(self.non_finite_loss(terms.total));
            }
            let mut grads = tape.backward(&loss.total);
            self.model.zero_biases_before_norm(&mut grads);
            let comm = Instant::now();
            dp::sum_gradients(world.as_ref(), &mut self.model, &mut grads);
            self.comm = (self.comm.0 + comm.elapsed().as_secs_f64(), self.comm.1 + 1);
            self.optimizer.step(&mut self.model, &grads);
            Ok(terms)
        })
    }

    fn non_finite_loss(&self, total: f64) -> Error {
        let last = self.run.list_checkpoints().pop().map_or_else(
            || "no checkpoint was written yet".to_string(),
            |(_, p)| format!("the last good checkpoint is {}", p.display()),
        );
        Error::Training(format!(
            "the loss became {} at step {} (epoch {}, batch {}); {last}. \
             A lower learning rate (--lr) or a smaller recon_weight may help",
            total as f32,
            self.progress.step + 1,
            self.progress.pos.epoch + 1,
            self.progress.pos.batch + 1
        ))
    }

    fn finish_epoch(&mut self) -> Result<()> {
        let cfg = self.model.config.clone();
        let s = self.progress.sums;
        let images = s.images.max(1) as f64;
        let val = (!self.split.val.is_empty()).then(|| {
            let bar = progress::bar(self.split.val.len() as u64, "val images", self.opts.quiet);
            evaluate(
                &mut self.model,
                self.data,
                &self.split.val,
                cfg.trainer.batch_size,
                cfg.exp.seed ^ seeds::VAL_SALT,
                self.opts.world.as_ref(),
                &bar,
            )
        });
        let row = EpochMetrics {
            epoch: self.progress.pos.epoch + 1,
            step: self.progress.step,
            train_loss: s.loss / images,
            train_recon: s.recon / images,
            train_kl: s.kl / images,
            val_loss: val.as_ref().map_or(f64::NAN, |v| v.loss),
            val_recon: val.as_ref().map_or(f64::NAN, |v| v.recon),
            val_kl: val.as_ref().map_or(f64::NAN, |v| v.kl),
            lr: self.optimizer.lr() as f64,
            images_per_s: s.images as f64 / s.seconds.max(1e-9),
            seconds: s.seconds,
        };
        self.progress.pos = Position {
            epoch: self.progress.pos.epoch + 1,
            batch: 0,
        };
        self.progress.sums = EpochSums::default();
        self.progress.history.push(row.clone());
        let improved = self.progress.best.record(row.score(), row.epoch);
        if self.opts.world.is_root() {
            self.write_epoch(&row, improved)?;
        }
        if !self.opts.quiet {
            let comm = match self.opts.world.size() {
                1 => String::new(),
                n => format!(
                    "  ({n} ranks; gradient all-reduce {:.1} ms/step, {:.1}%)",
                    1e3 * self.comm.0 / self.comm.1.max(1) as f64,
                    100.0 * self.comm.0 / s.seconds.max(1e-9)
                ),
            };
            eprintln!(
                "epoch {:>3}  train loss {:.4} (recon {:.5}, KL {:.3})  val loss {:.4}  {:.0} img/s  {:.1}s  (data loading {:.1}%){comm}",
                row.epoch, row.train_loss, row.train_recon, row.train_kl, row.val_loss, row.images_per_s, row.seconds,
                100.0 * s.data_seconds / s.seconds.max(1e-9)
            );
        }
        self.comm = (0.0, 0);
        Ok(())
    }

    /// The epoch's files (rank 0 only): order matters for crash safety, the metrics row
    /// first, then the checkpoint; a resume drops rows newer than its checkpoint.
    fn write_epoch(&mut self, row: &EpochMetrics, improved: bool) -> Result<()> {
        metrics::write(&self.run.metrics(), &self.progress.history)?;
        let (model, run) = (&mut self.model, &self.run);
        (self.pictures).write(
            model,
            self.data,
            &self.split.cond_columns,
            run,
            row.epoch,
            &self.progress.history,
        )?;
        let path = self.run.checkpoint(self.progress.pos);
        self.save(&path)?;
        if improved {
            self.run.keep_as_best(&path)?;
        }
        self.rotate()
    }

    fn save(&mut self, path: &std::path::Path) -> Result<()> {
        let seed = self.model.config.exp.seed;
        let state = RunState {
            batch: self.progress.pos.batch,
            sums: self.progress.sums,
            best_loss: self.progress.best.score,
            best_epoch: Some(self.progress.best.epoch),
            threads: Some(threads()),
            run_id: Some(self.run_id.clone()),
            seed,
            rng: seeds::describe(seed, self.progress.pos.epoch, self.progress.step),
        };
        let cfg = self.model.config.clone();
        let (epoch, step) = (self.progress.pos.epoch, self.progress.step);
        let optimizer = self.optimizer.as_ref();
        checkpoint::save(path, &cfg, &mut self.model, optimizer, epoch, step, &state)
    }

    /// Keeps the newest `trainer.keep_last` checkpoints of this run; never deletes one
    /// this run did not write.
    fn rotate(&self) -> Result<()> {
        self.run.rotate(self.model.config.trainer.keep_last, |p| {
            run_owner::owns(p, &self.run_id, &self.model.config)
        })
    }
}
