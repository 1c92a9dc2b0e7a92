//! Training runs: the loop (`trainer`), its folder layout (`run_dir`), the metrics file
//! (`metrics`), evaluation (`evaluate`), hyperparameter grids (`sweep`) and the
//! training-step benchmark (`bench`); `classifier` trains the attribute classifier with
//! the same machinery.

pub mod bench;
mod best;
pub mod classifier;
pub mod data_parallel;
pub mod evaluate;
pub mod inference_bench;
pub mod memory;
pub mod metrics;
mod pictures;
mod resume;
pub mod run_dir;
pub mod run_owner;
mod seeds;
pub mod ssim;
pub mod sweep;
pub mod sweep_report;
pub mod trainer;

pub use evaluate::{evaluate, EvalReport};
pub use run_dir::{Position, RunDir, RunRecord};
pub use trainer::{Outcome, Progress, TrainOptions, Trainer};
