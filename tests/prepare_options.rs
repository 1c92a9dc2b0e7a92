//! `prepare --filter` (the resize of PIL / torchvision pipelines) and `prepare --split
//! balanced --balance-on` (a stratified split), through the binary.
#![cfg(feature = "engine")]

mod common;

use common::{assert_clear_error, run_ok, vae_cpu};
use image::imageops::FilterType;
use std::path::Path;
use vae_cpu::data::prepare::{crop_box, CELEBA_CROP_FRACTION};
use vae_cpu::data::{Dataset, Split};

/// The first image of the folder cropped and resized to 16x16 with `filter`, directly.
fn expected(faces: &Path, name: &str, filter: FilterType) -> Vec<u8> {
    let img = image::open(faces.join("img_align_celeba").join(name))
        .unwrap()
        .to_rgb8();
    let (x, y, w, h) = crop_box(img.width(), img.height(), 16, 16, CELEBA_CROP_FRACTION);
    let crop = image::imageops::crop_imm(&img, x, y, w, h).to_image();
    image::imageops::resize(&crop, 16, 16, filter).into_raw()
}

#[test]
fn each_filter_gives_the_pixels_of_that_resize() {
    let dir = tempfile::tempdir().unwrap();
    let faces = common::faces_folder(dir.path(), 12);
    let mut seen = vec![];
    for (name, filter) in [
        ("lanczos3", FilterType::Lanczos3),
        ("triangle", FilterType::Triangle),
        ("nearest", FilterType::Nearest),
    ] {
        let out = format!("{name}.vaecache");
        run_ok(
            &[
                "prepare", "--data", "faces", "--size", "16", "--filter", name, "--out", &out,
                "--quiet",
            ],
            dir.path(),
        );
        let ds = Dataset::open(&dir.path().join(&out)).unwrap();
        assert_eq!(
            ds.image(0),
            expected(&faces, &ds.names[0], filter),
            "{name}"
        );
        assert!(
            !seen.contains(&ds.image(0).to_vec()),
            "{name} gave another filter's pixels"
        );
        seen.push(ds.image(0).to_vec());
    }
}

#[test]
fn default_cache_names_keep_caches_of_other_settings_apart() {
    let dir = tempfile::tempdir().unwrap();
    common::faces_folder(dir.path(), 12);
    let prepare = |extra: &[&str]| {
        let mut args = vec!["prepare", "--data", "faces", "--size", "16", "--quiet"];
        args.extend_from_slice(extra);
        run_ok(&args, dir.path());
    };
    prepare(&[]);
    prepare(&["--filter", "triangle"]);
    prepare(&["--split", "balanced", "--balance-on", "Smiling,Male"]);
    for name in [
        "faces-16x16.vaecache",
        "faces-16x16-triangle.vaecache",
        "faces-16x16-balanced-Smiling-Male.vaecache",
    ] {
        assert!(dir.path().join("cache").join(name).is_file(), "{name}");
    }
}

#[test]
fn a_balanced_split_holds_every_combination_80_10_10() {
    let dir = tempfile::tempdir().unwrap();
    common::faces_folder(dir.path(), 300);
    let args = [
        "prepare",
        "--data",
        "faces",
        "--size",
        "8",
        "--split",
        "balanced",
        "--balance-on",
        "Smiling,Male",
        "--out",
        "b.vaecache",
        "--quiet",
    ];
    run_ok(&args, dir.path());
    let first = std::fs::read(dir.path().join("b.vaecache")).unwrap();
    let ds = Dataset::open(&dir.path().join("b.vaecache")).unwrap();
    let (smiling, male) = (
        ds.attribute_index("Smiling").unwrap(),
        ds.attribute_index("Male").unwrap(),
    );
    for combo in [(1, 1), (1, -1), (-1, 1), (-1, -1)] {
        let group: Vec<usize> = (0..ds.len())
            .filter(|&i| (ds.attribute(i, smiling), ds.attribute(i, male)) == combo)
            .collect();
        assert!(group.len() >= 20, "{combo:?}: only {} faces", group.len());
        for (split, share) in [(Split::Train, 0.8), (Split::Val, 0.1), (Split::Test, 0.1)] {
            let n = group.iter().filter(|&&i| ds.splits[i] == split).count() as f64;
            let want = share * group.len() as f64;
            assert!(
                (n - want).abs() <= 1.0,
                "{combo:?} {split:?}: {n}, want {want}"
            );
        }
    }
    // Deterministic: the same folder gives the same file.
    std::fs::remove_file(dir.path().join("b.vaecache")).unwrap();
    run_ok(&args, dir.path());
    assert!(std::fs::read(dir.path().join("b.vaecache")).unwrap() == first);
}

#[test]
fn split_options_are_checked_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    common::faces_folder(dir.path(), 12);
    let d = dir.path();
    let prepare = |extra: &[&str]| {
        let mut args = vec!["prepare", "--data", "faces"];
        args.extend_from_slice(extra);
        vae_cpu(&args, d)
    };
    let balanced_on = |attrs: &str| prepare(&["--split", "balanced", "--balance-on", attrs]);
    let o = prepare(&["--split", "balanced"]);
    assert_clear_error(&o, &["--split balanced needs --balance-on"]);
    let o = prepare(&["--balance-on", "Smiling"]);
    assert_clear_error(&o, &["--balance-on applies to --split balanced"]);
    assert_clear_error(&balanced_on("Wings"), &["no attribute \"Wings\""]);
    std::fs::remove_file(d.join("faces/list_attr_celeba.txt")).unwrap();
    assert_clear_error(&balanced_on("Smiling"), &["list_attr_celeba.txt"]);
    let o = prepare(&["--filter", "bicubic"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        common::stderr(&o).contains("lanczos3"),
        "{}",
        common::stderr(&o)
    );
}
