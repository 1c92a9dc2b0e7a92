//! The tape: an append-only list of nodes, each knowing its inputs and holding a boxed
//! backward closure. Nodes are appended in evaluation order, so that order is already
//! topological and the backward pass is a single reverse loop (no recursion).

use super::{Param, Var};
use crate::Tensor;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Maps the gradient of an op's output to gradients of its inputs (see [`Var::record`]).
pub type BackwardFn = Box<dyn FnOnce(&Tensor, &[bool]) -> Vec<Option<Tensor>>>;

struct Node {
    inputs: Vec<Option<usize>>,
    /// `None` for leaves (parameters and inputs we want gradients of).
    backward: Option<BackwardFn>,
}

#[derive(Default)]
struct Inner {
    nodes: Vec<Node>,
    params: HashMap<u64, usize>,
    spent: bool,
}

/// A recording of one forward computation. `Tape::no_grad()` records nothing at all:
/// ops on its values build no nodes and keep no intermediates.
#[derive(Clone)]
pub struct Tape {
    inner: Option<Rc<RefCell<Inner>>>,
}

impl Default for Tape {
    fn default() -> Self {
        Tape::new()
    }
}

impl Tape {
    /// A tape that records operations for a backward pass.
    pub fn new() -> Tape {
        Tape {
            inner: Some(Rc::new(RefCell::new(Inner::default()))),
        }
    }

    /// Inference mode: leaves and parameters become constants, nothing is recorded.
    pub fn no_grad() -> Tape {
        Tape { inner: None }
    }

    pub fn is_recording(&self) -> bool {
        self.inner.is_some()
    }

