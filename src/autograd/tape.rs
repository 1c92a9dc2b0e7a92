//! The tape: an append-only list of nodes, each knowing its inputs and holding a boxed
//! backward closure. Nodes are appended in evaluation order, so that order is already
//! topological and the backward pass is a single reverse loop (no recursion).

use super::profile::{Profile, Recorder};
use super::{Param, Var};
use crate::Tensor;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

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
    /// Set on a profiling tape ([`Tape::profiled`]).
    recorder: Option<Recorder>,
}

impl Inner {
    fn push(&mut self, node: Node) -> usize {
        assert!(
            !self.spent,
            "this tape was already used for a backward pass"
        );
        if let Some(r) = &mut self.recorder {
            r.node_labels.push(r.current);
        }
        self.nodes.push(node);
        self.nodes.len() - 1
    }
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

    /// A recording tape that also times each part of the computation: run layers inside
    /// [`Tape::span`], then read [`Tape::profile`] after the backward pass.
    pub fn profiled() -> Tape {
        let inner = Inner {
            recorder: Some(Recorder::default()),
            ..Inner::default()
        };
        Tape {
            inner: Some(Rc::new(RefCell::new(inner))),
        }
    }

    /// Runs `f` (a layer's forward) under `label`: on a profiling tape its time and the
    /// backward time of the nodes it records count for `label`; otherwise it just runs `f`.
    pub fn span<T>(&self, label: &'static str, f: impl FnOnce() -> T) -> T {
        let Some(inner) = self
            .inner
            .as_ref()
            .filter(|i| i.borrow().recorder.is_some())
        else {
            return f();
        };
        let outer = {
            let mut i = inner.borrow_mut();
            let r = i.recorder.as_mut().expect("checked above");
            std::mem::replace(&mut r.current, label)
        };
        let start = Instant::now();
        let out = f();
        let elapsed = start.elapsed();
        let mut i = inner.borrow_mut();
        let r = i.recorder.as_mut().expect("checked above");
        r.current = outer;
        r.profile.record(label, elapsed);
        out
    }

    /// The time per label so far (forward spans, and backward once it has run); `None` on
    /// a tape that does not profile.
    pub fn profile(&self) -> Option<Profile> {
        let inner = self.inner.as_ref()?.borrow();
        inner.recorder.as_ref().map(|r| r.profile.clone())
    }

    /// Inference mode: leaves and parameters become constants, nothing is recorded.
    pub fn no_grad() -> Tape {
        Tape { inner: None }
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
        inner.borrow_mut().push(Node {
            inputs,
            backward: Some(backward),
        })
    }

    fn push_leaf(&self, value: std::sync::Arc<Tensor>) -> Var {
        match &self.inner {
            None => Var::from_parts(value, None),
            Some(inner) => {
                let id = inner.borrow_mut().push(Node {
                    inputs: vec![],
                    backward: None,
                });
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
        let (mut nodes, params, mut recorder) = {
            let mut i = inner.borrow_mut();
            assert!(!i.spent, "this tape was already used for a backward pass");
            i.spent = true;
            (
                std::mem::take(&mut i.nodes),
                i.params.clone(),
                i.recorder.take(),
            )
        };
        let mut grads: Vec<Option<Tensor>> = (0..nodes.len()).map(|_| None).collect();
        grads[*out_id] = Some(seed);
        for id in (0..=*out_id).rev() {
            let Some(backward) = nodes[id].backward.take() else {
                continue;
            };
            let Some(g) = grads[id].take() else { continue };
            let start = recorder.as_ref().map(|_| Instant::now());
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
            if let (Some(r), Some(start)) = (&mut recorder, start) {
                let label = r.node_labels[id];
                r.profile.record(label, start.elapsed());
            }
        }
        inner.borrow_mut().recorder = recorder;
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

    /// The gradient of a parameter, to change (e.g. to sum it over data-parallel ranks).
    pub fn param_mut(&mut self, p: &Param) -> Option<&mut Tensor> {
        let id = self.params.get(&p.id())?;
        self.grads[*id].as_mut()
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
    fn a_profiled_tape_times_spans_forward_and_backward() {
        let tape = Tape::profiled();
        let x = tape.leaf(t(&[1.0, 2.0]));
        let y = tape.span("outer", || {
            let inner = tape.span("inner", || ops::scale(&x, 2.0));
            ops::scale(&inner, 3.0) // recorded under "outer" again
        });
        let labels = |p: Profile| p.parts().iter().map(|(l, _)| *l).collect::<Vec<_>>();
        assert_eq!(labels(tape.profile().unwrap()), ["inner", "outer"]);
        let g = tape.backward(&ops::sum(&y));
        assert_eq!(g.get(&x).unwrap(), &t(&[6.0, 6.0]));
        // The unlabeled sum adds "other" in the backward pass.
        assert_eq!(labels(tape.profile().unwrap()), ["inner", "outer", "other"]);
        assert!(Tape::new().profile().is_none());
        assert_eq!(Tape::no_grad().span("x", || 3), 3);
        assert_eq!(Tape::new().span("x", || 4), 4);
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
