//! Helpers shared by the integration tests: a small model config and generated data.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;
use vae_cpu::config::Config;
use vae_cpu::data::prepare::{prepare, PrepareOptions, CELEBA_CROP_FRACTION};
use vae_cpu::data::synthetic;

/// A 16x16 model: two strided convs (BN, PReLU), latent 6, mirrored decoder.
pub fn small_config(epochs: usize, batch_size: usize) -> Config {
    Config::parse(&format!(
        r#"
[model]
name = "small16"
height = 16
width = 16
latent = 6

[[model.encoder]]
repeat = 2
layers = [
  {{ type = "conv2d", filters = 8, kernel = 4, stride = 2, padding = "same" }},
  {{ type = "batch_norm" }},
  {{ type = "prelu" }},
]
[[model.encoder]]
layers = [{{ type = "flatten" }}]

[[model.decoder]]
layers = [{{ type = "linear", units = 128 }}, {{ type = "batch_norm" }}, {{ type = "prelu" }}, {{ type = "reshape", shape = [8, 4, 4] }}]
[[model.decoder]]
repeat = 2
layers = [
  {{ type = "conv_transpose2d", filters = 8, kernel = 4, stride = 2, padding = 1 }},
  {{ type = "batch_norm" }},
  {{ type = "prelu" }},
]
[[model.decoder]]
layers = [{{ type = "conv_transpose2d", filters = 3, kernel = 3, stride = 1, padding = 1 }}, {{ type = "sigmoid" }}]

[exp]
lr = 0.003
recon_weight = 1000.0
seed = 11

[trainer]
epochs = {epochs}
batch_size = {batch_size}
keep_last = 2
"#
    ))
    .unwrap()
}

/// A 32x32 model big enough to see the generated faces' small features (mouth, glasses):
/// three strided convs (16, 32, 32 filters, BN, PReLU), latent 16, mirrored decoder, a heavy
/// reconstruction weight.
pub fn faces32_config(epochs: usize, batch_size: usize) -> Config {
    Config::parse(&format!(
        r#"
[model]
name = "faces32"
height = 32
width = 32
latent = 16

[[model.encoder]]
layers = [{{ type = "conv2d", filters = 16, kernel = 4, stride = 2, padding = "same" }}, {{ type = "batch_norm" }}, {{ type = "prelu" }}]
[[model.encoder]]
repeat = 2
layers = [{{ type = "conv2d", filters = 32, kernel = 4, stride = 2, padding = "same" }}, {{ type = "batch_norm" }}, {{ type = "prelu" }}]
[[model.encoder]]
layers = [{{ type = "flatten" }}]

[[model.decoder]]
layers = [{{ type = "linear", units = 512 }}, {{ type = "batch_norm" }}, {{ type = "prelu" }}, {{ type = "reshape", shape = [32, 4, 4] }}]
[[model.decoder]]
repeat = 2
layers = [{{ type = "conv_transpose2d", filters = 32, kernel = 4, stride = 2, padding = 1 }}, {{ type = "batch_norm" }}, {{ type = "prelu" }}]
[[model.decoder]]
layers = [{{ type = "conv_transpose2d", filters = 16, kernel = 4, stride = 2, padding = 1 }}, {{ type = "batch_norm" }}, {{ type = "prelu" }}]
[[model.decoder]]
layers = [{{ type = "conv_transpose2d", filters = 3, kernel = 3, stride = 1, padding = 1 }}, {{ type = "sigmoid" }}]

[exp]
lr = 0.002
recon_weight = 10000.0
seed = 5

[trainer]
epochs = {epochs}
batch_size = {batch_size}
keep_last = 1
"#
    ))
    .unwrap()
}

/// A small classifier of 32x32 faces for the attributes the generator draws.
pub fn faces_classifier_config(epochs: usize) -> vae_cpu::config::ClassifierConfig {
    vae_cpu::config::ClassifierConfig::parse(&format!(
        r#"
[model]
name = "faces-classifier"
height = 32
width = 32
attributes = ["Wearing_Hat", "Eyeglasses", "Black_Hair", "Blond_Hair", "Brown_Hair",
              "Gray_Hair", "Smiling", "Male"]
[[model.layers]]
layers = [
  {{ type = "conv2d", filters = 16, kernel = 4, stride = 2, padding = "same" }},
  {{ type = "batch_norm" }}, {{ type = "prelu" }},
  {{ type = "conv2d", filters = 32, kernel = 4, stride = 2, padding = "same" }},
  {{ type = "batch_norm" }}, {{ type = "prelu" }},
  {{ type = "conv2d", filters = 32, kernel = 4, stride = 2, padding = "same" }},
  {{ type = "batch_norm" }}, {{ type = "prelu" }},
  {{ type = "flatten" }}, {{ type = "linear", units = 32 }}, {{ type = "prelu" }},
]
[exp]
lr = 0.003
[trainer]
epochs = {epochs}
batch_size = 32
keep_last = 2
"#
    ))
    .unwrap()
}

