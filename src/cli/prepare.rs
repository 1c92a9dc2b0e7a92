use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use vae_cpu::data::balanced_split::SplitRule;
use vae_cpu::data::prepare::{parse_size, PrepareOptions, ResizeFilter, CELEBA_CROP_FRACTION};
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
    /// The resize filter: lanczos3 (the sharpest), triangle (the antialiased bilinear of
    /// PIL and torchvision: the same pixels as a PyTorch pipeline) or nearest.
    #[arg(long, default_value = "lanczos3", value_parser = ResizeFilter::NAMES)]
    filter: String,
    /// How images are split into train, val and test: official (list_eval_partition.txt,
    /// else 80/10/10 by a hash of the name) or balanced (stratified on --balance-on).
    #[arg(long, default_value = "official", value_parser = ["official", "balanced"])]
    split: String,
    /// With --split balanced: attributes whose every combination the three splits hold in
    /// the same proportions (80/10/10), e.g. Smiling,Male.
    #[arg(long, value_delimiter = ',', value_name = "ATTR,...")]
    balance_on: Vec<String>,
    /// The cache file to write (default: cache/<folder>-<W>x<H>.vaecache, with the filter
    /// and split in the name when they are not the defaults).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    workers: super::flags::Workers,
}

pub fn run(a: PrepareArgs) -> Result<()> {
    let (width, height) = parse_size(&a.size)?;
    if !(a.crop_fraction > 0.0 && a.crop_fraction <= 1.0) {
        bail!("--crop-fraction must be in (0, 1], got {}", a.crop_fraction);
    }
    let split = match (a.split.as_str(), a.balance_on.is_empty()) {
        ("balanced", true) => bail!("--split balanced needs --balance-on, e.g. Smiling,Male"),
        ("balanced", false) => SplitRule::Balanced(a.balance_on.clone()),
        (_, false) => bail!("--balance-on applies to --split balanced only"),
        (_, true) => SplitRule::Official,
    };
    let opts = PrepareOptions {
        filter: ResizeFilter::parse(&a.filter).expect("clap checked the name"),
        split,
        ..PrepareOptions::new(width, height, a.crop_fraction)
    };
    let out = match a.out {
        Some(o) => o,
        None => {
            vae_cpu::data::source::create_cache_folder()?;
            vae_cpu::data::source::default_cache_path(&a.data, &opts)
        }
    };
    let pool = a.workers.pool()?;
    pool.install(|| prepare_into(&a.data, &opts, &out, a.workers.quiet))?;
    Ok(())
}
