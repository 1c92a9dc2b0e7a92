//! Which checkpoints belong to a run: the one a resume starts from must be the run's own
//! (it carries the id in the run's `run.toml`), and retention deletes only the run's own.
//! Runs started before ids were kept are recognized by their config instead.

use super::run_dir::{RunDir, RunRecord};
use crate::checkpoint::{self, Checkpoint};
use crate::config::Config;
use crate::{Error, Result};
use std::path::Path;

/// Checks that the checkpoint a resume starts from is the run's own, and returns the run's
/// record (made now for a run started before records were kept).
pub fn check_owner(run: &RunDir, ckpt: &Checkpoint) -> Result<RunRecord> {
    let record = run.read_record()?;
    let foreign = |why: String| Error::File {
        path: ckpt.path.clone(),
        message: format!(
            "belongs to another run ({why}); resuming would continue that other run. \
             Move it out of {} to resume from this run's own checkpoints",
            run.checkpoints().display()
        ),
    };
    match (record, &ckpt.state.run_id) {
        (Some(r), Some(id)) if *id == r.run_id => Ok(r),
        (Some(r), Some(id)) => Err(foreign(format!(
            "its run id is {id}, the folder's run is {}",
            r.run_id
        ))),
        (Some(r), None) => Err(foreign(format!(
            "it carries no run id, the folder's run is {}",
            r.run_id
        ))),
        (None, Some(id)) => Err(foreign(format!(
            "its run id is {id}, the folder has no run.toml"
        ))),
        (None, None) => {
            let saved = Config::load(&run.config())?;
            let differ = saved.run_differences(&ckpt.config);
            if !differ.is_empty() {
                return Err(foreign(format!(
                    "its config differs from {} in {}",
                    run.config().display(),
                    differ.join(", ")
                )));
            }
            let record = RunRecord::new();
            run.write_record(&record)?;
            Ok(record)
        }
    }
}

/// Whether the checkpoint at `path` is the run's with id `run_id` and config `config`: it
/// carries that id, or (written before runs had ids) no id and the same run config.
pub fn owns(path: &Path, run_id: &str, config: &Config) -> bool {
    let Some((state, text)) = checkpoint::read_header(path) else {
        return false;
    };
    match state.run_id {
        Some(id) => id == run_id,
        None => Config::parse(&text).is_ok_and(|c| c.run_differences(config).is_empty()),
    }
}
