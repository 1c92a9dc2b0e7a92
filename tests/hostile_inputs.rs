//! The fuzz targets' inputs, replayed: every committed seed (`fuzz/corpus/<target>/`) and
//! every input that once crashed a target (`fuzz/regressions/<target>/`) goes through the
//! same check as in the fuzzer (`vae_cpu::test_support::fuzz_checks`). The seeds are valid inputs, so
//! they must also parse: a fuzzer that starts from garbage explores little.
//!
//! `cargo test --release --test hostile_inputs -- --ignored` rewrites the seeds.

#![cfg(feature = "engine")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use vae_cpu::config::Config;
use vae_cpu::data::celeba::{parse_attributes, parse_partition};
use vae_cpu::data::prepare::{decode_image, PrepareOptions};
use vae_cpu::test_support::fuzz_checks;

/// A fuzz target's name and its check.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 8] = [
    ("checkpoint", fuzz_checks::checkpoint),
    ("attributes", fuzz_checks::attributes),
    ("partition", fuzz_checks::partition),
    ("config", fuzz_checks::config),
    ("image_cache", fuzz_checks::image_cache),
    ("prepare_image", fuzz_checks::prepare_image),
    ("mnist_idx", fuzz_checks::mnist_idx),
    ("feature_net", fuzz_checks::feature_net),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    files(&fuzz_dir().join("corpus").join(target))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
        })
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn every_seed_and_every_former_crash_goes_through_its_check() {
    for (target, check) in TARGETS {
        let mut replayed = 0;
        for kind in ["corpus", "regressions"] {
            for path in files(&fuzz_dir().join(kind).join(target)) {
                check(&std::fs::read(&path).unwrap());
                replayed += 1;
            }
        }
        assert!(replayed >= 1, "{target}: no inputs");
    }
}

#[test]
fn the_seeds_are_valid_inputs() {
    let p = Path::new("seed");
    for (path, bytes) in seeds("checkpoint") {
        let ckpt = vae_cpu::checkpoint::Checkpoint::from_bytes(&path, &bytes).unwrap();
        ckpt.build_model().unwrap();
    }
    for (_, bytes) in seeds("attributes") {
        let a = parse_attributes(std::str::from_utf8(&bytes).unwrap(), p).unwrap();
        assert!(!a.rows.is_empty());
    }
    for (_, bytes) in seeds("partition") {
        assert!(!parse_partition(std::str::from_utf8(&bytes).unwrap(), p)
            .unwrap()
            .rows
            .is_empty());
    }
    for (_, bytes) in seeds("config") {
        Config::parse(std::str::from_utf8(&bytes).unwrap()).unwrap();
    }
    for (path, bytes) in seeds("image_cache") {
        assert!(!vae_cpu::data::Dataset::from_vec(&path, bytes)
            .unwrap()
            .is_empty());
    }
    for (_, bytes) in seeds("prepare_image") {
        let opts = PrepareOptions::new(
            usize::from(bytes[0] % 64) + 1,
            usize::from(bytes[1] % 64) + 1,
            0.8,
        );
        let mut out = vec![0; opts.width * opts.height * 3];
        decode_image(&bytes[2..], &opts, &mut out).unwrap();
    }
    for (_, bytes) in seeds("mnist_idx") {
        vae_cpu::data::idx::parse(&bytes).unwrap();
    }
    for (_, bytes) in seeds("feature_net") {
        let model: vae_cpu::onnx::proto::ModelProto =
            prost::Message::decode(bytes.as_slice()).unwrap();
        let net = vae_cpu::onnx::feature_net::from_model(
            &model,
            None,
            &[],
            vae_cpu::config::FeatureNormalize::None,
            vae_cpu::config::PixelRange::Unit,
        );
        assert!(net.is_ok_and(|n| n.check_input(3, 8, 8).is_ok()));
    }
    for (target, _) in TARGETS {
        assert!(!seeds(target).is_empty(), "no seeds for {target}");
    }
}

/// A model small enough for the fuzzer to build and train a step on every input: 4x4
/// images, linear layers only.
const TINY_CONFIG: &str = r#"
[model]
name = "tiny4"
height = 4
width = 4
latent = 2
encoder = [{ layers = [{ type = "flatten" }, { type = "linear", units = 8 }, { type = "batch_norm" }, { type = "prelu" }] }]
decoder = [{ layers = [{ type = "linear", units = 48 }, { type = "reshape", shape = [3, 4, 4] }, { type = "sigmoid" }] }]

[trainer]
epochs = 1
batch_size = 4
"#;

