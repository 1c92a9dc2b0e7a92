//! The layout of a training run's folder:
//!
//! ```text
//! runs/NAME/config.toml            the config the run started with
//! runs/NAME/run.toml               the run's id, which every checkpoint of it carries
//! runs/NAME/.vae-cpu.lock          held by the process training in the folder
//! runs/NAME/metrics.csv            one row per epoch
//! runs/NAME/loss.png               the loss curves so far
//! runs/NAME/samples.png            the latest sample grid (and images/samples_eNNN.png)
//! runs/NAME/reconstructions.png    the latest reconstruction grid (and images/recon_eNNN.png)
//! runs/NAME/checkpoints/eEEEE-bBBBBB.safetensors   after E epochs and B more batches
//! runs/NAME/checkpoints/best.safetensors           lowest validation loss so far
//! ```

use crate::folder_lock::{lock_folder, FolderLock};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a run folder records about the run that owns it (`run.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Random, drawn when the run starts; every checkpoint of the run carries it.
    pub run_id: String,
}

impl RunRecord {
    pub fn new() -> RunRecord {
        RunRecord {
            run_id: format!("{:016x}", rand::random::<u64>()),
        }
    }
}

impl Default for RunRecord {
    fn default() -> Self {
        Self::new()
    }
}

pub struct RunDir {
    pub root: PathBuf,
}

/// Where a checkpoint stands: `epoch` complete epochs plus `batch` batches of the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub epoch: usize,
    pub batch: usize,
}

impl RunDir {
    pub fn new(root: &Path) -> RunDir {
        RunDir {
            root: root.to_path_buf(),
        }
    }

    /// Creates the run's folder if needed and locks it for the life of this process; a
    /// folder another process trains in is an error naming that process.
    pub fn lock(&self) -> Result<FolderLock> {
        create_folder(&self.root)?;
        lock_folder(&self.root)
    }

    /// Creates the folders; an unwritable location is an error naming it.
    pub fn create(&self) -> Result<()> {
        for dir in [self.checkpoints(), self.images()] {
            create_folder(&dir)?;
        }
        Ok(())
    }

    pub fn record_path(&self) -> PathBuf {
        self.root.join("run.toml")
    }

    /// The run's record; `None` for a run started before records were kept.
    pub fn read_record(&self) -> Result<Option<RunRecord>> {
        let path = self.record_path();
        if !path.exists() {
            return Ok(None);
        }
        crate::error::parse_file(&path, |bytes| {
            let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
            toml::from_str(text).map_err(|e| e.to_string())
        })
        .map(Some)
    }

    pub fn write_record(&self, record: &RunRecord) -> Result<()> {
        let text = toml::to_string(record).expect("a run record serializes");
        crate::atomic_file::write(&self.record_path(), text.as_bytes())
    }

    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    pub fn best(&self) -> PathBuf {
        self.checkpoints().join("best.safetensors")
    }

    pub fn checkpoint(&self, pos: Position) -> PathBuf {
        self.checkpoints()
            .join(format!("e{:04}-b{:06}.safetensors", pos.epoch, pos.batch))
    }

    /// The position encoded in a checkpoint's file name, if it is one of ours.
    pub fn parse_name(name: &str) -> Option<Position> {
        let rest = name.strip_prefix('e')?.strip_suffix(".safetensors")?;
        let (e, b) = rest.split_once("-b")?;
        Some(Position {
            epoch: e.parse().ok()?,
            batch: b.parse().ok()?,
        })
    }

    /// Copies the checkpoint at `path` to best.safetensors (atomically).
    pub fn keep_as_best(&self, path: &Path) -> Result<()> {
        crate::atomic_file::write_with(&self.best(), |tmp| std::fs::copy(path, tmp).map(|_| ()))
    }

    /// Position-named checkpoints, oldest first.
    pub fn list_checkpoints(&self) -> Vec<(Position, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(self.checkpoints()) else {
            return vec![];
        };
        let mut found: Vec<(Position, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                Self::parse_name(&name).map(|p| (p, e.path()))
            })
            .collect();
        found.sort();
        found
    }

    /// Deletes the temporary files of writes a killed run left behind; returns how many.
    pub fn remove_stale_temporaries(&self) -> usize {
        [self.root.clone(), self.checkpoints(), self.images()]
            .iter()
            .map(|d| crate::atomic_file::remove_stale(d))
            .sum()
    }

    /// Deletes all but the newest `keep` position-named checkpoints that `ours` says belong
    /// to this run (best is kept apart; a checkpoint of another run is never touched).
    pub fn rotate(&self, keep: usize, ours: impl Fn(&Path) -> bool) -> Result<()> {
        let all: Vec<_> = self
            .list_checkpoints()
            .into_iter()
            .filter(|(_, p)| ours(p))
            .collect();
        let excess = all.len().saturating_sub(keep.max(1));
        for (_, path) in &all[..excess] {
            std::fs::remove_file(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// `name` as one folder name: characters other than ASCII letters, digits and `=._-+`
/// become `-`, and a name of dots only (or none) becomes `run`, so that a model called
/// `../../x` or `/etc` stays inside the folder it is joined to.
pub fn folder_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "=._-+".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.chars().all(|c| c == '.') {
        "run".into()
    } else {
        clean
    }
}

/// `create_dir_all` with messages that say what is in the way.
fn create_folder(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::File {
            path: dir.to_path_buf(),
            message: "is a file, not a folder; give a folder path (a new one is created)".into(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_stay_inside() {
        assert_eq!(folder_name("celeba32"), "celeba32");
        assert_eq!(folder_name("../../x"), "..-..-x");
        assert_eq!(folder_name("/etc"), "-etc");
        assert_eq!(folder_name(""), "run");
        assert_eq!(folder_name(".."), "run");
        assert_eq!(folder_name("a b/c"), "a-b-c");
    }

    #[test]
    fn names_round_trip_and_rotation_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        run.create().unwrap();
        let positions = [(0, 5), (1, 0), (2, 0), (10, 0), (2, 3)];
        for (e, b) in positions {
            let p = Position { epoch: e, batch: b };
            let path = run.checkpoint(p);
            assert_eq!(
                RunDir::parse_name(path.file_name().unwrap().to_str().unwrap()),
                Some(p)
            );
            std::fs::write(&path, b"x").unwrap();
        }
        std::fs::write(run.best(), b"x").unwrap();
        run.rotate(2, |p| !p.ends_with("e0000-b000005.safetensors"))
            .unwrap();
        let left: Vec<Position> = run.list_checkpoints().into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            left,
            vec![
                Position { epoch: 0, batch: 5 },
                Position { epoch: 2, batch: 3 },
                Position {
                    epoch: 10,
                    batch: 0
                }
            ]
        );
        assert!(run.best().exists());
        assert_eq!(RunDir::parse_name("best.safetensors"), None);
    }
}
