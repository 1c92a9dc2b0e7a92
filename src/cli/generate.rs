//! `generate`: faces from an ONNX decoder with tract alone. This is the one command of the
//! edge build (`--no-default-features --features edge`), so it uses nothing of the engine.
//! `--save-values` / `--compare-values` carry the raw output between machines (an x86 run
//! and an aarch64 one, say) to check that they agree number by number. `--cond` sets a
//! conditional decoder's condition; `--time` measures the decoder's latency on the device;
//! `--interpolate A,B` walks from one seed's face to another's.

use super::save;
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use vae_cpu::npy::{self, Array};
use vae_cpu::onnx::run::OnnxModel;
use vae_cpu::{condition_spec, prior, timing, viz};

/// Decode random faces with an ONNX decoder, using tract only.
#[derive(Args)]
pub struct GenerateArgs {
    /// The ONNX decoder written by `export-onnx`.
    #[arg(long)]
    onnx: PathBuf,
    /// Number of faces.
    #[arg(long, default_value_t = 16)]
    n: usize,
    /// Seed of the latents z ~ N(0, I) (the same seed gives the same latents on every
    /// machine, and as `vae-cpu sample` with that seed).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Faces per row (1 to 1024).
    #[arg(long, default_value_t = 8, value_parser = super::usize_in(1..=1024))]
    cols: usize,
    /// Enlarge each face by this integer factor (1 to 16).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    scale: u32,
    /// The PNG to write.
    #[arg(long, default_value = "generated.png")]
    out: PathBuf,
    /// Also write the decoder's raw output ([N, C, H, W] f32) to this .npy file.
    #[arg(long, value_name = "FILE.npy")]
    save_values: Option<PathBuf>,
    /// Compare the raw output with a .npy file saved by `--save-values` (same decoder,
    /// --n and --seed, on another machine) and fail if they differ by more than --tolerance.
    #[arg(long, value_name = "FILE.npy")]
    compare_values: Option<PathBuf>,
    /// The largest allowed absolute difference for --compare-values.
    #[arg(long, default_value_t = 1e-4, value_parser = super::non_negative)]
    tolerance: f32,
    /// For a conditional decoder: its condition, `NAME=VALUE` pairs such as
    /// "Smiling=1,Male=-1" (values from -1 to 1; unnamed conditions stay 0).
    #[arg(long, value_name = "NAME=VALUE,...")]
    cond: Option<String>,
    /// Instead of --n independent faces: --n faces along the great circle (slerp) from the
    /// latent of seed A to that of seed B, e.g. `--interpolate 3,7 --n 8` (the ends are
    /// the first faces of `--seed 3` and `--seed 7`).
    #[arg(long, value_name = "SEED_A,SEED_B", value_parser = seed_pair)]
    interpolate: Option<(u64, u64)>,
    /// Also decode the same batch this many more times (after up to 3 untimed runs) and
    /// print the median and 90th percentile latency (tract runs on one thread), e.g.
    /// `--n 1 --time 50` on a Pi.
    #[arg(long, value_name = "RUNS", value_parser = super::usize_in(1..=100_000))]
    time: Option<usize>,
}

pub fn generate(a: GenerateArgs) -> Result<()> {
    if a.n == 0 || a.n > 10_000 {
        bail!("--n must be between 1 and 10000, got {}", a.n);
    }
    super::check_files(
        &[
            ("--onnx", Some(&a.onnx)),
            ("--compare-values", a.compare_values.as_deref()),
        ],
        &[
            ("--out", Some(&a.out)),
            ("--save-values", a.save_values.as_deref()),
        ],
    )?;
    // Read the reference first: a wrong path should fail before the decoder runs.
    let reference = a.compare_values.as_deref().map(npy::read).transpose()?;
    let onnx = OnnxModel::load(&a.onnx)?;
    let cond = condition(&onnx, &a)?;
    let latent_size = onnx.input_width()?;
    let z = match a.interpolate {
        Some((from, to)) => {
            if a.n < 2 {
                bail!(
                    "--interpolate needs --n 2 or more (the faces along the path, ends included)"
                );
            }
            let ends = [from, to].map(|s| prior::normal_values(latent_size, s, 1.0));
            prior::path(&ends[0], &ends[1], a.n, true)
        }
        None => prior::normal_values(a.n * latent_size, a.seed, 1.0),
    };
    let output = onnx.decode(a.n, z.clone(), cond.as_deref())?;
    let range = onnx.pixel_range();
    let Some(images) = viz::nchw_images(&output.shape, &output.values, range) else {
        bail!(
            "{}: expected an image output [N, C, H, W] with 1 or 3 channels",
            a.onnx.display()
        )
    };
    save(&a.out, &viz::grid(&images, a.cols, a.scale))?;
    let values = Array {
        shape: output.shape,
        values: output.values,
    };
    if let Some(path) = &a.save_values {
        npy::write(path, &values)?;
        println!("wrote {}", path.display());
    }
    if let (Some(reference), Some(path)) = (reference, &a.compare_values) {
        compare(&values, &reference, path, a.tolerance)?;
    }
    if let Some(runs) = a.time {
        let budget = std::time::Duration::ZERO;
        let decode = || onnx.decode(a.n, z.clone(), cond.as_deref()).map(|_| ());
        let l = timing::measure(3.min(runs), runs, runs, budget, decode)?;
        println!(
            "decoding {} face{}: median {:.3} ms, 90th percentile {:.3} ms over {} runs",
            a.n,
            if a.n == 1 { "" } else { "s" },
            l.median_ms,
            l.p90_ms,
            l.runs
        );
    }
    Ok(())
}

/// `A,B`: two seeds.
fn seed_pair(text: &str) -> std::result::Result<(u64, u64), String> {
    let parse = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("\"{s}\" is not a seed (a whole number from 0)"))
    };
    match text.split_once(',') {
        Some((a, b)) => Ok((parse(a)?, parse(b)?)),
        None => Err("give two seeds separated by a comma, e.g. 3,7".into()),
    }
}

/// The condition `--cond` gives, for a conditional decoder; an error when the decoder
/// takes none.
fn condition(onnx: &OnnxModel, a: &GenerateArgs) -> Result<Option<Vec<f32>>> {
    let Some(spec) = &a.cond else {
        return Ok(None);
    };
    let names = onnx.conditions();
    if names.is_empty() {
        bail!(
            "{} is not a conditional decoder (it takes no \"cond\" input), so --cond does \
             not apply",
            a.onnx.display()
        );
    }
    Ok(Some(condition_spec::parse(names, spec)?))
}

/// Fails unless `got` has the reference's shape and lies within `tolerance` of it.
fn compare(got: &Array, want: &Array, path: &std::path::Path, tolerance: f32) -> Result<()> {
    if got.shape != want.shape {
        bail!(
            "{}: holds shape {:?} but this output is {:?} (another decoder, --n or --seed?)",
            path.display(),
            want.shape,
            got.shape
        );
    }
    let diff = npy::max_abs_diff(&got.values, &want.values);
    println!("max |output - {}| = {diff:.3e}", path.display());
    if diff > tolerance {
        bail!(
            "the output differs from {} by {diff:.3e} (> {tolerance:.0e})",
            path.display()
        );
    }
    println!("ok: within {tolerance:.0e}");
    Ok(())
}
