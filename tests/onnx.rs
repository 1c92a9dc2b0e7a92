//! ONNX export: every config in `models/` exports decoder and encoder; tract runs the files
//! at batch sizes 1 and 7, read by our own reader (as the edge binary reads them) and by
//! tract-onnx, and matches the engine's eval-mode outputs; tract's own protobuf
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
use vae_cpu::onnx::export::{export, write, ExportOptions, Part};
use vae_cpu::onnx::proto::ModelProto;
use vae_cpu::onnx::run::{OnnxModel, Reader};
use vae_cpu::{Tape, Tensor, Var};

/// Every shipped config (the conditional ones export their decoder only).
fn configs() -> Vec<(String, Config)> {
    let mut out = vec![];
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/models")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            out.push((path.display().to_string(), Config::load(&path).unwrap()));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 3);
    out
}

/// The fast export (sub-pixel, folded batch norms) and the literal one.
fn styles() -> [(&'static str, ExportOptions); 2] {
    [
        ("fast", ExportOptions::default()),
        ("literal", ExportOptions::literal()),
    ]
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

/// Both ways a file reaches tract: our own reader into tract-core (what the edge binary
/// runs) and tract-onnx.
const READERS: [Reader; 2] = [Reader::Own, Reader::TractOnnx];

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

/// Max |tract - engine| over the outputs of `part` at `batch` (random inputs; a random
/// condition for a conditional decoder).
fn tract_vs_engine(
    model: &mut Vae,
    onnx: &OnnxModel,
    part: Part,
    batch: usize,
    rng: &mut ChaCha8Rng,
) -> f32 {
    let m = model.config.model.clone();
    let tape = Tape::no_grad();
    match part {
        Part::Decoder => {
            let z = random(&[batch, m.latent], rng);
            let c = random(&[batch, m.conditions.len()], rng);
            let cond = (!m.conditions.is_empty()).then_some(&c);
            let want = model.decode_with(&tape, &Var::constant(z.clone()), cond, Mode::Eval);
            let mut inputs = vec![(z.shape().to_vec(), z.iter().copied().collect())];
            if cond.is_some() {
                inputs.push((c.shape().to_vec(), c.iter().copied().collect()));
            }
            let got = onnx.run_all(inputs).unwrap();
            assert_eq!(got[0].shape, want.shape(), "{}", m.name);
            max_diff(&got[0].values, want.value())
        }
        Part::Encoder => {
            let x = random(&[batch, m.channels, m.height, m.width], rng);
            let (mu, logvar) = model.encode(&tape, &Var::constant(x.clone()), Mode::Eval);
            let got = onnx.run(x.shape(), x.iter().copied().collect()).unwrap();
            assert_eq!((got.len(), got[0].shape[0]), (2, batch));
            max_diff(&got[0].values, mu.value()).max(max_diff(&got[1].values, logvar.value()))
        }
    }
}

#[test]
fn every_config_exports_and_tract_matches_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for (name, config) in configs() {
        let mut model = perturbed(&config, 1);
        let parts = match config.model.conditions.is_empty() {
            true => vec![Part::Decoder, Part::Encoder],
            false => vec![Part::Decoder],
        };
        for (style, options) in styles() {
            for &part in &parts {
                let proto = export(&model, part, &options).unwrap();
                let problems = check_model(&proto);
                assert!(problems.is_empty(), "{name} {style} {part:?}: {problems:?}");
                let path = dir
                    .path()
                    .join(format!("{}-{style}-{part:?}.onnx", config.model.name));
                write(&path, &proto).unwrap();
                assert_eq!(OnnxModel::load(&path).unwrap().reader(), Reader::Own);
                for reader in READERS {
                    let onnx = OnnxModel::load_with(&path, reader).unwrap();
                    for batch in [1, 7] {
                        let d = tract_vs_engine(&mut model, &onnx, part, batch, &mut rng);
                        assert!(
                            d < 1e-4,
                            "{name} {style} {part:?} {reader:?} batch {batch}: \
                             max |tract - engine| = {d}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn prelu_exports_for_slopes_above_one_and_mixed_slopes() {
    let (_, config) = configs()
        .into_iter()
        .find(|(name, _)| name.ends_with("celeba32.toml"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (slopes, op) in [((1.0, 1.5), "Min"), ((-0.5, 1.5), "PRelu")] {
        let mut model = perturbed(&config, 6);
        for layer in model.decoder.iter_mut().filter(|l| l.kind() == "prelu") {
            layer.visit("", &mut |_, slot| {
                if let Slot::Param(p) = slot {
                    p.value_mut()
                        .mapv_inplace(|_| rng.gen_range(slopes.0..slopes.1));
                }
            });
        }
        let proto = export(&model, Part::Decoder, &ExportOptions::default()).unwrap();
        assert!(
            ops(&proto).iter().any(|o| o == op),
            "{op}: {:?}",
            ops(&proto)
        );
        let path = dir.path().join(format!("{op}.onnx"));
        write(&path, &proto).unwrap();
        for reader in READERS {
            let onnx = OnnxModel::load_with(&path, reader).unwrap();
            let d = tract_vs_engine(&mut model, &onnx, Part::Decoder, 3, &mut rng);
            assert!(d < 1e-4, "{op} {reader:?}: {d}");
        }
    }
}

/// The op types of a model's graph, in order.
fn ops(proto: &ModelProto) -> Vec<String> {
    proto
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.clone())
        .collect()
}

#[test]
fn the_fast_export_has_no_strided_conv_transpose_and_no_batch_norm_after_a_product() {
    for (name, config) in configs() {
        let model = perturbed(&config, 4);
        let fast = ops(&export(&model, Part::Decoder, &ExportOptions::default()).unwrap());
        let literal = ops(&export(&model, Part::Decoder, &ExportOptions::literal()).unwrap());
        assert!(
            !fast.iter().any(|op| op == "ConvTranspose"),
            "{name}: {fast:?}"
        );
        let norms = |ops: &[String]| ops.iter().filter(|op| *op == "BatchNormalization").count();
        if literal.iter().any(|op| op == "ConvTranspose") {
            assert!(
                fast.iter().any(|op| op == "DepthToSpace"),
                "{name}: {fast:?}"
            );
        }
        // Every batch norm of these configs follows a linear or convolution layer.
        assert_eq!(norms(&fast), 0, "{name}: {fast:?}");
        assert_eq!(
            norms(&literal),
            model
                .decoder
                .iter()
                .filter(|l| l.kind() == "batch_norm")
                .count(),
            "{name}"
        );
    }
}

#[test]
fn tracts_protobuf_types_read_back_the_same_graph() {
    use prost::Message;
    let (_, config) = configs().remove(0);
    let model = perturbed(&config, 2);
    let ours = export(&model, Part::Decoder, &ExportOptions::default()).unwrap();
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
fn our_reader_names_the_node_and_op_it_does_not_run() {
    let (_, config) = configs().remove(0);
    let model = perturbed(&config, 3);
    let mut proto = export(&model, Part::Decoder, &ExportOptions::default()).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    let last = graph.node.len() - 1;
    graph.node[last].op_type = "Abs".into();
    let node = graph.node[last].name.clone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abs.onnx");
    write(&path, &proto).unwrap();
    let err = OnnxModel::load_with(&path, Reader::Own)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("abs.onnx") && err.contains(&node) && err.contains("not Abs"),
        "{err}"
    );
    // Any other file goes to tract-onnx, which runs Abs.
    assert_eq!(OnnxModel::load(&path).unwrap().reader(), Reader::TractOnnx);
}

/// Broken files (every node given every other op, every weight flattened or cut short,
/// every attribute dropped) are refused with an error or read, never a panic.
#[test]
fn our_reader_survives_broken_decoders() {
    let mut ops = vae_cpu::onnx_ops::LAYER_OPS.to_vec();
    ops.push("Concat");
    let (_, config) = configs().remove(0);
    let model = perturbed(&config, 8);
    let good = export(&model, Part::Decoder, &ExportOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.onnx");
    let nodes = good.graph.as_ref().unwrap().node.len();
    let weights = good.graph.as_ref().unwrap().initializer.len();
    let mut broken = vec![];
    for i in 0..nodes {
        for &op in &ops {
            let mut p = good.clone();
            p.graph.as_mut().unwrap().node[i].op_type = op.into();
            broken.push(p);
        }
        let mut p = good.clone();
        p.graph.as_mut().unwrap().node[i].attribute.clear();
        broken.push(p);
    }
    for i in 0..weights {
        let mut flat = good.clone();
        let t = &mut flat.graph.as_mut().unwrap().initializer[i];
        t.dims = vec![t.dims.iter().product()];
        let mut short = good.clone();
        short.graph.as_mut().unwrap().initializer[i]
            .raw_data
            .truncate(4);
        broken.extend([flat, short]);
    }
    let mut refused = 0;
    for p in broken {
        write(&path, &p).unwrap();
        refused += OnnxModel::load_with(&path, Reader::Own).is_err() as usize;
    }
    assert!(refused > nodes * ops.len() / 2, "{refused} refused");
}

#[test]
fn the_structural_check_catches_broken_graphs() {
    let (_, config) = configs().remove(0);
    let model = perturbed(&config, 3);
    let good = export(&model, Part::Decoder, &ExportOptions::default()).unwrap();
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
    let plain = [
        "export-onnx",
        "plain.onnx",
        "--checkpoint",
        ck,
        "--plain-conv-transpose",
        "--keep-batch-norm",
    ];
    ok(&plain);
    ok(&["verify-onnx", "plain.onnx", "--checkpoint", ck]);
    let timed = ok(&["generate", "--onnx", "dec.onnx", "--n", "1", "--time", "5"]);
    assert!(
        timed.contains("median") && timed.contains("over 5 runs"),
        "{timed}"
    );
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
        out.contains("batch 7: max |tract - engine|")
            && out.contains("(tract-onnx)")
            && out.contains("as the edge binary")
            && out.contains("ok:"),
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
            vec!["generate", "--onnx", "dec.onnx", "--cond", "Smiling=1"],
            "not a conditional decoder",
        ),
        (
            vec!["verify-onnx", "enc.onnx", "--checkpoint", ck],
            "enc.onnx",
        ),
    ] {
        common::assert_clear_error(&common::vae_cpu(&args, dir.path()), &[needle]);
    }
    raw_values_are_saved_and_compared(dir.path(), ck);
    interpolation_walks_between_two_seeds(dir.path(), ck);
}

/// `generate --interpolate A,B` decodes the slerp path from seed A's first latent to seed
/// B's, as the engine does.
fn interpolation_walks_between_two_seeds(dir: &std::path::Path, ck: &str) {
    let args = ["generate", "--onnx", "dec.onnx", "--out", "i.png"];
    let run = |extra: &[&str]| common::vae_cpu(&[&args[..], extra].concat(), dir);
    let o = run(&["--interpolate", "3,7", "--n", "4", "--save-values", "i.npy"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let saved = vae_cpu::npy::read(&dir.join("i.npy")).unwrap();
    let mut model = Checkpoint::load(std::path::Path::new(ck))
        .unwrap()
        .build_model()
        .unwrap();
    let d = model.config.model.latent;
    let end = |seed| latent::row(&latent::prior_samples(1, d, seed, 1.0), 0);
    let z = latent::interpolate(&end(3), &end(7), 4, true);
    let want = latent::decode(&mut model, &z);
    assert_eq!(saved.shape, want.shape());
    let diff = (saved.values.iter().zip(want.iter()))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-4, "{diff}");
    common::assert_clear_error(
        &run(&["--interpolate", "3,7", "--n", "1"]),
        &["--n 2 or more"],
    );
    let o = run(&["--interpolate", "3"]);
    assert!(
        common::stderr(&o).contains("two seeds"),
        "{}",
        common::stderr(&o)
    );
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
