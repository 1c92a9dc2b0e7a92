//! Writing files so that a crash never leaves a half-written file under the final name:
//! write a temporary file beside the target, sync it, rename it into place, sync the
//! folder. Where the target is decided by [`crate::file_guard`]: a symlink's target is
//! written (the link stays), a folder, device, FIFO or socket is refused, and so is a
//! declared input of the running command. A crash can leave a temporary file (`.NAME.tmp-PID`) behind; [`remove_stale`]
//! clears them.
//!
//! Fault injection for tests: with `VAE_CPU_FAULT_WRITE_DELAY_MS=N` in the environment,
//! every write waits N ms between filling the temporary file and renaming it, so that a
//! test can kill the process while a write is under way.

use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |tmp| std::fs::File::create(tmp)?.write_all(bytes))
}

/// Lets `fill` write the content to a temporary path, then syncs it and renames it to
/// `path`. On any error the temporary file is removed and `path` is left as it was.
pub fn write_with(path: &Path, fill: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    let target = crate::file_guard::output_target(path)?;
    let path = target.as_path();
    let tmp = temporary_path(path)?;
    let result = (|| {
        fill(&tmp)?;
        keeps_its_kind(path, &tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        if let Some(delay) = fault_write_delay() {
            std::thread::sleep(delay);
        }
        std::fs::rename(&tmp, path)?;
        sync_parent(path);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A checkpoint or an image cache is only ever replaced by a file of the same kind: a
/// PNG, CSV or ONNX file written over one (a slip of `--out`) is refused.
fn keeps_its_kind(path: &Path, tmp: &Path) -> std::io::Result<()> {
    match (precious_kind(path), precious_kind(tmp)) {
        (Some(old), new) if new != Some(old) => Err(std::io::Error::other(format!(
            "it is {old}; vae-cpu does not replace it with another kind of file \
             (choose another output path, or remove it first)"
        ))),
        _ => Ok(()),
    }
}

/// "a vae-cpu checkpoint" or "a vae-cpu image cache" when the file is one (read from its
/// safetensors header: 8 bytes of length, then JSON holding the format marker).
fn precious_kind(path: &Path) -> Option<&'static str> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).ok()?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return None;
    }
    let mut header = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut header).ok()?;
    let has = |marker: &[u8]| header.windows(marker.len()).any(|w| w == marker);
    if has(b"\"vae-cpu-checkpoint-") {
        Some("a vae-cpu checkpoint")
    } else if has(b"\"vae-cpu-cache-") {
        Some("a vae-cpu image cache")
    } else {
        None
    }
}

/// Makes the rename durable (best effort: not every platform can sync a folder).
fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = std::fs::File::open(parent) {
        let _ = dir.sync_all();
    }
}

fn fault_write_delay() -> Option<std::time::Duration> {
    static DELAY: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        let ms = std::env::var("VAE_CPU_FAULT_WRITE_DELAY_MS").ok()?;
        Some(std::time::Duration::from_millis(ms.parse().ok()?))
    })
}

/// Whether `name` is a temporary file of [`write()`] (`.NAME.tmp-PID`).
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".tmp-")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Deletes the temporary files a killed process left in `dir`; returns how many.
pub fn remove_stale(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| is_temporary(&e.file_name().to_string_lossy()))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

fn temporary_path(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| Error::File {
        path: path.to_path_buf(),
        message: "not a file name".into(),
    })?;
    Ok(path.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        write(&path, b"old").unwrap();
        let err = write_with(&path, |_| Err(std::io::Error::other("disk full"))).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn stale_temporaries_are_recognized_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = temporary_path(&dir.path().join("e0001-b000000.safetensors")).unwrap();
        assert!(is_temporary(&tmp.file_name().unwrap().to_string_lossy()));
        std::fs::write(&tmp, b"half").unwrap();
        std::fs::write(dir.path().join("keep.tmp-12"), b"x").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
        assert_eq!(remove_stale(dir.path()), 1);
        assert!(!tmp.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_the_file() {
        let err = write(Path::new("/nonexistent-dir/x/a.bin"), b"x").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-dir/x/a.bin"),
            "{err}"
        );
    }
}
