//! Adam (Kingma & Ba, 2015) as PyTorch implements it, with L2 weight decay added to the
//! gradient: g += wd * p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//! p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).

use super::{for_each_with_grad, update_values, Optimizer, SavedOptimizer};
use crate::nn::Module;
use crate::{Gradients, Tensor};
use ndarray::Zip;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Adam's settings and per-parameter step counts, as checkpoints store them (TOML); the
/// moments are the tensors `{name}.m` and `{name}.v`.
#[derive(Serialize, Deserialize)]
struct Settings {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    steps: BTreeMap<String, u64>,
}

/// Per-parameter moments and step count.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamState {
    pub step: u64,
    pub m: Tensor,
    pub v: Tensor,
}

#[derive(Clone, Debug)]
pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// Keyed by parameter name, so checkpoints can store and restore it.
    pub state: BTreeMap<String, AdamState>,
}

impl Adam {
    /// PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn new(lr: f32) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            state: BTreeMap::new(),
        }
    }

    pub fn with_weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// The optimizer [`Optimizer::save`] described.
    pub fn restore(settings: &str, mut tensors: BTreeMap<String, Tensor>) -> Result<Adam, String> {
        let s: Settings =
            toml::from_str(settings).map_err(|e| format!("bad optimizer settings: {e}"))?;
        let mut adam = Adam::new(s.lr).with_weight_decay(s.weight_decay);
        (adam.beta1, adam.beta2, adam.eps) = (s.beta1, s.beta2, s.eps);
        for (name, step) in s.steps {
            let m = tensors.remove(&format!("{name}.m"));
            let v = tensors.remove(&format!("{name}.v"));
            let (Some(m), Some(v)) = (m, v) else {
                return Err(format!("optimizer moments of {name} are missing"));
            };
            adam.state.insert(name, AdamState { step, m, v });
        }
        Ok(adam)
    }
}

impl Optimizer for Adam {
    fn step(&mut self, model: &mut dyn Module, grads: &Gradients) {
        let (lr, b1, b2, eps, wd) = (self.lr, self.beta1, self.beta2, self.eps, self.weight_decay);
        let state = &mut self.state;
        for_each_with_grad(model, grads, &mut |name, p, g| {
            let s = state.entry(name.to_string()).or_insert_with(|| AdamState {
                step: 0,
                m: Tensor::zeros(p.raw_dim()),
                v: Tensor::zeros(p.raw_dim()),
            });
            s.step += 1;
            let bc1 = 1.0 - b1.powi(s.step as i32);
            let bc2 = 1.0 - b2.powi(s.step as i32);
            let update = |p: &mut f32, m: &mut f32, v: &mut f32, &g: &f32| {
                let g = g + wd * *p;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *p -= lr * (*m / bc1) / ((*v / bc2).sqrt() + eps);
            };
            update_values!(Zip::from(p).and(&mut s.m).and(&mut s.v).and(g), update);
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
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            steps: self
                .state
                .iter()
                .map(|(k, s)| (k.clone(), s.step))
                .collect(),
        };
        let mut tensors = BTreeMap::new();
        for (name, s) in &self.state {
            tensors.insert(format!("{name}.m"), s.m.clone());
            tensors.insert(format!("{name}.v"), s.v.clone());
        }
        SavedOptimizer {
            kind: "adam",
            settings: toml::to_string(&settings).expect("adam settings serialize"),
            tensors,
        }
    }
}
