//! Latent-space tools on a briefly trained model: the math (interpolation endpoints are
//! the reconstructions) and the commands' pictures.
#![cfg(feature = "engine")]

mod common;

use common::{assert_clear_error, run_ok, vae_cpu};
use std::path::{Path, PathBuf};
use vae_cpu::data::prepare::CELEBA_CROP_FRACTION;
use vae_cpu::data::Dataset;
use vae_cpu::latent;

/// The small model after one epoch on 48 generated faces: (best checkpoint, faces folder).
fn trained(dir: &Path) -> (PathBuf, PathBuf) {
    (
        common::trained_small(dir, 48),
        dir.join("faces/img_align_celeba"),
    )
}

#[test]
fn interpolation_endpoints_decode_to_the_reconstructions() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, faces) = trained(dir.path());
    let ck = vae_cpu::checkpoint::Checkpoint::load(&ckpt).unwrap();
    let mut model = ck.build_model().unwrap();
    let (a, b) = (faces.join("000001.jpg"), faces.join("000002.jpg"));
    let x = latent::load_images(&model, &[a.as_path(), b.as_path()], CELEBA_CROP_FRACTION).unwrap();
    let z = latent::encode_means(&mut model, &x);
    let recon = latent::decode(&mut model, &z);
    for spherical in [false, true] {
        let path = latent::interpolate(&latent::row(&z, 0), &latent::row(&z, 1), 6, spherical);
        let decoded = latent::decode(&mut model, &path);
        for (step, which) in [(0, 0), (5, 1)] {
            let got = decoded.index_axis(ndarray::Axis(0), step);
            let want = recon.index_axis(ndarray::Axis(0), which);
            let diff = got
                .iter()
                .zip(want.iter())
                .map(|(g, w)| (g - w).abs())
                .fold(0.0f32, f32::max);
            assert!(diff < 1e-5, "step {step}: {diff}");
        }
        // The inner points differ from both ends.
        let mid = decoded.index_axis(ndarray::Axis(0), 2);
        let d0 = mid
            .iter()
            .zip(recon.index_axis(ndarray::Axis(0), 0).iter())
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>();
        assert!(d0 > 0.0);
    }
}

