//! `morph --classifier`: the morph score of an attribute vector on generated faces, whose
//! attributes are known. Adding the vector makes the classifier see the attribute more
//! (its probability rises with n), and the faces move more the further n is from 0.

#![cfg(feature = "engine")]

mod common;

use common::{faces32_config, faces_cache, run_ok, table_row, trained_faces_classifier};
use std::sync::atomic::AtomicBool;
use vae_cpu::data::Dataset;
use vae_cpu::train::{TrainOptions, Trainer};

#[test]
fn the_probability_of_the_attribute_rises_along_its_vector() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = faces_cache(d, 1200, 32);
    let opts = TrainOptions {
        out: d.join("run"),
        val_limit: None,
        quiet: true,
        world: vae_cpu::collective::single(),
    };
    let ds = Dataset::open(&cache).unwrap();
    Trainer::new(&faces32_config(8, 32), &ds, opts)
        .unwrap()
        .run(&AtomicBool::new(false))
        .unwrap();
    let clf = trained_faces_classifier(d, &cache);
    let out = run_ok(
        &[
            "morph",
            "--checkpoint",
            "run/checkpoints/best.safetensors",
            "--attr",
            "Wearing_Hat",
            "--data",
            "faces.vaecache",
            "--classifier",
            clf.to_str().unwrap(),
            "--score-faces",
            "60",
            "--out",
            "m.png",
        ],
        d,
    );
    assert!(
        out.contains("60 faces of the val split without Wearing_Hat"),
        "{out}"
    );
    let p = table_row(&out, "P(Wearing_Hat)");
    let moved = table_row(&out, "pixel RMS to n = 0");
    let flips = table_row(&out, "other attributes flipped");
    assert_eq!(p.len(), 7, "{out}");
    let rising = p.windows(2).all(|w| w[0] <= w[1]);
    assert!(
        rising && p[3] < p[6] && p[6] > 0.5,
        "P rises with n: {p:?}\n{out}"
    );
    assert!(
        p[3] < 0.5,
        "faces without a hat stay without at n = 0: {p:?}"
    );
    assert_eq!((moved[3], flips[3]), (0.0, 0.0));
    assert!(moved[6] > moved[4] && moved[0] > moved[2], "{moved:?}");
    assert!(d.join("m.png").exists());
}
