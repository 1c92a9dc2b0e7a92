//! The `vae-cpu` binary as a user runs it: the demo end to end, prepare/train/evaluate on
//! generated faces, and the clear errors (no panics) for inputs users get wrong.
#![cfg(feature = "engine")]

mod common;

use common::{assert_clear_error, run_ok, stderr, stdout, vae_cpu};
use std::process::Command;

#[test]
fn the_demo_runs_end_to_end_and_writes_its_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "demo",
        "--images",
        "48",
        "--epochs",
        "2",
        "--threads",
        "2",
        "--quiet",
    ];
    let o = vae_cpu(&args, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("test split") && out.contains("PSNR"), "{out}");
    for f in [
        "samples.png",
        "reconstructions.png",
        "loss.png",
        "metrics.csv",
        "checkpoints/best.safetensors",
    ] {
        assert!(dir.path().join("runs/demo/run").join(f).is_file(), "{f}");
    }
    // Running it again continues the finished run instead of failing or starting over.
    let again = vae_cpu(&args, dir.path());
    assert!(again.status.success(), "{}", stderr(&again));
}

#[test]
fn prepare_train_resume_and_evaluate_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::faces_folder(dir.path(), 60);
    // One corrupt image: skipped, counted and logged; the rest is prepared.
    std::fs::write(data.join("img_align_celeba/000007.jpg"), b"garbage").unwrap();
    let o = vae_cpu(
        &[
            "prepare",
            "--data",
            data.to_str().unwrap(),
            "--size",
            "16",
            "--out",
            "c.vaecache",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("skipped 1"), "{}", stderr(&o));
    let log = std::fs::read_to_string(dir.path().join("c.skipped.txt")).unwrap();
    assert!(log.starts_with("000007.jpg\t"), "{log}");

    let config = dir.path().join("small.toml");
    std::fs::write(&config, common::small_config(1, 16).to_toml()).unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--data", "c.vaecache", "--threads", "2", "--quiet"];
        args.extend_from_slice(extra);
        vae_cpu(&args, dir.path())
    };
    let o = train(&[
        "--config",
        "small.toml",
        "--out",
        "runs/a",
        "--batch-size",
        "8",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("samples.png"));
    // Flags override the config: batch 8 over 48 training images is 6 steps.
    let rows = vae_cpu::train::metrics::read(&dir.path().join("runs/a/metrics.csv")).unwrap();
    assert_eq!((rows.len(), rows[0].step), (1, 6));
    // Starting again into the same folder is refused; resuming extends it.
    assert_clear_error(
        &train(&["--config", "small.toml", "--out", "runs/a"]),
        &["runs/a", "--resume"],
    );
    assert_clear_error(
        &train(&["--resume", "runs/a", "--lr", "0.1"]),
        &["cannot change when resuming"],
    );
    let o = train(&["--resume", "runs/a", "--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        vae_cpu::train::metrics::read(&dir.path().join("runs/a/metrics.csv"))
            .unwrap()
            .len(),
        2
    );

    let o = vae_cpu(
        &[
            "evaluate",
            "--checkpoint",
            "runs/a/checkpoints/best.safetensors",
            "--data",
            "c.vaecache",
            "--split",
            "val",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for key in [
        "MSE per pixel",
        "PSNR",
        "KL",
        "negative ELBO",
        "active dimensions",
    ] {
        assert!(stdout(&o).contains(key), "{key}: {}", stdout(&o));
    }

    // A truncated checkpoint: a clear error naming it, for evaluate and for resume.
    let newest = dir
        .path()
        .join("runs/a/checkpoints/e0002-b000000.safetensors");
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let o = vae_cpu(
        &[
            "evaluate",
            "--checkpoint",
            newest.to_str().unwrap(),
            "--data",
            "c.vaecache",
        ],
        dir.path(),
    );
    assert_clear_error(&o, &["e0002-b000000.safetensors", "truncated"]);
    assert_clear_error(
        &train(&["--resume", "runs/a", "--epochs", "3"]),
        &[
            "e0002-b000000.safetensors",
            "previous one is",
            "e0001-b000000",
        ],
    );
    // The other checkpoints are untouched.
    assert!(dir
        .path()
        .join("runs/a/checkpoints/e0001-b000000.safetensors")
        .is_file());
}

#[test]
fn user_mistakes_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    assert_clear_error(
        &vae_cpu(&["prepare", "--data", "nowhere"], p),
        &["nowhere", "no such folder"],
    );
    std::fs::create_dir(p.join("empty")).unwrap();
    assert_clear_error(
        &vae_cpu(&["prepare", "--data", "empty"], p),
        &["empty", "no images"],
    );
    assert_clear_error(
        &vae_cpu(&["prepare", "--data", "empty", "--size", "32x"], p),
        &["32x"],
    );
    assert_clear_error(
        &vae_cpu(&["train", "--config", "missing.toml", "--data", "x"], p),
        &["missing.toml"],
    );
    std::fs::write(p.join("typo.toml"), "[model]\nname='a'\nheigth=3\n").unwrap();
    assert_clear_error(
        &vae_cpu(&["train", "--config", "typo.toml", "--data", "x"], p),
        &["typo.toml", "heigth"],
    );
    std::fs::write(p.join("garbage.vaecache"), b"garbage").unwrap();
    std::fs::write(p.join("ok.toml"), common::small_config(1, 4).to_toml()).unwrap();
    assert_clear_error(
        &vae_cpu(
            &["train", "--config", "ok.toml", "--data", "garbage.vaecache"],
            p,
        ),
        &["garbage.vaecache"],
    );
    assert_clear_error(
        &vae_cpu(&["train", "--resume", "runs/none", "--data", "x"], p),
        &["runs/none"],
    );
    assert_clear_error(
        &vae_cpu(
            &[
                "evaluate",
                "--checkpoint",
                "nope.safetensors",
                "--data",
                "x",
            ],
            p,
        ),
        &["nope.safetensors"],
    );
    assert_clear_error(&vae_cpu(&["info", "--threads", "0"], p), &["thread"]);
    common::assert_out_of_range(&vae_cpu(&["demo", "--images", "3"], p), "--images");
}

#[test]
fn a_cache_of_the_wrong_size_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    common::faces_cache(dir.path(), 12, 8);
    std::fs::write(
        dir.path().join("ok.toml"),
        common::small_config(1, 4).to_toml(),
    )
    .unwrap();
    let o = vae_cpu(
        &[
            "train",
            "--config",
            "ok.toml",
            "--data",
            "faces.vaecache",
            "--quiet",
        ],
        dir.path(),
    );
    assert_clear_error(&o, &["8x8", "16x16", "prepare --size 16x16"]);
}

#[test]
fn bench_times_a_training_step_and_refuses_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo32.toml");
    let out = run_ok(
        &[
            "bench",
            "--config",
            config,
            "--batch-size",
            "4",
            "--steps",
            "2",
            "--warmup",
            "0",
            "--threads",
            "1",
        ],
        dir.path(),
    );
    for line in [
        "batch 4, 1 thread: 2 steps",
        "images/s",
        "GFLOP/s",
        "sgemm",
        "peak memory",
        "conv2d",
        "optimizer",
    ] {
        assert!(out.contains(line), "{line} missing: {out}");
    }
    let steps0 = vae_cpu(&["bench", "--config", config, "--steps", "0"], dir.path());
    assert_clear_error(&steps0, &["--steps"]);
    let missing = vae_cpu(&["bench", "--config", "nope.toml"], dir.path());
    assert_clear_error(&missing, &["nope.toml"]);
}

