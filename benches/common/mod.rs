//! What the engine and layer benchmarks share: repeatable inputs and best-of timing.

use ndarray::IxDyn;
use std::time::Instant;
use vae_cpu::Tensor;

/// The best of `reps` timed calls of `f` after an untimed one, in seconds; `before_each`
/// runs (untimed) before every timed call.
pub fn best_seconds(reps: usize, mut before_each: impl FnMut(usize), mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|r| {
            before_each(r);
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// A tensor of `shape` filled with the same pseudo-random values in [-0.5, 0.5) every time.
pub fn filled(shape: &[usize]) -> Tensor {
    let mut state = 12345u32;
    Tensor::from_shape_simple_fn(IxDyn(shape), || {
        state = state.wrapping_mul(1664525).wrapping_add(1013904223);
        (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    })
}
