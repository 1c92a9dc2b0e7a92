//! Every mistake a user can make ends in one message naming the file (or flag) and what
//! is wrong, with exit status 1, never a panic or a backtrace; and a failed write leaves
//! what was there before. (Resource limits: `tests/resource_limits.rs`.)

#![cfg(feature = "engine")]

mod common;

use common::{assert_clear_error, run_ok, stderr, vae_cpu, workspace, BEST};
use std::path::Path;
use std::process::{Command, Output};
use vae_cpu::checkpoint::Checkpoint;

/// Runs the binary with the size of every file it writes limited to `kib` KiB (`ulimit -f`,
/// with SIGXFSZ ignored so that the write fails with EFBIG as on a full disk).
fn with_file_size_limit(kib: u64, args: &[&str], cwd: &Path) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f {}; trap '' XFSZ; exec \"$0\" \"$@\"",
            kib * 2 // 512-byte blocks
        ))
        .arg(env!("CARGO_BIN_EXE_vae-cpu"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn no_temporaries_in(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !vae_cpu::atomic_file::is_temporary(&name),
            "{name} left in {dir:?}"
        );
    }
}

#[test]
fn missing_or_empty_data_is_named() {
    let dir = workspace();
    let p = dir.path();
    let train = |data: &str| {
        vae_cpu(
            &[
                "train", "--config", "ok.toml", "--data", data, "--out", "new", "--quiet",
            ],
            p,
        )
    };
    assert_clear_error(&train("nowhere"), &["nowhere", "no such file or folder"]);
    std::fs::create_dir(p.join("empty")).unwrap();
    assert_clear_error(&train("empty"), &["empty", "no images"]);
    // A folder whose only images are broken.
    std::fs::create_dir_all(p.join("broken/img_align_celeba")).unwrap();
    std::fs::write(p.join("broken/img_align_celeba/000001.jpg"), b"not a jpeg").unwrap();
    assert_clear_error(
        &vae_cpu(&["prepare", "--data", "broken", "--out", "b.vaecache"], p),
        &["broken", "none of the 1 images could be decoded"],
    );
    // Malformed annotation files name the file and the line.
    let faces = p.join("faces");
    let attrs = std::fs::read_to_string(faces.join("list_attr_celeba.txt")).unwrap();
    let bad = attrs.replacen(" 1", " 7", 1);
    std::fs::write(faces.join("list_attr_celeba.txt"), bad).unwrap();
    assert_clear_error(
        &vae_cpu(&["prepare", "--data", "faces", "--out", "f.vaecache"], p),
        &["list_attr_celeba.txt", "line 3", "\"7\""],
    );
    std::fs::write(faces.join("list_attr_celeba.txt"), &attrs).unwrap();
    std::fs::write(
        faces.join("list_eval_partition.txt"),
        "000001.jpg 0\n000002.jpg x\n",
    )
    .unwrap();
    assert_clear_error(
        &vae_cpu(&["prepare", "--data", "faces", "--out", "f.vaecache"], p),
        &["list_eval_partition.txt", "line 2"],
    );
    // A cache of the wrong image size names both sizes and the fix.
    common::faces_cache(&p.join("small"), 8, 8);
    assert_clear_error(
        &vae_cpu(
            &[
                "evaluate",
                "--checkpoint",
                BEST,
                "--data",
                "small/faces.vaecache",
            ],
            p,
        ),
        &["8x8", "16x16", "prepare --size 16x16"],
    );
    // A truncated cache.
    let cache = std::fs::read(p.join("faces.vaecache")).unwrap();
    std::fs::write(p.join("cut.vaecache"), &cache[..cache.len() / 2]).unwrap();
    assert_clear_error(
        &train("cut.vaecache"),
        &["cut.vaecache", "truncated or corrupt"],
    );
}

