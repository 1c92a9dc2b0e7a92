//! Which paths a command may write. Every writer goes through [`crate::atomic_file`],
//! which asks [`output_target`] where to write; commands declare their files up front with
//! [`check_command`], so a refusal comes before any work. The rules:
//!
//! - a regular file, or a path that does not exist yet, is replaced atomically;
//! - a symlink is followed: its final target is replaced atomically and the link stays;
//! - anything else that exists (a folder, a device such as `/dev/null`, a FIFO, a socket)
//!   is refused with a message;
//! - a path that is the same file as one of the command's inputs (same canonical path, or
//!   same device and inode: a hard link) is refused, and no two outputs of one command may
//!   share a path.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file a path names once symlinks are followed: its absolute path, and its device
/// and inode when it exists.
#[derive(Clone, Debug)]
struct Identity {
    path: PathBuf,
    inode: Option<(u64, u64)>,
}

impl Identity {
    fn of(path: &Path) -> Identity {
        Identity {
            path: absolute(path),
            inode: inode(path),
        }
    }

    fn same(&self, other: &Identity) -> bool {
        match (self.inode, other.inode) {
            (Some(a), Some(b)) => a == b,
            _ => self.path == other.path,
        }
    }
}

#[cfg(unix)]
fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn inode(_: &Path) -> Option<(u64, u64)> {
    None
}

/// The canonical path of `path`, or of its folder joined with its name when it does not
/// exist yet (a new output).
fn absolute(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// The inputs of the running command (with the flag that named each): no write may
/// replace them.
static INPUTS: Mutex<Vec<(String, Identity)>> = Mutex::new(Vec::new());

fn inputs() -> std::sync::MutexGuard<'static, Vec<(String, Identity)>> {
    INPUTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a write to `path` must go: `path` itself, or the final target of the symlink it
/// is. Refuses what is not a regular file and what is one of the declared inputs.
pub fn output_target(path: &Path) -> Result<PathBuf> {
    let target = follow_links(path)?;
    let id = Identity::of(&target);
    if let Some((flag, _)) = inputs().iter().find(|(_, input)| input.same(&id)) {
        return Err(Error::File {
            path: path.to_path_buf(),
            message: format!(
                "is the same file as the input {flag}; writing it would destroy that input \
                 (choose another output path)"
            ),
        });
    }
    Ok(target)
}

/// Follows `path` through symlinks to a regular file or a path not yet there.
fn follow_links(path: &Path) -> Result<PathBuf> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p).map_err(io)?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            Ok(m) if m.is_file() => return Ok(p),
            Ok(m) => {
                return Err(Error::File {
                    path: path.to_path_buf(),
                    message: format!(
                        "is {}, not a regular file; vae-cpu only writes regular files \
                         (give a file path)",
                        kind(&m.file_type())
                    ),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(io(e)),
        }
    }
    Err(Error::File {
        path: path.to_path_buf(),
        message: "too many levels of symbolic links".into(),
    })
}

/// "a folder", "a FIFO", ... for messages.
fn kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    if t.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

/// Checks a command's files before it does any work, and remembers its inputs so that no
/// later write replaces them. Each entry is `(flag, path)`; the flag names the file in
/// messages. Inputs that do not exist are left to the reader to report.
pub fn check_command(inputs_in: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<()> {
    let declared: Vec<(String, Identity)> = inputs_in
        .iter()
        .filter(|(_, p)| p.exists())
        .map(|(flag, p)| (format!("{flag} {}", p.display()), Identity::of(p)))
        .collect();
    inputs().extend(declared);
    let mut seen: Vec<(&str, &Path, Identity)> = vec![];
    for &(flag, path) in outputs {
        let target = output_target(path).map_err(|e| named(flag, e))?;
        let id = Identity::of(&target);
        if let Some((other, other_path, _)) = seen.iter().find(|(_, _, s)| s.same(&id)) {
            return Err(Error::Invalid(format!(
                "{flag} {} and {other} {} are the same file; each output needs its own path",
                path.display(),
                other_path.display()
            )));
        }
        seen.push((flag, path, id));
    }
    Ok(())
}

/// Puts the flag in front of a file error's message.
fn named(flag: &str, e: Error) -> Error {
    match e {
        Error::File { path, message } => Error::File {
            path: PathBuf::from(format!("{flag} {}", path.display())),
            message,
        },
        other => other,
    }
}

/// Forgets the declared inputs (tests that run several commands in one process).
pub fn clear_inputs() {
    inputs().clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_followed_and_special_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("real.png");
        std::fs::write(&file, b"x").unwrap();
        #[cfg(unix)]
        {
            let link = dir.path().join("link.png");
            std::os::unix::fs::symlink("real.png", &link).unwrap();
            assert_eq!(output_target(&link).unwrap(), dir.path().join("real.png"));
            let dangling = dir.path().join("dangling.png");
            std::os::unix::fs::symlink("new.png", &dangling).unwrap();
            assert_eq!(
                output_target(&dangling).unwrap(),
                dir.path().join("new.png")
            );
            let err = output_target(Path::new("/dev/null")).unwrap_err();
            assert!(err.to_string().contains("a device"), "{err}");
        }
        let err = output_target(dir.path()).unwrap_err();
        assert!(err.to_string().contains("a folder"), "{err}");
        assert_eq!(output_target(&file).unwrap(), file);
    }

    #[test]
    fn outputs_may_not_share_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        let b = dir.path().join("sub/../a.csv");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let err = check_command(&[], &[("--out", &a), ("--csv", &b)]).unwrap_err();
        assert!(err.to_string().contains("same file"), "{err}");
        check_command(&[], &[("--out", &a), ("--csv", &dir.path().join("b.csv"))]).unwrap();
    }
}
