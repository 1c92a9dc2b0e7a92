//! The attribute classifier: layers from the image to flat features, then one linear head
//! with a logit per attribute (multi-label: each attribute is its own yes/no, trained with
//! a binary cross-entropy on its logit).

use crate::config::classifier::{ClassifierConfig, ClassifierPlan};
use crate::layers::{self, Layer};
use crate::nn::{join, Linear, Mode, Module, Slot};
use crate::{ops, Result, Tape, Tensor, Var};
use rand::{Rng, RngCore};

pub struct Classifier {
    /// Its config, `model.attributes` naming every predicted attribute.
    pub config: ClassifierConfig,
    pub plan: ClassifierPlan,
    pub layers: Vec<Box<dyn Layer>>,
    pub head: Linear,
}

impl Classifier {
    /// Validates `config` (whose `model.attributes` must name at least one attribute) and
    /// initializes every layer from `rng`.
    pub fn new(config: &ClassifierConfig, rng: &mut impl Rng) -> Result<Classifier> {
        let plan = config.plan()?;
        let attributes = config.model.attributes.len();
        if attributes == 0 {
            return Err(crate::Error::Config(
                "model.attributes is empty: the classifier needs attributes to predict".into(),
            ));
        }
        let layers = plan
            .layers
            .iter()
            .map(|l| l.spec.spec().build(&l.input, rng as &mut dyn RngCore))
            .collect();
        let head = Linear::new(plan.features, attributes, true, rng);
        Ok(Classifier {
            config: config.clone(),
            plan,
            layers,
            head,
        })
    }

    pub fn attributes(&self) -> &[String] {
        &self.config.model.attributes
    }

    /// `[N, C, H, W]` -> the penultimate features `[N, F]`.
    pub fn features(&mut self, tape: &Tape, x: &Var, mode: Mode) -> Var {
        layers::forward_all(&mut self.layers, tape, x, mode)
    }

    /// `[N, C, H, W]` -> one logit per attribute, `[N, A]`, and the features `[N, F]`.
    pub fn forward(&mut self, tape: &Tape, x: &Var, mode: Mode) -> (Var, Var) {
        let h = self.features(tape, x, mode);
        let logits = tape.span("linear", || self.head.forward(tape, &h));
        (logits, h)
    }

    /// The mean binary cross-entropy over the batch and the attributes; `target` holds 1
    /// (has the attribute) or 0, `weight` (same shape) each element's class weight.
    pub fn loss(logits: &Var, target: &Tensor, weight: Option<&Tensor>) -> Var {
        match weight {
            Some(w) => ops::weighted_bce_with_logits(logits, target, w, ops::Reduction::Mean),
            None => ops::bce_with_logits(logits, target, ops::Reduction::Mean),
        }
    }
}

impl Module for Classifier {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        for (i, l) in self.layers.iter_mut().enumerate() {
            l.visit(&join(prefix, &format!("layers.{i}")), f);
        }
        self.head.visit(&join(prefix, "head"), f);
    }
}
