//! Continuing a run from its newest checkpoint: the checkpoint must be the run's own, the
//! config may change only where a resume allows (epochs, patience), and the model,
//! optimizer, position, epoch sums and best epoch come back exactly.

use super::best::Best;
use super::run_dir::{Position, RunDir};
use super::trainer::{threads, Progress, TrainOptions, Trainer};
use super::{metrics, run_owner};
use crate::checkpoint::{Stored, StoredConfig};
use crate::config::Overrides;
use crate::data::Dataset;
use crate::{Error, Result};

/// The newest checkpoint of `run`; a broken one is an error naming the one before it.
pub(super) fn newest_checkpoint<C: StoredConfig>(run: &RunDir) -> Result<Stored<C>> {
    let all = run.list_checkpoints();
    let Some((_, path)) = all.last() else {
        return Err(Error::File {
            path: run.checkpoints(),
            message: "no checkpoint to resume from (was the run started with --out here?)".into(),
        });
    };
    Stored::load(path).map_err(|e| match all.iter().rev().nth(1) {
        Some((_, previous)) => Error::Training(format!(
            "{e}. To resume from the previous checkpoint instead, move this one away; \
             the previous one is {}",
            previous.display()
        )),
        None => e,
    })
}

impl<'a> Trainer<'a> {
    /// Continues the run in `opts.out` from its newest checkpoint. `overrides` may change
    /// the number of epochs (to train a finished run further) and the patience; any other
    /// value that differs from the run's is refused, naming the keys.
    pub fn resume(
        data: &'a Dataset,
        opts: TrainOptions,
        overrides: &Overrides,
    ) -> Result<Trainer<'a>> {
        let run = RunDir::new(&opts.out);
        // Rank 0 alone locks and tidies the folder; the others only read the checkpoint.
        let root = opts.world.is_root();
        let lock = root.then(|| run.lock()).transpose()?;
        let stale = if root {
            run.remove_stale_temporaries()
        } else {
            0
        };
        let ckpt = newest_checkpoint(&run)?;
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
        if root {
            run.create()?;
        }
        let mut model = ckpt.build_model()?;
        model.config = config;
        let state = &ckpt.state;
        let pos = Position {
            epoch: ckpt.epoch,
            batch: state.batch,
        };
        let mut history = metrics::read(&run.metrics())?;
        history.retain(|m| m.epoch <= pos.epoch);
        let best = Best {
            score: state.best_loss,
            // Absent in checkpoints written before early stopping: the history tells.
            epoch: (state.best_epoch)
                .unwrap_or_else(|| metrics::best(&history).map_or(0, |m| m.epoch)),
        };
        let progress = Progress {
            pos,
            step: ckpt.step,
            sums: state.sums,
            best,
            history,
        };
        let optimizer = ckpt.optimizer;
        let run = (run, lock, record.run_id);
        let mut t = Trainer::assemble(model, optimizer, data, run, opts, progress)?;
        if let Some(n) = state.threads.filter(|&n| n != threads()) {
            t.notes.push(format!(
                "the run was trained with {n} threads and now runs with {}: losses will differ \
                 in the last digits from an uninterrupted run",
                threads()
            ));
        }
        if stale > 0 {
            t.notes.push(format!(
                "removed {stale} half-written temporary files of an interrupted run"
            ));
        }
        t.notes.push(format!(
            "resuming from {} (epoch {}, batch {}, step {})",
            ckpt.path.display(),
            pos.epoch,
            pos.batch,
            ckpt.step
        ));
        Ok(t)
    }
}
