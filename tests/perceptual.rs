//! The perceptual loss: the feature network read from ONNX computes what tract computes
//! from the same file, and `train --feature-net` trains with it end to end.
#![cfg(all(feature = "engine", feature = "onnx-runtime"))]

mod common;

use common::{assert_clear_error, faces_cache, run_ok, small_config, vae_cpu};
use vae_cpu::config::{Config, FeatureNormalize, PixelRange};
use vae_cpu::model::FeatureNet;
use vae_cpu::onnx::export::{ints, write};
use vae_cpu::onnx::run::OnnxModel;
use vae_cpu::onnx::tiny_vgg::tiny_vgg;
use vae_cpu::train::metrics;
use vae_cpu::{Tensor, Var};

#[test]
fn features_match_tract_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = tiny_vgg(3, 9, Some("relu3_1"));
    // Asymmetric pads and unequal strides on the first conv: ONNX orders pads
    // [top, left, bottom, right], which a mix-up would get wrong.
    let conv = &mut model.graph.as_mut().unwrap().node[0];
    conv.attribute = vec![
        ints("kernel_shape", &[3, 3]),
        ints("pads", &[2, 0, 1, 1]),
        ints("strides", &[1, 2]),
    ];
    let path = dir.path().join("net.onnx");
    write(&path, &model).unwrap();
    let x = Tensor::from_shape_fn(vec![2, 3, 16, 16], |d| {
        ((d[0] * 5 + d[1] * 3 + d[2] * 7 + d[3]) % 13) as f32 / 13.0
    });
    let ours = FeatureNet::load(
        &path,
        &["relu3_1".into()],
        FeatureNormalize::None,
        PixelRange::Unit,
    )
    .unwrap();
    let got = ours.features(&Var::constant(x.clone())).pop().unwrap();
    let tract = OnnxModel::load(&path).unwrap();
    let want = tract
        .run(&[2, 3, 16, 16], x.iter().copied().collect())
        .unwrap()
        .remove(0);
    assert_eq!(got.shape(), &want.shape[..]);
    let scale = want.values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    for (a, b) in got.value().iter().zip(&want.values) {
        assert!((a - b).abs() <= 1e-4 * scale, "{a} vs {b}");
    }
}

#[test]
fn train_with_a_feature_network() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    faces_cache(d, 40, 16);
    std::fs::write(d.join("ok.toml"), small_config(2, 8).to_toml()).unwrap();
    write(&d.join("tiny.onnx"), &tiny_vgg(3, 4, None)).unwrap();
    let train = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--config",
            "ok.toml",
            "--data",
            "faces.vaecache",
            "--out",
            out,
            "--quiet",
        ];
        args.extend_from_slice(extra);
        run_ok(&args, d);
        metrics::read(&d.join(out).join("metrics.csv")).unwrap()
    };
    let plain = train("plain", &[]);
    let perceptual = train("perceptual", &["--feature-net", "tiny.onnx"]);
    // The same model and seed; the reconstruction term gains the (positive) feature term.
    assert!(
        perceptual[0].train_recon > plain[0].train_recon * 1.01,
        "{perceptual:?} {plain:?}"
    );
    assert!(perceptual.iter().all(|r| r.val_loss.is_finite()));
    let saved = Config::load(&d.join("perceptual/config.toml")).unwrap();
    let net = saved.exp.feature_net.unwrap();
    assert!(
        net.is_absolute() && net.ends_with("tiny.onnx"),
        "{}",
        net.display()
    );
    // Resume and evaluate load the network again.
    run_ok(
        &[
            "train",
            "--resume",
            "perceptual",
            "--data",
            "faces.vaecache",
            "--epochs",
            "3",
            "--quiet",
        ],
        d,
    );
    assert_eq!(
        metrics::read(&d.join("perceptual/metrics.csv"))
            .unwrap()
            .len(),
        3
    );
    let out = run_ok(
        &[
            "evaluate",
            "--checkpoint",
            "perceptual/checkpoints/best.safetensors",
            "--data",
            "faces.vaecache",
            "--quiet",
        ],
        d,
    );
    assert!(out.contains("ELBO") || out.contains("loss"), "{out}");

    let o = vae_cpu(
        &[
            "train",
            "--config",
            "ok.toml",
            "--data",
            "faces.vaecache",
            "--feature-net",
            "nothere.onnx",
            "--out",
            "x",
        ],
        d,
    );
    assert_clear_error(&o, &["nothere.onnx"]);
    std::fs::write(d.join("junk.onnx"), b"not a model").unwrap();
    let o = vae_cpu(
        &[
            "train",
            "--config",
            "ok.toml",
            "--data",
            "faces.vaecache",
            "--feature-net",
            "junk.onnx",
            "--out",
            "y",
        ],
        d,
    );
    assert_clear_error(&o, &["junk.onnx", "not an ONNX model"]);
    write(&d.join("gray.onnx"), &tiny_vgg(1, 4, None)).unwrap();
    let o = vae_cpu(
        &[
            "train",
            "--config",
            "ok.toml",
            "--data",
            "faces.vaecache",
            "--feature-net",
            "gray.onnx",
            "--out",
            "z",
        ],
        d,
    );
    assert_clear_error(&o, &["gray.onnx", "1 channels, it gets 3"]);
    assert!(!d.join("z").exists(), "a refused run leaves no folder");
}
