use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use vae_cpu::checkpoint::Checkpoint;
use vae_cpu::data::Split;
use vae_cpu::latent::disentanglement::FACTORS;
use vae_cpu::train::evaluate;

/// Measure a checkpoint on a split: reconstruction MSE, PSNR, KL, negative ELBO, active dims.
#[derive(Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    /// A cache from `vae-cpu prepare`, or a CelebA folder.
    #[arg(long)]
    data: PathBuf,
    /// Which split to evaluate: train, val or test.
    #[arg(long, default_value = "test")]
    split: String,
    /// Use at most this many images of the split.
    #[arg(long)]
    limit: Option<usize>,
    /// Images per batch.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    #[command(flatten)]
    disentanglement: super::flags::Disentanglement,
    #[command(flatten)]
    workers: super::flags::Workers,
}

pub fn run(a: EvaluateArgs) -> Result<()> {
    let Some(split) = Split::parse(&a.split) else {
        bail!("--split must be train, val or test, not \"{}\"", a.split);
    };
    super::check_files(
        &[
            ("--checkpoint", Some(&a.checkpoint.path)),
            ("--data", Some(&a.data)),
        ],
        &[],
    )?;
    let pool = a.workers.pool()?;
    let world = super::world::world()?;
    let quiet = a.workers.quiet || !world.is_root();
    let ckpt = Checkpoint::load(&a.checkpoint.path)?;
    let m = &ckpt.config.model;
    let data = super::world::open_data(world.as_ref(), || {
        Ok(vae_cpu::data::source::open(
            &a.data, m.width, m.height, quiet,
        )?)
    })?;
    data.check_fits(&ckpt.config)?;
    if a.batch_size == 0 || a.limit == Some(0) {
        bail!("--batch-size and --limit must be at least 1");
    }
    let mut indices = data.indices(split);
    indices.truncate(a.limit.unwrap_or(usize::MAX));
    let batch = a.batch_size.min(indices.len());
    vae_cpu::train::memory::check_batch_fits(&ckpt.config, &ckpt.config.plan()?, batch)?;
    if indices.is_empty() {
        bail!(
            "{}: the {} split is empty ({})",
            data.path.display(),
            a.split,
            data.split_summary()
        );
    }
    let mut model = ckpt.build_model()?;
    vae_cpu::onnx::feature_net::attach(&mut model)?;
    let bar = vae_cpu::progress::bar(0, "images", quiet);
    let r = pool.install(|| {
        evaluate(
            &mut model,
            &data,
            &indices,
            a.batch_size,
            ckpt.config.exp.seed,
            world.as_ref(),
            &bar,
        )
    });
    if !world.is_root() {
        return Ok(()); // rank 0 reports the whole split
    }
    let exp = &ckpt.config.exp;
    println!(
        "checkpoint:        {} (epoch {}, step {})",
        a.checkpoint.path.display(),
        ckpt.epoch,
        ckpt.step
    );
    println!("split:             {} ({} images)", a.split, r.images);
    println!(
        "MSE per pixel:     {:.6} (on the [0, 1] scale, z = mean)",
        r.mse
    );
    println!("PSNR:              {:.2} dB", r.psnr);
    println!(
        "SSIM:              {:.4} (11x11 Gaussian window, sigma 1.5, z = mean)",
        r.ssim
    );
    println!(
        "reconstruction:    {:.6} ({:?} {:?}, z sampled)",
        r.recon, exp.recon_loss, exp.recon_reduction
    );
    println!(
        "KL:                {:.4} (nats per image, summed over latent dims)",
        r.kl
    );
    println!(
        "negative ELBO:     {:.4} (= {} * reconstruction + {} * KL, the training objective)",
        r.loss, exp.recon_weight, exp.kld_weight
    );
    println!(
        "active dimensions: {} of {} (Var over images of E[z_d] > 0.01)",
        r.active_dims, r.latent
    );
    if let Some(d) = pool.install(|| a.disentanglement.measure(&mut model, quiet)) {
        let factors = FACTORS.iter().zip(&d.per_factor);
        let each: Vec<String> = factors.map(|(f, a)| format!("{f} {a:.2}")).collect();
        println!(
            "disentanglement:   {:.3} (Higgins et al. 2017 on generated faces; chance {:.3}; {})",
            d.accuracy,
            d.chance,
            each.join(", ")
        );
    }
    Ok(())
}
