//! What makes N ranks of a data-parallel run compute what one process computes (see
//! docs/cluster.md, "The same math as one process"):
//!
//! - each global batch is split into contiguous parts in rank order
//!   ([`crate::collective::shard`]); the shuffle and flips are drawn for the whole epoch
//!   from `(seed, epoch)` on every rank, as in one process;
//! - the reparameterization noise is drawn for the whole batch from `(seed, step)` and
//!   each rank takes its rows, so image `i` of the batch gets the same noise on any number
//!   of ranks;
//! - each rank's loss weighs its averaged terms by its share of the batch
//!   ([`crate::model::Vae::loss_of_part`]), so the sum of the ranks' gradients is the
//!   whole batch's gradient; it is summed with one all-reduce over a flat buffer;
//! - batch norm uses the whole batch's statistics (sync batch norm, `ops::sync_stats`).

use crate::collective::{shard, Collective};
use crate::config::Config;
use crate::data::Dataset;
use crate::model::Vae;
use crate::nn::{Module, Slot};
use crate::{ops, Error, Gradients, Result, Tensor};
use ndarray::Axis;
use std::hash::{Hash, Hasher};
use std::ops::Range;

/// This rank's part of a global batch.
#[derive(Clone, Debug)]
pub(super) struct BatchPart {
    /// Images in the whole batch.
    pub images: usize,
    /// This rank's images, as positions within the batch.
    pub mine: Range<usize>,
}

impl BatchPart {
    pub fn of(batch: usize, world: &dyn Collective) -> BatchPart {
        BatchPart {
            images: batch,
            mine: shard(0..batch, world.rank(), world.size()),
        }
    }

    /// This part's fraction of the batch's images.
    pub fn share(&self) -> f32 {
        self.mine.len() as f32 / self.images as f32
    }

    /// This part's rows of `noise`, drawn for the whole batch (no copy for the whole).
    pub fn rows(&self, noise: Tensor) -> Tensor {
        if self.mine.len() == self.images {
            return noise;
        }
        noise
            .slice_axis(Axis(0), self.mine.clone().into())
            .to_owned()
    }
}

/// The standard-normal noise of this rank's images: drawn for the whole batch from `rng`.
pub(super) fn noise_rows(part: &BatchPart, latent: usize, rng: &mut impl rand::Rng) -> Tensor {
    part.rows(ops::standard_normal(&[part.images, latent], rng))
}

/// Replaces every parameter gradient by its sum over the ranks: one all-reduce over all
/// of them in one flat buffer (parameters in the model's fixed visiting order).
pub(super) fn sum_gradients(world: &dyn Collective, model: &mut Vae, grads: &mut Gradients) {
    if world.size() == 1 {
        return;
    }
    let mut flat: Vec<f32> = vec![];
    model.visit("", &mut |_, slot| {
        if let Slot::Param(p) = slot {
            if let Some(g) = grads.param(p) {
                flat.extend(g.iter());
            }
        }
    });
    world.sum_f32(&mut flat);
    let mut at = 0;
    model.visit("", &mut |_, slot| {
        if let Slot::Param(p) = slot {
            if let Some(g) = grads.param_mut(p) {
                g.iter_mut().zip(&flat[at..]).for_each(|(g, s)| *g = *s);
                at += g.len();
            }
        }
    });
}

/// The number of values `sum_gradients` sends per step (the model's parameters).
pub fn gradient_values(model: &mut Vae) -> usize {
    let mut n = 0;
    model.visit("", &mut |_, slot| {
        if let Slot::Param(p) = slot {
            n += p.value().len();
        }
    });
    n
}

/// Checks that every rank starts from the same config, data, position and weights
/// (a rank given another --config, a different cache, or a run folder it cannot see
/// would otherwise train something else in silence).
pub(super) fn check_ranks_agree(
    world: &dyn Collective,
    model: &mut Vae,
    data: &Dataset,
    step: u64,
) -> Result<()> {
    if world.size() == 1 {
        return Ok(());
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let config: &Config = &model.config;
    config.to_toml().hash(&mut h);
    (&data.names, &data.fingerprint, data.splits.len(), step).hash(&mut h);
    model.visit("", &mut |_, slot| {
        let t: &Tensor = match &slot {
            Slot::Param(p) => p.value(),
            Slot::Buffer(b) => b,
        };
        t.iter().for_each(|v| v.to_bits().hash(&mut h));
    });
    if world.all_equal(h.finish()) {
        return Ok(());
    }
    Err(Error::Training(format!(
        "the {} ranks do not start from the same model, data and position (rank {} differs \
         from another): give every rank the same --config, --data and run folder, on a \
         filesystem all of them see",
        world.size(),
        world.rank()
    )))
}

/// The batches of an epoch a group of `ranks` trains on: a last batch with fewer images
/// than ranks is left out (one process would train on it).
pub(super) fn usable_batches(mut batches: Vec<Range<usize>>, ranks: usize) -> Vec<Range<usize>> {
    if ranks > 1 && batches.last().is_some_and(|b| b.len() < ranks) {
        batches.pop();
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_the_noise_are_rows_of_the_whole_batch() {
        use rand::SeedableRng;
        let rng = || rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let whole = ops::standard_normal(&[7, 3], &mut rng());
        let group = crate::collective::local::LocalGroup::members(3);
        let mut rows = vec![];
        for m in &group {
            let part = BatchPart::of(7, m.as_ref());
            rows.push(noise_rows(&part, 3, &mut rng()));
        }
        let joined =
            ndarray::concatenate(Axis(0), &[rows[0].view(), rows[1].view(), rows[2].view()]);
        assert_eq!(joined.unwrap(), whole);
        assert_eq!(
            rows.iter().map(|r| r.shape()[0]).collect::<Vec<_>>(),
            [3, 2, 2]
        );
    }
}
