//! What the explorer page asks of a model, without HTTP: prior samples, decoding latent
//! points, encoding data or uploaded faces, attribute vectors, the most informative latent
//! dimensions and the latent map. Every method validates its input and answers
//! [`Error::Invalid`] with a message for the page.
//!
//! At start, up to `limit` images of the data's train split are encoded once; their latent
//! means give the attribute vectors (on first use), the KL ranking of the dimensions and
//! the map. The faces to pick are the val split (train when it is empty). Without data, the
//! ranking comes from re-encoding decoded prior samples.

pub use super::projections::Projection;
use super::projections::Projections;
use crate::data::{loader::batch_tensor, prepare::CELEBA_CROP_FRACTION, Dataset, Split};
use crate::latent::{self, attribute::AttributeVector, traverse};
use crate::model::Vae;
use crate::{viz, Error, Result, Tensor};
use image::RgbImage;
use indicatif::ProgressBar;
use ndarray::Array2;
use std::collections::BTreeMap;

/// The most rows one request may decode.
pub const MAX_ROWS: usize = 64;
/// Latent dimensions offered as sliders.
const DIM_SLIDERS: usize = 8;
/// The largest uploaded image, in pixels (a decompression bomb is refused before decoding).
const MAX_UPLOAD_PIXELS: u64 = 40_000_000;

pub struct ExplorerOptions {
    /// Images of the train split encoded at start (vectors, ranking, map).
    pub limit: usize,
    /// Points on the latent map (the first of the encoded images).
    pub map_points: usize,
}

/// Latent means and log-variances of some data images (`indices`, rows in order).
struct Encoded {
    indices: Vec<usize>,
    mu: Tensor,
    logvar: Tensor,
}

pub struct Explorer {
    model: Vae,
    data: Option<Dataset>,
    encoded: Encoded,
    picker: Vec<usize>,
    vectors: BTreeMap<String, AttributeVector>,
    /// Dimensions by decreasing KL, with their KL.
    dims: Vec<(usize, f64)>,
    maps: Projections,
    map_points: usize,
}

/// A face the page edits: its latent mean, the input as the model sees it, and the
/// reconstruction.
pub struct Face {
    pub z: Vec<f32>,
    pub image: RgbImage,
    pub recon: RgbImage,
}

/// Points of the latent map: coordinates, the data image of each, and its label for the
/// coloring attribute (+1, -1, 0 unknown).
pub struct MapPoints {
    pub xy: Vec<[f32; 2]>,
    pub indices: Vec<usize>,
    pub labels: Vec<i8>,
}

impl Explorer {
    /// Encodes the data (`bar` follows it) and ranks the dimensions. `vectors` (loaded
    /// files) must match the model's latent size.
    pub fn new(
        mut model: Vae,
        data: Option<Dataset>,
        vectors: Vec<AttributeVector>,
        opts: &ExplorerOptions,
        bar: &ProgressBar,
    ) -> Result<Explorer> {
        let latent = model.config.model.latent;
        if let Some(v) = vectors.iter().find(|v| v.delta.len() != latent) {
            return Err(Error::Invalid(format!(
                "attribute vector \"{}\" has {} values, the model's latent has {latent}",
                v.attribute,
                v.delta.len()
            )));
        }
        let (encoded, picker) = match &data {
            Some(ds) => encode_data(&mut model, ds, opts.limit, bar)?,
            None => (encode_prior_samples(&mut model, 256), vec![]),
        };
        let kl = traverse::kl_per_dimension(&encoded.mu, &encoded.logvar);
        let dims = traverse::rank_by_kl(&kl)
            .into_iter()
            .map(|d| (d, kl[d]))
            .collect();
        Ok(Explorer {
            model,
            data,
            encoded,
            picker,
            vectors: vectors
                .into_iter()
                .map(|v| (v.attribute.clone(), v))
                .collect(),
            dims,
            maps: Projections::default(),
            map_points: opts.map_points,
        })
    }

    pub fn model(&self) -> &Vae {
        &self.model
    }

    /// The data images a user may pick (global indices).
    pub fn picker(&self) -> &[usize] {
        &self.picker
    }

    /// The most informative dimensions (at most 8), with their average KL.
    pub fn top_dims(&self) -> &[(usize, f64)] {
        &self.dims[..self.dims.len().min(DIM_SLIDERS)]
    }

    /// Attributes a slider can move: the data's (vectors computed on first use) and the
    /// loaded vectors'.
    pub fn attributes(&self) -> Vec<String> {
        let mut names: Vec<String> = self.vectors.keys().cloned().collect();
        if let Some(ds) = &self.data {
            names.extend(ds.attribute_names.iter().cloned());
        }
        names.sort();
        names.dedup();
        names
    }

    pub fn has_map(&self) -> bool {
        self.data.is_some() && self.encoded.indices.len() >= 3
    }

