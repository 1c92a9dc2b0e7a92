//! Training end to end on generated faces: the loss falls, an interrupted and resumed run
//! reproduces an uninterrupted one exactly, bad inputs give the clear error or skip.
#![cfg(feature = "engine")]

mod common;

use common::{faces_cache, faces_folder, small_config};
use std::sync::atomic::AtomicBool;
use vae_cpu::checkpoint::Checkpoint;
use vae_cpu::config::Overrides;
use vae_cpu::data::prepare::{prepare, PrepareOptions, CELEBA_CROP_FRACTION};
use vae_cpu::data::Dataset;
use vae_cpu::nn::{Module, Slot};
use vae_cpu::train::metrics::{self, EpochMetrics};
use vae_cpu::train::{Outcome, TrainOptions, Trainer};

fn options(out: &std::path::Path) -> TrainOptions {
    TrainOptions {
        out: out.to_path_buf(),
        val_limit: None,
        quiet: true,
        world: vae_cpu::collective::single(),
    }
}

fn pool() -> rayon::ThreadPool {
    vae_cpu::threads::thread_pool(2).unwrap()
}

fn weights(t: &mut Trainer) -> Vec<Vec<f32>> {
    let mut out = vec![];
    t.model.visit("", &mut |_, slot| match slot {
        Slot::Param(p) => out.push(p.value().iter().copied().collect()),
        Slot::Buffer(b) => out.push(b.iter().copied().collect()),
    });
    out
}

/// Loss columns only: time and speed differ between runs.
fn losses(rows: &[EpochMetrics]) -> Vec<[u64; 7]> {
    rows.iter()
        .map(|m| {
            [
                m.train_loss,
                m.train_recon,
                m.train_kl,
                m.val_loss,
                m.val_recon,
                m.val_kl,
                m.step as f64,
            ]
            .map(f64::to_bits)
        })
        .collect()
}

#[test]
fn loss_falls_and_every_epoch_leaves_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let cache = faces_cache(dir.path(), 160, 16);
    let data = Dataset::open(&cache).unwrap();
    let out = dir.path().join("run");
    pool().install(|| {
        let mut t = Trainer::new(&small_config(4, 16), &data, options(&out)).unwrap();
        assert_eq!(t.run(&AtomicBool::new(false)).unwrap(), Outcome::Finished);
        let rows = metrics::read(&out.join("metrics.csv")).unwrap();
        assert_eq!(rows.len(), 4);
        assert!(rows[3].train_loss < 0.8 * rows[0].train_loss, "{rows:?}");
        assert!(rows[3].val_loss < rows[0].val_loss, "{rows:?}");
        assert!(rows.iter().all(|r| r.train_kl > 0.0 && r.val_kl > 0.0));
        for f in [
            "samples.png",
            "reconstructions.png",
            "loss.png",
            "config.toml",
            "images/samples_e004.png",
            "images/recon_e001.png",
        ] {
            assert!(out.join(f).is_file(), "{f}");
        }
        let samples = image::open(out.join("samples.png")).unwrap();
        assert!(samples.width() >= 8 * 32);
        // keep_last = 2, plus the best.
        let ckpts: Vec<_> = t
            .run
            .list_checkpoints()
            .into_iter()
            .map(|(p, _)| p.epoch)
            .collect();
        assert_eq!(ckpts, vec![3, 4]);
        let best = Checkpoint::load(&t.run.best()).unwrap();
        let best_epoch = rows
            .iter()
            .min_by(|a, b| a.val_loss.total_cmp(&b.val_loss))
            .unwrap()
            .epoch;
        assert_eq!(best.epoch, best_epoch);
        // A second run into the same folder is refused instead of overwriting it.
        let err = Trainer::new(&small_config(4, 16), &data, options(&out))
            .err()
            .unwrap();
        assert!(err.to_string().contains("--resume"), "{err}");
    });
}

#[test]
fn an_interrupted_and_resumed_run_matches_an_uninterrupted_one() {
    resumed_run_matches_uninterrupted(&small_config(3, 16));
}

