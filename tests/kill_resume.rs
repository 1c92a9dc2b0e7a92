//! A real `vae-cpu train` killed with SIGKILL (as the OOM killer does) at random moments,
//! some of them while a checkpoint is being written, then resumed: every checkpoint left
//! behind loads, each resume starts from the newest complete checkpoint, and the finished
//! run has the same metrics, bit for bit, as a run that was never killed.

#![cfg(feature = "engine")]

mod common;

use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vae_cpu::checkpoint::Checkpoint;
use vae_cpu::train::{metrics, RunDir};

const EPOCHS: usize = 8;
/// With fault injection, each atomic write waits this long before its rename: the window
/// in which a kill lands "during checkpoint writing".
const WRITE_DELAY_MS: &str = "100";

fn train(dir: &Path, out: &str, resume: bool, log: &Path) -> Child {
    let mut args = vec![
        "train",
        "--data",
        "faces.vaecache",
        "--threads",
        "2",
        "--quiet",
    ];
    if resume {
        args.extend(["--resume", out]);
    } else {
        args.extend(["--config", "small.toml", "--out", out]);
    }
    let delay = if out == "killed" { WRITE_DELAY_MS } else { "0" };
    Command::new(env!("CARGO_BIN_EXE_vae-cpu"))
        .args(&args)
        .current_dir(dir)
        .env("VAE_CPU_FAULT_WRITE_DELAY_MS", delay)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// A checkpoint temporary file in the run, if one is being written.
fn checkpoint_being_written(run: &RunDir) -> Option<PathBuf> {
    std::fs::read_dir(run.checkpoints())
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            vae_cpu::atomic_file::is_temporary(&p.file_name().unwrap().to_string_lossy())
                && p.to_string_lossy().contains(".safetensors")
        })
}

#[test]
fn sigkill_at_random_moments_never_loses_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    common::faces_cache(p, 120, 16);
    std::fs::write(
        p.join("small.toml"),
        common::small_config(EPOCHS, 8).to_toml(),
    )
    .unwrap();

    // The reference: never interrupted.
    let log = p.join("reference.log");
    let status = train(p, "reference", false, &log).wait().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let reference = metrics::read(&p.join("reference/metrics.csv")).unwrap();
    assert_eq!(reference.len(), EPOCHS);

    let run = RunDir::new(&p.join("killed"));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut kills, mut kills_while_writing) = (0, 0);
    for attempt in 0..40 {
        if kills >= 8 {
            break;
        }
        let newest = run.list_checkpoints().pop().map(|(_, path)| path);
        let log = p.join(format!("attempt{attempt}.log"));
        let mut child = train(p, "killed", newest.is_some(), &log);
        // Every other kill waits for a checkpoint write to be under way; the others come
        // after a random delay.
        let during_write = attempt % 2 == 0;
        let deadline = Instant::now() + Duration::from_millis(rng.gen_range(50..3000));
        let timeout = Instant::now() + Duration::from_secs(60);
        let finished = loop {
            if child.try_wait().unwrap().is_some() {
                break true;
            }
            let fire = if during_write {
                checkpoint_being_written(&run).is_some()
            } else {
                Instant::now() >= deadline
            };
            if fire || Instant::now() >= timeout {
                break false;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if finished {
            // The run completed before the kill; that ends the kill loop.
            let text = std::fs::read_to_string(&log).unwrap();
            assert!(child.wait().unwrap().success(), "{text}");
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if checkpoint_being_written(&run).is_some() {
            kills_while_writing += 1;
        }
        // Whatever the moment, every checkpoint under its final name loads.
        for (_, path) in run.list_checkpoints() {
            Checkpoint::load(&path).unwrap_or_else(|e| panic!("after kill {kills}: {e}"));
        }
        if run.best().exists() {
            Checkpoint::load(&run.best()).unwrap();
        }
        // A resume announces the checkpoint it continued from: the newest one there was.
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(!text.contains("panicked"), "{text}");
        if let (Some(newest), Some(line)) = (
            &newest,
            text.lines().find(|l| l.starts_with("resuming from")),
        ) {
            let name = newest.file_name().unwrap().to_string_lossy();
            assert!(line.contains(&*name), "{line} vs {newest:?}");
        }
    }
    assert!(
        kills >= 4,
        "only {kills} kills landed before the run finished"
    );
    assert!(
        kills_while_writing >= 1,
        "no kill landed during a checkpoint write"
    );

    // Finish the run; it must match the uninterrupted one exactly.
    let log = p.join("final.log");
    let resume = !run.list_checkpoints().is_empty();
    let status = train(p, "killed", resume, &log).wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    let resumed = metrics::read(&run.metrics()).unwrap();
    assert_eq!(resumed.len(), EPOCHS);
    for (a, b) in reference.iter().zip(&resumed) {
        assert_eq!(
            (a.epoch, a.step, a.train_loss, a.val_loss),
            (b.epoch, b.step, b.train_loss, b.val_loss),
            "epoch {}",
            a.epoch
        );
    }
    // No half-written temporary file is left behind.
    for d in [run.root.clone(), run.checkpoints(), run.images()] {
        for e in std::fs::read_dir(&d).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !vae_cpu::atomic_file::is_temporary(&name),
                "{name} left in {d:?}"
            );
        }
    }
    eprintln!("{kills} kills, {kills_while_writing} during a checkpoint write");
}