/// A convolutional one, 8x8.
const TINY_CONV_CONFIG: &str = r#"
[model]
name = "tinyconv8"
height = 8
width = 8
latent = 3

[[model.encoder]]
layers = [{ type = "conv2d", filters = 4, kernel = 4, stride = 2, padding = "same" }, { type = "instance_norm" }, { type = "leaky_relu" }, { type = "flatten" }]

[[model.decoder]]
layers = [{ type = "linear", units = 64 }, { type = "relu" }, { type = "reshape", shape = [4, 4, 4] }]
[[model.decoder]]
layers = [{ type = "conv_transpose2d", filters = 3, kernel = 4, stride = 2, padding = 1 }, { type = "tanh" }]

[data]
pixel_range = "symmetric"
"#;

#[test]
#[ignore = "rewrites the committed fuzz seeds"]
fn write_fuzz_seeds() {
    let corpus = fuzz_dir().join("corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    };
    let tmp = tempfile::tempdir().unwrap();
    let faces = common::faces_folder(tmp.path(), 8);

    let pixels: Vec<u8> = (0..2 * 5 * 4).map(|i| (i * 37 % 256) as u8).collect();
    write(
        "mnist_idx",
        "images.idx3",
        &vae_cpu::data::idx::encode(&[2, 5, 4], &pixels),
    );
    write(
        "mnist_idx",
        "labels.idx1",
        &vae_cpu::data::idx::encode(&[3], &[0, 7, 9]),
    );
    let tiny = vae_cpu::test_support::tiny_vgg::tiny_vgg(3, 1, None);
    write(
        "feature_net",
        "tiny_vgg.onnx",
        &prost::Message::encode_to_vec(&tiny),
    );

    for (name, text) in [
        ("tiny4.toml", TINY_CONFIG),
        ("tinyconv8.toml", TINY_CONV_CONFIG),
    ] {
        write("config", name, text.as_bytes());
    }
    for model in ["demo32", "celeba64"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("models/{model}.toml"));
        write(
            "config",
            &format!("{model}.toml"),
            &std::fs::read(path).unwrap(),
        );
    }

    let first_lines = |file: &str, n: usize| -> String {
        let text = std::fs::read_to_string(faces.join(file)).unwrap();
        let mut lines: Vec<&str> = text.lines().take(n).collect();
        if file == "list_attr_celeba.txt" {
            lines[0] = "3";
        }
        lines.join("\n") + "\n"
    };
    write(
        "attributes",
        "3-rows.txt",
        first_lines("list_attr_celeba.txt", 5).as_bytes(),
    );
    write(
        "partition",
        "4-rows.txt",
        first_lines("list_eval_partition.txt", 4).as_bytes(),
    );

    let image = faces.join("img_align_celeba/000001.jpg");
    let jpeg = std::fs::read(image).unwrap();
    let small = image::load_from_memory(&jpeg)
        .unwrap()
        .thumbnail(12, 14)
        .to_rgb8();
    let mut png = vec![];
    small
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut small_jpeg = vec![];
    small
        .write_to(
            &mut std::io::Cursor::new(&mut small_jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    for (name, file) in [("face.png", &png), ("face.jpg", &small_jpeg)] {
        write("prepare_image", name, &[[7u8, 9].as_slice(), file].concat());
    }

    for size in [4usize, 8] {
        let opts = PrepareOptions::new(size, size, 0.8);
        let (contents, _) =
            vae_cpu::data::prepare::prepare(&faces, &opts, &indicatif::ProgressBar::hidden())
                .unwrap();
        let cache = tmp.path().join(format!("faces{size}.vaecache"));
        contents.write(&cache).unwrap();
        write(
            "image_cache",
            &format!("faces{size}.vaecache"),
            &std::fs::read(&cache).unwrap(),
        );

        let config = Config::parse(if size == 4 {
            TINY_CONFIG
        } else {
            TINY_CONV_CONFIG
        })
        .unwrap();
        let data = vae_cpu::data::Dataset::open(&cache).unwrap();
        let out = tmp.path().join(format!("run{size}"));
        let opts = vae_cpu::train::TrainOptions {
            out: out.clone(),
            val_limit: None,
            quiet: true,
            world: vae_cpu::collective::single(),
        };
        vae_cpu::train::Trainer::new(&config, &data, opts)
            .unwrap()
            .run(&AtomicBool::new(false))
            .unwrap();
        let ckpt = std::fs::read(out.join("checkpoints/best.safetensors")).unwrap();
        write(
            "checkpoint",
            &format!("{}.safetensors", config.model.name),
            &ckpt,
        );
    }
}