/// SGD with momentum and StepLR, selected in the config: the momentum buffers survive a
/// resume, and the rate drops by gamma every step_size epochs.
#[test]
fn sgd_with_step_lr_resumes_exactly_and_steps_its_rate() {
    let mut config = small_config(3, 16);
    config.exp.optimizer = vae_cpu::config::OptimizerKind::Sgd;
    config.exp.momentum = 0.8;
    config.exp.lr = 0.01;
    config.exp.scheduler = vae_cpu::config::SchedulerKind::Step;
    config.exp.step_size = 2;
    config.exp.scheduler_gamma = 0.5;
    let rows = resumed_run_matches_uninterrupted(&config);
    let rates: Vec<f64> = rows.iter().map(|m| m.lr).collect();
    assert_eq!(rates, [0.01f32, 0.01, 0.005].map(f64::from));
}

/// Trains `config` straight through and with many interruptions; both give the same
/// losses and weights. Returns the straight run's metrics.
fn resumed_run_matches_uninterrupted(config: &vae_cpu::config::Config) -> Vec<EpochMetrics> {
    let dir = tempfile::tempdir().unwrap();
    let cache = faces_cache(dir.path(), 100, 16);
    let data = Dataset::open(&cache).unwrap();
    let config = config.clone();
    pool().install(|| {
        let straight = dir.path().join("straight");
        let mut a = Trainer::new(&config, &data, options(&straight)).unwrap();
        a.run(&AtomicBool::new(false)).unwrap();

        // Stop after the first step, then after every other step a few times (mid-epoch
        // and across an epoch boundary), each time resuming from the saved checkpoint.
        let broken = dir.path().join("broken");
        let stop = AtomicBool::new(true);
        let mut b = Trainer::new(&config, &data, options(&broken)).unwrap();
        assert_eq!(b.run(&stop).unwrap(), Outcome::Interrupted);
        for _ in 0..7 {
            let mut b = Trainer::resume(&data, options(&broken), &Overrides::resumable(None, None))
                .unwrap();
            assert_eq!(b.run(&stop).unwrap(), Outcome::Interrupted);
        }
        // Train to 2 epochs, then extend to 3 with an epochs override.
        let mut b = Trainer::resume(
            &data,
            options(&broken),
            &Overrides::resumable(Some(2), None),
        )
        .unwrap();
        assert_eq!(b.run(&AtomicBool::new(false)).unwrap(), Outcome::Finished);
        let mut b = Trainer::resume(
            &data,
            options(&broken),
            &Overrides::resumable(Some(3), None),
        )
        .unwrap();
        assert_eq!(b.run(&AtomicBool::new(false)).unwrap(), Outcome::Finished);

        assert_eq!(b.progress.step, a.progress.step);
        let (ma, mb) = (
            metrics::read(&straight.join("metrics.csv")).unwrap(),
            metrics::read(&broken.join("metrics.csv")).unwrap(),
        );
        assert_eq!(ma.len(), 3);
        assert_eq!(losses(&ma), losses(&mb));
        assert!(
            weights(&mut a) == weights(&mut b),
            "weights differ after resuming"
        );
        ma
    })
}

#[test]
fn a_diverging_run_stops_naming_the_step_and_keeps_its_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let cache = faces_cache(dir.path(), 64, 16);
    let data = Dataset::open(&cache).unwrap();
    let out = dir.path().join("run");
    let mut config = small_config(1, 16);
    pool().install(|| {
        Trainer::new(&config, &data, options(&out))
            .unwrap()
            .run(&AtomicBool::new(false))
            .unwrap();
        let before = std::fs::read(out.join("checkpoints/e0001-b000000.safetensors")).unwrap();
        // Continue the same run with an absurd learning rate: written into the checkpoint's
        // config the way a user editing it would.
        config.exp.lr = 1e30;
        config.trainer.epochs = 5;
        let other = dir.path().join("diverge");
        let err = Trainer::new(&config, &data, options(&other))
            .unwrap()
            .run(&AtomicBool::new(false))
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("at step") && msg.contains("(epoch"), "{msg}");
        assert_eq!(
            std::fs::read(out.join("checkpoints/e0001-b000000.safetensors")).unwrap(),
            before
        );
        for (_, p) in vae_cpu::train::RunDir::new(&other).list_checkpoints() {
            Checkpoint::load(&p).unwrap();
        }
    });
}

