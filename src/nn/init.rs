//! PyTorch's default initializations. `kaiming_uniform_(a = sqrt(5))`, which PyTorch uses
//! for Linear and Conv weights, reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)):
//! gain = sqrt(2 / (1 + a^2)) = sqrt(1/3), bound = gain * sqrt(3 / fan_in). Biases use the
//! same bound.

use crate::Tensor;
use ndarray::IxDyn;
use rand::Rng;

/// Uniform in `[-1/sqrt(fan_in), 1/sqrt(fan_in))`.
pub fn fan_in_uniform(shape: &[usize], fan_in: usize, rng: &mut impl Rng) -> Tensor {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    Tensor::from_shape_simple_fn(IxDyn(shape), || rng.gen_range(-bound..bound))
}
