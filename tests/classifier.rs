//! The attribute classifier (`vae-cpu classifier train|evaluate`): it learns the attributes
//! that really change the generated faces, resumes exactly, and its checkpoints are not
//! mistaken for a VAE's (nor the other way round).

#![cfg(feature = "engine")]

mod common;

use common::{assert_clear_error, faces_cache, run_ok, vae_cpu};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use vae_cpu::checkpoint::Stored;
use vae_cpu::config::ClassifierConfig;
use vae_cpu::data::Dataset;
use vae_cpu::nn::{Module, Slot};
use vae_cpu::train::classifier::{ClassifierOptions, ClassifierTrainer};
use vae_cpu::train::Outcome;

fn config(epochs: usize) -> ClassifierConfig {
    common::faces_classifier_config(epochs)
}

fn options(out: &Path) -> ClassifierOptions {
    ClassifierOptions {
        out: out.to_path_buf(),
        val_limit: None,
        quiet: true,
    }
}

/// Every tensor of a classifier checkpoint, by name.
fn weights(path: &Path) -> Vec<(String, Vec<f32>)> {
    let ckpt = Stored::<ClassifierConfig>::load(path).unwrap();
    let mut model = ckpt.build_model().unwrap();
    let mut out = vec![];
    model.visit("", &mut |name, slot| {
        let t = match slot {
            Slot::Param(p) => p.value().clone(),
            Slot::Buffer(b) => b.clone(),
        };
        out.push((name.to_string(), t.iter().copied().collect()));
    });
    out
}

#[test]
fn learns_the_attributes_that_change_the_drawn_faces() {
    let dir = tempfile::tempdir().unwrap();
    let cache = faces_cache(dir.path(), 1000, 32);
    std::fs::write(dir.path().join("c.toml"), config(8).to_toml()).unwrap();
    run_ok(
        &[
            "classifier",
            "train",
            "--config",
            "c.toml",
            "--data",
            "faces.vaecache",
        ],
        dir.path(),
    );
    let best = "runs/faces-classifier/checkpoints/best.safetensors";
    let table = run_ok(
        &[
            "classifier",
            "evaluate",
            "--checkpoint",
            best,
            "--data",
            "faces.vaecache",
            "--csv",
            "val.csv",
        ],
        dir.path(),
    );
    assert!(
        table.contains("balanced") && table.contains("mean"),
        "{table}"
    );
    let csv = std::fs::read_to_string(dir.path().join("val.csv")).unwrap();
    let val_images = Dataset::open(&cache)
        .unwrap()
        .indices(vae_cpu::data::Split::Val)
        .len();
    for name in [
        "Wearing_Hat",
        "Eyeglasses",
        "Black_Hair",
        "Blond_Hair",
        "Brown_Hair",
        "Gray_Hair",
    ] {
        let row: Vec<&str> = csv
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .split(',')
            .collect();
        assert_eq!(row[1], val_images.to_string());
        let accuracy: f64 = row[3].parse().unwrap();
        assert!(accuracy > 0.9, "{name}: accuracy {accuracy}\n{csv}");
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let cache = faces_cache(dir.path(), 120, 32);
    let data = Dataset::open(&cache).unwrap();
    let straight = dir.path().join("straight");
    let mut t = ClassifierTrainer::new(&config(2), &data, options(&straight)).unwrap();
    assert_eq!(t.run(&AtomicBool::new(false)).unwrap(), Outcome::Finished);
    let resumed = dir.path().join("resumed");
    let mut t = ClassifierTrainer::new(&config(2), &data, options(&resumed)).unwrap();
    // Asked to stop before the first step: it stops after it, saving the position.
    assert_eq!(t.run(&AtomicBool::new(true)).unwrap(), Outcome::Interrupted);
    drop(t);
    let mut t = ClassifierTrainer::resume(&data, options(&resumed), &Default::default()).unwrap();
    assert_eq!(t.pos.batch, 1);
    assert_eq!(t.run(&AtomicBool::new(false)).unwrap(), Outcome::Finished);
    let last = "checkpoints/e0002-b000000.safetensors";
    assert_eq!(weights(&straight.join(last)), weights(&resumed.join(last)));
    let rows = |run: &Path| -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        // Every column but the timing ones (images_per_s, seconds).
        text.lines()
            .map(|l| l.split(',').take(8).map(String::from).collect())
            .collect()
    };
    assert_eq!(rows(&straight), rows(&resumed));
}

#[test]
fn classifier_and_vae_checkpoints_are_not_confused() {
    let dir = common::workspace();
    let vae = common::BEST;
    let o = vae_cpu(
        &[
            "classifier",
            "evaluate",
            "--checkpoint",
            vae,
            "--data",
            "faces.vaecache",
        ],
        dir.path(),
    );
    assert_clear_error(
        &o,
        &[
            vae,
            "kind VAE",
            "needs a checkpoint of kind attribute classifier",
        ],
    );
    let cache = faces_cache(&dir.path().join("c32"), 40, 32);
    let data = Dataset::open(&cache).unwrap();
    let out = dir.path().join("clf");
    let mut t = ClassifierTrainer::new(&config(1), &data, options(&out)).unwrap();
    t.run(&AtomicBool::new(false)).unwrap();
    let clf = out.join("checkpoints/best.safetensors");
    let o = vae_cpu(
        &[
            "sample",
            "--checkpoint",
            clf.to_str().unwrap(),
            "--out",
            "s.png",
        ],
        dir.path(),
    );
    assert_clear_error(
        &o,
        &[
            "kind attribute classifier",
            "needs a checkpoint of kind VAE",
        ],
    );
    assert!(!dir.path().join("s.png").exists());
}

#[test]
fn unknown_attributes_and_wrong_sizes_are_refused_before_a_folder_is_made() {
    let dir = tempfile::tempdir().unwrap();
    faces_cache(dir.path(), 30, 16);
    let mut c = config(1);
    c.model.attributes.push("Wearing_Crown".into());
    std::fs::write(dir.path().join("crown.toml"), c.to_toml()).unwrap();
    let o = vae_cpu(
        &[
            "classifier",
            "train",
            "--config",
            "crown.toml",
            "--data",
            "faces.vaecache",
            "--out",
            "r",
        ],
        dir.path(),
    );
    assert_clear_error(&o, &["faces.vaecache"]);
    let o = vae_cpu(
        &[
            "classifier",
            "train",
            "--config",
            "attributes32",
            "--data",
            "faces.vaecache",
            "--out",
            "r",
        ],
        dir.path(),
    );
    assert_clear_error(&o, &["faces.vaecache", "16x16x3", "prepare --size 32x32"]);
    assert!(!dir.path().join("r").exists());
}

/// A batch of one image trains when no batch norm needs two (only a model with a flat
/// batch norm skips a last batch of one).
#[test]
fn batches_of_one_image_train_without_a_flat_batch_norm() {
    let dir = tempfile::tempdir().unwrap();
    let cache = faces_cache(dir.path(), 30, 32);
    let data = Dataset::open(&cache).unwrap();
    let mut c = config(1);
    c.trainer.batch_size = 1;
    c.plan().unwrap();
    let out = dir.path().join("one");
    let mut t = ClassifierTrainer::new(&c, &data, options(&out)).unwrap();
    t.run(&AtomicBool::new(false)).unwrap();
    let train = data.indices(vae_cpu::data::Split::Train).len() as u64;
    assert_eq!(t.history[0].step, train, "one step per training image");
}
