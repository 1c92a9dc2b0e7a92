//! `serve`: the latent-space explorer in the browser (`vae_cpu::serve`).

use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use vae_cpu::latent::attribute::AttributeVector;
use vae_cpu::serve::{Explorer, ExplorerOptions, Server};

/// Explore a trained model in the browser: prior samples, a face and its reconstruction,
/// attribute and latent-dimension sliders, interpolation, the latent map.
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    checkpoint: super::flags::CheckpointArg,
    /// A cache from `vae-cpu prepare` (or a CelebA folder): the faces to pick (val split),
    /// the attribute vectors and the latent map (train split).
    #[arg(long)]
    data: Option<PathBuf>,
    /// A folder of `.attrvec` files from `vae-cpu attribute-vector` (sliders without --data;
    /// with it, they replace the computed vectors of their attributes).
    #[arg(long, value_name = "DIR")]
    vectors: Option<PathBuf>,
    /// The address to listen on. The default answers this machine only; 0.0.0.0 lets
    /// anyone who can reach this machine use the page.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port (0: any free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Images of the train split of --data encoded at start (attribute vectors, ranking of
    /// the latent dimensions, the map).
    #[arg(long, default_value_t = 2000, value_parser = super::usize_in(1..=1_000_000))]
    limit: usize,
    /// Points on the latent map (t-SNE takes a few seconds for 500).
    #[arg(long, default_value_t = 500, value_parser = super::usize_in(3..=5000))]
    map_points: usize,
    #[command(flatten)]
    workers: super::flags::Workers,
}

pub fn run(a: ServeArgs) -> Result<()> {
    super::check_files(
        &[
            ("--checkpoint", Some(&a.checkpoint.path)),
            ("--data", a.data.as_deref()),
            ("--vectors", a.vectors.as_deref()),
        ],
        &[],
    )?;
    let pool = a.workers.pool()?;
    let model = a.checkpoint.load_model()?;
    let data = match &a.data {
        Some(path) => Some(super::images::open_data(path, &model, a.workers.quiet)?),
        None => None,
    };
    let vectors = match &a.vectors {
        Some(dir) => load_vectors(dir)?,
        None => vec![],
    };
    let opts = ExplorerOptions {
        limit: a.limit,
        map_points: a.map_points,
    };
    let bar = vae_cpu::progress::bar(0, "images", a.workers.quiet);
    bar.set_prefix("encoding the data");
    let mut explorer = pool.install(|| Explorer::new(model, data, vectors, &opts, &bar))?;
    let server = Server::bind(&a.host, a.port)?;
    // Ctrl-C ends the server after the request it is answering.
    let stop = super::stop_on_ctrl_c("")?;
    if !server.address().ip().is_loopback() {
        eprintln!(
            "warning: listening on {}: anyone who can reach this machine can use the page",
            server.address()
        );
    }
    println!(
        "serving {} at http://{}/ (Ctrl-C stops)",
        explorer.model().config.model.name,
        server.address()
    );
    std::io::stdout().flush()?;
    let bar = vae_cpu::progress::bar(0, "steps", a.workers.quiet);
    bar.set_prefix("t-SNE");
    pool.install(|| server.run(&mut explorer, stop, &bar))?;
    println!("stopped");
    Ok(())
}

/// Every `.attrvec` file in `dir` (sorted by name); a folder without one is an error.
fn load_vectors(dir: &Path) -> Result<Vec<AttributeVector>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("--vectors {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "attrvec"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "--vectors {}: no .attrvec files (write them with vae-cpu attribute-vector)",
            dir.display()
        );
    }
    Ok(files
        .iter()
        .map(|f| AttributeVector::load(f))
        .collect::<Result<_, _>>()?)
}
