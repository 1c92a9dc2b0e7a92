//! The layout of a training run's folder:
//!
//! ```text
//! runs/NAME/config.toml            the config the run started with
//! runs/NAME/metrics.csv            one row per epoch
//! runs/NAME/loss.png               the loss curves so far
//! runs/NAME/samples.png            the latest sample grid (and images/samples_eNNN.png)
//! runs/NAME/reconstructions.png    the latest reconstruction grid (and images/recon_eNNN.png)
//! runs/NAME/checkpoints/eEEEE-bBBBBB.safetensors   after E epochs and B more batches
//! runs/NAME/checkpoints/best.safetensors           lowest validation loss so far
//! ```

use crate::{Error, Result};
use std::path::{Path, PathBuf};

pub struct RunDir {
    pub root: PathBuf,
}

/// Where a checkpoint stands: `epoch` complete epochs plus `batch` batches of the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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

    /// Creates the folders; an unwritable location is an error naming it.
    pub fn create(&self) -> Result<()> {
        for dir in [self.checkpoints(), self.images()] {
            std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir, source })?;
        }
        Ok(())
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

    /// Deletes all but the newest `keep` position-named checkpoints (best is kept apart).
    pub fn rotate(&self, keep: usize) -> Result<()> {
        let all = self.list_checkpoints();
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

#[cfg(test)]
mod tests {
    use super::*;

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
        run.rotate(2).unwrap();
        let left: Vec<Position> = run.list_checkpoints().into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            left,
            vec![
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
