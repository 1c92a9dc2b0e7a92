//! Batches for training: a seeded shuffle and seeded horizontal flips per epoch, both a
//! pure function of `(seed, epoch)` so a resumed run sees the same batches, and the
//! conversion of cached u8 HWC images to f32 NCHW tensors in the config's pixel range.

use super::Dataset;
use crate::config::PixelRange;
use crate::Tensor;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::ops::Range;

/// The images of one epoch in order, and whether each is flipped.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochPlan {
    pub order: Vec<usize>,
    pub flips: Vec<bool>,
}

/// A distinct seed per purpose so the streams never overlap.
pub const SHUFFLE_STREAM_SALT: u64 = 0x5348_5546_464c_4531;

impl EpochPlan {
    /// Shuffles `indices` with ChaCha8 seeded by `seed`, stream `epoch`.
    pub fn new(indices: &[usize], seed: u64, epoch: usize, flip: bool) -> EpochPlan {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ SHUFFLE_STREAM_SALT);
        rng.set_stream(epoch as u64);
        let mut order = indices.to_vec();
        order.shuffle(&mut rng);
        let flips = order.iter().map(|_| flip && rng.gen::<bool>()).collect();
        EpochPlan { order, flips }
    }

    /// Batch ranges of at most `batch_size` images. A last batch of a single image is
    /// dropped when there are others and batches hold more than one: batch normalization
    /// of flat features needs two samples (a model with one refuses a batch size of 1).
    pub fn batches(&self, batch_size: usize) -> Vec<Range<usize>> {
        let n = self.order.len();
        let bs = batch_size.max(1);
        let mut out: Vec<Range<usize>> = (0..n).step_by(bs).map(|s| s..(s + bs).min(n)).collect();
        if bs > 1 && out.len() > 1 && out.last().is_some_and(|r| r.len() == 1) {
            out.pop();
        }
        out
    }
}

/// One pixel byte in the model's range: `[0, 1]` or `[-1, 1]`.
pub fn to_model_range(v: u8, range: PixelRange) -> f32 {
    match range {
        PixelRange::Unit => v as f32 / 255.0,
        PixelRange::Symmetric => v as f32 / 127.5 - 1.0,
    }
}

/// Images `indices` of `ds` as a `[B, C, H, W]` tensor, mirrored left-right where `flips`
/// says so (`flips` may be empty: no flips).
pub fn batch_tensor(ds: &Dataset, indices: &[usize], flips: &[bool], range: PixelRange) -> Tensor {
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    let mut out = Tensor::zeros(vec![indices.len(), c, h, w]);
    let data = out.as_slice_mut().expect("fresh tensors are contiguous");
    for (b, (&i, dst)) in indices.iter().zip(data.chunks_mut(c * h * w)).enumerate() {
        let flip = flips.get(b).copied().unwrap_or(false);
        image_to_chw(ds.image(i), c, h, w, flip, range, dst);
    }
    out
}

/// The attributes `columns` of images `indices` as a `[B, columns]` condition tensor of
/// +1 / -1 (0 where an image has no attribute row); `None` when there are no columns (an
/// unconditional model).
pub fn batch_conditions(ds: &Dataset, indices: &[usize], columns: &[usize]) -> Option<Tensor> {
    (!columns.is_empty()).then(|| {
        Tensor::from_shape_fn(vec![indices.len(), columns.len()], |d| {
            ds.attribute(indices[d[0]], columns[d[1]]) as f32
        })
    })
}

/// One HWC byte image with `src_channels` per pixel into `dst`, `[c, h, w]` floats in the
/// model's range, mirrored left-right when `flip`. A model with fewer channels than the
/// source takes the first ones.
pub fn image_to_chw(
    img: &[u8],
    src_channels: usize,
    h: usize,
    w: usize,
    flip: bool,
    range: PixelRange,
    dst: &mut [f32],
) {
    let c = dst.len() / (h * w);
    for y in 0..h {
        for x in 0..w {
            let sx = if flip { w - 1 - x } else { x };
            for ch in 0..c {
                let v = img[(y * w + sx) * src_channels + ch.min(src_channels - 1)];
                dst[(ch * h + y) * w + x] = to_model_range(v, range);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{CacheContents, Split};

    #[test]
    fn plans_are_reproducible_permutations_that_differ_by_epoch() {
        let idx: Vec<usize> = (0..100).collect();
        let a = EpochPlan::new(&idx, 7, 3, true);
        assert_eq!(a, EpochPlan::new(&idx, 7, 3, true));
        assert_ne!(a.order, EpochPlan::new(&idx, 7, 4, true).order);
        assert_ne!(a.order, EpochPlan::new(&idx, 8, 3, true).order);
        let mut sorted = a.order.clone();
        sorted.sort();
        assert_eq!(sorted, idx);
        let flipped = a.flips.iter().filter(|&&f| f).count();
        assert!((25..75).contains(&flipped), "{flipped}");
        assert!(EpochPlan::new(&idx, 7, 3, false).flips.iter().all(|&f| !f));
    }

    #[test]
    fn batches_cover_everything_but_a_lone_last_image() {
        let plan = EpochPlan::new(&(0..11).collect::<Vec<_>>(), 0, 0, false);
        assert_eq!(plan.batches(4), vec![0..4, 4..8, 8..11]);
        assert_eq!(plan.batches(5), vec![0..5, 5..10]);
        assert_eq!(plan.batches(20), vec![0..11]);
        assert_eq!(
            plan.batches(1).len(),
            11,
            "batches of one image are all kept"
        );
    }

    #[test]
    fn tensors_are_nchw_in_range_and_flips_mirror() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        // One 2x3 image whose byte is 10*x + y for every channel offset by 100*ch.
        let (h, w) = (2, 3);
        let mut pixels = vec![];
        for y in 0..h {
            for x in 0..w {
                for ch in 0..3 {
                    pixels.push((100 * ch + 10 * x + y) as u8);
                }
            }
        }
        CacheContents {
            height: h,
            width: w,
            channels: 3,
            names: vec!["a.jpg".into()],
            splits: vec![Split::Train],
            pixels,
            ..Default::default()
        }
        .write(&path)
        .unwrap();
        let ds = Dataset::open(&path).unwrap();
        let t = batch_tensor(&ds, &[0], &[], PixelRange::Unit);
        assert_eq!(t.shape(), &[1, 3, 2, 3]);
        assert_eq!(t[[0, 2, 1, 2]], (200.0 + 20.0 + 1.0) / 255.0);
        let f = batch_tensor(&ds, &[0], &[true], PixelRange::Symmetric);
        assert_eq!(f[[0, 1, 0, 0]], (100.0 + 20.0) / 127.5 - 1.0);
        assert_eq!(to_model_range(0, PixelRange::Symmetric), -1.0);
        assert_eq!(to_model_range(255, PixelRange::Symmetric), 1.0);
    }
}
