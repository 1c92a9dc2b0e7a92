//! ONNX export: every config in `models/` exports decoder and encoder; tract runs the files
//! at batch sizes 1 and 7 and matches the engine's eval-mode outputs; tract's own protobuf
//! types decode the bytes to the same graph; the structural check catches broken files.
#![cfg(all(feature = "engine", feature = "onnx-runtime"))]

mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vae_cpu::checkpoint::Checkpoint;
use vae_cpu::config::Config;
use vae_cpu::latent;
use vae_cpu::model::Vae;
use vae_cpu::nn::{Mode, Module, Slot};
use vae_cpu::onnx::check::check_model;
use vae_cpu::onnx::export::{export, write, Part};
use vae_cpu::onnx::proto::ModelProto;
use vae_cpu::onnx::run::OnnxModel;
use vae_cpu::{Tape, Tensor, Var};

/// Every shipped config except the conditional ones, whose export is refused (a test in
/// tests/conditional.rs checks the message).
fn configs() -> Vec<(String, Config)> {
    let mut out = vec![];
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/models")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = Config::load(&path).unwrap();
            if config.model.conditions.is_empty() {
                out.push((path.display().to_string(), config));
            }
        }
    }
    assert!(out.len() >= 3);
    out
}

/// A model with every parameter and buffer moved off its initial value (so batch norm's
/// running statistics, PReLU slopes and biases all matter).
fn perturbed(config: &Config, seed: u64) -> Vae {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut model = Vae::new(config, &mut rng).unwrap();
    model.visit("", &mut |name, slot| {
        let t = match slot {
            Slot::Param(p) => p.value_mut(),
            Slot::Buffer(b) => b,
        };
        let variance = name.ends_with("running_var");
        t.mapv_inplace(|v| {
            if variance {
                rng.gen_range(0.5..2.0)
            } else {
                v + rng.gen_range(-0.1..0.1)
            }
        });
    });
    model
}

fn random(shape: &[usize], rng: &mut impl Rng) -> Tensor {
    Tensor::from_shape_simple_fn(shape.to_vec(), || rng.gen_range(-1.5..1.5))
}

fn max_diff(a: &[f32], b: &Tensor) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn every_config_exports_and_tract_matches_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for (name, config) in configs() {
        let mut model = perturbed(&config, 1);
        let m = config.model.clone();
        for part in [Part::Decoder, Part::Encoder] {
            let proto = export(&model, part).unwrap();
            let problems = check_model(&proto);
            assert!(problems.is_empty(), "{name} {part:?}: {problems:?}");
            let path = dir.path().join(format!("{}-{part:?}.onnx", m.name));
            write(&path, &proto).unwrap();
            let onnx = OnnxModel::load(&path).unwrap();
            for batch in [1, 7] {
                let tape = Tape::no_grad();
                let (shape, diffs) = match part {
                    Part::Decoder => {
                        let z = random(&[batch, m.latent], &mut rng);
                        let want = model.decode(&tape, &Var::constant(z.clone()), Mode::Eval);
                        let got = onnx.run(z.shape(), z.iter().copied().collect()).unwrap();
                        assert_eq!(got[0].shape, want.shape(), "{name}");
                        (
                            got[0].shape.clone(),
                            vec![max_diff(&got[0].values, want.value())],
                        )
                    }
                    Part::Encoder => {
                        let x = random(&[batch, m.channels, m.height, m.width], &mut rng);
                        let (mu, logvar) =
                            model.encode(&tape, &Var::constant(x.clone()), Mode::Eval);
                        let got = onnx.run(x.shape(), x.iter().copied().collect()).unwrap();
                        assert_eq!(got.len(), 2);
                        (
                            got[0].shape.clone(),
                            vec![
                                max_diff(&got[0].values, mu.value()),
                                max_diff(&got[1].values, logvar.value()),
                            ],
                        )
                    }
                };
                assert_eq!(shape[0], batch);
                for d in diffs {
                    assert!(
                        d < 1e-4,
                        "{name} {part:?} batch {batch}: max |tract - engine| = {d}"
                    );
                }
            }
        }
    }
}

#[test]
fn tracts_protobuf_types_read_back_the_same_graph() {
    use prost::Message;
    let (_, config) = configs().remove(0);
    let model = perturbed(&config, 2);
    let ours = export(&model, Part::Decoder).unwrap();
    let bytes = ours.encode_to_vec();
    let theirs = tract_onnx::pb::ModelProto::decode(bytes.as_slice()).unwrap();
    assert_eq!(theirs.ir_version, ours.ir_version);
    assert_eq!(theirs.opset_import[0].version, 13);
    let (g, h) = (ours.graph.as_ref().unwrap(), theirs.graph.as_ref().unwrap());
    let ops = |names: Vec<&str>| names.join(" ");
    assert_eq!(
        ops(g.node.iter().map(|n| n.op_type.as_str()).collect()),
        ops(h.node.iter().map(|n| n.op_type.as_str()).collect())
    );
    for (a, b) in g.initializer.iter().zip(&h.initializer) {
        assert_eq!(
            (&a.name, &a.dims, &a.raw_data),
            (&b.name, &b.dims, &b.raw_data)
        );
    }
    let dim = &h.input[0].r#type.as_ref().unwrap();
    assert!(format!("{dim:?}").contains("DimParam(\"N\")"), "{dim:?}");
    // And our own types decode it back to the identical message.
    assert_eq!(ModelProto::decode(bytes.as_slice()).unwrap(), ours);
}

