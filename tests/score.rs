//! `vae-cpu score`: a VAE measured through an attribute classifier, and through a feature
//! network given as ONNX (the FID's Inception; here a small generated one) run by tract,
//! whose features match our own engine's on the same resized input.

#![cfg(all(feature = "engine", feature = "onnx-runtime"))]

mod common;

use common::{assert_clear_error, run_ok, vae_cpu};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use vae_cpu::config::{ClassifierConfig, FeatureNormalize, PixelRange};
use vae_cpu::data::Dataset;
use vae_cpu::onnx::inception::{resize_bilinear, FeatureNetwork};
use vae_cpu::test_support::tiny_vgg::tiny_vgg;
use vae_cpu::train::classifier::{ClassifierOptions, ClassifierTrainer};
use vae_cpu::{Tensor, Var};

/// Trains a one-epoch classifier of 16x16 faces on `cache` into `dir/clf`; returns its
/// best checkpoint.
fn small_classifier(dir: &Path, cache: &Path) -> std::path::PathBuf {
    let config = ClassifierConfig::parse(
        r#"
[model]
name = "clf16"
height = 16
width = 16
attributes = ["Wearing_Hat", "Eyeglasses", "Smiling"]
[[model.layers]]
layers = [{ type = "conv2d", filters = 8, kernel = 4, stride = 2, padding = "same" },
          { type = "relu" }, { type = "flatten" }]
[trainer]
epochs = 1
batch_size = 8
"#,
    )
    .unwrap();
    let data = Dataset::open(cache).unwrap();
    let opts = ClassifierOptions {
        out: dir.join("clf"),
        val_limit: None,
        quiet: true,
    };
    let mut t = ClassifierTrainer::new(&config, &data, opts).unwrap();
    t.run(&AtomicBool::new(false)).unwrap();
    dir.join("clf/checkpoints/best.safetensors")
}

fn value_after<'a>(text: &'a str, label: &str) -> &'a str {
    let line = text.lines().find(|l| l.contains(label)).unwrap();
    line.split(label)
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
}

#[test]
fn score_reports_reconstruction_distances_and_frequencies() {
    let dir = common::workspace();
    let clf = small_classifier(dir.path(), &dir.path().join("faces.vaecache"));
    let net = dir.path().join("net.onnx");
    vae_cpu::onnx::export::write(&net, &tiny_vgg(3, 5, None)).unwrap();
    let args = |seed: &str| {
        vec![
            "score",
            "--checkpoint",
            common::BEST,
            "--classifier",
            clf.to_str().unwrap(),
            "--data",
            "faces.vaecache",
            "--split",
            "train",
            "--samples",
            "20",
            "--inception",
            "net.onnx",
            "--seed",
            seed,
            "--csv",
            "freq.csv",
            "--quiet",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let run = |seed: &str| {
        let a = args(seed);
        run_ok(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            dir.path(),
        )
    };
    let out = run("3");
    let classifier_fd: f64 = value_after(&out, "classifier features: ").parse().unwrap();
    let fid: f64 = value_after(&out, "FID (net.onnx): ").parse().unwrap();
    let mse: f64 = value_after(&out, "MSE ").parse().unwrap();
    assert!(classifier_fd > 0.0 && fid > 0.0 && mse > 0.0, "{out}");
    assert!(out.contains("20 real images, 20 samples"), "{out}");
    assert_eq!(run("3"), out, "seeded: the same report again");
    let csv = std::fs::read_to_string(dir.path().join("freq.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("Wearing_Hat,"));
}

#[test]
fn a_classifier_of_another_size_or_kind_is_refused() {
    let dir = common::workspace();
    let cache32 = common::faces_cache(&dir.path().join("c32"), 30, 32);
    std::fs::write(
        dir.path().join("c.toml"),
        ClassifierConfig::load_named(Path::new("attributes32"))
            .unwrap()
            .to_toml()
            .replace("epochs = 10", "epochs = 1"),
    )
    .unwrap();
    let c32 = cache32.to_str().unwrap();
    run_ok(
        &[
            "classifier",
            "train",
            "--config",
            "c.toml",
            "--data",
            c32,
            "--out",
            "a32",
            "--quiet",
        ],
        dir.path(),
    );
    let o = vae_cpu(
        &[
            "score",
            "--checkpoint",
            common::BEST,
            "--classifier",
            "a32/checkpoints/best.safetensors",
            "--data",
            "faces.vaecache",
        ],
        dir.path(),
    );
    assert_clear_error(&o, &["takes 32x32x3", "makes 16x16x3"]);
    let o = vae_cpu(
        &[
            "score",
            "--checkpoint",
            common::BEST,
            "--classifier",
            common::BEST,
            "--data",
            "faces.vaecache",
        ],
        dir.path(),
    );
    assert_clear_error(&o, &[common::BEST, "kind VAE"]);
}

/// tract's run of the network equals our engine's on the resized, [-1, 1]-scaled input.
#[test]
fn feature_network_runs_as_our_engine_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.onnx");
    vae_cpu::onnx::export::write(&path, &tiny_vgg(3, 7, None)).unwrap();
    let net = FeatureNetwork::load(&path).unwrap();
    assert_eq!(net.input(), [3, 16, 16]);
    let images = Tensor::from_shape_vec(
        vec![2, 3, 10, 12],
        (0..720).map(|k| ((k * 37 % 101) as f32) / 100.0).collect(),
    )
    .unwrap();
    let got = net.features(&images).unwrap();
    let resized: Vec<f32> = (images.as_slice().unwrap().chunks(120))
        .flat_map(|plane| resize_bilinear(plane, (10, 12), (16, 16)))
        .map(|v| 2.0 * v - 1.0)
        .collect();
    let x = Tensor::from_shape_vec(vec![2, 3, 16, 16], resized).unwrap();
    let engine = vae_cpu::onnx::feature_net::load(
        &path,
        &["relu3_1".to_string()],
        FeatureNormalize::None,
        PixelRange::Unit,
    )
    .unwrap();
    let want = engine.features(&Var::constant(x)).pop().unwrap();
    assert_eq!(got.len(), want.value().len());
    for (g, w) in got.iter().zip(want.value().iter()) {
        assert!((g - w).abs() < 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
    }
}
