//! The training loop: seeded batches, forward/backward/Adam per step, and per epoch a
//! validation pass, a metrics row, pictures and a checkpoint. Everything random is a pure
//! function of `(seed, epoch)` or `(seed, step)`, so a run resumed from a checkpoint
//! reproduces the uninterrupted run exactly (same thread count).

use super::evaluate::evaluate;
use super::metrics::{self, EpochMetrics};
use super::run_dir::{Position, RunDir, RunRecord};
use super::run_owner;
use crate::config::{Config, Overrides};
use crate::data::loader::{batch_conditions, batch_tensor, EpochPlan};
use crate::data::{Dataset, Split};
use crate::folder_lock::FolderLock;
use crate::model::{Vae, VaeLoss};
use crate::nn::Mode;
use crate::optim::{Adam, ExponentialLr, LrSchedule, Optimizer};
use crate::viz::plot::{line_chart, Series};
use crate::{checkpoint, progress, viz, Error, Result, Tape, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Salts that give each random purpose its own ChaCha8 key.
const NOISE_SALT: u64 = 0x4e4f_4953_455f_5a31;
const FIXED_Z_SALT: u64 = 0x4649_5845_445f_5a31;
const VAL_SALT: u64 = 0x5641_4c5f_5a5f_3031;
/// Images shown in the reconstruction grid, and samples in the sample grid.
const PREVIEW_IMAGES: usize = 8;
const SAMPLE_GRID: usize = 32;

#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub out: PathBuf,
    /// Use at most this many validation images per epoch.
    pub val_limit: Option<usize>,
    /// No progress bars or per-epoch lines.
    pub quiet: bool,
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

/// Running sums over the batches of the current epoch (kept in checkpoints, so an
/// interrupted epoch's averages come out the same after a resume).
#[derive(Clone, Copy, Debug, Default)]
struct EpochSums {
    loss: f64,
    recon: f64,
    kl: f64,
    images: usize,
    seconds: f64,
    /// Of `seconds`, the time spent building batches from the cache.
    data_seconds: f64,
}

impl EpochSums {
    fn encode(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.loss, self.recon, self.kl, self.images, self.seconds, self.data_seconds
        )
    }
    fn decode(s: &str) -> Option<EpochSums> {
        let v: Vec<&str> = s.split_whitespace().collect();
        Some(EpochSums {
            loss: v.first()?.parse().ok()?,
            recon: v.get(1)?.parse().ok()?,
            kl: v.get(2)?.parse().ok()?,
            images: v.get(3)?.parse().ok()?,
            seconds: v.get(4)?.parse().ok()?,
            // Absent in checkpoints written before it was measured.
            data_seconds: v.get(5).and_then(|d| d.parse().ok()).unwrap_or(0.0),
        })
    }
}

pub struct Trainer<'a> {
    pub model: Vae,
    adam: Adam,
    data: &'a Dataset,
    pub run: RunDir,
    /// Held while the trainer lives: no other process writes the run folder meanwhile.
    _lock: FolderLock,
    /// The run's id (`run.toml`), written into each checkpoint.
    run_id: String,
    opts: TrainOptions,
    train_idx: Vec<usize>,
    val_idx: Vec<usize>,
    preview_idx: Vec<usize>,
    /// The attribute columns of a conditional model's condition (empty otherwise).
    cond_columns: Vec<usize>,
    fixed_z: Tensor,
    pub pos: Position,
    pub step: u64,
    sums: EpochSums,
    best: f64,
    /// The epoch (1-based) that reached `best`; 0 before the first epoch ends.
    best_epoch: usize,
    pub history: Vec<EpochMetrics>,
    /// Things the user should know (e.g. a thread count differing from the checkpoint's).
    pub notes: Vec<String>,
}

fn threads() -> usize {
    rayon::current_num_threads()
}