#[test]
fn broken_and_foreign_checkpoints_are_named() {
    let dir = workspace();
    let p = dir.path();
    let bytes = std::fs::read(p.join(BEST)).unwrap();
    std::fs::write(p.join("cut.safetensors"), &bytes[..bytes.len() - 100]).unwrap();
    std::fs::write(
        p.join("garbage.safetensors"),
        b"\x07\x00\x00\x00\x00\x00\x00\x00garbage",
    )
    .unwrap();
    std::fs::write(p.join("empty.safetensors"), b"").unwrap();
    for (file, needle) in [
        ("cut.safetensors", "truncated or corrupt"),
        ("garbage.safetensors", "truncated or corrupt"),
        ("empty.safetensors", "truncated or corrupt"),
        // A safetensors file of another kind.
        ("faces.vaecache", "not a vae-cpu checkpoint"),
        ("missing.safetensors", "No such file"),
    ] {
        assert_clear_error(
            &vae_cpu(&["sample", "--checkpoint", file, "--out", "s.png"], p),
            &[file, needle],
        );
    }
    // A checkpoint whose tensors belong to another architecture than its config says.
    let mut ckpt = Checkpoint::load(&p.join(BEST)).unwrap();
    let mut model = ckpt.build_model().unwrap();
    ckpt.config.model.latent = 7;
    vae_cpu::checkpoint::save(
        &p.join("other.safetensors"),
        &ckpt.config,
        &mut model,
        ckpt.optimizer.as_ref(),
        ckpt.epoch,
        ckpt.step,
        &ckpt.state,
    )
    .unwrap();
    assert_clear_error(
        &vae_cpu(
            &[
                "sample",
                "--checkpoint",
                "other.safetensors",
                "--out",
                "s.png",
            ],
            p,
        ),
        &["other.safetensors", "does not fit this model", "shape"],
    );
    // The newest checkpoint of a run is truncated: resume says so and names the previous.
    let o = vae_cpu(
        &[
            "train",
            "--resume",
            "run",
            "--data",
            "faces.vaecache",
            "--epochs",
            "2",
            "--quiet",
        ],
        p,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let run = vae_cpu::train::RunDir::new(&p.join("run"));
    let (_, newest) = run.list_checkpoints().pop().unwrap();
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 3]).unwrap();
    assert_clear_error(
        &vae_cpu(
            &[
                "train",
                "--resume",
                "run",
                "--data",
                "faces.vaecache",
                "--epochs",
                "3",
                "--quiet",
            ],
            p,
        ),
        &[
            "e0002-b000000.safetensors",
            "truncated or corrupt",
            "e0001-b000000.safetensors",
        ],
    );
    // Resuming a run with data of the wrong size.
    common::faces_cache(&p.join("small"), 8, 8);
    std::fs::remove_file(&newest).unwrap();
    assert_clear_error(
        &vae_cpu(
            &[
                "train",
                "--resume",
                "run",
                "--data",
                "small/faces.vaecache",
                "--quiet",
            ],
            p,
        ),
        &["small/faces.vaecache", "8x8", "16x16"],
    );
}

#[test]
fn config_mistakes_are_named_with_their_place() {
    let dir = workspace();
    let p = dir.path();
    let ok = common::small_config(1, 8).to_toml();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "typo.toml",
            ok.replace("latent =", "latnet ="),
            vec!["latnet"],
        ),
        (
            "layer.toml",
            ok.replacen("\"conv2d\"", "\"conv3d\"", 1),
            vec!["conv3d"],
        ),
        (
            "type.toml",
            ok.replace("latent = 6", "latent = \"six\""),
            vec!["latent"],
        ),
        (
            "syntax.toml",
            ok.replace("[model]", "[model"),
            vec!["line 1"],
        ),
        ("nomodel.toml", "[exp]\nlr = 0.1\n".into(), vec!["model"]),
        (
            "shape.toml",
            ok.replace("shape = [8, 4, 4]", "shape = [8, 2, 8]"),
            vec!["model.decoder", "produces"],
        ),
        (
            "reshape.toml",
            ok.replace("shape = [8, 4, 4]", "shape = [8, 5, 4]"),
            vec!["model.decoder block 1 layer 4", "reshape"],
        ),
        (
            "huge.toml",
            ok.replace("units = 128", "units = 1000000000"),
            vec!["units", "supported"],
        ),
        (
            "repeat.toml",
            ok.replacen("repeat = 2", "repeat = 100000000000", 1),
            vec!["layers in all"],
        ),
        (
            "bigimage.toml",
            ok.replace("height = 16", "height = 100000000"),
            vec!["values"],
        ),
        (
            "latent.toml",
            ok.replace("latent = 6", "latent = 0"),
            vec!["latent"],
        ),
    ];
    for (file, text, needles) in cases {
        std::fs::write(p.join(file), text).unwrap();
        let o = vae_cpu(
            &[
                "train",
                "--config",
                file,
                "--data",
                "faces.vaecache",
                "--quiet",
            ],
            p,
        );
        let mut all = vec![file];
        all.extend(needles);
        assert_clear_error(&o, &all);
    }
    std::fs::write(p.join("binary.toml"), [0xff, 0xfe, 0x00]).unwrap();
    assert_clear_error(
        &vae_cpu(
            &[
                "train",
                "--config",
                "binary.toml",
                "--data",
                "faces.vaecache",
            ],
            p,
        ),
        &["binary.toml"],
    );
}

