//! The CelebA data set: annotation files (`celeba`), the image cache (`cache`), building
//! it from a folder (`prepare`), batches for training (`loader`) and procedurally drawn
//! faces in CelebA's layout for demos and tests (`synthetic`), MNIST's IDX files
//! (`idx`), and `--data`'s cache-or-prepare policy (`source`).

pub mod balanced_split;
pub mod cache;
pub mod celeba;
pub mod folder;
pub mod idx;
pub mod loader;
pub mod prepare;
pub mod source;
pub mod synthetic;

pub use cache::{CacheContents, Dataset};
pub use celeba::Split;
