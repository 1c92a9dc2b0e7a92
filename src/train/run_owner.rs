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
    if let Some(record) = check_id(run, &ckpt.path, ckpt.state.run_id.as_ref())? {
        return Ok(record);
    }
    let saved = Config::load(&run.config())?;
    let differ = saved.run_differences(&ckpt.config);
    if !differ.is_empty() {
        return Err(foreign(
            run,
            &ckpt.path,
            format!(
                "its config differs from {} in {}",
                run.config().display(),
                differ.join(", ")
            ),
        ));
    }
    let record = RunRecord::new();
    run.write_record(&record)?;
    Ok(record)
}

/// The run's record when the checkpoint at `path` carries the run's id (`id`); `None`
/// when neither has an id (a run from before ids); an error naming the mismatch otherwise.
pub fn check_id(run: &RunDir, path: &Path, id: Option<&String>) -> Result<Option<RunRecord>> {
    match (run.read_record()?, id) {
        (Some(r), Some(id)) if *id == r.run_id => Ok(Some(r)),
        (Some(r), Some(id)) => Err(foreign(
            run,
            path,
            format!("its run id is {id}, the folder's run is {}", r.run_id),
        )),
        (Some(r), None) => Err(foreign(
            run,
            path,
            format!("it carries no run id, the folder's run is {}", r.run_id),
        )),
        (None, Some(id)) => Err(foreign(
            run,
            path,
            format!("its run id is {id}, the folder has no run.toml"),
        )),
        (None, None) => Ok(None),
    }
}

/// The checkpoint at `path` belongs to another run than `run`, because of `why`.
pub fn foreign(run: &RunDir, path: &Path, why: String) -> Error {
    Error::File {
        path: path.to_path_buf(),
        message: format!(
            "belongs to another run ({why}); resuming would continue that other run. \
             Move it out of {} to resume from this run's own checkpoints",
            run.checkpoints().display()
        ),
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
