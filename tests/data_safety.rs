//! Nothing a user already has is ever lost, tried through the binary as a hostile user
//! would: outputs that are links, devices, folders or inputs; two processes in one run
//! folder; foreign checkpoints; a data folder changed after its cache was made; numbers
//! past what a config can hold; odd files in the image folder; duplicate annotation rows;
//! zero epochs; model names that climb out of `runs/`; flags that used to be clamped.

#![cfg(feature = "engine")]

mod common;

use common::{assert_clear_error, run_ok, stderr, vae_cpu, workspace, BEST};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `train --config ok.toml --data faces.vaecache --out OUT --quiet EXTRA...` in `p`.
fn train_new(p: &Path, out: &str, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--config", "ok.toml", "--data", "faces.vaecache"];
    args.extend(["--out", out, "--quiet"]);
    args.extend_from_slice(extra);
    vae_cpu(&args, p)
}

fn assert_ok(o: Output) {
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The bytes of a file, to check it was left alone.
fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[cfg(unix)]
#[test]
fn outputs_follow_links_and_refuse_folders_and_special_files() {
    let dir = workspace();
    let p = dir.path();
    // A symlink is written through: the link stays, its target gets the picture.
    std::os::unix::fs::symlink("target.png", p.join("link.png")).unwrap();
    run_ok(&["sample", "--checkpoint", BEST, "--out", "link.png"], p);
    assert!(std::fs::symlink_metadata(p.join("link.png"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(bytes(&p.join("target.png")).starts_with(b"\x89PNG"));
    // A FIFO, a folder and a device are refused and stay what they were.
    assert!(Command::new("mkfifo")
        .arg(p.join("pipe.png"))
        .status()
        .unwrap()
        .success());
    let o = vae_cpu(&["sample", "--checkpoint", BEST, "--out", "pipe.png"], p);
    assert_clear_error(&o, &["pipe.png", "a FIFO, not a regular file"]);
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(p.join("pipe.png"))
        .unwrap()
        .file_type()
        .is_fifo());
    let o = vae_cpu(&["sample", "--checkpoint", BEST, "--out", "faces"], p);
    assert_clear_error(&o, &["faces", "a folder"]);
    let o = vae_cpu(&["prepare", "--data", "faces", "--out", "/dev/null"], p);
    assert_clear_error(&o, &["/dev/null", "a device"]);
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn an_output_never_replaces_an_input_or_another_output() {
    let dir = workspace();
    let p = dir.path();
    let ckpt = p.join(BEST);
    let before = bytes(&ckpt);
    let o = vae_cpu(&["export-onnx", BEST, "--checkpoint", BEST], p);
    assert_clear_error(&o, &["same file as the input --checkpoint"]);
    // A hard link is the same file under another name.
    std::fs::hard_link(&ckpt, p.join("alias.onnx")).unwrap();
    let o = vae_cpu(&["export-onnx", "alias.onnx", "--checkpoint", BEST], p);
    assert_clear_error(&o, &["alias.onnx", "same file as the input"]);
    assert_eq!(bytes(&ckpt), before);
    // traverse writes its CSV beside --out: --out t.csv would be written twice.
    let o = vae_cpu(
        &[
            "traverse",
            "--checkpoint",
            BEST,
            "--data",
            "faces.vaecache",
            "--out",
            "t.csv",
        ],
        p,
    );
    assert_clear_error(&o, &["t.csv", "each output needs its own path"]);
    assert!(!p.join("t.csv").exists());
    // generate --save-values onto its own decoder.
    run_ok(&["export-onnx", "d.onnx", "--checkpoint", BEST], p);
    let onnx = bytes(&p.join("d.onnx"));
    let o = vae_cpu(
        &[
            "generate",
            "--onnx",
            "d.onnx",
            "--out",
            "g.png",
            "--save-values",
            "d.onnx",
        ],
        p,
    );
    assert_clear_error(&o, &["--save-values", "same file as the input --onnx"]);
    assert_eq!(bytes(&p.join("d.onnx")), onnx);
    // A cache or checkpoint that is not an input is still never replaced by a picture.
    let cache = bytes(&p.join("faces.vaecache"));
    let o = vae_cpu(
        &["sample", "--checkpoint", BEST, "--out", "faces.vaecache"],
        p,
    );
    assert_clear_error(&o, &["faces.vaecache", "is a vae-cpu image cache"]);
    assert_eq!(bytes(&p.join("faces.vaecache")), cache);
    std::fs::copy(&ckpt, p.join("copy.safetensors")).unwrap();
    let o = vae_cpu(
        &["export-onnx", "copy.safetensors", "--checkpoint", BEST],
        p,
    );
    assert_clear_error(&o, &["copy.safetensors", "is a vae-cpu checkpoint"]);
    assert_eq!(bytes(&p.join("copy.safetensors")), before);
}

/// Starts `train --out R` with slow writes, so that it holds R for a while.
fn slow_train(p: &Path, out: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_vae-cpu"))
        .args(["train", "--config", "ok.toml", "--data", "faces.vaecache"])
        .args(["--out", out, "--epochs", "3", "--quiet", "--threads", "1"])
        .env("VAE_CPU_FAULT_WRITE_DELAY_MS", "2000")
        .current_dir(p)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until `file` holds a PID (the lock is taken).
fn wait_for_pid(file: &Path) -> String {
    let start = Instant::now();
    loop {
        if let Ok(pid) = std::fs::read_to_string(file) {
            if !pid.trim().is_empty() {
                return pid.trim().to_string();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no lock in {file:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_run_folder_has_one_writer_and_a_killed_one_leaves_no_stale_lock() {
    let dir = workspace();
    let p = dir.path();
    let mut first = slow_train(p, "R");
    let pid = wait_for_pid(&p.join("R/.vae-cpu.lock"));
    assert_eq!(pid, first.id().to_string());
    let o = train_new(p, "R", &[]);
    assert_clear_error(&o, &["R: in use by another vae-cpu process", &pid]);
    let o = vae_cpu(&["train", "--resume", "R", "--data", "faces.vaecache"], p);
    assert_clear_error(&o, &["in use by another vae-cpu process"]);
    first.kill().unwrap(); // SIGKILL: the OS releases the lock.
    first.wait().unwrap();
    let o = vae_cpu(
        &[
            "train",
            "--resume",
            "R",
            "--data",
            "faces.vaecache",
            "--quiet",
        ],
        p,
    );
    let err = stderr(&o);
    assert!(!err.contains("in use"), "{err}");
}

#[test]
fn resume_refuses_a_foreign_checkpoint_and_retention_keeps_it() {
    let dir = workspace();
    let p = dir.path();
    let args = ["--data", "faces.vaecache", "--quiet"];
    let train = |extra: &[&str]| {
        let mut a = vec!["train"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&args);
        vae_cpu(&a, p)
    };
    assert!(train(&["--config", "ok.toml", "--out", "other"])
        .status
        .success());
    assert!(train(&["--config", "ok.toml", "--out", "mine"])
        .status
        .success());
    let foreign = p.join("mine/checkpoints/e0009-b000000.safetensors");
    std::fs::copy(
        p.join("other/checkpoints/e0001-b000000.safetensors"),
        &foreign,
    )
    .unwrap();
    let o = train(&["--resume", "mine", "--epochs", "3"]);
    assert_clear_error(&o, &["e0009-b000000", "belongs to another run"]);
    assert!(foreign.exists());
    // An older foreign checkpoint is not resumed from, and never rotated away.
    let older = p.join("mine/checkpoints/e0000-b000001.safetensors");
    std::fs::rename(&foreign, &older).unwrap();
    assert!(train(&["--resume", "mine", "--epochs", "4"])
        .status
        .success());
    assert!(older.exists());
    let kept = std::fs::read_dir(p.join("mine/checkpoints"))
        .unwrap()
        .count();
    assert_eq!(kept, 4, "keep_last = 2 of ours, the foreign one and best");
}

#[test]
fn a_changed_data_folder_is_prepared_again() {
    let dir = workspace();
    let p = dir.path();
    let train = |out: &str| {
        vae_cpu(
            &[
                "train", "--config", "ok.toml", "--data", "faces", "--out", out, "--quiet",
            ],
            p,
        )
    };
    assert!(train("a").status.success());
    let cache = p.join("cache/faces-16x16.vaecache");
    let first = vae_cpu::data::Dataset::open(&cache).unwrap().len();
    let images = p.join("faces/img_align_celeba");
    std::fs::copy(images.join("000001.jpg"), images.join("000999.jpg")).unwrap();
    let o = train("b");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("changed since"), "{}", stderr(&o));
    assert_eq!(
        vae_cpu::data::Dataset::open(&cache).unwrap().len(),
        first + 1
    );
}

#[test]
fn numbers_past_what_a_config_holds_are_refused_not_panics() {
    let dir = workspace();
    let p = dir.path();
    let huge = "18446744073709551615";
    for flag in ["--seed", "--epochs", "--batch-size", "--patience"] {
        let o = train_new(p, "n", &[flag, huge]);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains("9223372036854775807"), "{}", stderr(&o));
        assert!(!stderr(&o).contains("panicked") && !stderr(&o).contains("internal error"));
    }
    for flag in ["--epochs", "--patience"] {
        let o = vae_cpu(
            &[
                "sweep",
                "--config",
                "ok.toml",
                "--data",
                "faces.vaecache",
                "--set",
                "exp.lr=0.001",
                flag,
                huge,
            ],
            p,
        );
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
    }
    // The largest accepted seed round-trips through the run's config.
    assert_ok(train_new(p, "max", &["--seed", "9223372036854775807"]));
    let saved = vae_cpu::config::Config::load(&p.join("max/config.toml")).unwrap();
    assert_eq!(saved.exp.seed, i64::MAX as u64);
}

#[cfg(unix)]
#[test]
fn odd_files_in_the_image_folder_are_skipped_and_listed() {
    let dir = workspace();
    let p = dir.path();
    let images = p.join("faces/img_align_celeba");
    assert!(Command::new("mkfifo")
        .arg(images.join("pipe.jpg"))
        .status()
        .unwrap()
        .success());
    std::fs::copy(images.join("000001.jpg"), images.join("two\nlines.jpg")).unwrap();
    use std::os::unix::ffi::OsStrExt;
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.jpg");
    std::fs::copy(images.join("000002.jpg"), images.join(latin1)).unwrap();
    // A FIFO used to hang prepare forever: the timeout makes a hang a failure.
    let o = Command::new("timeout")
        .args([
            "60",
            env!("CARGO_BIN_EXE_vae-cpu"),
            "prepare",
            "--data",
            "faces",
        ])
        .args(["--size", "16", "--out", "odd.vaecache"])
        .current_dir(p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = std::fs::read_to_string(p.join("odd.skipped.txt")).unwrap();
    assert!(listed.contains("pipe.jpg\tnot a regular file"), "{listed}");
    assert!(
        listed.contains("two\\nlines.jpg\tthe file name holds a line break"),
        "{listed}"
    );
    assert!(
        listed.contains("caf\u{fffd}.jpg\tthe file name is not UTF-8"),
        "{listed}"
    );
    // The cache reads back, and training on it works.
    run_ok(
        &[
            "train",
            "--config",
            "ok.toml",
            "--data",
            "odd.vaecache",
            "--out",
            "odd",
            "--quiet",
        ],
        p,
    );
}

#[test]
fn duplicate_annotation_rows_are_named_or_counted() {
    let dir = workspace();
    let p = dir.path();
    let list = p.join("faces/list_eval_partition.txt");
    let text = std::fs::read_to_string(&list).unwrap();
    let first = text.lines().next().unwrap().to_string();
    let (name, _) = first.split_once(' ').unwrap();
    std::fs::write(&list, format!("{text}{first}\n")).unwrap();
    let prepare = || {
        vae_cpu(
            &[
                "prepare",
                "--data",
                "faces",
                "--size",
                "16",
                "--out",
                "x.vaecache",
            ],
            p,
        )
    };
    let o = prepare();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("repeat an earlier row word for word"),
        "{}",
        stderr(&o)
    );
    let other = if first.ends_with('0') { "1" } else { "0" };
    std::fs::write(&list, format!("{text}{name} {other}\n")).unwrap();
    let o = prepare();
    let last_line = text.lines().count() + 1;
    assert_clear_error(
        &o,
        &[
            "list_eval_partition.txt",
            &format!("line {last_line}"),
            "first on line 1",
        ],
    );
}

#[test]
fn zero_epochs_are_refused_and_an_empty_demo_run_continues() {
    let dir = workspace();
    let p = dir.path();
    for cmd in [
        &[
            "train",
            "--config",
            "ok.toml",
            "--data",
            "faces.vaecache",
            "--epochs",
            "0",
        ][..],
        &["demo", "--epochs", "0"],
    ] {
        let o = vae_cpu(cmd, p);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("0 is not in 1.."), "{}", stderr(&o));
    }
    let toml = std::fs::read_to_string(p.join("ok.toml")).unwrap();
    std::fs::write(
        p.join("zero.toml"),
        toml.replace("epochs = 1", "epochs = 0"),
    )
    .unwrap();
    let o = vae_cpu(
        &["train", "--config", "zero.toml", "--data", "faces.vaecache"],
        p,
    );
    assert_clear_error(&o, &["trainer.epochs must be at least 1"]);
    // A demo folder whose run has folders but no checkpoint yet starts the run.
    std::fs::create_dir_all(p.join("demo/run/checkpoints")).unwrap();
    let o = vae_cpu(
        &[
            "demo", "--out", "demo", "--images", "40", "--epochs", "1", "--quiet",
        ],
        p,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(p.join("demo/run/checkpoints/best.safetensors").exists());
}

#[test]
fn a_model_name_cannot_lead_the_run_out_of_runs() {
    let dir = workspace();
    let p = dir.path();
    let toml = std::fs::read_to_string(p.join("ok.toml")).unwrap();
    // Names unique to this test's folder, so that no other run can have made them.
    let unique = p.file_name().unwrap().to_string_lossy().replace('.', "");
    let names = [
        format!("../../{unique}"),
        format!("/tmp/{unique}"),
        String::new(),
    ];
    for (i, name) in names.iter().enumerate() {
        let config = format!("n{i}.toml");
        std::fs::write(
            p.join(&config),
            toml.replace("name = \"small16\"", &format!("name = \"{name}\"")),
        )
        .unwrap();
        let o = vae_cpu(
            &[
                "train",
                "--config",
                &config,
                "--data",
                "faces.vaecache",
                "--quiet",
            ],
            p,
        );
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
    let mut made: Vec<String> = std::fs::read_dir(p.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    let mut want = [
        format!("-tmp-{unique}"),
        format!("..-..-{unique}"),
        "run".into(),
    ];
    want.sort();
    assert_eq!(made, want);
    assert!(!p.parent().unwrap().join(&unique).exists());
    assert!(!Path::new("/tmp").join(&unique).exists());
}

#[test]
fn flags_out_of_range_are_refused_with_the_range() {
    let dir = workspace();
    let p = dir.path();
    let cases: [&[&str]; 5] = [
        &["sample", "--checkpoint", BEST, "--cols", "0"],
        &["sample", "--checkpoint", BEST, "--scale", "100"],
        &[
            "latent-map",
            "--checkpoint",
            BEST,
            "--data",
            "faces.vaecache",
            "--iterations",
            "0",
        ],
        &[
            "activations",
            "--checkpoint",
            BEST,
            "--data",
            "faces.vaecache",
            "--max-maps",
            "0",
        ],
        &["prepare", "--data", "faces", "--size", "100000"],
    ];
    for args in cases {
        let o = vae_cpu(args, p);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} was accepted");
        assert!(
            err.contains(" is not in ") || err.contains("1 to 4096"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn resume_accepts_flags_that_agree_and_names_the_key_that_differs() {
    let dir = workspace();
    let p = dir.path();
    assert_ok(train_new(p, "r", &[]));
    let resume = |extra: &[&str]| {
        let mut a = vec![
            "train",
            "--resume",
            "r",
            "--data",
            "faces.vaecache",
            "--quiet",
        ];
        a.extend_from_slice(extra);
        vae_cpu(&a, p)
    };
    let o = resume(&["--config", "ok.toml", "--epochs", "2", "--seed", "11"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = resume(&["--lr", "0.5", "--epochs", "3"]);
    assert_clear_error(&o, &["--resume r", "exp.lr"]);
    // A file where the run folder should be; an empty VAE_CPU_DEVICE is "not set".
    std::fs::write(p.join("file"), b"x").unwrap();
    let o = train_new(p, "file", &[]);
    assert_clear_error(&o, &["file: is a file, not a folder"]);
    let o = Command::new(env!("CARGO_BIN_EXE_vae-cpu"))
        .arg("info")
        .env("VAE_CPU_DEVICE", "")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}
