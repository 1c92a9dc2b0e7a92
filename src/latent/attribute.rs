//! Attribute vectors (White, "Sampling Generative Networks", 2016; Larsen et al. 2016):
//! `Δ = mean(μ(x) | a(x) = +1) - mean(μ(x) | a(x) = -1)` over the latent means of labeled
//! images. Moving a face's z along Δ adds the attribute; `z + nΔ` for a range of n morphs it.

use crate::{Error, Result, Tensor};
use ndarray::Axis;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

const FORMAT: &str = "vae-cpu-attribute-vector-1";

#[derive(Clone, Debug, PartialEq)]
pub struct AttributeVector {
    pub attribute: String,
    /// Δ, one value per latent dimension.
    pub delta: Vec<f32>,
    /// How many images had the attribute (+1) and lacked it (-1).
    pub positives: usize,
    pub negatives: usize,
}

impl AttributeVector {
    /// Δ from the latent means `[N, latent]` and the labels (+1, -1, or 0 for unknown,
    /// which is skipped). Both classes need at least one image.
    pub fn compute(attribute: &str, means: &Tensor, labels: &[i8]) -> Result<AttributeVector> {
        let latent = means.shape()[1];
        let mut sums = [vec![0.0f64; latent], vec![0.0f64; latent]];
        let mut counts = [0usize; 2];
        for (row, &label) in means.axis_iter(Axis(0)).zip(labels) {
            let class = match label {
                1 => 0,
                -1 => 1,
                _ => continue,
            };
            counts[class] += 1;
            for (s, v) in sums[class].iter_mut().zip(row.iter()) {
                *s += *v as f64;
            }
        }
        if counts[0] == 0 || counts[1] == 0 {
            return Err(Error::Invalid(format!(
                "{attribute}: {} images have it and {} lack it; both kinds are needed",
                counts[0], counts[1]
            )));
        }
        let delta = (0..latent)
            .map(|d| (sums[0][d] / counts[0] as f64 - sums[1][d] / counts[1] as f64) as f32)
            .collect();
        Ok(AttributeVector {
            attribute: attribute.to_string(),
            delta,
            positives: counts[0],
            negatives: counts[1],
        })
    }

    /// `<z, Δ> / |Δ|`: how far along the attribute direction a latent point lies.
    pub fn projection(&self, z: &[f32]) -> f64 {
        let norm = self.norm().max(1e-12);
        z.iter()
            .zip(&self.delta)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum::<f64>()
            / norm
    }