#[test]
fn the_structural_check_catches_broken_graphs() {
    let (_, config) = configs().remove(0);
    let model = perturbed(&config, 3);
    let good = export(&model, Part::Decoder).unwrap();
    let mut short = good.clone();
    short.graph.as_mut().unwrap().initializer[0]
        .raw_data
        .truncate(8);
    let p = check_model(&short);
    assert!(p.iter().any(|m| m.contains("holds 2")), "{p:?}");
    let mut dangling = good.clone();
    dangling.graph.as_mut().unwrap().node[1].input[0] = "nowhere".into();
    let p = check_model(&dangling);
    assert!(p.iter().any(|m| m.contains("reads nowhere")), "{p:?}");
    let mut reordered = good.clone();
    reordered.graph.as_mut().unwrap().node.swap(0, 1);
    assert!(!check_model(&reordered).is_empty());
    let mut no_output = good;
    no_output.graph.as_mut().unwrap().output[0].name = "missing".into();
    assert!(!check_model(&no_output).is_empty());
}

#[test]
fn export_verify_and_generate_commands() {
    let dir = tempfile::tempdir().unwrap();
    let ck = common::trained_small(dir.path(), 40);
    let ck = ck.to_str().unwrap();
    let ok = |args: &[&str]| common::run_ok(args, dir.path());
    ok(&["export-onnx", "dec.onnx", "--checkpoint", ck]);
    ok(&[
        "export-onnx",
        "enc.onnx",
        "--checkpoint",
        ck,
        "--part",
        "encoder",
    ]);
    let out = ok(&["verify-onnx", "dec.onnx", "--checkpoint", ck]);
    assert!(
        out.contains("batch 7: max |tract - engine|") && out.contains("ok:"),
        "{out}"
    );
    ok(&[
        "generate", "--onnx", "dec.onnx", "--n", "6", "--cols", "3", "--scale", "1", "--out",
        "g.png",
    ]);
    let g = image::open(dir.path().join("g.png")).unwrap();
    assert_eq!((g.width(), g.height()), (2 + 3 * 18, 2 + 2 * 18));
    // The same seed gives the same faces.
    ok(&[
        "generate", "--onnx", "dec.onnx", "--n", "6", "--cols", "3", "--scale", "1", "--out",
        "h.png",
    ]);
    assert_eq!(
        std::fs::read(dir.path().join("g.png")).unwrap(),
        std::fs::read(dir.path().join("h.png")).unwrap()
    );
    for (args, needle) in [
        (vec!["generate", "--onnx", "enc.onnx"], "not [N, latent]"),
        (vec!["generate", "--onnx", "missing.onnx"], "missing.onnx"),
        (
            vec!["verify-onnx", "enc.onnx", "--checkpoint", ck],
            "enc.onnx",
        ),
    ] {
        common::assert_clear_error(&common::vae_cpu(&args, dir.path()), &[needle]);
    }
    raw_values_are_saved_and_compared(dir.path(), ck);
}

/// `generate --save-values` writes what the engine decodes from `sample`'s latents for the
/// seed, and `--compare-values` accepts the same output and refuses a different one.
fn raw_values_are_saved_and_compared(dir: &std::path::Path, ck: &str) {
    let generate = |n: &str, seed: &str, extra: &[&str]| {
        let mut args = vec!["generate", "--onnx", "dec.onnx", "--out", "r.png"];
        args.extend_from_slice(&["--n", n, "--seed", seed]);
        args.extend_from_slice(extra);
        common::vae_cpu(&args, dir)
    };
    let o = generate("5", "3", &["--save-values", "a.npy"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let saved = vae_cpu::npy::read(&dir.join("a.npy")).unwrap();
    let mut model = Checkpoint::load(std::path::Path::new(ck))
        .unwrap()
        .build_model()
        .unwrap();
    let z = latent::prior_samples(5, model.config.model.latent, 3, 1.0);
    let want = latent::decode(&mut model, &z);
    assert_eq!(saved.shape, want.shape());
    let diff = saved
        .values
        .iter()
        .zip(want.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-4, "{diff}");

    let o = generate("5", "3", &["--compare-values", "a.npy"]);
    assert!(
        common::stdout(&o).contains("ok: within"),
        "{}",
        common::stderr(&o)
    );
    std::fs::write(dir.join("garbage.npy"), b"not numpy").unwrap();
    for (n, seed, file, needle) in [
        ("5", "4", "a.npy", "differs from a.npy"),
        ("4", "3", "a.npy", "shape"),
        ("5", "3", "garbage.npy", "garbage.npy: not a .npy"),
        ("5", "3", "none.npy", "none.npy"),
    ] {
        let o = generate(n, seed, &["--compare-values", file]);
        common::assert_clear_error(&o, &[needle]);
    }
}
