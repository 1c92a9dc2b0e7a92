//! Reductions over f32 slices that vectorize: 16 independent f32 accumulators (the compiler
//! maps them onto SIMD lanes; a single running sum would serialize on the add latency),
//! combined in f64 at the end. Callers reduce one image plane at a time (at most a few
//! thousand values) and add the planes in f64, which keeps the f32 rounding small. Each is
//! compiled for the widest vectors this CPU has (`simd_versions!`; no fused multiply-adds,
//! so the same bits on every machine).

use super::simd::simd_versions;

pub(crate) const LANES: usize = 16;

/// Sum over the pairs of `a` and `b` of `f(a, b)`.
#[inline(always)]
fn reduce2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (a, b) in ac.zip(bc) {
        for i in 0..LANES {
            acc[i] += f(a[i], b[i]);
        }
    }
    let tail: f64 = ar.iter().zip(br).map(|(&a, &b)| f(a, b) as f64).sum();
    combine(&acc, tail)
}

/// The sum of lane accumulators `acc` and of a `tail` summed in f64, in the order every
/// reduction here adds them (so that a fused loop accumulating like [`reduce2`] gives the
/// same bits).
#[inline]
pub(crate) fn combine(acc: &[f32; LANES], tail: f64) -> f64 {
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail
}

simd_versions! {
    /// Σ x.
    pub fn sum(x: &[f32]) -> f64 = sum_body;
}

#[inline(always)]
fn sum_body<const FMA: bool>(x: &[f32]) -> f64 {
    reduce2(x, x, |a, _| a)
}

simd_versions! {
    /// Σ (x - mean)², for a variance.
    pub fn sum_sq_dev(x: &[f32], mean: f32) -> f64 = sum_sq_dev_body;
}

#[inline(always)]
fn sum_sq_dev_body<const FMA: bool>(x: &[f32], mean: f32) -> f64 {
    reduce2(x, x, |a, _| (a - mean) * (a - mean))
}

simd_versions! {
    /// Σ a·b.
    pub fn dot(a: &[f32], b: &[f32]) -> f64 = dot_body;
}

#[inline(always)]
fn dot_body<const FMA: bool>(a: &[f32], b: &[f32]) -> f64 {
    reduce2(a, b, |a, b| a * b)
}

simd_versions! {
    /// Σ over x <= 0 of x·g (the PReLU slope gradient).
    pub fn dot_nonpositive(x: &[f32], g: &[f32]) -> f64 = dot_nonpositive_body;
}

#[inline(always)]
fn dot_nonpositive_body<const FMA: bool>(x: &[f32], g: &[f32]) -> f64 {
    reduce2(x, g, |x, g| if x <= 0.0 { x * g } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, scale: f64) -> bool {
        (a - b).abs() <= 1e-5 * scale.max(1.0)
    }

    proptest! {
        #[test]
        fn reductions_match_naive_f64(
            pairs in prop::collection::vec((-10.0f32..10.0, -10.0f32..10.0), 0..300),
            mean in -5.0f32..5.0,
        ) {
            let (a, b): (Vec<f32>, Vec<f32>) = pairs.into_iter().unzip();
            let n = a.len() as f64;
            let s: f64 = a.iter().map(|&v| v as f64).sum();
            prop_assert!(close(sum(&a), s, 10.0 * n));
            let d: f64 = a.iter().map(|&v| (v as f64 - mean as f64).powi(2)).sum();
            prop_assert!(close(sum_sq_dev(&a, mean), d, 225.0 * n));
            let p: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
            prop_assert!(close(dot(&a, &b), p, 100.0 * n));
            let q: f64 = a.iter().zip(&b).filter(|(x, _)| **x <= 0.0).map(|(&x, &y)| x as f64 * y as f64).sum();
            prop_assert!(close(dot_nonpositive(&a, &b), q, 100.0 * n));
        }
    }
}
