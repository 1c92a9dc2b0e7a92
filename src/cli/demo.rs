use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use vae_cpu::collective::SingleProcess;
use vae_cpu::config::{Config, Overrides};
use vae_cpu::data::prepare::{PrepareOptions, CELEBA_CROP_FRACTION};
use vae_cpu::data::{synthetic, Dataset, Split};
use vae_cpu::train::{evaluate, Outcome, RunDir, TrainOptions, Trainer};

/// The whole job on generated faces, no download needed: draw a CelebA-format data set,
/// prepare it, train `models/demo32.toml` on it, evaluate, and write the pictures.
#[derive(Args)]
pub struct DemoArgs {
    /// Folder for the generated data, the cache and the run.
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// Number of faces to draw (20 to 1000000).
    #[arg(long, default_value_t = 3000, value_parser = super::usize_in(20..=1_000_000))]
    images: usize,
    /// Training epochs (at least 1).
    #[arg(long, value_parser = super::count())]
    epochs: Option<usize>,
    #[command(flatten)]
    workers: super::flags::Workers,
}

pub fn run(a: DemoArgs) -> Result<()> {
    let pool = a.workers.pool()?;
    let demo = vae_cpu::config::builtin::text("demo32").expect("demo32 is built in");
    let mut config = Config::parse(demo)?;
    if let Some(e) = a.epochs {
        config.trainer.epochs = e;
    }
    let data_dir = a.out.join("data");
    let cache = a.out.join(format!("faces-{}.vaecache", a.images));
    let run_dir = a.out.join("run");
    // One demo per folder at a time (the run inside is locked again by the trainer).
    let _lock = RunDir::new(&a.out).lock()?;
    pool.install(|| -> Result<()> {
        if !cache.exists() {
            eprintln!("drawing {} faces into {}", a.images, data_dir.display());
            synthetic::write_dataset(&data_dir, a.images, 1)?;
            let opts = PrepareOptions::new(32, 32, CELEBA_CROP_FRACTION);
            vae_cpu::data::source::prepare_into(&data_dir, &opts, &cache, a.workers.quiet)?;
        }
        let data = Dataset::open(&cache)?;
        let opts = TrainOptions {
            out: run_dir.clone(),
            val_limit: None,
            quiet: a.workers.quiet,
            world: vae_cpu::collective::single(),
        };
        let mut trainer = if !RunDir::new(&run_dir).list_checkpoints().is_empty() {
            Trainer::resume(
                &data,
                opts,
                &Overrides::resumable(Some(config.trainer.epochs), None),
            )?
        } else {
            Trainer::new(&config, &data, opts)?
        };
        if trainer.run(&AtomicBool::new(false))? == Outcome::Finished {
            let test = data.indices(Split::Test);
            let bar = vae_cpu::progress::bar(0, "images", true);
            let r = evaluate(
                &mut trainer.model,
                &data,
                &test,
                256,
                0,
                &SingleProcess,
                &bar,
            );
            println!(
                "test split ({} images): MSE {:.5}, PSNR {:.1} dB, KL {:.2}, active dims {} of {}",
                r.images, r.mse, r.psnr, r.kl, r.active_dims, r.latent
            );
        }
        let r = &run_dir;
        println!("samples:         {}", r.join("samples.png").display());
        println!(
            "reconstructions: {}",
            r.join("reconstructions.png").display()
        );
        println!("loss curve:      {}", r.join("loss.png").display());
        println!(
            "next: vae-cpu evaluate --checkpoint {} --data {}",
            r.join("checkpoints/best.safetensors").display(),
            cache.display()
        );
        Ok(())
    })
}
