//! SGD with momentum as PyTorch implements it: g += wd * p; buf = g on the first step,
//! else buf = momentum * buf + (1 - dampening) * g; p -= lr * buf (or, with Nesterov,
//! p -= lr * (g + momentum * buf)).

use super::{for_each_with_grad, Optimizer};
use crate::nn::Module;
use crate::{Gradients, Tensor};
use ndarray::Zip;
use std::collections::BTreeMap;

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
            let mut d = g + &(&*p * wd);
            if mom != 0.0 {
                match buffers.get_mut(name) {
                    None => {
                        buffers.insert(name.to_string(), d.clone());
                    }
                    Some(buf) => Zip::from(&mut *buf)
                        .and(&d)
                        .for_each(|b, &d| *b = mom * *b + (1.0 - damp) * d),
                }
                let buf = &buffers[name];
                if nesterov {
                    d.zip_mut_with(buf, |d, &b| *d += mom * b);
                } else {
                    d.assign(buf);
                }
            }
            p.zip_mut_with(&d, |p, &d| *p -= lr * d);
        });
    }

    fn lr(&self) -> f32 {
        self.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }
}