    pub(crate) fn same_as(&self, other: &Tape) -> bool {
        match (&self.inner, &other.inner) {
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Number of nodes recorded so far.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| i.borrow().nodes.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn push_node(&self, inputs: Vec<Option<usize>>, backward: BackwardFn) -> usize {
        let inner = self.inner.as_ref().expect("push_node on a no-grad tape");
        let mut inner = inner.borrow_mut();
        assert!(
            !inner.spent,
            "this tape was already used for a backward pass"
        );
        inner.nodes.push(Node {
            inputs,
            backward: Some(backward),
        });
        inner.nodes.len() - 1
    }

    fn push_leaf(&self, value: std::sync::Arc<Tensor>) -> Var {
        match &self.inner {
            None => Var::from_parts(value, None),
            Some(inner) => {
                let mut i = inner.borrow_mut();
                assert!(!i.spent, "this tape was already used for a backward pass");
                i.nodes.push(Node {
                    inputs: vec![],
                    backward: None,
                });
                let id = i.nodes.len() - 1;
                Var::from_parts(value, Some((self.clone(), id)))
            }
        }
    }

    /// A value we want the gradient of (e.g. an input in a gradient check).
    pub fn leaf(&self, value: Tensor) -> Var {
        self.push_leaf(std::sync::Arc::new(value))
    }

    /// A parameter's value on this tape. Using the same parameter twice returns the same
    /// node, so its gradient collects every use.
    pub fn param(&self, p: &Param) -> Var {
        let Some(inner) = &self.inner else {
            return Var::from_parts(p.shared(), None);
        };
        let existing = inner.borrow().params.get(&p.id()).copied();
        match existing {
            Some(id) => Var::from_parts(p.shared(), Some((self.clone(), id))),
            None => {
                let v = self.push_leaf(p.shared());
                let id = v.node().unwrap().1;
                inner.borrow_mut().params.insert(p.id(), id);
                v
            }
        }
    }

    /// Backpropagates from a scalar loss (seed gradient 1).
    pub fn backward(&self, loss: &Var) -> Gradients {
        assert_eq!(
            loss.value().len(),
            1,
            "backward() needs a scalar loss; use backward_with for shape {:?}",
            loss.shape()
        );
        self.backward_with(loss, Tensor::ones(loss.value().raw_dim()))
    }

    /// Backpropagates from `out` with an explicit upstream gradient `seed` of its shape.
    /// Consumes the recorded closures: a tape supports one backward pass.
    pub fn backward_with(&self, out: &Var, seed: Tensor) -> Gradients {
        assert_eq!(
            seed.shape(),
            out.shape(),
            "seed gradient shape differs from the output's"
        );
        let inner = self.inner.as_ref().expect("backward on a no-grad tape");
        let (tape, out_id) = out
            .node()
            .expect("backward from a value that is not on the tape");
        assert!(
            tape.same_as(self),
            "backward from a value recorded on another tape"
        );
        let (mut nodes, params) = {
            let mut i = inner.borrow_mut();
            assert!(!i.spent, "this tape was already used for a backward pass");
            i.spent = true;
            (std::mem::take(&mut i.nodes), i.params.clone())
        };
        let mut grads: Vec<Option<Tensor>> = (0..nodes.len()).map(|_| None).collect();
        grads[*out_id] = Some(seed);
        for id in (0..=*out_id).rev() {
            let Some(backward) = nodes[id].backward.take() else {
                continue;
            };
            let Some(g) = grads[id].take() else { continue };
            let inputs = std::mem::take(&mut nodes[id].inputs);
            let wants: Vec<bool> = inputs.iter().map(Option::is_some).collect();
            let input_grads = backward(&g, &wants);
            assert_eq!(
                input_grads.len(),
                inputs.len(),
                "backward returned the wrong number of gradients"
            );
            for (input, ig) in inputs.into_iter().zip(input_grads) {
                if let (Some(input), Some(ig)) = (input, ig) {
                    match &mut grads[input] {
                        Some(acc) => *acc += &ig,
                        slot => *slot = Some(ig),
                    }
                }
            }
        }
        Gradients { grads, params }
    }
}

/// The gradients of the leaves of a tape after a backward pass.
pub struct Gradients {
    grads: Vec<Option<Tensor>>,
    params: HashMap<u64, usize>,
}

impl Gradients {
    /// The gradient of a leaf `Var` (None if no path led to it).
    pub fn get(&self, v: &Var) -> Option<&Tensor> {
        let (_, id) = v.node()?;
        self.grads.get(*id)?.as_ref()
    }

    /// The gradient of a parameter used on the tape.
    pub fn param(&self, p: &Param) -> Option<&Tensor> {
        let id = self.params.get(&p.id())?;
        self.grads[*id].as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use ndarray::IxDyn;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap()
    }

    #[test]
    fn no_grad_records_nothing() {
        let tape = Tape::no_grad();
        let p = Param::new(t(&[1.0, 2.0]));
        let x = tape.leaf(t(&[3.0, 4.0]));
        let y = ops::sum(&ops::mul(&tape.param(&p), &x));
        assert_eq!(y.item(), 11.0);
        assert!(!y.is_tracked());
        assert_eq!(tape.len(), 0);
    }

    #[test]
    fn parameter_used_twice_gets_both_contributions() {
        let tape = Tape::new();
        let p = Param::new(t(&[1.0, 2.0]));
        let x = Var::constant(t(&[3.0, 4.0]));
        // loss = sum(p*x) + sum(p*p): d/dp = x + 2p
        let a = ops::sum(&ops::mul(&tape.param(&p), &x));
        let b = ops::sum(&ops::mul(&tape.param(&p), &tape.param(&p)));
        let g = tape.backward(&ops::add(&a, &b));
        assert_eq!(g.param(&p).unwrap(), &t(&[5.0, 8.0]));
    }

    #[test]
    fn constants_get_no_gradient_and_are_not_recorded() {
        let tape = Tape::new();
        let x = tape.leaf(t(&[1.0]));
        let c = Var::constant(t(&[2.0]));
        let before = tape.len();
        let cc = ops::scale(&c, 3.0);
        assert_eq!(
            tape.len(),
            before,
            "an op on constants only must not record a node"
        );
        let g = tape.backward(&ops::sum(&ops::mul(&x, &cc)));
        assert_eq!(g.get(&x).unwrap(), &t(&[6.0]));
        assert!(g.get(&c).is_none());
    }

    #[test]
    fn deep_chains_backpropagate_without_recursion() {
        let tape = Tape::new();
        let x = tape.leaf(t(&[1.0]));
        let mut y = x.clone();
        for _ in 0..200_000 {
            y = ops::scale(&y, 1.0);
        }
        let g = tape.backward(&ops::sum(&y));
        assert_eq!(g.get(&x).unwrap(), &t(&[1.0]));
    }

    #[test]
    #[should_panic(expected = "already used")]
    fn a_tape_supports_one_backward_pass() {
        let tape = Tape::new();
        let x = tape.leaf(t(&[1.0]));
        let y = ops::sum(&x);
        tape.backward(&y);
        tape.backward(&y);
    }
}