/// The newest checkpoint of `run`; a broken one is an error naming the one before it.
fn newest_checkpoint(run: &RunDir) -> Result<checkpoint::Checkpoint> {
    let all = run.list_checkpoints();
    let Some((_, path)) = all.last() else {
        return Err(Error::File {
            path: run.checkpoints(),
            message: "no checkpoint to resume from (was the run started with --out here?)".into(),
        });
    };
    checkpoint::Checkpoint::load(path).map_err(|e| match all.iter().rev().nth(1) {
        Some((_, previous)) => Error::Training(format!(
            "{e}. To resume from the previous checkpoint instead, move this one away; \
             the previous one is {}",
            previous.display()
        )),
        None => e,
    })
}

impl<'a> Trainer<'a> {
    /// A new run in `opts.out`, which must not hold checkpoints already.
    pub fn new(config: &Config, data: &'a Dataset, opts: TrainOptions) -> Result<Trainer<'a>> {
        data.check_fits(config)?;
        let mut model = Vae::new(config, &mut ChaCha8Rng::seed_from_u64(config.exp.seed))?;
        // Before the folder is made: a bad feature network leaves nothing behind.
        crate::onnx::feature_net::attach(&mut model)?;
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
        run.create()?;
        run.remove_stale_temporaries();
        let record = RunRecord::new();
        run.write_record(&record)?;
        crate::atomic_file::write(&run.config(), config.to_toml().as_bytes())?;
        let adam = Adam::new(config.exp.lr).with_weight_decay(config.exp.weight_decay);
        let start = Position { epoch: 0, batch: 0 };
        let mut t = Self::assemble(model, adam, data, run, lock, opts, start, 0)?;
        t.run_id = record.run_id;
        Ok(t)
    }

    /// Continues the run in `opts.out` from its newest checkpoint. `overrides` may change
    /// the number of epochs (to train a finished run further) and the patience; any other
    /// value that differs from the run's is refused, naming the keys.
    pub fn resume(
        data: &'a Dataset,
        opts: TrainOptions,
        overrides: &Overrides,
    ) -> Result<Trainer<'a>> {
        let run = RunDir::new(&opts.out);
        let lock = run.lock()?;
        let stale = run.remove_stale_temporaries();
        let ckpt = newest_checkpoint(&run)?;
        let path = ckpt.path.clone();
        let record = run_owner::check_owner(&run, &ckpt)?;
        let config = overrides.apply(ckpt.config.clone());
        let differ = ckpt.config.run_differences(&config);
        if !differ.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: the run was trained with other values of {}; only trainer.epochs and \
                 trainer.patience can change when resuming",
                run.root.display(),
                differ.join(", ")
            )));
        }
        config.plan()?; // the overridden values are checked too
        data.check_fits(&config)?;
        // A run whose images/ folder was deleted (to save space, or copied without it).
        run.create()?;
        let mut model = ckpt.build_model()?;
        model.config = config;
        let bad = |what: &str| Error::File {
            path: path.clone(),
            message: format!("bad {what} in checkpoint metadata"),
        };
        let batch = ckpt
            .extra
            .get("batch")
            .and_then(|b| b.parse().ok())
            .ok_or_else(|| bad("batch"))?;
        let pos = Position {
            epoch: ckpt.epoch,
            batch,
        };
        let adam = ckpt.adam.clone();
        let mut t = Self::assemble(model, adam, data, run, lock, opts, pos, ckpt.step)?;
        t.run_id = record.run_id;
        t.sums = ckpt
            .extra
            .get("epoch_sums")
            .and_then(|s| EpochSums::decode(s))
            .ok_or_else(|| bad("epoch_sums"))?;
        t.best = ckpt
            .extra
            .get("best_loss")
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::INFINITY);
        t.history = metrics::read(&t.run.metrics())?;
        t.history.retain(|m| m.epoch <= pos.epoch);
        // Absent in checkpoints written before early stopping: the history tells.
        t.best_epoch = ckpt
            .extra
            .get("best_epoch")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| metrics::best(&t.history).map_or(0, |m| m.epoch));
        if let Some(n) = ckpt
            .extra
            .get("threads")
            .and_then(|s| s.parse::<usize>().ok())
        {
            if n != threads() {
                t.notes.push(format!(
                    "the run was trained with {n} threads and now runs with {}: losses will differ \
                     in the last digits from an uninterrupted run",
                    threads()
                ));
            }
        }
        if stale > 0 {
            t.notes.push(format!(
                "removed {stale} half-written temporary files of an interrupted run"
            ));
        }
        t.notes.push(format!(
            "resuming from {} (epoch {}, batch {}, step {})",
            path.display(),
            pos.epoch,
            pos.batch,
            ckpt.step
        ));
        Ok(t)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        mut model: Vae,
        adam: Adam,
        data: &'a Dataset,
        run: RunDir,
        lock: FolderLock,
        opts: TrainOptions,
        pos: Position,
        step: u64,
    ) -> Result<Trainer<'a>> {
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
        super::memory::check_batch_fits(&model.config, batch)?;
        let mut val_idx = data.indices(Split::Val);
        val_idx.truncate(opts.val_limit.unwrap_or(usize::MAX));
        let preview_idx = if val_idx.is_empty() {
            &train_idx
        } else {
            &val_idx
        };
        let preview_idx = preview_idx.iter().copied().take(PREVIEW_IMAGES).collect();
        let cfg = &model.config;
        let cond_columns = data.condition_columns(cfg)?;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.exp.seed ^ FIXED_Z_SALT);
        let fixed_z = Tensor::from_shape_simple_fn(vec![SAMPLE_GRID, cfg.model.latent], || {
            rng.sample(StandardNormal)
        });
        Ok(Trainer {
            model,
            adam,
            data,
            run,
            _lock: lock,
            run_id: String::new(),
            opts,
            train_idx,
            val_idx,
            preview_idx,
            cond_columns,
            fixed_z,
            pos,
            step,
            sums: EpochSums::default(),
            best: f64::INFINITY,
            best_epoch: 0,
            history: vec![],
            notes: vec![],
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
        while self.pos.epoch < epochs {
            if self.patience_exhausted() {
                return Ok(Outcome::EarlyStopped {
                    best_epoch: self.best_epoch,
                });
            }
            let epoch = self.pos.epoch;
            self.adam.set_lr(
                ExponentialLr {
                    gamma: cfg.exp.scheduler_gamma,
                }
                .lr_at(cfg.exp.lr, epoch),
            );
            let plan = EpochPlan::new(&self.train_idx, cfg.exp.seed, epoch, cfg.data.flip);
            let batches = plan.batches(bs);
            let bar = progress::bar(batches.len() as u64, "batches", self.opts.quiet);
            bar.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
            bar.set_position(self.pos.batch as u64);
            for (b, range) in batches.iter().enumerate().skip(self.pos.batch) {
                let start = Instant::now();
                let range = range.clone();
                let x = batch_tensor(
                    self.data,
                    &plan.order[range.clone()],
                    &plan.flips[range.clone()],
                    cfg.data.pixel_range,
                );
                let cond =
                    batch_conditions(self.data, &plan.order[range.clone()], &self.cond_columns);
                let data_seconds = start.elapsed().as_secs_f64();
                let step = self.train_step(x, cond.as_ref())?;
                let (loss, recon, kl) = (step.total.item(), step.recon, step.kl);
                let n = range.len();
                let s = &mut self.sums;
                s.loss += step.weighted_total(&cfg.exp);
                s.recon += step.recon_total;
                s.kl += step.kl_total;
                s.images += n;
                s.seconds += start.elapsed().as_secs_f64();
                s.data_seconds += data_seconds;
                self.pos.batch = b + 1;
                self.step += 1;
                bar.set_message(format!(
                    "loss {:.3} recon {:.5} KL {:.2} {:.0} img/s",
                    loss,
                    recon,
                    kl,
                    s.images as f64 / s.seconds.max(1e-9)
                ));
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

    /// Whether `trainer.patience` whole epochs have passed since the best one (checked
    /// between epochs, so a resumed run that had stopped early stops again at once).
    fn patience_exhausted(&self) -> bool {
        let Some(patience) = self.model.config.trainer.patience else {
            return false;
        };
        self.pos.batch == 0 && self.best_epoch > 0 && self.pos.epoch - self.best_epoch >= patience
    }

    /// One optimization step on the batch `x`; a non-finite loss is an error and changes
    /// no parameter.
    fn train_step(&mut self, x: Tensor, cond: Option<&Tensor>) -> Result<VaeLoss> {
        let tape = Tape::new();
        let mut rng = ChaCha8Rng::seed_from_u64(self.model.config.exp.seed ^ NOISE_SALT);
        rng.set_stream(self.step);
        let input = Var::constant(x);
        let out = self
            .model
            .forward_with(&tape, &input, cond, Mode::Train, &mut rng);
        let loss = self.model.loss(&out, input.value());
        let total = loss.total.item();
        if !total.is_finite() {
            let last = self.run.list_checkpoints().pop().map_or_else(
                || "no checkpoint was written yet".to_string(),
                |(_, p)| format!("the last good checkpoint is {}", p.display()),
            );
            return Err(Error::Training(format!(
                "the loss became {total} at step {} (epoch {}, batch {}); {last}. \
                 A lower learning rate (--lr) or a smaller recon_weight may help",
                self.step + 1,
                self.pos.epoch + 1,
                self.pos.batch + 1
            )));
        }
        let grads = tape.backward(&loss.total);
        self.adam.step(&mut self.model, &grads);
        Ok(loss)
    }

    fn finish_epoch(&mut self) -> Result<()> {
        let cfg = self.model.config.clone();
        let s = self.sums;
        let images = s.images.max(1) as f64;
        let val = (!self.val_idx.is_empty()).then(|| {
            let bar = progress::bar(self.val_idx.len() as u64, "val images", self.opts.quiet);
            evaluate(
                &mut self.model,
                self.data,
                &self.val_idx,
                cfg.trainer.batch_size,
                cfg.exp.seed ^ VAL_SALT,
                &bar,
            )
        });
        let row = EpochMetrics {
            epoch: self.pos.epoch + 1,
            step: self.step,
            train_loss: s.loss / images,
            train_recon: s.recon / images,
            train_kl: s.kl / images,
            val_loss: val.as_ref().map_or(f64::NAN, |v| v.loss),
            val_recon: val.as_ref().map_or(f64::NAN, |v| v.recon),
            val_kl: val.as_ref().map_or(f64::NAN, |v| v.kl),
            lr: self.adam.lr() as f64,
            images_per_s: s.images as f64 / s.seconds.max(1e-9),
            seconds: s.seconds,
        };
        self.pos = Position {
            epoch: self.pos.epoch + 1,
            batch: 0,
        };
        self.sums = EpochSums::default();
        self.history.push(row.clone());
        // Order matters for crash safety: the metrics row first, then the checkpoint; a
        // resume drops rows newer than its checkpoint.
        metrics::write(&self.run.metrics(), &self.history)?;
        self.write_pictures()?;
        let path = self.run.checkpoint(self.pos);
        let score = row.score();
        let improved = score < self.best;
        if improved {
            self.best = score;
            self.best_epoch = row.epoch;
        }
        self.save(&path)?;
        if improved {
            crate::atomic_file::write_with(&self.run.best(), |tmp| {
                std::fs::copy(&path, tmp).map(|_| ())
            })?;
        }
        self.rotate()?;
        if !self.opts.quiet {
            eprintln!(
                "epoch {:>3}  train loss {:.4} (recon {:.5}, KL {:.3})  val loss {:.4}  {:.0} img/s  {:.1}s  (data loading {:.1}%)",
                row.epoch, row.train_loss, row.train_recon, row.train_kl, row.val_loss, row.images_per_s, row.seconds,
                100.0 * s.data_seconds / s.seconds.max(1e-9)
            );
        }
        Ok(())
    }

    fn save(&mut self, path: &std::path::Path) -> Result<()> {
        let seed = self.model.config.exp.seed;
        let extra = BTreeMap::from([
            ("batch".to_string(), self.pos.batch.to_string()),
            ("epoch_sums".to_string(), self.sums.encode()),
            ("best_loss".to_string(), self.best.to_string()),
            ("best_epoch".to_string(), self.best_epoch.to_string()),
            ("threads".to_string(), threads().to_string()),
            ("seed".to_string(), seed.to_string()),
            ("run_id".to_string(), self.run_id.clone()),
            (
                "rng".to_string(),
                format!(
                    "ChaCha8: shuffle and flips use key seed^{SHUFFLE:#x} with stream = epoch; \
                     reparameterization noise uses key seed^{NOISE_SALT:#x} with stream = step; \
                     seed {seed}, epoch {}, step {}",
                    self.pos.epoch,
                    self.step,
                    SHUFFLE = crate::data::loader::SHUFFLE_STREAM_SALT
                ),
            ),
        ]);
        let cfg = self.model.config.clone();
        checkpoint::save(
            path,
            &cfg,
            &mut self.model,
            &self.adam,
            self.pos.epoch,
            self.step,
            &extra,
        )
    }

    /// Keeps the newest `trainer.keep_last` checkpoints of this run; never deletes one
    /// this run did not write.
    fn rotate(&self) -> Result<()> {
        self.run.rotate(self.model.config.trainer.keep_last, |p| {
            run_owner::owns(p, &self.run_id, &self.model.config)
        })
    }

    /// Reconstructions of the preview images, samples from the fixed z, the loss curves.
    fn write_pictures(&mut self) -> Result<()> {
        let range = self.model.config.data.pixel_range;
        let tape = Tape::no_grad();
        let x = batch_tensor(self.data, &self.preview_idx, &[], range);
        let cond = batch_conditions(self.data, &self.preview_idx, &self.cond_columns);
        let (mu, _) =
            self.model
                .encode_with(&tape, &Var::constant(x.clone()), cond.as_ref(), Mode::Eval);
        let recon = self
            .model
            .decode_with(&tape, &mu, cond.as_ref(), Mode::Eval);
        let grid = viz::reconstruction_grid(
            &viz::to_images(&x, range),
            &viz::to_images(recon.value(), range),
            8,
            2,
        );
        let e = self.pos.epoch;
        viz::save_png(&self.run.images().join(format!("recon_e{e:03}.png")), &grid)?;
        viz::save_png(&self.run.root.join("reconstructions.png"), &grid)?;
        let samples = self
            .model
            .decode(&tape, &Var::constant(self.fixed_z.clone()), Mode::Eval);
        let grid = viz::grid(&viz::to_images(samples.value(), range), 8, 2);
        viz::save_png(
            &self.run.images().join(format!("samples_e{e:03}.png")),
            &grid,
        )?;
        viz::save_png(&self.run.root.join("samples.png"), &grid)?;
        let series = |name: &str, color, f: fn(&EpochMetrics) -> f64| Series {
            name: name.into(),
            points: self
                .history
                .iter()
                .map(|m| (m.epoch as f64, f(m)))
                .collect(),
            color,
        };
        let chart = line_chart(
            "loss (recon_weight * recon + kld_weight * KL)",
            "epoch",
            &[
                series("train", [30, 90, 200], |m| m.train_loss),
                series("val", [220, 80, 30], |m| m.val_loss),
            ],
            640,
            400,
        );
        viz::save_png(&self.run.root.join("loss.png"), &chart)
    }
}
