//! One file per subcommand; each parses its flags and calls the library. Without the
//! `engine` feature (the edge build) only `generate` is compiled.

#[cfg(feature = "engine")]
pub mod activations;
#[cfg(feature = "engine")]
pub mod attributes;
#[cfg(feature = "engine")]
pub mod bench;
#[cfg(feature = "engine")]
pub mod classifier;
#[cfg(feature = "engine")]
pub mod demo;
#[cfg(feature = "engine")]
pub mod evaluate;
#[cfg(feature = "engine")]
pub mod explore;
#[cfg(feature = "engine")]
pub mod flags;
#[cfg(feature = "decoder-runtime")]
pub mod generate;
#[cfg(feature = "engine")]
pub mod images;
#[cfg(feature = "engine")]
pub mod info;
#[cfg(feature = "engine")]
pub mod latent_map;
#[cfg(feature = "engine")]
pub mod models;
#[cfg(feature = "engine")]
pub mod onnx;
#[cfg(feature = "engine")]
pub mod prepare;
#[cfg(feature = "engine")]
pub mod score;
#[cfg(feature = "engine")]
pub mod serve;
#[cfg(feature = "engine")]
pub mod sweep;
#[cfg(feature = "engine")]
pub mod train;
#[cfg(feature = "engine")]
pub mod traverse;
#[cfg(all(feature = "engine", feature = "decoder-runtime"))]
pub mod verify;
#[cfg(feature = "engine")]
pub mod world;

use clap::Subcommand;
use std::path::Path;

#[derive(Subcommand)]
pub enum Command {
    #[cfg(feature = "engine")]
    Demo(demo::DemoArgs),
    #[cfg(feature = "engine")]
    Prepare(prepare::PrepareArgs),
    #[cfg(feature = "engine")]
    Train(train::TrainArgs),
    #[cfg(feature = "engine")]
    Sweep(sweep::SweepArgs),
    #[cfg(feature = "engine")]
    Evaluate(evaluate::EvaluateArgs),
    #[cfg(feature = "engine")]
    Classifier(classifier::ClassifierArgs),
    #[cfg(feature = "engine")]
    Score(score::ScoreArgs),
    #[cfg(feature = "engine")]
    Sample(explore::SampleArgs),
    #[cfg(feature = "engine")]
    Reconstruct(explore::ReconstructArgs),
    #[cfg(feature = "engine")]
    Interpolate(explore::InterpolateArgs),
    #[cfg(feature = "engine")]
    AttributeVector(attributes::AttributeVectorArgs),
    #[cfg(feature = "engine")]
    Morph(attributes::MorphArgs),
    #[cfg(feature = "engine")]
    Traverse(traverse::TraverseArgs),
    #[cfg(feature = "engine")]
    LatentMap(latent_map::LatentMapArgs),
    #[cfg(feature = "engine")]
    Activations(activations::ActivationsArgs),
    #[cfg(feature = "engine")]
    Serve(serve::ServeArgs),
    #[cfg(feature = "engine")]
    ExportOnnx(onnx::ExportArgs),
    #[cfg(all(feature = "engine", feature = "decoder-runtime"))]
    VerifyOnnx(verify::VerifyArgs),
    #[cfg(feature = "decoder-runtime")]
    Generate(generate::GenerateArgs),
    #[cfg(feature = "engine")]
    Bench(bench::BenchArgs),
    #[cfg(feature = "engine")]
    Info(info::InfoArgs),
    #[cfg(feature = "engine")]
    Models(models::ModelsArgs),
    #[cfg(feature = "engine")]
    Completions(models::CompletionsArgs),
    #[cfg(feature = "engine")]
    Man(models::ManArgs),
}

/// Runs `command`; `cli` builds the whole command line (for completions and the man page).
pub fn run(command: Command, cli: impl FnOnce() -> clap::Command) -> anyhow::Result<()> {
    #[cfg(not(feature = "engine"))]
    let _ = cli;
    #[cfg(feature = "engine")]
    if !matches!(
        command,
        Command::Train(_) | Command::Sweep(_) | Command::Evaluate(_)
    ) {
        world::refuse_several_ranks()?;
    }
    match command {
        #[cfg(feature = "engine")]
        Command::Demo(a) => demo::run(a),
        #[cfg(feature = "engine")]
        Command::Prepare(a) => prepare::run(a),
        #[cfg(feature = "engine")]
        Command::Train(a) => train::run(a),
        #[cfg(feature = "engine")]
        Command::Sweep(a) => sweep::run(a),
        #[cfg(feature = "engine")]
        Command::Evaluate(a) => evaluate::run(a),
        #[cfg(feature = "engine")]
        Command::Classifier(a) => classifier::run(a),
        #[cfg(feature = "engine")]
        Command::Score(a) => score::run(a),
        #[cfg(feature = "engine")]
        Command::Sample(a) => explore::sample(a),
        #[cfg(feature = "engine")]
        Command::Reconstruct(a) => explore::reconstruct(a),
        #[cfg(feature = "engine")]
        Command::Interpolate(a) => explore::interpolate(a),
        #[cfg(feature = "engine")]
        Command::AttributeVector(a) => attributes::attribute_vector(a),
        #[cfg(feature = "engine")]
        Command::Morph(a) => attributes::morph(a),
        #[cfg(feature = "engine")]
        Command::Traverse(a) => traverse::run(a),
        #[cfg(feature = "engine")]
        Command::LatentMap(a) => latent_map::run(a),
        #[cfg(feature = "engine")]
        Command::Activations(a) => activations::run(a),
        #[cfg(feature = "engine")]
        Command::Serve(a) => serve::run(a),
        #[cfg(feature = "engine")]
        Command::ExportOnnx(a) => onnx::export_onnx(a),
        #[cfg(all(feature = "engine", feature = "decoder-runtime"))]
        Command::VerifyOnnx(a) => verify::verify_onnx(a),
        #[cfg(feature = "decoder-runtime")]
        Command::Generate(a) => generate::generate(a),
        #[cfg(feature = "engine")]
        Command::Bench(a) => bench::run(a),
        #[cfg(feature = "engine")]
        Command::Info(a) => info::run(a),
        #[cfg(feature = "engine")]
        Command::Models(a) => models::run(a),
        #[cfg(feature = "engine")]
        Command::Completions(a) => models::completions(a, &mut cli()),
        #[cfg(feature = "engine")]
        Command::Man(_) => models::man(cli()),
    }
}

