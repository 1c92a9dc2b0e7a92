use super::tape::{BackwardFn, Tape};
use crate::Tensor;
use std::sync::Arc;

/// A value in a computation: a tensor, plus (when it was recorded on a tape) the index of
/// its node. Cloning a `Var` is cheap (the tensor is shared).
#[derive(Clone)]
pub struct Var {
    value: Arc<Tensor>,
    node: Option<(Tape, usize)>,
}

impl Var {
    /// A value that no gradient flows into (data, targets, noise).
    pub fn constant(value: Tensor) -> Var {
        Var {
            value: Arc::new(value),
            node: None,
        }
    }

    pub(crate) fn from_parts(value: Arc<Tensor>, node: Option<(Tape, usize)>) -> Var {
        Var { value, node }
    }

    pub fn value(&self) -> &Tensor {
        &self.value
    }

    /// The shared tensor, for backward closures that need an input's value.
    pub fn shared(&self) -> Arc<Tensor> {
        Arc::clone(&self.value)
    }

    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// The single number of a one-element tensor (a loss).
    pub fn item(&self) -> f32 {
        assert_eq!(
            self.value.len(),
            1,
            "item() on a tensor of shape {:?}",
            self.shape()
        );
        *self.value.iter().next().unwrap()
    }

    /// True when gradients flow into this value.
    pub fn is_tracked(&self) -> bool {
        self.node.is_some()
    }

    pub(crate) fn node(&self) -> Option<&(Tape, usize)> {
        self.node.as_ref()
    }

    /// Records the result of an op. `backward` receives the gradient of the output and,
    /// for each input, whether that input wants a gradient; it returns one optional
    /// gradient per input, each with that input's shape. When no input is tracked the
    /// result is a constant and `backward` is dropped unused.
    pub fn record(
        inputs: &[&Var],
        value: impl Into<Arc<Tensor>>,
        backward: impl FnOnce(&Tensor, &[bool]) -> Vec<Option<Tensor>> + 'static,
    ) -> Var {
        let value = value.into();
        let tape = inputs
            .iter()
            .find_map(|v| v.node.as_ref().map(|(t, _)| t.clone()));
        match tape {
            None => Var { value, node: None },
            Some(tape) => {
                let ids: Vec<Option<usize>> = inputs
                    .iter()
                    .map(|v| {
                        v.node.as_ref().map(|(t, id)| {
                            assert!(
                                t.same_as(&tape),
                                "an op mixes values from two different tapes"
                            );
                            *id
                        })
                    })
                    .collect();
                let boxed: BackwardFn = Box::new(backward);
                let id = tape.push_node(ids, boxed);
                Var {
                    value,
                    node: Some((tape, id)),
                }
            }
        }
    }
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Var")
            .field("shape", &self.shape())
            .field("tracked", &self.is_tracked())
            .finish()
    }
}
