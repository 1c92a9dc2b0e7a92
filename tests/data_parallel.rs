//! Data-parallel training without MPI: a group of threads (`collective::local`), each
//! training as one rank, must compute what one process computes with the same global
//! batch (docs/cluster.md), and resume on another number of ranks. `.ci/run` checks the
//! same through `mpirun` with the MPI build (scripts/mpi-check.sh).
#![cfg(feature = "engine")]

mod common;

use common::{faces_cache, small_config};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use vae_cpu::collective::{self, local::LocalGroup, Collective};
use vae_cpu::config::{Config, Overrides};
use vae_cpu::data::Dataset;
use vae_cpu::nn::{Module, Slot};
use vae_cpu::train::metrics::EpochMetrics;
use vae_cpu::train::{Outcome, TrainOptions, Trainer};

/// What a run ends with: its metrics rows and every parameter and buffer.
struct Finish {
    rows: Vec<EpochMetrics>,
    weights: Vec<f32>,
}

fn options(out: &Path, world: Arc<dyn Collective>) -> TrainOptions {
    TrainOptions {
        out: out.to_path_buf(),
        val_limit: None,
        quiet: true,
        world,
    }
}

/// Trains (or resumes, when `config` is None) in `out` on `ranks` threads, rank `r`
/// asked to stop at once when `stop_on == Some(r)`; returns rank 0's finish after checking
/// every rank ends with the same weights and outcome.
fn train_ranks(
    cache: &Path,
    out: &Path,
    config: Option<&Config>,
    ranks: usize,
    epochs: usize,
    stop_on: Option<usize>,
) -> (Finish, Outcome) {
    let members = LocalGroup::members(ranks);
    let finishes: Vec<(Finish, Outcome)> = std::thread::scope(|s| {
        let handles: Vec<_> = members
            .into_iter()
            .map(|world| {
                s.spawn(move || {
                    let stop = AtomicBool::new(stop_on == Some(world.rank()));
                    let data = Dataset::open(cache).unwrap();
                    let opts = options(out, world);
                    let mut t = match config {
                        Some(c) => Trainer::new(c, &data, opts).unwrap(),
                        None => {
                            Trainer::resume(&data, opts, &Overrides::resumable(Some(epochs), None))
                                .unwrap()
                        }
                    };
                    let outcome = t.run(&stop).unwrap();
                    (finish(&mut t), outcome)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (f, outcome) in &finishes[1..] {
        assert_eq!(
            f.weights, finishes[0].0.weights,
            "ranks ended with different weights"
        );
        assert_eq!(*outcome, finishes[0].1);
    }
    finishes.into_iter().next().unwrap()
}

fn train(cache: &Path, out: &Path, config: Option<&Config>, ranks: usize, epochs: usize) -> Finish {
    train_ranks(cache, out, config, ranks, epochs, None).0
}

fn finish(t: &mut Trainer) -> Finish {
    let mut weights = vec![];
    t.model.visit("", &mut |_, slot| match slot {
        Slot::Param(p) => weights.extend(p.value().iter()),
        Slot::Buffer(b) => weights.extend(b.iter()),
    });
    Finish {
        rows: t.progress.history.clone(),
        weights,
    }
}

fn one_process(cache: &Path, out: &Path, config: &Config) -> Finish {
    let data = Dataset::open(cache).unwrap();
    let mut t = Trainer::new(config, &data, options(out, collective::single())).unwrap();
    t.run(&AtomicBool::new(false)).unwrap();
    finish(&mut t)
}

fn assert_close(what: &str, a: f64, b: f64, rel: f64) {
    assert!(
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-12),
        "{what}: {a} vs {b} (relative {:.2e})",
        (a - b).abs() / a.abs().max(1e-12)
    );
}

fn assert_same_metrics(a: &[EpochMetrics], b: &[EpochMetrics], rel: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.step, y.step);
        for (name, u, v) in [
            ("train loss", x.train_loss, y.train_loss),
            ("train recon", x.train_recon, y.train_recon),
            ("train KL", x.train_kl, y.train_kl),
            ("val loss", x.val_loss, y.val_loss),
            ("val recon", x.val_recon, y.val_recon),
            ("val KL", x.val_kl, y.val_kl),
        ] {
            assert_close(&format!("epoch {} {name}", x.epoch), u, v, rel);
        }
    }
}

/// The same weights (largest difference below `tol`) and metrics (relative `tol`).
fn assert_same_run(a: &Finish, b: &Finish, tol: f64) {
    assert_eq!(a.weights.len(), b.weights.len());
    let d = (a.weights.iter().zip(&b.weights)).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!((d as f64) < tol, "weights differ by up to {d}");
    assert_same_metrics(&a.rows, &b.rows, tol);
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    cache: PathBuf,
}

fn setup(images: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let cache = faces_cache(&root, images, 16);
    Setup {
        _dir: dir,
        root,
        cache,
    }
}

/// An epoch (2 steps) on 2 and 3 ranks (an uneven split: 16 = 6 + 5 + 5) against one
/// process: the weights and metrics agree to float rounding.
#[test]
fn an_epoch_on_several_ranks_is_an_epoch_of_one_process() {
    let s = setup(40);
    // 40 images: 32 train (2 batches of 16); epoch 1 only, then compare.
    let config = small_config(1, 16);
    let one = one_process(&s.cache, &s.root.join("one"), &config);
    for ranks in [2, 3] {
        let many = train(
            &s.cache,
            &s.root.join(format!("r{ranks}")),
            Some(&config),
            ranks,
            1,
        );
        assert_same_run(&one, &many, 1e-5);
    }
}

/// A run started on 3 ranks and resumed on 2 ends where one process ends.
#[test]
fn a_run_resumes_on_another_number_of_ranks() {
    let s = setup(40);
    let config = small_config(2, 8);
    let one = one_process(&s.cache, &s.root.join("one"), &config);
    let out = s.root.join("moved");
    train(&s.cache, &out, Some(&small_config(1, 8)), 3, 1);
    let resumed = train(&s.cache, &out, None, 2, 2);
    assert_same_run(&one, &resumed, 1e-4);
}

/// Ctrl-C on one rank stops every rank after the same step; rank 0 saves the position.
#[test]
fn a_stop_on_one_rank_stops_all_after_the_same_step() {
    let s = setup(40);
    let out = s.root.join("stopped");
    let (_, outcome) = train_ranks(&s.cache, &out, Some(&small_config(1, 8)), 2, 1, Some(1));
    assert_eq!(outcome, Outcome::Interrupted);
    let saved = std::fs::read_dir(out.join("checkpoints")).unwrap().count();
    assert_eq!(saved, 1, "one checkpoint, at batch 1");
    assert!(out.join("checkpoints/e0000-b000001.safetensors").exists());
}

/// A batch smaller than the group is refused with the fix.
#[test]
fn a_batch_smaller_than_the_group_is_refused() {
    let s = setup(40);
    let members = LocalGroup::members(3);
    let errors: Vec<String> = std::thread::scope(|sc| {
        let handles: Vec<_> = members
            .into_iter()
            .map(|world| {
                let (cache, out) = (&s.cache, s.root.join("small"));
                sc.spawn(move || {
                    let data = Dataset::open(cache).unwrap();
                    match Trainer::new(&small_config(1, 2), &data, options(&out, world)) {
                        Ok(_) => String::new(),
                        Err(e) => e.to_string(),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for e in errors {
        assert!(
            e.contains("cannot be split over 3 ranks") && e.contains("--batch-size 3"),
            "{e}"
        );
    }
}

/// A build without the `mpi` feature started as one of several ranks (the launcher's
/// environment says so) refuses to train alone.
#[cfg(not(feature = "mpi"))]
#[test]
fn a_build_without_mpi_refuses_to_run_as_one_of_several_ranks() {
    let s = setup(40);
    std::fs::write(s.root.join("ok.toml"), small_config(1, 8).to_toml()).unwrap();
    let train = |env: &[(&str, &str)]| {
        let args = ["train", "--config", "ok.toml", "--data", "faces.vaecache"];
        let args = [&args[..], &["--quiet", "--out", "run"]].concat();
        common::vae_cpu_with_env(&args, &s.root, env)
    };
    for env in [("PMI_SIZE", "2"), ("OMPI_COMM_WORLD_SIZE", "4")] {
        let o = train(&[env]);
        common::assert_clear_error(&o, &["built without MPI support", "--features mpi"]);
        assert!(!s.root.join("run").exists(), "it wrote a run folder");
    }
    // Commands that run as one process refuse under a launcher in every build.
    let o = common::vae_cpu_with_env(&["models"], &s.root, &[("PMI_SIZE", "2")]);
    common::assert_clear_error(&o, &["runs as one process", "without mpirun"]);
    // One rank (PMI_SIZE=1) is an ordinary run.
    let o = train(&[("PMI_SIZE", "1")]);
    assert!(o.status.success(), "{}", common::stderr(&o));
}

/// A cluster may prepare the cache on each node instead of sharing one file: `prepare`
/// gives the same bytes from the same folder, whatever the thread count.
#[test]
fn caches_prepared_twice_are_byte_identical() {
    let s = setup(40);
    let prepare = |out: &str, threads: &str| {
        let args = ["prepare", "--data", "faces", "--size", "16", "--out", out];
        let args = [&args[..], &["--threads", threads, "--quiet"]].concat();
        common::run_ok(&args, &s.root);
        std::fs::read(s.root.join(out)).unwrap()
    };
    let (a, b) = (
        prepare("node1.vaecache", "1"),
        prepare("node2.vaecache", "2"),
    );
    assert!(a == b, "the two caches differ");
}