/// A count flag that a run's config stores (epochs, batch size, patience): 1 up to
/// i64::MAX, TOML's largest integer. A larger number is refused with the range.
#[cfg(feature = "engine")]
pub fn count() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=i64::MAX as u64)
}

/// A seed: 0 up to i64::MAX (stored in the run's config as a TOML integer).
#[cfg(feature = "engine")]
pub fn seed() -> clap::builder::RangedU64ValueParser<u64> {
    clap::builder::RangedU64ValueParser::<u64>::new().range(0..=i64::MAX as u64)
}

/// A whole-number flag allowed in `range` (clap refuses others, naming the range).
pub fn usize_in(
    range: std::ops::RangeInclusive<u64>,
) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(range)
}

/// A flag value that must be a finite number >= 0 (a NaN tolerance would pass anything).
pub fn non_negative(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("\"{s}\" is not a finite number >= 0")),
    }
}

/// Declares a command's input and output files before it works: an output that is an
/// input, two outputs on one path, or an output that is a folder or device is refused, and
/// no later write may replace an input (`vae_cpu::file_guard`). `None` entries are flags
/// not given.
pub fn check_files(
    inputs: &[(&str, Option<&Path>)],
    outputs: &[(&str, Option<&Path>)],
) -> anyhow::Result<()> {
    fn given<'a>(list: &[(&'a str, Option<&'a Path>)]) -> Vec<(&'a str, &'a Path)> {
        list.iter()
            .filter_map(|&(f, p)| p.map(|p| (f, p)))
            .collect()
    }
    Ok(vae_cpu::file_guard::check_command(
        &given(inputs),
        &given(outputs),
    )?)
}

/// The folder of a training run (`train`, `classifier train`): `--resume`, else `--out`,
/// else runs/<model name>.
#[cfg(feature = "engine")]
pub fn run_folder(
    resume: Option<&Path>,
    out: Option<&Path>,
    model: Option<&str>,
) -> std::path::PathBuf {
    match (resume.or(out), model) {
        (Some(folder), _) => folder.to_path_buf(),
        (None, Some(name)) => Path::new("runs").join(vae_cpu::train::run_dir::folder_name(name)),
        (None, None) => unreachable!("clap requires --config without --resume"),
    }
}

/// Saves a PNG and says where.
pub fn save(out: &Path, img: &image::RgbImage) -> anyhow::Result<()> {
    vae_cpu::viz::save_png(out, img)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// The rayon pool of `--threads` (default: every core).
#[cfg(feature = "engine")]
pub fn pool(threads: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok(vae_cpu::threads::thread_pool(n)?)
}

/// Routes the matrix products to `--device`; when it cannot be used, says why (once) and
/// leaves them on the CPU.
#[cfg(feature = "engine")]
pub fn use_device(device: vae_cpu::kernels::offload::Device) {
    match vae_cpu::kernels::offload::use_device(device) {
        Ok(Some(name)) => eprintln!("matrix products run on {name}"),
        Ok(None) => {}
        Err(why) => eprintln!("warning: --device {device}: {why}; running on the CPU"),
    }
}

/// What Ctrl-C says during training.
#[cfg(feature = "engine")]
pub const TRAINING_STOP: &str =
    "stopping after this step and saving a checkpoint (Ctrl-C again to quit at once)";

/// Makes Ctrl-C ask a loop to stop after its current step (the flag returned), saying
/// `message` on the terminal (none when empty); a second Ctrl-C quits at once.
#[cfg(feature = "engine")]
pub fn stop_on_ctrl_c(
    message: &'static str,
) -> anyhow::Result<&'static std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static STOP: AtomicBool = AtomicBool::new(false);
    ctrlc::set_handler(move || {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        if !message.is_empty() {
            eprintln!("\n{message}");
        }
    })
    .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    Ok(&STOP)
}