#[test]
fn every_subcommand_explains_its_flags() {
    let dir = tempfile::tempdir().unwrap();
    for (cmd, flags) in [
        ("demo", &["--out", "--images", "--epochs", "--threads"][..]),
        (
            "prepare",
            &["--data", "--size", "--crop-fraction", "--out", "--threads"],
        ),
        (
            "train",
            &[
                "--config",
                "--data",
                "--out",
                "--resume",
                "--epochs",
                "--batch-size",
                "--lr",
                "--seed",
                "--patience",
                "--feature-net",
            ],
        ),
        (
            "sweep",
            &[
                "--config",
                "--data",
                "--set",
                "--out",
                "--epochs",
                "--patience",
            ],
        ),
        ("sample", &["--checkpoint", "--cond", "--seed"]),
        ("latent-map", &["--attr", "--method", "--grid", "--span"]),
        ("evaluate", &["--checkpoint", "--data", "--split"]),
        (
            "bench",
            &[
                "--config",
                "--batch-size",
                "--threads",
                "--steps",
                "--warmup",
            ],
        ),
    ] {
        let o = vae_cpu(&[cmd, "--help"], dir.path());
        assert!(o.status.success());
        let help = stdout(&o);
        for f in flags {
            assert!(help.contains(f), "{cmd} --help lacks {f}: {help}");
        }
    }
}

#[test]
fn ctrl_c_finishes_the_step_saves_and_the_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    common::faces_cache(dir.path(), 200, 16);
    std::fs::write(
        dir.path().join("ok.toml"),
        common::small_config(10_000, 8).to_toml(),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vae-cpu"))
        .args([
            "train",
            "--config",
            "ok.toml",
            "--data",
            "faces.vaecache",
            "--out",
            "run",
            "--threads",
            "2",
            "--quiet",
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first epoch to finish, then interrupt mid-run.
    let metrics = dir.path().join("run/metrics.csv");
    let start = std::time::Instant::now();
    while vae_cpu::train::metrics::read(&metrics).map_or(0, |r| r.len()) < 1 {
        assert!(start.elapsed().as_secs() < 120, "no epoch finished");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("interrupted: saved") && err.contains("--resume run"),
        "{err}"
    );
    let run = vae_cpu::train::RunDir::new(&dir.path().join("run"));
    let (pos, path) = run.list_checkpoints().pop().unwrap();
    assert!(pos.epoch >= 1, "{pos:?}");
    vae_cpu::checkpoint::Checkpoint::load(&path).unwrap();
    let o = vae_cpu(
        &[
            "train",
            "--resume",
            "run",
            "--data",
            "faces.vaecache",
            "--epochs",
            &(pos.epoch + 1).to_string(),
            "--threads",
            "2",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = vae_cpu::train::metrics::read(&metrics).unwrap();
    assert_eq!(rows.last().unwrap().epoch, pos.epoch + 1);
}
