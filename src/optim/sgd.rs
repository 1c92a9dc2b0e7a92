//! SGD with momentum as PyTorch implements it: g += wd * p; buf = g on the first step,
//! else buf = momentum * buf + (1 - dampening) * g; p -= lr * buf (or, with Nesterov,
//! p -= lr * (g + momentum * buf)).

use super::{for_each_with_grad, update_values, Optimizer, SavedOptimizer};
use crate::nn::Module;
use crate::{Gradients, Tensor};
use ndarray::Zip;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// SGD's settings as checkpoints store them (TOML); the momentum buffers are the tensors
/// `{name}.momentum`.
#[derive(Serialize, Deserialize)]
struct Settings {
    lr: f32,
    momentum: f32,
    dampening: f32,
    weight_decay: f32,
    nesterov: bool,
}

#[derive(Clone, Debug)]
pub struct Sgd {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
    /// Momentum buffers keyed by parameter name.
    pub buffers: BTreeMap<String, Tensor>,
}

impl Sgd {
    pub fn new(lr: f32, momentum: f32) -> Self {
        Sgd {
            lr,
            momentum,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            buffers: BTreeMap::new(),
        }
    }

    pub fn with_weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// The optimizer [`Optimizer::save`] described.
    pub fn restore(settings: &str, tensors: BTreeMap<String, Tensor>) -> Result<Sgd, String> {
        let s: Settings =
            toml::from_str(settings).map_err(|e| format!("bad optimizer settings: {e}"))?;
        let buffers = tensors
            .into_iter()
            .map(|(name, t)| match name.strip_suffix(".momentum") {
                Some(param) => Ok((param.to_string(), t)),
                None => Err(format!("unexpected optimizer tensor {name}")),
            })
            .collect::<Result<_, String>>()?;
        Ok(Sgd {
            lr: s.lr,
            momentum: s.momentum,
            dampening: s.dampening,
            weight_decay: s.weight_decay,
            nesterov: s.nesterov,
            buffers,
        })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, model: &mut dyn Module, grads: &Gradients) {
        let (lr, mom, damp, wd, nesterov) = (
            self.lr,
            self.momentum,
            self.dampening,
            self.weight_decay,
            self.nesterov,
        );
        let buffers = &mut self.buffers;
        for_each_with_grad(model, grads, &mut |name, p, g| {
            if mom == 0.0 {
                let update = |p: &mut f32, &g: &f32| *p -= lr * (g + *p * wd);
                return update_values!(Zip::from(p).and(g), update);
            }
            // The first step sets the buffer to the gradient itself.
            let first = !buffers.contains_key(name);
            if first {
                buffers.insert(name.to_string(), Tensor::zeros(p.raw_dim()));
            }
            let buf = buffers.get_mut(name).expect("inserted above");
            let update = |p: &mut f32, b: &mut f32, &g: &f32| {
                let d = g + *p * wd;
                *b = if first {
                    d
                } else {
                    mom * *b + (1.0 - damp) * d
                };
                *p -= lr * if nesterov { d + mom * *b } else { *b };
            };
            update_values!(Zip::from(p).and(buf).and(g), update);
        });
    }

    fn lr(&self) -> f32 {
        self.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn save(&self) -> SavedOptimizer {
        let settings = Settings {
            lr: self.lr,
            momentum: self.momentum,
            dampening: self.dampening,
            weight_decay: self.weight_decay,
            nesterov: self.nesterov,
        };
        SavedOptimizer {
            kind: "sgd",
            settings: toml::to_string(&settings).expect("sgd settings serialize"),
            tensors: (self.buffers.iter())
                .map(|(name, t)| (format!("{name}.momentum"), t.clone()))
                .collect(),
        }
    }
}
