//! One `cargo install` away: the binary, run from a folder with no `models/` beside it,
//! trains with a built-in config name, lists and prints every built-in config, resumes
//! from the run's own config, and prints completions and its man page.

#![cfg(feature = "engine")]

mod common;

use common::{assert_clear_error, faces_cache, run_ok, stderr, vae_cpu};
use std::path::Path;
use vae_cpu::config::{Config, BUILT_IN};

#[test]
fn every_file_of_models_is_built_in_and_shows_as_itself() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut files: Vec<String> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let built_in: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
    assert_eq!(files, built_in, "a config in models/ is not built in");
    let away = tempfile::tempdir().unwrap();
    let listing = run_ok(&["models"], away.path());
    for name in built_in {
        let line = listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed: {listing}"));
        assert_eq!(line.split_whitespace().count(), 5, "{line}");
        let shown = run_ok(&["models", "show", name], away.path());
        let file = std::fs::read_to_string(models.join(format!("{name}.toml"))).unwrap();
        assert_eq!(shown, file);
        assert_eq!(
            Config::parse(&shown).unwrap(),
            Config::parse(&file).unwrap()
        );
    }
    assert_clear_error(
        &vae_cpu(&["models", "show", "nope"], away.path()),
        &["celeba64"],
    );
}

#[test]
fn a_built_in_name_trains_and_resumes_from_any_folder() {
    let away = tempfile::tempdir().unwrap();
    let p = away.path();
    assert!(!p.join("models").exists());
    faces_cache(p, 40, 32);
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--data", "faces.vaecache", "--quiet"];
        args.extend_from_slice(extra);
        vae_cpu(&args, p)
    };
    let o = train(&["--config", "demo32", "--out", "r", "--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let saved = Config::load(&p.join("r/config.toml")).unwrap();
    assert_eq!(saved.model.name, "demo32");
    // The README's paths work too outside a checkout.
    let o = train(&[
        "--config",
        "models/demo32.toml",
        "--out",
        "r2",
        "--epochs",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The resume reads the run's own config.
    let o = train(&["--resume", "r", "--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(p.join("r/metrics.csv"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    // A file of the same name wins over the built-in one.
    std::fs::write(p.join("demo32"), common::small_config(1, 8).to_toml()).unwrap();
    let o = vae_cpu(
        &[
            "bench", "--config", "demo32", "--steps", "1", "--warmup", "0",
        ],
        p,
    );
    assert!(common::stdout(&o).contains("small16"), "{}", stderr(&o));
    let o = train(&["--config", "celeba33"]);
    assert_clear_error(&o, &["celeba33", "built-in configs are", "celeba64x48-in"]);
}

#[test]
fn completions_and_the_man_page_come_from_the_flags() {
    let away = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = run_ok(&["completions", shell], away.path());
        assert!(
            script.contains("vae-cpu") && script.contains("latent-map"),
            "{shell}"
        );
        assert!(script.contains("feature-net"), "{shell}");
    }
    let page = run_ok(&["man"], away.path());
    assert!(page.contains(".TH vae-cpu 1"), "{page}");
    assert!(page.contains("export\\-onnx"), "{page}");
}
