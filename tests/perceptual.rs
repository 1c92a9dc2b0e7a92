//! The perceptual loss: the feature network read from ONNX computes what tract computes
//! from the same file, and `train --feature-net` trains with it end to end.
#![cfg(all(feature = "engine", feature = "onnx-runtime"))]

mod common;

use common::{assert_clear_error, faces_cache, run_ok, small_config, vae_cpu};
use vae_cpu::config::{Config, FeatureNormalize, PixelRange};
use vae_cpu::onnx::export::{int, ints, write};
use vae_cpu::onnx::run::OnnxModel;
use vae_cpu::test_support::onnx_forms;
use vae_cpu::test_support::tiny_vgg::tiny_vgg;
use vae_cpu::train::metrics;
use vae_cpu::{Tensor, Var};

/// How a network can be written: inline weights or external data, biases distinct or
/// shared through Identity nodes, attributes as our exporter writes them or as PyTorch's
/// torch.export-based exporter does (opset 20, every default spelled out, no kernel_shape).
#[derive(Clone, Copy, Debug)]
struct Form {
    external: bool,
    shared: bool,
    opset20: bool,
}

/// Writes the test network in `form` into `dir`; returns the model file.
fn write_form(dir: &std::path::Path, form: Form) -> std::path::PathBuf {
    let mut model = tiny_vgg(3, 9, Some("relu3_1"));
    let graph = model.graph.as_mut().unwrap();
    // Asymmetric pads and unequal strides on the first conv: ONNX orders pads
    // [top, left, bottom, right], which a mix-up would get wrong.
    graph.node[0].attribute = vec![
        ints("kernel_shape", &[3, 3]),
        ints("pads", &[2, 0, 1, 1]),
        ints("strides", &[1, 2]),
    ];
    if form.shared {
        // Equal biases, as in a freshly initialized network, shared as the legacy exporter does.
        for t in graph
            .initializer
            .iter_mut()
            .filter(|t| t.name.ends_with(".b"))
        {
            let n = t.raw_data.len() / 4;
            t.raw_data = (0..n)
                .flat_map(|i| (0.01 * i as f32).to_le_bytes())
                .collect();
        }
        assert!(onnx_forms::share_equal_biases(graph) >= 2);
    }
    if form.opset20 {
        for node in &mut graph.node {
            let full = |a: &mut Vec<_>, extra: Vec<vae_cpu::onnx::proto::AttributeProto>| {
                a.retain(|x: &vae_cpu::onnx::proto::AttributeProto| {
                    x.name != "kernel_shape" || extra.is_empty()
                });
                a.extend(extra);
            };
            match node.op_type.as_str() {
                "Conv" => full(
                    &mut node.attribute,
                    vec![
                        ints("dilations", &[1, 1]),
                        int("group", 1),
                        string("auto_pad", "NOTSET"),
                    ],
                ),
                "MaxPool" => node.attribute.extend([
                    ints("dilations", &[1, 1]),
                    int("ceil_mode", 0),
                    ints("pads", &[0, 0, 0, 0]),
                    string("auto_pad", "NOTSET"),
                ]),
                _ => {}
            }
        }
        model.opset_import[0].version = 20;
        model.ir_version = 10;
    }
    let graph = model.graph.as_mut().unwrap();
    if form.external {
        let data = onnx_forms::externalize(graph, "net.onnx.data", 16);
        std::fs::write(dir.join("net.onnx.data"), data).unwrap();
    }
    let path = dir.join("net.onnx");
    write(&path, &model).unwrap();
    path
}

fn string(name: &str, value: &str) -> vae_cpu::onnx::proto::AttributeProto {
    vae_cpu::onnx::proto::AttributeProto {
        name: name.into(),
        s: value.as_bytes().to_vec(),
        r#type: 3, // STRING
        ..Default::default()
    }
}

#[test]
fn features_match_tract_on_the_same_file() {
    let x = Tensor::from_shape_fn(vec![2, 3, 16, 16], |d| {
        ((d[0] * 5 + d[1] * 3 + d[2] * 7 + d[3]) % 13) as f32 / 13.0
    });
    for bits in 0..8 {
        let form = Form {
            external: bits & 1 != 0,
            shared: bits & 2 != 0,
            opset20: bits & 4 != 0,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = write_form(dir.path(), form);
        let ours = vae_cpu::onnx::feature_net::load(
            &path,
            &["relu3_1".into()],
            FeatureNormalize::None,
            PixelRange::Unit,
        )
        .unwrap_or_else(|e| panic!("{form:?}: {e}"));
        let got = ours.features(&Var::constant(x.clone())).pop().unwrap();
        let tract = OnnxModel::load(&path).unwrap_or_else(|e| panic!("{form:?}: {e}"));
        let want = tract
            .run(&[2, 3, 16, 16], x.iter().copied().collect())
            .unwrap()
            .remove(0);
        assert_eq!(got.shape(), &want.shape[..]);
        let scale = want.values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0);
        for (a, b) in got.value().iter().zip(&want.values) {
            assert!((a - b).abs() <= 1e-4 * scale, "{form:?}: {a} vs {b}");
        }
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
