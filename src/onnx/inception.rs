//! A feature network the user provides as ONNX, run by tract: the Inception-V3 of the FID
//! (`vae-cpu score --inception FILE.onnx`, e.g. pytorch-fid's network exported with
//! `torch.onnx.export`; nothing is downloaded). Images go in as pytorch-fid feeds them:
//! resized bilinearly (`align_corners = False`) to the input size the file declares
//! (299x299 when it declares none), then scaled from [0, 1] to [-1, 1]. The first output,
//! flattened per image, is the feature vector (pytorch-fid's pool3: 2048 values).

use super::run::OnnxModel;
use crate::{Error, Result, Tensor};
use std::path::Path;

/// Inception-V3's input side, used when the file does not declare one.
const DEFAULT_SIDE: usize = 299;
/// Images per run when the file leaves the batch open: tract ran Inception-V3 fastest one
/// image at a time on 2 cores (9.6 images/s, against 6.0 at 4 and 5.6 at 16 per run).
const BATCH: usize = 1;

pub struct FeatureNetwork {
    model: OnnxModel,
    /// The input `[channels, height, width]` images are resized to.
    input: [usize; 3],
    /// A batch size the file fixes (batches are then cut and padded to it).
    fixed_batch: Option<usize>,
}

impl FeatureNetwork {
    pub fn load(path: &Path) -> Result<FeatureNetwork> {
        let model = OnnxModel::load(path)?;
        let dims = model.input_dims();
        if !dims.is_empty() && dims.len() != 4 {
            return Err(Error::File {
                path: path.to_path_buf(),
                message: format!(
                    "its first input has {} dimensions; a feature network takes images [N, C, H, W]",
                    dims.len()
                ),
            });
        }
        let at = |i: usize, default: usize| dims.get(i).copied().flatten().unwrap_or(default);
        Ok(FeatureNetwork {
            input: [at(1, 3), at(2, DEFAULT_SIDE), at(3, DEFAULT_SIDE)],
            fixed_batch: dims.first().copied().flatten(),
            model,
        })
    }

    /// `[channels, height, width]` of the network's input.
    pub fn input(&self) -> [usize; 3] {
        self.input
    }

    /// The feature rows of `unit` (`[N, C, H, W]`, pixels in [0, 1]), concatenated.
    pub fn features(&self, unit: &Tensor) -> Result<Vec<f32>> {
        let [c, h, w] = self.input;
        let (n, channels) = (unit.shape()[0], unit.shape()[1]);
        if channels != c {
            return Err(Error::Invalid(format!(
                "the feature network takes {c}-channel images, these have {channels}"
            )));
        }
        let plane = h * w;
        let mut input: Vec<f32> = Vec::with_capacity(n * c * plane);
        let (ih, iw) = (unit.shape()[2], unit.shape()[3]);
        let values = unit.as_standard_layout();
        for image_plane in values.as_slice().expect("standard layout").chunks(ih * iw) {
            let resized = resize_bilinear(image_plane, (ih, iw), (h, w));
            input.extend(resized.iter().map(|v| 2.0 * v - 1.0));
        }
        let step = self.fixed_batch.unwrap_or(BATCH);
        let mut rows = Vec::new();
        for start in (0..n).step_by(step) {
            let take = step.min(n - start);
            let mut chunk = input[start * c * plane..(start + take) * c * plane].to_vec();
            chunk.resize(step * c * plane, 0.0); // padding of a fixed batch, dropped below
            let out = self.model.run(&[step, c, h, w], chunk)?;
            let first = out
                .into_iter()
                .next()
                .ok_or_else(|| Error::Invalid("the feature network has no output".into()))?;
            let per_image = first.values.len() / step;
            rows.extend_from_slice(&first.values[..take * per_image]);
        }
        Ok(rows)
    }
}

/// Bilinear resize of one `(height, width)` plane with half-pixel centres, as PyTorch's
/// `interpolate(mode="bilinear", align_corners=False)` (no antialiasing): output pixel
/// `o` samples input position `(o + 0.5) * in / out - 0.5`, clamped to the edges.
pub fn resize_bilinear(plane: &[f32], from: (usize, usize), to: (usize, usize)) -> Vec<f32> {
    let taps = |o: usize, in_len: usize, out_len: usize| {
        let pos = ((o as f32 + 0.5) * in_len as f32 / out_len as f32 - 0.5).max(0.0);
        let lo = (pos.floor() as usize).min(in_len - 1);
        let hi = (lo + 1).min(in_len - 1);
        (lo, hi, pos - lo as f32)
    };
    let mut out = Vec::with_capacity(to.0 * to.1);
    for y in 0..to.0 {
        let (y0, y1, fy) = taps(y, from.0, to.0);
        for x in 0..to.1 {
            let (x0, x1, fx) = taps(x, from.1, to.1);
            let at = |yy: usize, xx: usize| plane[yy * from.1 + xx];
            let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
            let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_keeps_constants_and_follows_half_pixel_centres() {
        assert!(resize_bilinear(&[0.25; 12], (3, 4), (7, 5))
            .iter()
            .all(|v| *v == 0.25));
        // Upscaling [0, 1] by 2: positions -0.25 (clamped to 0), 0.25, 0.75, 1.25 (-> 1).
        let row = resize_bilinear(&[0.0, 1.0], (1, 2), (1, 4));
        assert_eq!(row, vec![0.0, 0.25, 0.75, 1.0]);
        // Downscaling by 2 averages neighbour pairs (position 2o + 0.5).
        let row = resize_bilinear(&[0.0, 1.0, 2.0, 3.0], (1, 4), (1, 2));
        assert_eq!(row, vec![0.5, 2.5]);
    }
}
