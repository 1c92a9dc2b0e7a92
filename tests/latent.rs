//! Latent-space tools on a briefly trained model: the math (interpolation endpoints are
//! the reconstructions) and the commands' pictures.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use vae_cpu::data::prepare::CELEBA_CROP_FRACTION;
use vae_cpu::data::Dataset;
use vae_cpu::latent;
use vae_cpu::train::{TrainOptions, Trainer};

/// Trains the small model for one epoch on generated faces; returns (best checkpoint, faces folder).
fn trained(dir: &Path) -> (PathBuf, PathBuf) {
    let cache = common::faces_cache(dir, 48, 16);
    let data = Dataset::open(&cache).unwrap();
    let out = dir.join("run");
    let opts = TrainOptions {
        out: out.clone(),
        val_limit: None,
        quiet: true,
    };
    Trainer::new(&common::small_config(1, 16), &data, opts)
        .unwrap()
        .run(&AtomicBool::new(false))
        .unwrap();
    (
        out.join("checkpoints/best.safetensors"),
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
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_vae-cpu"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
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
    let o = Command::new(env!("CARGO_BIN_EXE_vae-cpu"))
        .args([
            "interpolate",
            "--checkpoint",
            ck,
            "missing.jpg",
            a.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("missing.jpg") && !err.contains("panicked"),
        "{err}"
    );
}
