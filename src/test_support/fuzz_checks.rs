//! What each fuzz target (`fuzz/fuzz_targets/`) does with its input, here so that the
//! regression tests (`tests/hostile_inputs.rs`) replay saved inputs through exactly the
//! same code. Every function must return (with or without an error) for any bytes: a
//! panic, an abort or a hang is a bug. Where the input parses, the parsed value is used the
//! way the program would use it, so that "parses but breaks later" is found too.

use crate::config::Config;
use crate::data::celeba::{parse_attributes, parse_partition};
use crate::data::prepare::{decode_image, PrepareOptions};
use crate::data::Dataset;
use crate::model::Vae;
use crate::nn::Mode;
use crate::{checkpoint::Checkpoint, Tape, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// Models with more values than this (parameters, or activations of a 2-image batch) are
/// only parsed, not built: a fuzzer must not spend its time in GEMMs.
const BUILD_LIMIT: usize = 200_000;

fn small_enough(config: &Config) -> bool {
    let Ok(shapes) = config.plan() else {
        return false;
    };
    shapes.layer_output_values().saturating_mul(2) <= BUILD_LIMIT
        && shapes.parameters <= BUILD_LIMIT
        && shapes.features.saturating_mul(config.model.latent) <= BUILD_LIMIT
}

/// One training step of `model` on a batch of two constant images: a config that
/// validates must build and run, with the output in the input's shape.
fn train_step(model: &mut Vae) {
    let m = &model.config.model;
    let x = Tensor::from_elem(vec![2, m.channels, m.height, m.width], 0.5);
    let tape = Tape::new();
    let input = Var::constant(x);
    let out = model.forward(
        &tape,
        &input,
        Mode::Train,
        &mut ChaCha8Rng::seed_from_u64(0),
    );
    assert_eq!(out.recon.shape(), input.shape(), "decoder output shape");
    let loss = model.loss(&out, input.value());
    let _ = tape.backward(&loss.total);
}

/// The checkpoint loader: parse, then rebuild the model it describes.
pub fn checkpoint(bytes: &[u8]) {
    let Ok(ckpt) = Checkpoint::from_bytes(Path::new("fuzz.safetensors"), bytes) else {
        return;
    };
    if small_enough(&ckpt.config) {
        if let Ok(mut model) = ckpt.build_model() {
            train_step(&mut model);
        }
    }
}

/// `list_attr_celeba.txt`: every row parsed has one value per attribute name.
pub fn attributes(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(a) = parse_attributes(text, Path::new("list_attr_celeba.txt")) {
        assert!(a.rows.iter().all(|(_, v)| v.len() == a.names.len()));
        let names: std::collections::HashSet<String> =
            a.names.iter().map(|n| n.to_ascii_lowercase()).collect();
        assert_eq!(names.len(), a.names.len(), "an attribute named twice");
        assert_unique(a.rows.iter().map(|(f, _)| f.as_str()));
    }
}

/// Every file appears in at most one row of a parsed annotation file.
fn assert_unique<'a>(files: impl Iterator<Item = &'a str>) {
    let mut seen = std::collections::HashSet::new();
    for f in files {
        assert!(seen.insert(f), "{f} kept twice");
    }
}

/// `list_eval_partition.txt`.
pub fn partition(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(p) = parse_partition(text, Path::new("list_eval_partition.txt")) {
            assert_unique(p.rows.iter().map(|(f, _)| f.as_str()));
        }
    }
}

/// Model config TOML: a config that validates writes back to the same config, and (when
/// small) builds and trains a step without a shape mismatch.
pub fn config(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(config) = Config::parse(text) else {
        return;
    };
    let again = Config::parse(&config.to_toml()).expect("a valid config reads back");
    assert_eq!(again, config, "config TOML round trip");
    if small_enough(&config) {
        let mut model = Vae::new(&config, &mut ChaCha8Rng::seed_from_u64(1))
            .expect("a validated config builds");
        train_step(&mut model);
    }
}

/// The prepared image cache: every accessor of an opened cache stays in bounds.
pub fn image_cache(bytes: &[u8]) {
    let Ok(ds) = Dataset::from_vec(Path::new("fuzz.vaecache"), bytes.to_vec()) else {
        return;
    };
    for i in 0..ds.len() {
        assert_eq!(ds.image(i).len(), ds.image_len());
        for j in 0..ds.attribute_names.len() {
            let _ = ds.attribute(i, j);
        }
    }
    let _ = ds.split_summary();
    if let Some(name) = ds.attribute_names.first() {
        let _ = ds.attribute_index(name);
    }
}

/// Image decoding in `prepare`: the first two bytes choose the target size (1 to 64
/// pixels a side), the rest is the file.
pub fn prepare_image(bytes: &[u8]) {
    let [w, h, file @ ..] = bytes else {
        return;
    };
    let opts = PrepareOptions::new(
        usize::from(w % 64) + 1,
        usize::from(h % 64) + 1,
        crate::data::prepare::CELEBA_CROP_FRACTION,
    );
    let mut out = vec![0u8; opts.width * opts.height * 3];
    let _ = decode_image(file, &opts, &mut out);
}

/// The MNIST IDX parser: a file that parses holds exactly the values its header promises.
pub fn mnist_idx(bytes: &[u8]) {
    if let Ok(idx) = crate::data::idx::parse(bytes) {
        assert_eq!(idx.values.len(), idx.dims.iter().product::<usize>());
        assert_eq!(crate::data::idx::encode(&idx.dims, &idx.values), bytes);
    }
}

/// The perceptual loss's ONNX reader: a network it accepts that takes 3x8x8 images and is
/// small enough runs, with a finite loss against itself of 0.
pub fn feature_net(bytes: &[u8]) {
    use crate::config::{FeatureNormalize, PixelRange};
    let Ok(model) = <crate::onnx::proto::ModelProto as prost::Message>::decode(bytes) else {
        return;
    };
    let Ok(net) = crate::onnx::feature_net::from_model(
        &model,
        None,
        &[],
        FeatureNormalize::None,
        PixelRange::Unit,
    ) else {
        return;
    };
    let weights: usize = model
        .graph
        .iter()
        .flat_map(|g| &g.initializer)
        .map(|t| t.raw_data.len() / 4 + t.float_data.len())
        .sum();
    let fits = net
        .check_input(3, 8, 8)
        .is_ok_and(|values| values <= BUILD_LIMIT);
    if weights <= BUILD_LIMIT && fits {
        let x = Tensor::from_elem(vec![1, 3, 8, 8], 0.5);
        // Finite weights can still overflow to infinity; otherwise the loss must be 0.
        let features = net.features(&Var::constant(x.clone()));
        if features
            .iter()
            .all(|f| f.value().iter().all(|v| v.is_finite()))
        {
            assert_eq!(net.loss(&Var::constant(x.clone()), &x).item(), 0.0);
        }
    }
}
