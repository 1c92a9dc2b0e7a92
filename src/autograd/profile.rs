//! Time per part of a step, for benchmarks: a profiling tape ([`Tape::profiled`]) labels
//! every node with the span it was recorded in (a layer kind, set by
//! [`Tape::span`]) and adds the forward time of each span and the backward time of its
//! nodes (their closures and the gradient accumulation they cause) to that label.
//!
//! [`Tape::profiled`]: super::Tape::profiled
//! [`Tape::span`]: super::Tape::span

use std::time::Duration;

/// The label of everything recorded outside a span (loss, sampling, parameter leaves).
pub const UNLABELED: &str = "other";

/// Forward plus backward time per label, in the order labels first appeared.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    parts: Vec<(&'static str, Duration)>,
}

impl Profile {
    pub fn parts(&self) -> &[(&'static str, Duration)] {
        &self.parts
    }

    pub fn record(&mut self, label: &'static str, time: Duration) {
        match self.parts.iter_mut().find(|(l, _)| *l == label) {
            Some((_, t)) => *t += time,
            None => self.parts.push((label, time)),
        }
    }

    /// Adds every part of `other` (e.g. to sum several steps).
    pub fn add(&mut self, other: &Profile) {
        for (label, time) in &other.parts {
            self.record(label, *time);
        }
    }
}

/// The profiling state a tape keeps while recording.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub current: &'static str,
    /// The label of each node, by node id.
    pub node_labels: Vec<&'static str>,
    pub profile: Profile,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            current: UNLABELED,
            node_labels: vec![],
            profile: Profile::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_by_label_in_first_seen_order() {
        let mut p = Profile::default();
        p.record("conv2d", Duration::from_millis(3));
        p.record("prelu", Duration::from_millis(1));
        p.record("conv2d", Duration::from_millis(2));
        let mut q = Profile::default();
        q.record("prelu", Duration::from_millis(4));
        q.record("sigmoid", Duration::from_millis(1));
        p.add(&q);
        let ms: Vec<(&str, u128)> = p.parts().iter().map(|(l, t)| (*l, t.as_millis())).collect();
        assert_eq!(ms, [("conv2d", 5), ("prelu", 5), ("sigmoid", 1)]);
    }
}
