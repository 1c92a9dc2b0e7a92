//! One writer per run folder, sweep folder or cache: an OS advisory lock (`flock` on Unix,
//! `LockFileEx` on Windows, through `std::fs::File::try_lock`) on a lock file, held for the
//! life of the process. The OS releases it on any exit, a SIGKILL included, so a killed
//! run never leaves a stale lock behind. The lock file holds the holder's PID, for the
//! message the second process gets. The file itself stays (deleting a lock file while
//! another process waits on it would let two holders in). Within one process the lock is
//! shared: locking a path this process already holds returns another handle to it.

use crate::{Error, Result};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

/// The lock file inside a locked folder.
pub const LOCK_FILE: &str = ".vae-cpu.lock";

/// A held lock; dropping it (or exiting) releases it.
#[derive(Clone, Debug)]
pub struct FolderLock {
    _file: Arc<std::fs::File>,
    pub path: PathBuf,
}

/// The locks this process holds, by canonical lock-file path.
static HELD: Mutex<Vec<(PathBuf, Weak<std::fs::File>)>> = Mutex::new(Vec::new());

/// Locks the folder `dir` (which must exist) through `dir/.vae-cpu.lock`.
pub fn lock_folder(dir: &Path) -> Result<FolderLock> {
    acquire(&dir.join(LOCK_FILE), dir)
}

/// Locks the file `path` (a cache) through `.NAME.lock` beside it.
pub fn lock_file(path: &Path) -> Result<FolderLock> {
    let name = path
        .file_name()
        .map_or("data".into(), |n| n.to_string_lossy());
    acquire(&path.with_file_name(format!(".{name}.lock")), path)
}

/// Takes the lock on `lock_path` (or shares the one this process holds); `guarded` is
/// what messages name.
fn acquire(lock_path: &Path, guarded: &Path) -> Result<FolderLock> {
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    held.retain(|(_, w)| w.strong_count() > 0);
    let key = lock_path
        .parent()
        .and_then(|d| d.canonicalize().ok())
        .map_or_else(
            || lock_path.to_path_buf(),
            |d| d.join(lock_path.file_name().unwrap_or_default()),
        );
    if let Some(file) = held
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok(FolderLock {
            _file: file,
            path: lock_path.to_path_buf(),
        });
    }
    let lock = open_and_lock(lock_path, guarded)?;
    held.push((key, Arc::downgrade(&lock._file)));
    Ok(lock)
}

fn open_and_lock(lock_path: &Path, guarded: &Path) -> Result<FolderLock> {
    let io = |source| Error::Io {
        path: lock_path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock_path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "another vae-cpu process".to_string(),
                pid => format!("another vae-cpu process (PID {pid})"),
            };
            return Err(Error::File {
                path: guarded.to_path_buf(),
                message: format!(
                    "in use by {holder}; wait for it to finish or stop it, or choose another path"
                ),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    // Best effort: the PID is only for messages.
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| write!(file, "{}", std::process::id()))
        .and_then(|_| file.flush());
    Ok(FolderLock {
        _file: Arc::new(file),
        path: lock_path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_folder(dir.path()).unwrap();
        // Another open file description of the same lock file: what another process has.
        let err = open_and_lock(&first.path, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("in use by"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        // This process shares its own lock.
        let again = lock_folder(dir.path()).unwrap();
        drop(first);
        assert!(open_and_lock(&again.path, dir.path()).is_err());
        drop(again);
        open_and_lock(&dir.path().join(LOCK_FILE), dir.path()).unwrap();
        let cache = dir.path().join("x.vaecache");
        let c = lock_file(&cache).unwrap();
        assert!(dir.path().join(".x.vaecache.lock").exists());
        assert!(open_and_lock(&c.path, &cache).is_err());
    }
}
