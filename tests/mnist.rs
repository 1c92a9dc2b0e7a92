//! MNIST end to end on generated IDX files: `prepare` reads them (labels become the
//! attributes digit_0..digit_9), models/mnist-mlp.toml trains on them, and `latent-map`
//! draws the 2-d latent colored by digit beside the decoded manifold.
#![cfg(feature = "engine")]

mod common;

use common::{assert_clear_error, run_ok, vae_cpu};
use std::path::Path;
use vae_cpu::data::idx;
use vae_cpu::data::Dataset;
use vae_cpu::train::metrics;

/// A 28x28 "digit": a bright 6x6 square whose position encodes the label (a 4 x 3 layout),
/// plus a little per-image noise so no two images are equal.
fn digit(label: u8, i: usize) -> Vec<u8> {
    let (row, col) = (label as usize / 4, label as usize % 4);
    (0..28 * 28)
        .map(|p| {
            let (y, x) = (p / 28, p % 28);
            let inside =
                (2 + row * 8..8 + row * 8).contains(&y) && (2 + col * 6..8 + col * 6).contains(&x);
            if inside {
                255 - ((i * 7 + p) % 40) as u8
            } else {
                ((i * 13 + p * 5) % 30) as u8
            }
        })
        .collect()
}

/// Writes the four MNIST files for `train` and `test` images into `dir`.
fn write_mnist(dir: &Path, train: usize, test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (part, n) in [("train", train), ("t10k", test)] {
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let pixels: Vec<u8> = labels
            .iter()
            .enumerate()
            .flat_map(|(i, &l)| digit(l, i))
            .collect();
        std::fs::write(
            dir.join(format!("{part}-images-idx3-ubyte")),
            idx::encode(&[n, 28, 28], &pixels),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{part}-labels-idx1-ubyte")),
            idx::encode(&[n], &labels),
        )
        .unwrap();
    }
}

#[test]
fn mnist_prepares_trains_and_maps_its_2d_latent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_mnist(&d.join("mnist"), 400, 100);
    run_ok(
        &[
            "prepare",
            "--data",
            "mnist",
            "--size",
            "28",
            "--out",
            "mnist.vaecache",
            "--quiet",
        ],
        d,
    );
    let ds = Dataset::open(&d.join("mnist.vaecache")).unwrap();
    assert_eq!(
        (ds.channels, ds.height, ds.width, ds.len()),
        (1, 28, 28, 500)
    );
    assert_eq!(ds.split_summary(), "train 400, val 100, test 0");
    let seven = ds.attribute_index("digit_7").unwrap();
    assert_eq!(ds.attribute(7, seven), 1);
    assert_eq!(ds.attribute(8, seven), -1);
    assert_eq!(ds.image(3), &digit(3, 3)[..]);

    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/mnist-mlp.toml");
    let config = config.to_str().unwrap();
    run_ok(
        &[
            "train",
            "--config",
            config,
            "--data",
            "mnist.vaecache",
            "--epochs",
            "15",
            "--batch-size",
            "50",
            "--out",
            "run",
            "--quiet",
        ],
        d,
    );
    let rows = metrics::read(&d.join("run/metrics.csv")).unwrap();
    assert!(rows[14].train_loss < 0.7 * rows[0].train_loss, "{rows:?}");
    assert!(rows[14].val_loss < rows[0].val_loss, "{rows:?}");

    let out = run_ok(
        &[
            "latent-map",
            "--checkpoint",
            "run/checkpoints/best.safetensors",
            "--data",
            "mnist.vaecache",
            "--attr",
            "digit",
            "--grid",
            "10",
            "--out",
            "map.png",
            "--quiet",
        ],
        d,
    );
    assert!(out.contains("map.png"), "{out}");
    let map = image::open(d.join("map.png")).unwrap();
    assert!(
        map.width() > 640 + 280,
        "the manifold sits beside the scatter: {}",
        map.width()
    );
    let csv = std::fs::read_to_string(d.join("map.csv")).unwrap();
    assert!(csv.starts_with("name,split,digit,z1,z2\n"), "{csv}");
    assert_eq!(csv.lines().count(), 101);
    assert!(csv.lines().nth(4).unwrap().contains(",digit_3,"), "{csv}");

    // The latent separates the digits: each digit's mean is nearer its own points than the
    // overall spread would make it by chance.
    let mut by_digit = vec![vec![]; 10];
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let d: usize = f[2].trim_start_matches("digit_").parse().unwrap();
        by_digit[d].push((f[3].parse::<f64>().unwrap(), f[4].parse::<f64>().unwrap()));
    }
    let mean = |p: &[(f64, f64)]| {
        let n = p.len() as f64;
        (
            p.iter().map(|q| q.0).sum::<f64>() / n,
            p.iter().map(|q| q.1).sum::<f64>() / n,
        )
    };
    let spread = |p: &[(f64, f64)], c: (f64, f64)| {
        p.iter()
            .map(|q| (q.0 - c.0).powi(2) + (q.1 - c.1).powi(2))
            .sum::<f64>()
            / p.len() as f64
    };
    let all: Vec<_> = by_digit.concat();
    let within: f64 = by_digit.iter().map(|p| spread(p, mean(p))).sum::<f64>() / 10.0;
    assert!(within < 0.5 * spread(&all, mean(&all)), "within {within}");

    // A model whose latent is not 2-d cannot be drawn as its own latent.
    let o = vae_cpu(
        &[
            "latent-map",
            "--checkpoint",
            "run/checkpoints/best.safetensors",
            "--data",
            "mnist.vaecache",
            "--attr",
            "digit_1",
            "--method",
            "pca",
            "--out",
            "pca.png",
            "--quiet",
            "--iterations",
            "10",
        ],
        d,
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
}

#[test]
fn bad_mnist_folders_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_mnist(&d.join("mnist"), 20, 10);
    let wrong_size = vae_cpu(
        &[
            "prepare",
            "--data",
            "mnist",
            "--size",
            "32",
            "--out",
            "x.vaecache",
        ],
        d,
    );
    assert_clear_error(&wrong_size, &["MNIST images are 28x28", "--size 28x28"]);

    let images = d.join("mnist/train-images-idx3-ubyte");
    let bytes = std::fs::read(&images).unwrap();
    std::fs::write(&images, &bytes[..bytes.len() - 10]).unwrap();
    let truncated = vae_cpu(
        &[
            "prepare",
            "--data",
            "mnist",
            "--size",
            "28",
            "--out",
            "x.vaecache",
        ],
        d,
    );
    assert_clear_error(&truncated, &["train-images-idx3-ubyte", "truncated"]);

    std::fs::rename(&images, d.join("mnist/train-images-idx3-ubyte.gz")).unwrap();
    let gz = vae_cpu(
        &[
            "prepare",
            "--data",
            "mnist",
            "--size",
            "28",
            "--out",
            "x.vaecache",
        ],
        d,
    );
    assert_clear_error(&gz, &["compressed", "gunzip"]);

    write_mnist(&d.join("nolabels"), 20, 0);
    std::fs::remove_file(d.join("nolabels/train-labels-idx1-ubyte")).unwrap();
    let o = vae_cpu(
        &[
            "prepare",
            "--data",
            "nolabels",
            "--size",
            "28",
            "--out",
            "x.vaecache",
        ],
        d,
    );
    assert_clear_error(&o, &["train-labels-idx1-ubyte", "missing"]);
    assert!(!d.join("x.vaecache").exists());
}
