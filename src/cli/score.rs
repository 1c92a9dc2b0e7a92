use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use vae_cpu::checkpoint::{Checkpoint, Stored};
use vae_cpu::config::ClassifierConfig;
use vae_cpu::data::Split;
use vae_cpu::quality::score::{score, ScoreOptions, ScoreReport};

/// Score a VAE: reconstruction, samples against real faces through an attribute classifier
/// (a Fréchet distance in its feature space, attribute frequencies), and the FID with an
/// Inception network given as ONNX.
#[derive(Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    /// An attribute classifier checkpoint from `vae-cpu classifier train`, for the VAE's
    /// image size (e.g. runs/attributes32/checkpoints/best.safetensors).
    #[arg(long, value_name = "FILE")]
    classifier: PathBuf,
    /// A cache from `vae-cpu prepare`, or a CelebA folder.
    #[arg(long)]
    data: PathBuf,
    /// The split of real images: train, val or test.
    #[arg(long, default_value = "test")]
    split: String,
    /// Prior samples to draw, and real images (a seeded subset of the split) to compare
    /// them with. Fréchet distances shrink as this grows: compare models at the same count.
    #[arg(long, default_value_t = 1000, value_parser = super::count())]
    samples: usize,
    /// An Inception network as ONNX for the true FID (e.g. pytorch-fid's InceptionV3 exported
    /// with torch.onnx.export; its first output, flattened, is the feature vector). Images are
    /// resized bilinearly to its declared input size (299x299 if none) and scaled to [-1, 1].
    #[arg(long, value_name = "ONNX")]
    inception: Option<PathBuf>,
    /// Also write the attribute frequencies (real, samples) as CSV to this file.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Images per batch.
    #[arg(long, default_value_t = 100, value_parser = super::count())]
    batch_size: usize,
    /// Seed of the prior samples, the real subset and the reconstruction noise.
    #[arg(long, default_value_t = 0, value_parser = super::seed())]
    seed: u64,
    #[command(flatten)]
    workers: super::flags::Workers,
}

pub fn run(a: ScoreArgs) -> Result<()> {
    let Some(split) = Split::parse(&a.split) else {
        bail!("--split must be train, val or test, not \"{}\"", a.split);
    };
    super::check_files(
        &[
            ("--checkpoint", Some(&a.checkpoint.path)),
            ("--classifier", Some(&a.classifier)),
            ("--data", Some(&a.data)),
            ("--inception", a.inception.as_deref()),
        ],
        &[("--csv", a.csv.as_deref())],
    )?;
    let pool = a.workers.pool()?;
    let ckpt = Checkpoint::load(&a.checkpoint.path)?;
    let mut vae = ckpt.build_model()?;
    let mut classifier = Stored::<ClassifierConfig>::load(&a.classifier)?.build_model()?;
    let m = &ckpt.config.model;
    let quiet = a.workers.quiet;
    let data = vae_cpu::data::source::open(&a.data, m.width, m.height, quiet)?;
    data.check_fits(&ckpt.config)?;
    let indices = data.indices(split);
    let mut inception = feature_network(a.inception.as_deref())?;
    let opts = ScoreOptions {
        samples: a.samples,
        batch: a.batch_size,
        seed: a.seed,
    };
    let bar = vae_cpu::progress::bar(0, "images", quiet);
    let report = pool.install(|| {
        score(
            &mut vae,
            &mut classifier,
            &data,
            &indices,
            opts,
            inception.as_deref_mut(),
            &bar,
        )
    })?;
    print_report(&a, &report);
    if let Some(csv) = &a.csv {
        let mut text = String::from("attribute,real,samples\n");
        for f in &report.frequencies {
            text += &format!("{},{:.6},{:.6}\n", f.name, f.real, f.samples);
        }
        vae_cpu::atomic_file::write(csv, text.as_bytes())?;
        println!("wrote {}", csv.display());
    }
    Ok(())
}

type Features = Box<vae_cpu::quality::score::FeatureFn<'static>>;

/// The `--inception` network as a feature function (only in builds with tract).
#[cfg(feature = "onnx-runtime")]
fn feature_network(path: Option<&std::path::Path>) -> Result<Option<Features>> {
    let Some(path) = path else { return Ok(None) };
    let net = vae_cpu::onnx::inception::FeatureNetwork::load(path)?;
    Ok(Some(Box::new(move |x| net.features(x))))
}

#[cfg(not(feature = "onnx-runtime"))]
fn feature_network(path: Option<&std::path::Path>) -> Result<Option<Features>> {
    match path {
        Some(_) => bail!("--inception needs a build with the onnx-runtime feature (the default)"),
        None => Ok(None),
    }
}

fn print_report(a: &ScoreArgs, r: &ScoreReport) {
    println!(
        "{} on the {} split ({} real images, {} samples from the prior, seed {})",
        a.checkpoint.path.display(),
        a.split,
        r.real_images,
        r.samples,
        a.seed
    );
    println!(
        "reconstruction (z = mean): MSE {:.6}  PSNR {:.2} dB  SSIM {:.4}",
        r.recon.mse, r.recon.psnr, r.recon.ssim
    );
    println!(
        "Fréchet distance, classifier features: {:.3} (the classifier's own feature space; \
         not comparable with published FIDs)",
        r.frechet_classifier
    );
    if let (Some(fid), Some(path)) = (r.frechet_inception, &a.inception) {
        println!("FID ({}): {fid:.3}", path.display());
    }
    println!(
        "attribute frequencies (classifier p > 0.5), mean |samples - real|: {:.4}",
        r.frequency_gap()
    );
    let mut gaps: Vec<_> = r.frequencies.iter().collect();
    gaps.sort_by(|x, y| {
        (y.samples - y.real)
            .abs()
            .total_cmp(&(x.samples - x.real).abs())
    });
    for f in gaps.iter().take(5) {
        println!(
            "  {:<20} real {:5.1}%  samples {:5.1}%",
            f.name,
            100.0 * f.real,
            100.0 * f.samples
        );
    }
}
