//! Latents drawn from the prior N(0, I), the same for a seed on every build and machine
//! (ChaCha8 is portable), so the engine and the edge binary decode the same faces.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// `n` values z ~ N(0, T^2), row-major, from `seed`.
pub fn normal_values(n: usize, seed: u64, temperature: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| temperature * rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// `n` latent vectors `z ~ N(0, temperature^2 I)` as an `[n, latent]` tensor (the values
/// of [`normal_values`]).
#[cfg(feature = "engine")]
pub fn samples(n: usize, latent: usize, seed: u64, temperature: f32) -> crate::Tensor {
    let values = normal_values(n * latent, seed, temperature);
    crate::Tensor::from_shape_vec(vec![n, latent], values).expect("n * latent values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_repeat_and_differ() {
        assert_eq!(normal_values(50, 3, 1.0), normal_values(50, 3, 1.0));
        assert_ne!(normal_values(50, 3, 1.0), normal_values(50, 4, 1.0));
        let v = normal_values(20_000, 1, 1.0);
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / v.len() as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
