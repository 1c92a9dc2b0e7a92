//! Every random choice of training is a pure function of the config's seed and the run's
//! position, so a resumed run reproduces the uninterrupted one exactly: each purpose keys
//! its own ChaCha8 generator with `seed ^ SALT`, and its stream is the epoch or the step.

use crate::data::loader::SHUFFLE_STREAM_SALT;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// The reparameterization noise (stream = step).
const NOISE_SALT: u64 = 0x4e4f_4953_455f_5a31;
/// The fixed z of the sample grids.
const FIXED_Z_SALT: u64 = 0x4649_5845_445f_5a31;
/// The validation pass's noise.
pub const VAL_SALT: u64 = 0x5641_4c5f_5a5f_3031;

/// The generator of the reparameterization noise of training step `step`.
pub fn noise(seed: u64, step: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ NOISE_SALT);
    rng.set_stream(step);
    rng
}

/// `count` standard-normal values, the same for every epoch of a run.
pub fn fixed_z(seed: u64, count: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ FIXED_Z_SALT);
    (0..count).map(|_| rng.sample(StandardNormal)).collect()
}

/// How the streams are keyed, written into checkpoints for a reader of the file.
pub fn describe(seed: u64, epoch: usize, step: u64) -> String {
    format!(
        "ChaCha8: shuffle and flips use key seed^{SHUFFLE_STREAM_SALT:#x} with stream = epoch; \
         reparameterization noise uses key seed^{NOISE_SALT:#x} with stream = step; \
         seed {seed}, epoch {epoch}, step {step}"
    )
}