#[test]
fn corrupt_jpegs_are_skipped_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let data = faces_folder(dir.path(), 12);
    let images = data.join("img_align_celeba");
    std::fs::write(images.join("000003.jpg"), b"not a jpeg at all").unwrap();
    let bytes = std::fs::read(images.join("000005.jpg")).unwrap();
    std::fs::write(images.join("000005.jpg"), &bytes[..bytes.len() / 3]).unwrap();
    let opts = PrepareOptions::new(16, 16, CELEBA_CROP_FRACTION);
    let (contents, report) = prepare(&data, &opts, &indicatif::ProgressBar::hidden()).unwrap();
    let skipped: Vec<&str> = report.skipped.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(skipped, vec!["000003.jpg", "000005.jpg"]);
    assert_eq!(contents.names.len(), 10);
    assert!(!contents.names.contains(&"000003.jpg".to_string()));
    assert_eq!(report.attribute_rows_without_images, 0);
}

#[test]
fn a_malformed_attribute_line_is_an_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = faces_folder(dir.path(), 5);
    let attr = data.join("list_attr_celeba.txt");
    let text = std::fs::read_to_string(&attr).unwrap();
    let broken: Vec<String> = text
        .split("\r\n")
        .enumerate()
        .map(|(i, l)| {
            if i == 4 {
                l.replacen("-1", "maybe", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&attr, broken.join("\r\n")).unwrap();
    let opts = PrepareOptions::new(16, 16, CELEBA_CROP_FRACTION);
    let err = prepare(&data, &opts, &indicatif::ProgressBar::hidden())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("list_attr_celeba.txt") && err.contains("line 5") && err.contains("maybe"),
        "{err}"
    );
}

#[test]
fn missing_annotations_give_a_deterministic_split_and_extra_rows_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data = faces_folder(dir.path(), 30);
    std::fs::remove_file(data.join("list_eval_partition.txt")).unwrap();
    for i in [1, 2] {
        std::fs::remove_file(data.join("img_align_celeba").join(format!("{i:06}.jpg"))).unwrap();
    }
    let opts = PrepareOptions::new(8, 8, CELEBA_CROP_FRACTION);
    let (a, report) = prepare(&data, &opts, &indicatif::ProgressBar::hidden()).unwrap();
    let (b, _) = prepare(&data, &opts, &indicatif::ProgressBar::hidden()).unwrap();
    assert!(!report.partition_file);
    assert_eq!(report.attribute_rows_without_images, 2);
    assert_eq!(a.splits, b.splits);
    assert_eq!(a.names.len(), 28);
}

/// With a tiny training set and a high learning rate the model overfits, so the
/// validation loss stops improving: the run must stop exactly `patience` epochs after its
/// best one, keep that epoch in best.safetensors, and a resume must stop again at once.
#[test]
fn patience_stops_after_epochs_without_improvement() {
    let dir = tempfile::tempdir().unwrap();
    let cache = faces_cache(dir.path(), 40, 16);
    let data = Dataset::open(&cache).unwrap();
    let out = dir.path().join("run");
    let mut config = small_config(40, 8);
    config.exp.lr = 0.01;
    config.trainer.patience = Some(2);
    pool().install(|| {
        let mut t = Trainer::new(&config, &data, options(&out)).unwrap();
        let outcome = t.run(&AtomicBool::new(false)).unwrap();
        let rows = metrics::read(&out.join("metrics.csv")).unwrap();
        let best = rows
            .iter()
            .min_by(|a, b| a.val_loss.total_cmp(&b.val_loss))
            .unwrap();
        assert_eq!(
            outcome,
            Outcome::EarlyStopped {
                best_epoch: best.epoch
            },
            "{rows:?}"
        );
        assert_eq!(rows.len(), best.epoch + 2, "{rows:?}");
        assert!(
            best.epoch > 1,
            "the loss should improve before it stalls: {rows:?}"
        );
        let kept = Checkpoint::load(&out.join("checkpoints/best.safetensors")).unwrap();
        assert_eq!(kept.epoch, best.epoch);

        let mut again =
            Trainer::resume(&data, options(&out), &Overrides::resumable(None, None)).unwrap();
        assert_eq!(again.run(&AtomicBool::new(false)).unwrap(), outcome);
        assert_eq!(
            metrics::read(&out.join("metrics.csv")).unwrap().len(),
            rows.len()
        );
        // More patience lets the run go on.
        let mut longer =
            Trainer::resume(&data, options(&out), &Overrides::resumable(None, Some(3))).unwrap();
        longer.run(&AtomicBool::new(false)).unwrap();
        assert!(metrics::read(&out.join("metrics.csv")).unwrap().len() > rows.len());
    });
}