    /// `n` prior samples z ~ N(0, T² I) from `seed`, and their images.
    pub fn samples(
        &mut self,
        n: usize,
        seed: u64,
        temperature: f32,
        cond: Option<&[f32]>,
    ) -> Result<(Tensor, Vec<RgbImage>)> {
        if !(1..=MAX_ROWS).contains(&n) {
            return Err(Error::Invalid(format!(
                "n must be 1 to {MAX_ROWS}, got {n}"
            )));
        }
        if !(temperature.is_finite() && (0.0..=10.0).contains(&temperature)) {
            return Err(Error::Invalid(format!(
                "temperature must be 0 to 10, got {temperature}"
            )));
        }
        let z = latent::prior_samples(n, self.model.config.model.latent, seed, temperature);
        let images = self.decode_tensor(&z, cond)?;
        Ok((z, images))
    }

    /// The images of latent points `z` (each of the model's latent size, finite).
    pub fn decode(&mut self, z: &[Vec<f32>], cond: Option<&[f32]>) -> Result<Vec<RgbImage>> {
        let z = self.latent_rows(z)?;
        self.decode_tensor(&z, cond)
    }

    /// Data images `indices` as the model sees them.
    pub fn thumbnails(&self, indices: &[usize]) -> Result<Vec<RgbImage>> {
        let range = self.model.config.data.pixel_range;
        Ok(viz::to_images(&self.data_batch(indices)?, range))
    }

    /// Data image `index`, encoded and reconstructed.
    pub fn face(&mut self, index: usize) -> Result<Face> {
        let x = self.data_batch(&[index])?;
        Ok(self.encode_face(&x))
    }

    /// An uploaded JPEG or PNG, cropped and resized as `prepare` does, encoded and
    /// reconstructed.
    pub fn upload(&mut self, bytes: &[u8]) -> Result<Face> {
        let bad = |why: String| Error::Invalid(format!("the uploaded file: {why}"));
        let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad(e.to_string()))?;
        if !matches!(
            reader.format(),
            Some(image::ImageFormat::Jpeg | image::ImageFormat::Png)
        ) {
            return Err(bad("not a JPEG or PNG image".into()));
        }
        let (w, h) = reader.into_dimensions().map_err(|e| bad(e.to_string()))?;
        if w as u64 * h as u64 > MAX_UPLOAD_PIXELS {
            return Err(bad(format!(
                "{w}x{h} pixels is more than the {MAX_UPLOAD_PIXELS} allowed"
            )));
        }
        let x = latent::image_from_bytes(&self.model, bytes, CELEBA_CROP_FRACTION).map_err(bad)?;
        Ok(self.encode_face(&x))
    }

    /// The attribute's vector: a loaded one, or computed from the encoded data (then kept).
    pub fn vector(&mut self, attribute: &str) -> Result<&AttributeVector> {
        if !self.vectors.contains_key(attribute) {
            let ds = self.data.as_ref().ok_or_else(|| {
                Error::Invalid(format!(
                    "no vector for \"{attribute}\": start serve with --data or --vectors"
                ))
            })?;
            let column = ds.attribute_index(attribute)?;
            let labels = ds.attribute_of(&self.encoded.indices, column);
            let name = ds.attribute_names[column].clone();
            let v = AttributeVector::compute(&name, &self.encoded.mu, &labels)?;
            self.vectors.insert(attribute.to_string(), v);
        }
        Ok(&self.vectors[attribute])
    }

    /// `steps` images on the path from `a` to `b` (straight, or the great circle).
    pub fn interpolate(
        &mut self,
        a: &[f32],
        b: &[f32],
        steps: usize,
        spherical: bool,
        cond: Option<&[f32]>,
    ) -> Result<Vec<RgbImage>> {
        if !(2..=MAX_ROWS).contains(&steps) {
            return Err(Error::Invalid(format!(
                "steps must be 2 to {MAX_ROWS}, got {steps}"
            )));
        }
        let ends = self.latent_rows(&[a.to_vec(), b.to_vec()])?;
        let path = latent::interpolate(
            &latent::row(&ends, 0),
            &latent::row(&ends, 1),
            steps,
            spherical,
        );
        self.decode_tensor(&path, cond)
    }

    /// The latent map's points by `projection` (computed once), labeled by `color` (an
    /// attribute of the data; `None`: all 0); `None` while t-SNE is still running.
    pub fn map(
        &mut self,
        projection: Projection,
        color: Option<&str>,
        bar: &ProgressBar,
    ) -> Result<Option<MapPoints>> {
        let ds = self.data_or_error()?;
        if !self.has_map() {
            return Err(Error::Invalid(
                "the map needs at least 3 encoded images".into(),
            ));
        }
        let n = self.encoded.indices.len().min(self.map_points.max(3));
        let indices = self.encoded.indices[..n].to_vec();
        let labels = match color {
            Some(attr) => ds.attribute_of(&indices, ds.attribute_index(attr)?),
            None => vec![0; n],
        };
        let mu = &self.encoded.mu;
        let z = || Array2::from_shape_fn((n, mu.shape()[1]), |(i, d)| mu[[i, d]] as f64);
        Ok(self.maps.get(projection, z, bar).map(|xy| MapPoints {
            xy,
            indices,
            labels,
        }))
    }

    /// Data images `indices` (at most 100, each in the data) as a batch for the model.
    fn data_batch(&self, indices: &[usize]) -> Result<Tensor> {
        let ds = self.data_or_error()?;
        if indices.len() > 100 {
            return Err(Error::Invalid("at most 100 images per request".into()));
        }
        if let Some(i) = indices.iter().find(|&&i| i >= ds.len()) {
            return Err(Error::Invalid(format!(
                "image {i} is not in the data ({} images)",
                ds.len()
            )));
        }
        let range = self.model.config.data.pixel_range;
        Ok(batch_tensor(ds, indices, &[], range))
    }

    fn data_or_error(&self) -> Result<&Dataset> {
        self.data
            .as_ref()
            .ok_or_else(|| Error::Invalid("serve was started without --data".into()))
    }

    fn encode_face(&mut self, x: &Tensor) -> Face {
        let range = self.model.config.data.pixel_range;
        let z = latent::encode_means(&mut self.model, x);
        let recon = latent::decode(&mut self.model, &z);
        Face {
            z: latent::row(&z, 0),
            image: viz::to_images(x, range).remove(0),
            recon: viz::to_images(&recon, range).remove(0),
        }
    }

    /// `z` as a `[N, latent]` tensor: 1 to [`MAX_ROWS`] rows of the latent size, finite.
    fn latent_rows(&self, z: &[Vec<f32>]) -> Result<Tensor> {
        let latent = self.model.config.model.latent;
        if !(1..=MAX_ROWS).contains(&z.len()) {
            return Err(Error::Invalid(format!(
                "1 to {MAX_ROWS} latent points per request, got {}",
                z.len()
            )));
        }
        if let Some(row) = z.iter().find(|r| r.len() != latent) {
            return Err(Error::Invalid(format!(
                "a latent point has {} values, the model's latent has {latent}",
                row.len()
            )));
        }
        if z.iter().flatten().any(|v| !v.is_finite() || v.abs() > 1e4) {
            return Err(Error::Invalid(
                "latent values must be finite numbers within ±10000".into(),
            ));
        }
        Ok(Tensor::from_shape_fn(vec![z.len(), latent], |i| {
            z[i[0]][i[1]]
        }))
    }

    fn decode_tensor(&mut self, z: &Tensor, cond: Option<&[f32]>) -> Result<Vec<RgbImage>> {
        let cond = self.condition(cond)?;
        let images = latent::condition::decode(&mut self.model, z, &cond);
        Ok(viz::to_images(&images, self.model.config.data.pixel_range))
    }

    /// The condition vector: `cond` checked against the model's conditions, or all 0.
    fn condition(&self, cond: Option<&[f32]>) -> Result<Vec<f32>> {
        let names = &self.model.config.model.conditions;
        match cond {
            None => Ok(vec![0.0; names.len()]),
            Some(c) if c.len() != names.len() => Err(Error::Invalid(format!(
                "the model has {} conditions, the request gave {}",
                names.len(),
                c.len()
            ))),
            Some(c) if c.iter().any(|v| !v.is_finite() || v.abs() > 10.0) => Err(Error::Invalid(
                "condition values must be finite, within ±10".into(),
            )),
            Some(c) => Ok(c.to_vec()),
        }
    }
}

