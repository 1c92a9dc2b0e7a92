//! One file per subcommand; each parses its flags and calls the library.

pub mod activations;
pub mod attributes;
pub mod data_source;
pub mod demo;
pub mod evaluate;
pub mod explore;
pub mod images;
pub mod info;
pub mod latent_map;
pub mod onnx;
pub mod prepare;
pub mod train;
pub mod traverse;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Command {
    Demo(demo::DemoArgs),
    Prepare(prepare::PrepareArgs),
    Train(train::TrainArgs),
    Evaluate(evaluate::EvaluateArgs),
    Sample(explore::SampleArgs),
    Reconstruct(explore::ReconstructArgs),
    Interpolate(explore::InterpolateArgs),
    AttributeVector(attributes::AttributeVectorArgs),
    Morph(attributes::MorphArgs),
    Traverse(traverse::TraverseArgs),
    LatentMap(latent_map::LatentMapArgs),
    Activations(activations::ActivationsArgs),
    ExportOnnx(onnx::ExportArgs),
    VerifyOnnx(onnx::VerifyArgs),
    Generate(onnx::GenerateArgs),
    Info(info::InfoArgs),
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(a) => demo::run(a),
        Command::Prepare(a) => prepare::run(a),
        Command::Train(a) => train::run(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Sample(a) => explore::sample(a),
        Command::Reconstruct(a) => explore::reconstruct(a),
        Command::Interpolate(a) => explore::interpolate(a),
        Command::AttributeVector(a) => attributes::attribute_vector(a),
        Command::Morph(a) => attributes::morph(a),
        Command::Traverse(a) => traverse::run(a),
        Command::LatentMap(a) => latent_map::run(a),
        Command::Activations(a) => activations::run(a),
        Command::ExportOnnx(a) => onnx::export_onnx(a),
        Command::VerifyOnnx(a) => onnx::verify_onnx(a),
        Command::Generate(a) => onnx::generate(a),
        Command::Info(a) => info::run(a),
    }
}

/// The rayon pool of `--threads` (default: every core).
pub fn pool(threads: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok(vae_cpu::threads::thread_pool(n)?)
}
