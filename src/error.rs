//! The library's error type. The CLI wraps it with `anyhow` for context.

use std::path::PathBuf;

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