#[test]
fn unknown_attributes_list_the_known_ones() {
    let dir = workspace();
    let p = dir.path();
    for cmd in ["attribute-vector", "latent-map"] {
        assert_clear_error(
            &vae_cpu(
                &[
                    cmd,
                    "--checkpoint",
                    BEST,
                    "--data",
                    "faces.vaecache",
                    "--attr",
                    "Smilling",
                    "--quiet",
                ],
                p,
            ),
            &["Smilling", "Smiling", "Eyeglasses"],
        );
    }
    std::fs::write(p.join("v.attrvec"), b"garbage").unwrap();
    assert_clear_error(
        &vae_cpu(
            &[
                "morph",
                "--checkpoint",
                BEST,
                "--vector",
                "v.attrvec",
                "--data",
                "faces.vaecache",
            ],
            p,
        ),
        &["v.attrvec", "not an attribute vector"],
    );
}

#[test]
fn unwritable_outputs_and_full_disks_keep_what_was_there() {
    let dir = workspace();
    let p = dir.path();
    std::fs::write(p.join("file.txt"), b"x").unwrap();
    assert_clear_error(
        &vae_cpu(
            &[
                "train",
                "--config",
                "ok.toml",
                "--data",
                "faces.vaecache",
                "--out",
                "file.txt/run",
                "--quiet",
            ],
            p,
        ),
        &["file.txt/run", "Not a directory"],
    );
    for args in [
        vec!["sample", "--checkpoint", BEST, "--out", "nodir/s.png"],
        vec!["export-onnx", "nodir/d.onnx", "--checkpoint", BEST],
        vec![
            "prepare",
            "--data",
            "faces",
            "--out",
            "nodir/f.vaecache",
            "--quiet",
        ],
    ] {
        let o = vae_cpu(&args, p);
        assert_clear_error(&o, &["nodir/", "No such file or directory"]);
        // The I/O cause is printed once, not repeated by the error chain.
        assert_eq!(
            stderr(&o).matches("No such file").count(),
            1,
            "{}",
            stderr(&o)
        );
    }

    // A full disk (file size limit): the decoder already there stays whole, no temporary
    // file is left.
    run_ok(&["export-onnx", "d.onnx", "--checkpoint", BEST], p);
    let before = std::fs::read(p.join("d.onnx")).unwrap();
    let o = with_file_size_limit(4, &["export-onnx", "d.onnx", "--checkpoint", BEST], p);
    assert_clear_error(&o, &["d.onnx", "too large"]);
    assert_eq!(std::fs::read(p.join("d.onnx")).unwrap(), before);
    no_temporaries_in(p);

    // Training on a full disk stops with the file it could not write; the checkpoints
    // written before still load and the run resumes once there is room.
    let args = [
        "train",
        "--resume",
        "run",
        "--data",
        "faces.vaecache",
        "--epochs",
        "2",
        "--quiet",
    ];
    let o = with_file_size_limit(8, &args, p);
    assert_clear_error(&o, &["run/", "too large"]);
    let run = vae_cpu::train::RunDir::new(&p.join("run"));
    for (_, path) in run.list_checkpoints() {
        Checkpoint::load(&path).unwrap();
    }
    for d in [run.root.clone(), run.checkpoints(), run.images()] {
        no_temporaries_in(&d);
    }
    run_ok(&args, p);
    assert_eq!(run.list_checkpoints().pop().unwrap().0.epoch, 2);
}
