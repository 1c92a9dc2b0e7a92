//! Where the latent commands get their images and data: image files, or images of a split
//! of `--data` (a cache or a CelebA folder) checked against the model's size.

use anyhow::{bail, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use vae_cpu::data::prepare::CELEBA_CROP_FRACTION;
use vae_cpu::data::{loader::batch_tensor, Dataset, Split};
use vae_cpu::latent;
use vae_cpu::model::Vae;
use vae_cpu::Tensor;

/// Opens `--data` for `model` (preparing a folder at the model's size once); a cache of
/// another size is an error naming it.
pub fn open_data(data: &Path, model: &Vae, quiet: bool) -> Result<Dataset> {
    let m = &model.config.model;
    let ds = vae_cpu::data::source::open(data, m.width, m.height, quiet)?;
    ds.check_fits(&model.config)?;
    Ok(ds)
}

/// The images of `split` (by name), at most `limit`; an empty result is an error.
pub fn split_indices(ds: &Dataset, split: &str, limit: Option<usize>) -> Result<Vec<usize>> {
    let Some(s) = Split::parse(split) else {
        bail!("--split must be train, val or test, not \"{split}\"")
    };
    let mut idx = ds.indices(s);
    if limit == Some(0) && !idx.is_empty() {
        bail!(
            "a limit of 0 images leaves nothing of the {split} split ({} images)",
            idx.len()
        );
    }
    idx.truncate(limit.unwrap_or(usize::MAX));
    if idx.is_empty() {
        bail!(
            "{}: the {split} split is empty ({})",
            ds.path.display(),
            ds.split_summary()
        );
    }
    Ok(idx)
}

/// Several images: files, or the first `--n` of a split of `--data`.
#[derive(Args, Clone)]
pub struct ImageSource {
    /// Image files (cropped and resized the way `prepare` does).
    pub images: Vec<PathBuf>,
    /// Or: take images from this cache (or CelebA folder)...
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// ...from this split (train, val or test)...
    #[arg(long, default_value = "val")]
    pub split: String,
    /// ...this many of them (default depends on the command).
    #[arg(long)]
    pub n: Option<usize>,
}

impl ImageSource {
    /// The files this source reads, for [`super::check_files`].
    pub fn inputs(&self) -> Vec<(&'static str, Option<&Path>)> {
        let mut v: Vec<_> = self
            .images
            .iter()
            .map(|p| ("an image", Some(p.as_path())))
            .collect();
        v.push(("--data", self.data.as_deref()));
        v
    }

    /// The images as a `[N, C, H, W]` batch and a short name for each.
    pub fn load(&self, model: &Vae, default_n: usize) -> Result<(Tensor, Vec<String>)> {
        match (&self.data, self.images.is_empty()) {
            (Some(_), false) => bail!("give image files or --data, not both"),
            (None, true) => bail!("give image files, or --data CACHE with --split and --n"),
            (None, false) => {
                let paths: Vec<&Path> = self.images.iter().map(PathBuf::as_path).collect();
                let names = paths.iter().map(|p| short_name(p)).collect();
                Ok((
                    latent::load_images(model, &paths, CELEBA_CROP_FRACTION)?,
                    names,
                ))
            }
            (Some(data), true) => {
                let ds = open_data(data, model, true)?;
                let n = self.n.unwrap_or(default_n);
                if n == 0 || n > 1000 {
                    bail!("--n must be between 1 and 1000, got {n}");
                }
                let idx = split_indices(&ds, &self.split, Some(n))?;
                let names = idx
                    .iter()
                    .map(|&i| short_name(Path::new(&ds.names[i])))
                    .collect();
                let range = model.config.data.pixel_range;
                Ok((batch_tensor(&ds, &idx, &[], range), names))
            }
        }
    }
}

/// One image: a file, or image `--index` of a split of `--data`.
#[derive(Args)]
pub struct OneImage {
    /// An image file (cropped and resized the way `prepare` does).
    pub image: Option<PathBuf>,
    /// Or: take the image from this cache (or CelebA folder)...
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// ...from this split (train, val or test)...
    #[arg(long, default_value = "val")]
    pub split: String,
    /// ...at this position in the split.
    #[arg(long, default_value_t = 0)]
    pub index: usize,
}

impl OneImage {
    /// The files this source reads, for [`super::check_files`].
    pub fn inputs(&self) -> [(&'static str, Option<&Path>); 2] {
        [
            ("the image", self.image.as_deref()),
            ("--data", self.data.as_deref()),
        ]
    }

    /// The image as a `[1, C, H, W]` batch and its short name. `--data` may come with an
    /// image file (the command then uses the data for something else).
    pub fn load(&self, model: &Vae) -> Result<(Tensor, String)> {
        if let Some(path) = &self.image {
            let x = latent::load_images(model, &[path.as_path()], CELEBA_CROP_FRACTION)?;
            return Ok((x, short_name(path)));
        }
        let Some(data) = &self.data else {
            bail!("give an image file, or --data CACHE with --split and --index")
        };
        let ds = open_data(data, model, true)?;
        let idx = split_indices(&ds, &self.split, None)?;
        let Some(&i) = idx.get(self.index) else {
            bail!(
                "--index {} is past the end of the {} split ({} images)",
                self.index,
                self.split,
                idx.len()
            )
        };
        let x = batch_tensor(&ds, &[i], &[], model.config.data.pixel_range);
        Ok((x, short_name(Path::new(&ds.names[i]))))
    }
}

/// A file's name without folder and extension, as a row label.
fn short_name(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}