/// Trains [`faces_classifier_config`] for 6 epochs on `cache` into `dir/clf`; returns its
/// best checkpoint.
pub fn trained_faces_classifier(dir: &Path, cache: &Path) -> PathBuf {
    let data = vae_cpu::data::Dataset::open(cache).unwrap();
    let opts = vae_cpu::train::classifier::ClassifierOptions {
        out: dir.join("clf"),
        val_limit: None,
        quiet: true,
    };
    vae_cpu::train::classifier::ClassifierTrainer::new(&faces_classifier_config(6), &data, opts)
        .unwrap()
        .run(&AtomicBool::new(false))
        .unwrap();
    dir.join("clf/checkpoints/best.safetensors")
}

/// Draws `n` faces in CelebA's layout under `dir`.
pub fn faces_folder(dir: &Path, n: usize) -> PathBuf {
    let data = dir.join("faces");
    synthetic::write_dataset(&data, n, 3).unwrap();
    data
}

/// Draws `n` faces and prepares them at `size`x`size` into `dir/faces.vaecache`.
pub fn faces_cache(dir: &Path, n: usize, size: usize) -> PathBuf {
    let data = faces_folder(dir, n);
    let opts = PrepareOptions::new(size, size, CELEBA_CROP_FRACTION);
    let (contents, report) = prepare(&data, &opts, &indicatif::ProgressBar::hidden()).unwrap();
    assert!(report.skipped.is_empty());
    let path = dir.join("faces.vaecache");
    contents.write(&path).unwrap();
    path
}

/// The numbers after `label` on the line of `text` that starts with it (a row of a table
/// the binary printed).
pub fn table_row(text: &str, label: &str) -> Vec<f64> {
    let line = text.lines().find(|l| l.starts_with(label)).unwrap();
    line[label.len()..]
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect()
}

/// Runs the `vae-cpu` binary with `args` in `cwd`.
pub fn vae_cpu(args: &[&str], cwd: &Path) -> Output {
    vae_cpu_with_env(args, cwd, &[])
}

/// [`vae_cpu`] with environment variables set.
pub fn vae_cpu_with_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vae-cpu"))
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs the binary, asserts it succeeded, and returns its standard output.
pub fn run_ok(args: &[&str], cwd: &Path) -> String {
    let o = vae_cpu(args, cwd);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

/// A failure the user caused: status 1, one "error:" message containing `needles`, no panic.
pub fn assert_clear_error(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error:") && !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
}

/// A flag value clap refuses: status 2, the flag and its allowed range named, no panic.
pub fn assert_out_of_range(o: &Output, flag: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(flag) && err.contains(" is not in ") && !err.contains("panicked"),
        "{err}"
    );
}

/// Trains the small model for one epoch on `n` generated faces (16x16) under `dir`; returns
/// its best checkpoint. The faces are in `dir/faces`, the cache is `dir/faces.vaecache`.
pub fn trained_small(dir: &Path, n: usize) -> PathBuf {
    let cache = faces_cache(dir, n, 16);
    let data = vae_cpu::data::Dataset::open(&cache).unwrap();
    let out = dir.join("run");
    let opts = vae_cpu::train::TrainOptions {
        out: out.clone(),
        val_limit: None,
        quiet: true,
        world: vae_cpu::collective::single(),
    };
    vae_cpu::train::Trainer::new(&small_config(1, 16), &data, opts)
        .unwrap()
        .run(&AtomicBool::new(false))
        .unwrap();
    out.join("checkpoints/best.safetensors")
}

/// The best checkpoint of [`workspace`]'s run, relative to it.
pub const BEST: &str = "run/checkpoints/best.safetensors";

/// A temporary folder with generated faces (`faces/`, 16x16 cache `faces.vaecache`), the
/// small model's config in `ok.toml` and a one-epoch run in `run/`.
pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    trained_small(dir.path(), 40);
    std::fs::write(dir.path().join("ok.toml"), small_config(1, 8).to_toml()).unwrap();
    dir
}
