//! Biases that feed a normalization layer. Batch norm (and instance norm) subtract the
//! mean of each channel, so a constant added to a channel just before them changes
//! nothing: the loss's gradient with respect to such a bias is exactly zero (Ioffe &
//! Szegedy 2015, section 3.2, which drop the bias for this reason).
//!
//! In floating point the computed gradient is rounding noise instead, and Adam divides
//! it by its own running magnitude, so the bias takes steps of about the learning rate in
//! random directions; the running mean of the normalization follows it with a lag, which
//! moves eval-mode outputs, and the noise differs with the summation order (thread count,
//! number of data-parallel ranks). The trainer applies the exact zero instead.

use super::Vae;
use crate::layers::LayerSpec;
use crate::nn::{Module, Slot};
use crate::Gradients;

impl Vae {
    /// The names of the biases whose next layer is a batch or instance norm.
    pub fn biases_before_norm(&self) -> Vec<String> {
        let parts = [
            ("encoder", &self.plan.encoder),
            ("decoder", &self.plan.decoder),
        ];
        let mut names = vec![];
        for (part, layers) in parts {
            for (i, pair) in layers.windows(2).enumerate() {
                let biased = match &pair[0].spec {
                    LayerSpec::Conv2d(s) => s.bias,
                    LayerSpec::ConvTranspose2d(s) => s.bias,
                    LayerSpec::Linear(s) => s.bias,
                    _ => false,
                };
                let normalizes = matches!(
                    pair[1].spec,
                    LayerSpec::BatchNorm(_) | LayerSpec::InstanceNorm(_)
                );
                if biased && normalizes {
                    names.push(format!("{part}.{i}.bias"));
                }
            }
        }
        names
    }

    /// Sets the gradients of [`Vae::biases_before_norm`] to their exact value, zero.
    pub fn zero_biases_before_norm(&mut self, grads: &mut Gradients) {
        let names = self.biases_before_norm();
        self.visit("", &mut |name, slot| {
            if let Slot::Param(p) = slot {
                if names.iter().any(|n| n == name) {
                    if let Some(g) = grads.param_mut(p) {
                        g.fill(0.0);
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::model::Vae;
    use crate::{Tape, Var};
    use rand::SeedableRng;

    /// A conv feeding batch norm, one feeding a PReLU, a linear feeding batch norm.
    fn model() -> Vae {
        let config = Config::parse(
            r#"
[model]
name = "t"
height = 8
width = 8
latent = 3
[[model.encoder]]
layers = [
  { type = "conv2d", filters = 4, kernel = 3, stride = 2, padding = "same" },
  { type = "batch_norm" },
  { type = "conv2d", filters = 4, kernel = 3, stride = 2, padding = "same" },
  { type = "prelu" },
  { type = "flatten" },
]
[[model.decoder]]
layers = [
  { type = "linear", units = 48 },
  { type = "batch_norm" },
  { type = "reshape", shape = [3, 4, 4] },
  { type = "conv_transpose2d", filters = 3, kernel = 4, stride = 2, padding = 1, bias = false },
  { type = "batch_norm" },
]
"#,
        )
        .unwrap();
        Vae::new(&config, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1)).unwrap()
    }

    #[test]
    fn names_the_biases_whose_next_layer_normalizes() {
        assert_eq!(
            model().biases_before_norm(),
            ["encoder.0.bias", "decoder.0.bias"]
        );
    }

    /// The computed gradient of such a bias is rounding noise around zero (what the
    /// zeroing replaces); the other biases' are not, and keep their value.
    #[test]
    fn zeroes_only_those_gradients() {
        let mut m = model();
        let x = crate::Tensor::from_shape_fn(vec![5, 3, 8, 8], |i| {
            ((i[0] * 7 + i[1] * 3 + i[2] * 5 + i[3]) % 11) as f32 / 11.0
        });
        let tape = Tape::new();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let out = m.forward(
            &tape,
            &Var::constant(x.clone()),
            crate::nn::Mode::Train,
            &mut rng,
        );
        let loss = m.loss(&out, &x);
        let mut grads = tape.backward(&loss.total);
        let largest = |m: &mut Vae, grads: &crate::Gradients, name: &str| {
            let mut v = 0.0f32;
            crate::nn::Module::visit(m, "", &mut |n, slot| {
                if let (true, crate::nn::Slot::Param(p)) = (n == name, slot) {
                    v = grads
                        .param(p)
                        .unwrap()
                        .iter()
                        .fold(0.0, |a, g| a.max(g.abs()));
                }
            });
            v
        };
        let other = largest(&mut m, &grads, "encoder.2.bias");
        assert!(largest(&mut m, &grads, "encoder.0.bias") < 1e-3 * other);
        m.zero_biases_before_norm(&mut grads);
        assert_eq!(largest(&mut m, &grads, "encoder.0.bias"), 0.0);
        assert_eq!(largest(&mut m, &grads, "decoder.0.bias"), 0.0);
        assert_eq!(largest(&mut m, &grads, "encoder.2.bias"), other);
    }
}