    pub fn norm(&self) -> f64 {
        self.delta
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    /// The linear probe "projection above the midpoint of the two class means": the
    /// fraction of labeled rows of `means` it classifies right.
    pub fn probe_accuracy(&self, means: &Tensor, labels: &[i8]) -> f64 {
        let projections: Vec<(f64, i8)> = means
            .axis_iter(Axis(0))
            .zip(labels)
            .filter(|(_, &l)| l != 0)
            .map(|(row, &l)| {
                (
                    self.projection(&row.iter().copied().collect::<Vec<f32>>()),
                    l,
                )
            })
            .collect();
        let class_mean = |c: i8| {
            let v: Vec<f64> = projections
                .iter()
                .filter(|p| p.1 == c)
                .map(|p| p.0)
                .collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let mid = (class_mean(1) + class_mean(-1)) / 2.0;
        let right = projections
            .iter()
            .filter(|(p, l)| (*p > mid) == (*l == 1))
            .count();
        right as f64 / projections.len().max(1) as f64
    }

    /// `z + n Δ` for each n of `steps`, as rows `[steps.len(), latent]`.
    pub fn morph(&self, z: &[f32], steps: &[f32]) -> Tensor {
        let d = self.delta.len();
        Tensor::from_shape_fn(vec![steps.len(), d], |i| {
            z[i[1]] + steps[i[0]] * self.delta[i[1]]
        })
    }

    /// Writes Δ as a safetensors file (tensor `delta`, the counts in the metadata).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = crate::checkpoint::f32_to_le_bytes(&self.delta);
        let view = TensorView::new(Dtype::F32, vec![self.delta.len()], &bytes)
            .expect("sizes match by construction");
        let meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("attribute".to_string(), self.attribute.clone()),
            ("positives".to_string(), self.positives.to_string()),
            ("negatives".to_string(), self.negatives.to_string()),
        ]);
        let out =
            safetensors::serialize([("delta", view)], &Some(meta)).map_err(|e| Error::File {
                path: path.to_path_buf(),
                message: format!("cannot encode: {e}"),
            })?;
        crate::atomic_file::write(path, &out)
    }

    /// Reads a file written by [`AttributeVector::save`].
    pub fn load(path: &Path) -> Result<AttributeVector> {
        let bad = |message: String| Error::File {
            path: path.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| {
            bad(format!(
                "not an attribute vector (truncated or corrupt?): {e}"
            ))
        })?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad(
                "not a vae-cpu attribute vector (no format marker)".into()
            ));
        }
        let count = |k: &str| -> Result<usize> {
            meta.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(format!("metadata lacks a count \"{k}\"")))
        };
        let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("corrupt data: {e}")))?;
        let view = st
            .tensor("delta")
            .map_err(|e| bad(format!("no delta: {e}")))?;
        if view.dtype() != Dtype::F32 || view.shape().len() != 1 {
            return Err(bad("delta must be a 1-D F32 tensor".into()));
        }
        Ok(AttributeVector {
            attribute: meta.get("attribute").cloned().unwrap_or_default(),
            delta: crate::checkpoint::f32_from_le_bytes(view.data()),
            positives: count("positives")?,
            negatives: count("negatives")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    /// Latent points whose class shifts them by ±1.5 along a known unit direction u: Δ
    /// points along u (length about 3), and the probe separates the classes.
    #[test]
    fn delta_points_along_the_known_direction() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let latent = 8;
        let mut u: Vec<f32> = (0..latent).map(|_| rng.sample(StandardNormal)).collect();
        let n = u.iter().map(|v| v * v).sum::<f32>().sqrt();
        u.iter_mut().for_each(|v| *v /= n);
        let count = 2000;
        let labels: Vec<i8> = (0..count)
            .map(|i| match i % 5 {
                0 => 0,
                1 | 2 => 1,
                _ => -1,
            })
            .collect();
        let means = Tensor::from_shape_fn(vec![count, latent], |i| {
            let noise: f32 = rng.sample(StandardNormal);
            noise * 0.5 + 1.5 * labels[i[0]] as f32 * u[i[1]]
        });
        let v = AttributeVector::compute("Smiling", &means, &labels).unwrap();
        assert_eq!((v.positives, v.negatives), (800, 800));
        let cos = v.delta.iter().zip(&u).map(|(a, b)| a * b).sum::<f32>() / v.norm() as f32;
        assert!(cos > 0.99, "cos {cos}");
        assert!((v.norm() - 3.0).abs() < 0.2, "{}", v.norm());
        assert!(v.probe_accuracy(&means, &labels) > 0.99);
        // Swapped labels flip the vector.
        let flipped: Vec<i8> = labels.iter().map(|l| -l).collect();
        let w = AttributeVector::compute("Smiling", &means, &flipped).unwrap();
        assert!(w
            .delta
            .iter()
            .zip(&v.delta)
            .all(|(a, b)| (a + b).abs() < 1e-5));
    }

    #[test]
    fn one_class_alone_is_an_error() {
        let means = Tensor::zeros(vec![3, 2]);
        let err = AttributeVector::compute("Bald", &means, &[-1, -1, 0]).unwrap_err();
        assert!(err.to_string().contains("0 images have it"), "{err}");
    }

    #[test]
    fn morph_moves_along_delta() {
        let v = AttributeVector {
            attribute: "x".into(),
            delta: vec![1.0, -2.0],
            positives: 1,
            negatives: 1,
        };
        let m = v.morph(&[0.5, 0.5], &[-1.0, 0.0, 2.0]);
        assert_eq!(m.as_slice().unwrap(), &[-0.5, 2.5, 0.5, 0.5, 2.5, -3.5]);
    }

    #[test]
    fn files_round_trip_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smiling.safetensors");
        let v = AttributeVector {
            attribute: "Smiling".into(),
            delta: vec![0.25, -1.5, 3.0],
            positives: 10,
            negatives: 20,
        };
        v.save(&path).unwrap();
        assert_eq!(AttributeVector::load(&path).unwrap(), v);
        std::fs::write(&path, b"garbage").unwrap();
        let err = AttributeVector::load(&path).unwrap_err().to_string();
        assert!(err.contains("smiling.safetensors"), "{err}");
    }
}
