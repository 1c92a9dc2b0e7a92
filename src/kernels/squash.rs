//! The logistic sigmoid and tanh over slices, in vector registers. libm's `expf` and
//! `tanhf` are scalar calls: a decoder's Tanh or Sigmoid output layer spent about 1% of a
//! training step in them. Here `exp` is computed in the lanes by range reduction and a
//! polynomial (Cephes `expf`): `x = n ln2 + r` with `|r| <= ln2 / 2` (`ln2` split in two
//! for an exact product, Cody and Waite), `e^r = 1 + r + r^2 P(r)` with `P` of degree 5,
//! and `2^n` built in the exponent bits; relative error about 1e-7.

use super::simd::{mul_add, simd_versions};

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2 = LN2_HI + LN2_LO`, `LN2_HI` with few enough bits that `n * LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes' coefficients of `P`, highest degree first.
const P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];
/// Arguments are clamped to `[MIN_ARG, MAX_ARG]`, where `2^n` is a normal number.
const MIN_ARG: f32 = -87.3;
const MAX_ARG: f32 = 88.3;
/// Adding and subtracting `1.5 * 2^23` rounds to the nearest integer in plain arithmetic.
const ROUND: f32 = 12_582_912.0;

/// `e^x` for `x` in `[MIN_ARG, MAX_ARG]` (clamped there, NaN stays NaN).
#[inline(always)]
fn exp<const FMA: bool>(x: f32) -> f32 {
    let x = x.clamp(MIN_ARG, MAX_ARG);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = mul_add::<FMA>(-n, LN2_LO, mul_add::<FMA>(-n, LN2_HI, x));
    let p = P[1..].iter().fold(P[0], |p, &c| mul_add::<FMA>(p, r, c));
    let e_r = mul_add::<FMA>(r * r, p, r) + 1.0;
    // n is in -126..=127 here (NaN converts to 0 and stays NaN through r).
    e_r * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

simd_versions! {
    /// `y[i] = 1 / (1 + e^-x[i])`.
    pub fn sigmoid(x: &[f32], y: &mut [f32]) = sigmoid_body;
}

#[inline(always)]
fn sigmoid_body<const FMA: bool>(x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "sigmoid: slices of different lengths");
    for (y, &x) in y.iter_mut().zip(x) {
        *y = 1.0 / (1.0 + exp::<FMA>(-x));
    }
}

simd_versions! {
    /// `y[i] = tanh x[i] = 1 - 2 / (e^(2 x[i]) + 1)` (absolute error below 2e-7).
    pub fn tanh(x: &[f32], y: &mut [f32]) = tanh_body;
}

#[inline(always)]
fn tanh_body<const FMA: bool>(x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "tanh: slices of different lengths");
    for (y, &x) in y.iter_mut().zip(x) {
        *y = 1.0 - 2.0 / (exp::<FMA>(2.0 * x) + 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Arguments across the whole range, the saturated tails, the clamp's edges and zero.
    fn arguments() -> impl Strategy<Value = Vec<f32>> {
        proptest::collection::vec(
            prop_oneof![
                -1.0f32..1.0,
                -20.0f32..20.0,
                -200.0f32..200.0,
                Just(0.0),
                Just(-0.0)
            ],
            1..80,
        )
    }

    fn check(
        got: &[f32],
        x: &[f32],
        want: impl Fn(f64) -> f64,
        rel: f64,
        abs: f64,
    ) -> Result<(), TestCaseError> {
        for (&g, &x) in got.iter().zip(x) {
            let w = want(x as f64);
            prop_assert!(
                (g as f64 - w).abs() <= rel * w.abs() + abs,
                "at {}: {} vs {}",
                x,
                g,
                w
            );
        }
        Ok(())
    }

    proptest! {
        /// Both, in the dispatched version (AVX-512 or AVX2 where the CPU has them) and
        /// the baseline one, are within a few rounding errors of the f64 functions.
        #[test]
        fn sigmoid_and_tanh_match_f64(x in arguments()) {
            let mut y = vec![f32::NAN; x.len()];
            for wide in [true, false] {
                if wide { sigmoid(&x, &mut y) } else { sigmoid_body::<false>(&x, &mut y) }
                check(&y, &x, |v| 1.0 / (1.0 + (-v).exp()), 1e-6, 1e-37)?;
                if wide { tanh(&x, &mut y) } else { tanh_body::<false>(&x, &mut y) }
                check(&y, &x, f64::tanh, 0.0, 2e-7)?;
            }
        }
    }

    #[test]
    fn infinities_saturate_and_nan_stays_nan() {
        let x = [
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MAX,
            f32::MIN,
        ];
        let mut y = [0.0f32; 5];
        sigmoid(&x, &mut y);
        assert!(y[0] == 1.0 && y[3] == 1.0, "{y:?}");
        assert!(
            (0.0..1e-37).contains(&y[1]) && (0.0..1e-37).contains(&y[4]),
            "{y:?}"
        );
        assert!(y[2].is_nan());
        tanh(&x, &mut y);
        assert_eq!([y[0], y[1], y[3], y[4]], [1.0, -1.0, 1.0, -1.0]);
        assert!(y[2].is_nan());
    }
}