/// Encodes up to `limit` train images; the picker is the val split (or train).
fn encode_data(
    model: &mut Vae,
    ds: &Dataset,
    limit: usize,
    bar: &ProgressBar,
) -> Result<(Encoded, Vec<usize>)> {
    ds.check_fits(&model.config)?;
    let mut indices = ds.indices(Split::Train);
    if indices.is_empty() {
        indices = (0..ds.len()).collect();
    }
    indices.truncate(limit.max(1));
    if indices.is_empty() {
        return Err(Error::File {
            path: ds.path.clone(),
            message: "the data holds no images".into(),
        });
    }
    let (mu, logvar) = latent::encode_images(model, ds, &indices, 256, bar);
    let mut picker = ds.indices(Split::Val);
    if picker.is_empty() {
        picker = indices.clone();
    }
    Ok((
        Encoded {
            indices,
            mu,
            logvar,
        },
        picker,
    ))
}

/// Without data: the encodings of `n` decoded prior samples stand in for the data's, to
/// rank the dimensions.
fn encode_prior_samples(model: &mut Vae, n: usize) -> Encoded {
    let z = latent::prior_samples(n, model.config.model.latent, 0, 1.0);
    let x = latent::decode(model, &z);
    let tape = crate::Tape::no_grad();
    let (mu, logvar) = model.encode(&tape, &crate::Var::constant(x), crate::nn::Mode::Eval);
    Encoded {
        indices: vec![],
        mu: mu.value().clone(),
        logvar: logvar.value().clone(),
    }
}
