use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use vae_cpu::data::prepare::{parse_size, PrepareOptions, CELEBA_CROP_FRACTION};
use vae_cpu::data::source::prepare_into;

/// Decode a CelebA folder into a compact image cache for training.
#[derive(Args)]
pub struct PrepareArgs {
    /// The CelebA folder: DIR/img_align_celeba/*.jpg, DIR/list_attr_celeba.txt and
    /// DIR/list_eval_partition.txt (both files optional). A plain folder of images works too.
    #[arg(long)]
    data: PathBuf,
    /// Image size: N for NxN, or WIDTHxHEIGHT (e.g. 64x48).
    #[arg(long, default_value = "32")]
    size: String,
    /// Width of the center crop as a fraction of the image width (CelebA: 148 of 178).
    #[arg(long, default_value_t = CELEBA_CROP_FRACTION)]
    crop_fraction: f32,
    /// The cache file to write (default: cache/<folder>-<W>x<H>.vaecache).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    workers: super::flags::Workers,
}

pub fn run(a: PrepareArgs) -> Result<()> {
    let (width, height) = parse_size(&a.size)?;
    if !(a.crop_fraction > 0.0 && a.crop_fraction <= 1.0) {
        anyhow::bail!("--crop-fraction must be in (0, 1], got {}", a.crop_fraction);
    }
    let out = match a.out {
        Some(o) => o,
        None => {
            vae_cpu::data::source::create_cache_folder()?;
            vae_cpu::data::source::default_cache_path(&a.data, width, height)
        }
    };
    let opts = PrepareOptions {
        width,
        height,
        crop_fraction: a.crop_fraction,
    };
    let pool = a.workers.pool()?;
    pool.install(|| prepare_into(&a.data, &opts, &out, a.workers.quiet))?;
    Ok(())
}
