//! Resource limits: sizes that cannot work (threads, batches, images, configs) are refused
//! up front with a message saying what would fit; extreme sizes that can work (a batch
//! larger than the data, 1x1 and 10000x10000 images, a latent of one dimension) work.

#![cfg(feature = "engine")]

mod common;

use common::{assert_clear_error, run_ok, stderr, vae_cpu, workspace, BEST};

#[test]
fn resource_limits_are_refused_up_front_or_work() {
    let dir = workspace();
    let p = dir.path();
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--config",
            "ok.toml",
            "--data",
            "faces.vaecache",
            "--quiet",
            "--epochs",
            "1",
        ];
        args.extend(extra);
        vae_cpu(&args, p)
    };
    assert_clear_error(
        &train(&["--threads", "0", "--out", "a"]),
        &["--threads must be at least 1"],
    );
    assert_clear_error(
        &train(&["--threads", "100000", "--out", "a"]),
        &["--threads 100000", "supported"],
    );
    common::assert_out_of_range(&train(&["--batch-size", "0", "--out", "a"]), "--batch-size");
    // The small model normalizes its flat features over the batch: one image is too few.
    assert_clear_error(
        &train(&["--batch-size", "1", "--out", "a"]),
        &["batch_size must be at least 2"],
    );
    // A batch larger than the training set is the whole set.
    let o = train(&["--batch-size", "100000", "--out", "b"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A batch that cannot fit in memory is refused before training, with one that fits.
    std::fs::write(p.join("large.toml"), common::faces32_config(1, 8).to_toml()).unwrap();
    let o = vae_cpu(
        &[
            "bench",
            "--config",
            "large.toml",
            "--batch-size",
            "1000000000",
            "--steps",
            "1",
        ],
        p,
    );
    assert_clear_error(&o, &["GiB", "faces32", "--batch-size"]);
    // Evaluate refuses a zero batch (it used to run with 1 silently).
    assert_clear_error(
        &vae_cpu(
            &[
                "evaluate",
                "--checkpoint",
                BEST,
                "--data",
                "faces.vaecache",
                "--batch-size",
                "0",
            ],
            p,
        ),
        &["--batch-size"],
    );
    // Prepare: sizes of 0 or beyond 4096 are refused; 1x1 works.
    for size in ["0", "100000", "32x0"] {
        assert_clear_error(
            &vae_cpu(
                &[
                    "prepare",
                    "--data",
                    "faces",
                    "--size",
                    size,
                    "--out",
                    "x.vaecache",
                ],
                p,
            ),
            &[size],
        );
    }
    run_ok(
        &[
            "prepare",
            "--data",
            "faces",
            "--size",
            "1",
            "--out",
            "one.vaecache",
            "--quiet",
        ],
        p,
    );
    // A latent of one dimension trains, samples, maps and exports.
    let latent1 = common::small_config(1, 8)
        .to_toml()
        .replace("latent = 6", "latent = 1");
    std::fs::write(p.join("latent1.toml"), latent1).unwrap();
    run_ok(
        &[
            "train",
            "--config",
            "latent1.toml",
            "--data",
            "faces.vaecache",
            "--out",
            "l1",
            "--quiet",
        ],
        p,
    );
    let ck = "l1/checkpoints/best.safetensors";
    run_ok(&["sample", "--checkpoint", ck, "--out", "l1.png"], p);
    run_ok(
        &[
            "latent-map",
            "--checkpoint",
            ck,
            "--data",
            "faces.vaecache",
            "--attr",
            "Smiling",
            "--split",
            "train",
            "--quiet",
            "--out",
            "map.png",
        ],
        p,
    );
    run_ok(&["export-onnx", "l1.onnx", "--checkpoint", ck], p);
    // NaN where a number must be compared is refused.
    assert_eq!(
        vae_cpu(
            &[
                "verify-onnx",
                "l1.onnx",
                "--checkpoint",
                ck,
                "--tolerance",
                "NaN"
            ],
            p
        )
        .status
        .code(),
        Some(2)
    );
}

#[test]
fn images_of_one_pixel_and_of_ten_thousand_pixels_a_side_are_prepared() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("odd/img_align_celeba");
    std::fs::create_dir_all(&images).unwrap();
    image::RgbImage::from_pixel(1, 1, image::Rgb([200, 10, 10]))
        .save(images.join("tiny.png"))
        .unwrap();
    image::RgbImage::from_pixel(10_000, 10_000, image::Rgb([10, 200, 10]))
        .save(images.join("huge.png"))
        .unwrap();
    run_ok(
        &[
            "prepare",
            "--data",
            "odd",
            "--size",
            "8",
            "--out",
            "odd.vaecache",
        ],
        dir.path(),
    );
    let ds = vae_cpu::data::Dataset::open(&dir.path().join("odd.vaecache")).unwrap();
    assert_eq!(ds.len(), 2);
    // Both images are resized (not skipped): their one color fills the 8x8 result.
    let tiny = ds.names.iter().position(|n| n == "tiny.png").unwrap();
    let huge = ds.names.iter().position(|n| n == "huge.png").unwrap();
    assert!(ds.image(tiny).chunks(3).all(|px| px == [200, 10, 10]));
    assert!(ds.image(huge).chunks(3).all(|px| px == [10, 200, 10]));
}
