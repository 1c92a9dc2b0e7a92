//! The library's error type. The CLI wraps it with `anyhow` for context.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A bad value given on the command line or to a library call (the message says which).
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("training stopped: {0}")]
    Training(String),
    #[error("could not start the thread pool: {0}")]
    ThreadPool(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reads `path` and parses its bytes with `parse`; both failures name the file.
pub fn parse_file<T>(
    path: &Path,
    parse: impl FnOnce(&[u8]) -> std::result::Result<T, String>,
) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes).map_err(|message| Error::File {
        path: path.to_path_buf(),
        message,
    })
}