#[test]
fn sample_reconstruct_and_interpolate_write_their_grids() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, faces) = trained(dir.path());
    let run = |args: &[&str]| run_ok(args, dir.path());
    let ck = ckpt.to_str().unwrap();
    run(&[
        "sample",
        "--checkpoint",
        ck,
        "--n",
        "12",
        "--cols",
        "4",
        "--scale",
        "3",
        "--out",
        "s.png",
    ]);
    let s = image::open(dir.path().join("s.png")).unwrap();
    // 3 rows of 4 faces of 16x16 scaled 3x, 2-pixel gaps.
    assert_eq!((s.width(), s.height()), (2 + 4 * 50, 2 + 3 * 50));
    let a = faces.join("000003.jpg");
    let b = faces.join("000004.jpg");
    run(&[
        "reconstruct",
        "--checkpoint",
        ck,
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        "r.png",
    ]);
    run(&[
        "reconstruct",
        "--checkpoint",
        ck,
        "--data",
        "faces.vaecache",
        "--split",
        "train",
        "--n",
        "5",
        "--out",
        "r2.png",
    ]);
    run(&[
        "interpolate",
        "--checkpoint",
        ck,
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--steps",
        "7",
        "--spherical",
        "--out",
        "i.png",
    ]);
    for f in ["r.png", "r2.png", "i.png"] {
        assert!(image::open(dir.path().join(f)).is_ok(), "{f}");
    }
    // Mistakes are clear errors.
    let o = vae_cpu(
        &[
            "interpolate",
            "--checkpoint",
            ck,
            "missing.jpg",
            a.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_clear_error(&o, &["missing.jpg"]);
}

#[test]
fn attribute_morph_traverse_map_and_activation_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, faces) = trained(dir.path());
    let ck = ckpt.to_str().unwrap();
    let run = |args: &[&str]| run_ok(args, dir.path());
    let fails_with = |args: &[&str], needle: &str| {
        assert_clear_error(&vae_cpu(args, dir.path()), &[needle]);
    };
    let data = ["--data", "faces.vaecache"];
    /// The subcommand `extra[0]` with `--checkpoint ck` and the rest of `extra`.
    fn with_checkpoint<'a>(ck: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![extra[0], "--checkpoint", ck];
        v.extend_from_slice(&extra[1..]);
        v
    }
    let with = |extra: &[&'static str]| with_checkpoint(ck, extra);
    let a = faces.join("000003.jpg");
    let a = a.to_str().unwrap();

    let out = run(&[
        with(&["attribute-vector", "--attr", "wearing_hat"]),
        data.to_vec(),
    ]
    .concat()[..]);
    assert!(out.contains("Wearing_Hat"), "{out}");
    let v =
        latent::attribute::AttributeVector::load(&dir.path().join("wearing_hat.attrvec")).unwrap();
    let ds = Dataset::open(&dir.path().join("faces.vaecache")).unwrap();
    assert_eq!(v.delta.len(), 6);
    assert_eq!(
        v.positives + v.negatives,
        ds.indices(vae_cpu::data::Split::Train).len()
    );

    // Morph from the saved vector: a title band, a header band (8-pixel text) and 3 rows of
    // 1 + 7 cells (16 px x 2).
    run(&[
        with(&[
            "morph",
            "--vector",
            "wearing_hat.attrvec",
            "--split",
            "train",
            "--n",
            "3",
            "--out",
            "m.png",
        ]),
        data.to_vec(),
    ]
    .concat());
    let m = image::open(dir.path().join("m.png")).unwrap();
    assert_eq!(m.height(), (8 + 6) + (8 + 4) + 2 + 3 * 34);
    // Morph computing the vector from --data, on image files.
    run(&[
        with_checkpoint(
            ck,
            &[
                "morph", "--attr", "Male", a, "--range", "-2:2:5", "--out", "m2.png",
            ],
        ),
        data.to_vec(),
    ]
    .concat());
    assert!(image::open(dir.path().join("m2.png")).is_ok());

    run(&[
        with(&[
            "traverse", "--dims", "0..3", "--range", "-2:2:5", "--out", "t.png",
        ]),
        data.to_vec(),
    ]
    .concat());
    let t = image::open(dir.path().join("t.png")).unwrap();
    assert_eq!(t.height(), (8 + 6) + (8 + 4) + 2 + 3 * 34);
    let csv = std::fs::read_to_string(dir.path().join("t.csv")).unwrap();
    let kl: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(kl.len(), 6);
    assert!(kl.windows(2).all(|w| w[0] >= w[1]), "ranked by KL: {kl:?}");

    run(&[
        with(&[
            "latent-map",
            "--attr",
            "Male",
            "--split",
            "train",
            "--iterations",
            "100",
            "--perplexity",
            "5",
            "--quiet",
            "--out",
            "map.png",
        ]),
        data.to_vec(),
    ]
    .concat());
    let map = image::open(dir.path().join("map.png")).unwrap();
    assert_eq!((map.width(), map.height()), (1280, 520));
    let rows = std::fs::read_to_string(dir.path().join("map.csv")).unwrap();
    assert_eq!(
        rows.lines().next().unwrap(),
        "name,split,Male,pca1,pca2,tsne1,tsne2"
    );
    assert_eq!(
        rows.lines().count(),
        1 + ds.indices(vae_cpu::data::Split::Train).len()
    );

    run(&with_checkpoint(
        ck,
        &["activations", a, "--out-dir", "act"],
    ));
    let mut files: Vec<String> = std::fs::read_dir(dir.path().join("act"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // Two convolutions in the encoder, three transposed ones in the decoder.
    assert_eq!(
        files,
        [
            "00-encoder-0-conv2d.png",
            "01-encoder-3-conv2d.png",
            "02-decoder-4-conv_transpose2d.png",
            "03-decoder-7-conv_transpose2d.png",
            "04-decoder-10-conv_transpose2d.png",
            "input.png"
        ]
    );

    // Mistakes are clear errors.
    fails_with(
        &[
            with(&["attribute-vector", "--attr", "Smiley"]),
            data.to_vec(),
        ]
        .concat(),
        "Smiling",
    );
    fails_with(
        &with_checkpoint(ck, &["morph", "--attr", "Male", a]),
        "--data",
    );
    fails_with(
        &with_checkpoint(ck, &["traverse", a, "--dims", "0..16"]),
        "6 dimensions",
    );
    fails_with(&with(&["traverse"]), "give an image file");
    fails_with(
        &[with(&["traverse", "--index", "999"]), data.to_vec()].concat(),
        "past the end",
    );
    fails_with(
        &with_checkpoint(ck, &["morph", "--vector", "m.png", a]),
        "m.png",
    );
    fails_with(
        &with_checkpoint(
            ck,
            &[
                "morph",
                "--vector",
                "wearing_hat.attrvec",
                "--range",
                "1:2",
                a,
            ],
        ),
        "START:END:COUNT",
    );
}
