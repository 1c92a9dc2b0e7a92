//! Latent-space tools over a trained model (all in eval mode, no tape): sampling from the
//! prior, encoding to latent means, and paths between latent points; attribute vectors,
//! traversals, 2-D maps (PCA, t-SNE) and activation maps in the submodules.

pub mod activations;
pub mod attribute;
pub mod condition;
pub mod disentanglement;
pub mod map;
pub mod pca;
pub mod traverse;
pub mod tsne;

use crate::data::loader::{batch_tensor, image_to_chw};
use crate::data::prepare::{decode_image, PrepareOptions};
use crate::data::Dataset;
use crate::model::Vae;
use crate::nn::Mode;
use crate::{Error, Result, Tape, Tensor, Var};
use indicatif::ProgressBar;
use std::path::Path;

/// `n` latent vectors `z ~ N(0, temperature^2 I)` from ChaCha8 seeded with `seed`
/// (the values of [`crate::prior::normal_values`], which the edge build's `generate` uses
/// too).
pub use crate::prior::samples as prior_samples;

/// Decodes `z` (`[N, latent]`) to images in eval mode.
pub fn decode(model: &mut Vae, z: &Tensor) -> Tensor {
    let tape = Tape::no_grad();
    model
        .decode(&tape, &Var::constant(z.clone()), Mode::Eval)
        .value()
        .clone()
}

/// The latent means `E[z | x]` of a `[N, C, H, W]` batch, in eval mode.
pub fn encode_means(model: &mut Vae, x: &Tensor) -> Tensor {
    let tape = Tape::no_grad();
    model
        .encode(&tape, &Var::constant(x.clone()), Mode::Eval)
        .0
        .value()
        .clone()
}

/// The latent means and log-variances (`[N, latent]` each) of images `indices` of `data`,
/// encoded in batches of `batch_size`.
pub fn encode_images(
    model: &mut Vae,
    data: &Dataset,
    indices: &[usize],
    batch_size: usize,
    bar: &ProgressBar,
) -> (Tensor, Tensor) {
    let latent = model.config.model.latent;
    let range = model.config.data.pixel_range;
    let mut mu = Tensor::zeros(vec![indices.len(), latent]);
    let mut logvar = Tensor::zeros(vec![indices.len(), latent]);
    bar.set_length(indices.len() as u64);
    for (b, chunk) in indices.chunks(batch_size.max(1)).enumerate() {
        let x = batch_tensor(data, chunk, &[], range);
        let tape = Tape::no_grad();
        let (m, lv) = model.encode(&tape, &Var::constant(x), Mode::Eval);
        let rows = b * batch_size.max(1)..b * batch_size.max(1) + chunk.len();
        mu.slice_axis_mut(ndarray::Axis(0), rows.clone().into())
            .assign(m.value());
        logvar
            .slice_axis_mut(ndarray::Axis(0), rows.into())
            .assign(lv.value());
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    (mu, logvar)
}

/// Image files as a `[N, C, H, W]` batch at the model's size and pixel range, cropped the
/// way `prepare` crops (`crop_fraction` of the width).
pub fn load_images(model: &Vae, paths: &[&Path], crop_fraction: f32) -> Result<Tensor> {
    let mut images = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let x = image_from_bytes(model, &bytes, crop_fraction).map_err(|message| Error::File {
            path: path.to_path_buf(),
            message,
        })?;
        images.push(x);
    }
    let m = &model.config.model;
    if images.is_empty() {
        return Ok(Tensor::zeros(vec![0, m.channels, m.height, m.width]));
    }
    let views: Vec<_> = images.iter().map(Tensor::view).collect();
    Ok(ndarray::concatenate(ndarray::Axis(0), &views).expect("images of one shape"))
}

/// The bytes of an image file (JPEG or PNG) as a `[1, C, H, W]` batch, cropped and resized
/// as [`load_images`] does; the error says what is wrong with the bytes.
pub fn image_from_bytes(
    model: &Vae,
    bytes: &[u8],
    crop_fraction: f32,
) -> std::result::Result<Tensor, String> {
    let m = &model.config.model;
    let opts = PrepareOptions::new(m.width, m.height, crop_fraction);
    let (c, h, w) = (m.channels, m.height, m.width);
    let mut pixels = vec![0u8; h * w * 3];
    decode_image(bytes, &opts, &mut pixels)?;
    let mut out = Tensor::zeros(vec![1, c, h, w]);
    let dst = out.as_slice_mut().expect("fresh tensors are contiguous");
    image_to_chw(&pixels, 3, h, w, false, model.config.data.pixel_range, dst);
    Ok(out)
}

/// Row `i` of a `[N, D]` tensor.
pub fn row(t: &Tensor, i: usize) -> Vec<f32> {
    t.index_axis(ndarray::Axis(0), i).iter().copied().collect()
}

/// Points from `a` to `b` (both `[latent]`), `steps` of them including both ends, as rows
/// `[steps, latent]`: on the straight line, or with `spherical` on the great circle
/// ([`crate::prior::path`], which the edge build shares).
pub fn interpolate(a: &[f32], b: &[f32], steps: usize, spherical: bool) -> Tensor {
    let rows = crate::prior::path(a, b, steps, spherical);
    Tensor::from_shape_vec(vec![rows.len() / a.len().max(1), a.len()], rows)
        .expect("steps rows of the latent's width")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_start_and_end_at_the_given_points() {
        let (a, b) = ([1.0f32, 0.0, 2.0], [0.0f32, 3.0, -1.0]);
        for spherical in [false, true] {
            let p = interpolate(&a, &b, 5, spherical);
            assert_eq!(p.shape(), &[5, 3]);
            assert_eq!(row(&p, 0), a.to_vec());
            assert_eq!(row(&p, 4), b.to_vec());
        }
        let mid = interpolate(&a, &b, 3, false);
        assert_eq!(row(&mid, 1), vec![0.5, 1.5, 0.5]);
    }

    #[test]
    fn slerp_between_orthogonal_unit_vectors_stays_on_the_circle() {
        let p = interpolate(&[1.0, 0.0], &[0.0, 1.0], 7, true);
        for i in 0..7 {
            let r = (p[[i, 0]].powi(2) + p[[i, 1]].powi(2)).sqrt();
            assert!((r - 1.0).abs() < 1e-6, "{r}");
        }
        // The middle point is at 45 degrees.
        assert!((p[[3, 0]] - p[[3, 1]]).abs() < 1e-6);
    }

    #[test]
    fn prior_samples_scale_with_temperature() {
        let a = prior_samples(200, 10, 3, 1.0);
        let b = prior_samples(200, 10, 3, 0.5);
        assert_eq!(a.mapv(|v| v * 0.5), b);
        let var = a.iter().map(|v| v * v).sum::<f32>() / a.len() as f32;
        assert!((var - 1.0).abs() < 0.15, "{var}");
    }
}
