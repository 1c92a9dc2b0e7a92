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

/// Points from `a` to `b` (same length), `steps` of them (at least 2) including both
/// ends, concatenated: on the straight line, or with `spherical` on the great circle
/// (slerp, Shoemake 1985): `sin((1-t)θ)/sin θ · a + sin(tθ)/sin θ · b` with
/// `cos θ = <a,b> / (|a||b|)`.
pub fn path(a: &[f32], b: &[f32], steps: usize, spherical: bool) -> Vec<f32> {
    let steps = steps.max(2);
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let cos = (dot / (norm(a) * norm(b)).max(1e-12)).clamp(-1.0, 1.0);
    let theta = cos.acos();
    let mut out = Vec::with_capacity(steps * a.len());
    for s in 0..steps {
        let t = s as f64 / (steps - 1) as f64;
        // Nearly parallel vectors: slerp tends to lerp.
        let (wa, wb) = if spherical && theta.sin().abs() > 1e-6 {
            (
                ((1.0 - t) * theta).sin() / theta.sin(),
                (t * theta).sin() / theta.sin(),
            )
        } else {
            (1.0 - t, t)
        };
        out.extend(a.iter().zip(b).map(|(&x, &y)| match s {
            0 => x,
            _ if s == steps - 1 => y,
            _ => (wa * x as f64 + wb * y as f64) as f32,
        }));
    }
    out
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
