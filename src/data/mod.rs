//! The CelebA data set: annotation files (`celeba`), and later preparation and loading.

pub mod celeba;
