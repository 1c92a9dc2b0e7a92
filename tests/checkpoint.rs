//! Checkpoints round-trip everything a run needs, and bad files are refused with a clear
//! message (never a panic), leaving nothing half-written.
#![cfg(feature = "engine")]

use ndarray::IxDyn;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use vae_cpu::checkpoint::{save, Checkpoint, EpochSums, RunState};
use vae_cpu::config::Config;
use vae_cpu::model::Vae;
use vae_cpu::nn::Mode;
use vae_cpu::optim::{Adam, Optimizer, Sgd};
use vae_cpu::{Tape, Tensor, Var};

fn config(latent: usize) -> Config {
    Config::parse(&format!(
        "[model]\nname = \"tiny\"\nheight = 8\nwidth = 8\nlatent = {latent}\n\
         [[model.encoder]]\nlayers = [{{ type = \"conv2d\", filters = 4, kernel = 4, stride = 2, padding = \"same\" }},\
           {{ type = \"batch_norm\" }}, {{ type = \"prelu\" }}, {{ type = \"flatten\" }}]\n\
         [[model.decoder]]\nlayers = [{{ type = \"linear\", units = 64 }}, {{ type = \"reshape\", shape = [4, 4, 4] }},\
           {{ type = \"conv_transpose2d\", filters = 3, kernel = 4, stride = 2, padding = 1 }}, {{ type = \"sigmoid\" }}]\n"
    ))
    .unwrap()
}

fn data() -> Tensor {
    Tensor::from_shape_fn(IxDyn(&[6, 3, 8, 8]), |d| {
        ((d[0] + d[1] * 2 + d[2] * d[3]) % 9) as f32 / 9.0
    })
}

/// A model and optimizer after two training steps, so BatchNorm statistics and Adam
/// moments are non-trivial.
fn trained() -> (Vae, Adam) {
    trained_with(Adam::new(1e-2))
}

fn trained_with<O: Optimizer>(mut adam: O) -> (Vae, O) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut vae = Vae::new(&config(5), &mut rng).unwrap();
    for _ in 0..2 {
        let tape = Tape::new();
        let out = vae.forward(&tape, &Var::constant(data()), Mode::Train, &mut rng);
        let loss = vae.loss(&out, &data());
        let grads = tape.backward(&loss.total);
        drop((out, loss, tape));
        adam.step(&mut vae, &grads);
    }
    (vae, adam)
}

/// Trains a model briefly and saves it at epoch 1, step `step`.
fn write_trained(path: &std::path::Path, step: u64) -> (Vae, Adam) {
    let (mut vae, adam) = trained();
    save(
        path,
        &vae.config.clone(),
        &mut vae,
        &adam,
        1,
        step,
        &state(),
    )
    .unwrap();
    (vae, adam)
}

/// A run state with every field set.
fn state() -> RunState {
    RunState {
        batch: 3,
        sums: EpochSums {
            loss: 12.5,
            recon: 0.75,
            kl: 3.0,
            images: 48,
            seconds: 1.5,
            data_seconds: 0.25,
        },
        best_loss: f64::INFINITY,
        best_epoch: Some(0),
        threads: Some(2),
        run_id: Some("0123456789abcdef".into()),
        seed: 42,
        rng: "ChaCha8".into(),
    }
}

fn eval_recon(vae: &mut Vae) -> Tensor {
    let (mu, _) = vae.encode(&Tape::no_grad(), &Var::constant(data()), Mode::Eval);
    vae.decode(&Tape::no_grad(), &mu, Mode::Eval)
        .value()
        .clone()
}

#[test]
fn round_trip_restores_weights_buffers_optimizer_and_position() {
    let dir = tempdir();
    let path = dir.join("last.safetensors");
    let (mut vae, adam) = trained();
    save(
        &path,
        &vae.config.clone(),
        &mut vae,
        &adam,
        7,
        1234,
        &state(),
    )
    .unwrap();

    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!((ck.epoch, ck.step), (7, 1234));
    assert_eq!(ck.state, state());
    assert_eq!(ck.config, vae.config);
    assert_eq!(ck.optimizer.save(), adam.save());
    assert!(adam.state.values().all(|s| s.step == 2));
    let mut fresh = Vae::new(&ck.config, &mut ChaCha8Rng::seed_from_u64(99)).unwrap();
    assert_ne!(eval_recon(&mut fresh), eval_recon(&mut vae));
    ck.restore(&mut fresh).unwrap();
    assert_eq!(eval_recon(&mut fresh), eval_recon(&mut vae));
    // Nothing but the checkpoint is left in the folder (the temporary file was renamed).
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn sgd_momentum_buffers_round_trip() {
    let dir = tempdir();
    let path = dir.join("sgd.safetensors");
    let (mut vae, sgd) = trained_with(Sgd::new(1e-2, 0.9).with_weight_decay(1e-4));
    assert!(!sgd.buffers.is_empty());
    save(&path, &vae.config.clone(), &mut vae, &sgd, 1, 2, &state()).unwrap();
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.optimizer.save(), sgd.save());
}

#[test]
fn checkpoint_of_another_architecture_is_refused_without_changes() {
    let dir = tempdir();
    let path = dir.join("other.safetensors");
    write_trained(&path, 1);
    let mut other = Vae::new(&config(9), &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let before = eval_recon(&mut other);
    let err = Checkpoint::load(&path)
        .unwrap()
        .restore(&mut other)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("other.safetensors")
            && err.contains("does not fit")
            && err.contains("mu.weight"),
        "{err}"
    );
    assert_eq!(eval_recon(&mut other), before);
}

#[test]
fn garbage_and_foreign_files_are_clear_errors() {
    let dir = tempdir();
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a checkpoint at all").unwrap();
    let e = Checkpoint::load(&garbage).err().unwrap().to_string();
    assert!(
        e.contains("garbage.safetensors") && e.contains("truncated or corrupt"),
        "{e}"
    );
    // A valid safetensors file that another tool wrote.
    let foreign = dir.join("foreign.safetensors");
    let data = [0u8; 8];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap();
    std::fs::write(
        &foreign,
        safetensors::serialize([("w", view)], &None).unwrap(),
    )
    .unwrap();
    let e = Checkpoint::load(&foreign).err().unwrap().to_string();
    assert!(e.contains("not a vae-cpu checkpoint"), "{e}");
    let e = Checkpoint::load(&dir.join("missing.safetensors"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing.safetensors"), "{e}");
}

#[test]
fn a_failed_write_leaves_the_previous_checkpoint_intact() {
    let dir = tempdir();
    let path = dir.join("last.safetensors");
    let (mut vae, adam) = write_trained(&path, 10);
    let cfg = vae.config.clone();
    let before = std::fs::read(&path).unwrap();
    // Writing into a folder that does not exist fails, and touches nothing else.
    assert!(save(
        &dir.join("no/such/dir/x.safetensors"),
        &cfg,
        &mut vae,
        &adam,
        2,
        20,
        &state()
    )
    .is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any truncation, or any flipped byte, gives an error or a loadable checkpoint, never a panic.
    #[test]
    fn damaged_checkpoints_never_panic(cut in 0.0f64..1.0, flip in any::<prop::sample::Index>(), byte: u8) {
        let bytes = checkpoint_bytes();
        let dir = tempdir();
        let path = dir.join("damaged.safetensors");
        std::fs::write(&path, &bytes[..(cut * bytes.len() as f64) as usize]).unwrap();
        prop_assert!(Checkpoint::load(&path).is_err());
        let mut flipped = bytes.clone();
        let i = flip.index(flipped.len());
        flipped[i] ^= byte | 1;
        std::fs::write(&path, &flipped).unwrap();
        if let Ok(ck) = Checkpoint::load(&path) {
            let mut vae = Vae::new(&ck.config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
            let _ = ck.restore(&mut vae);
        }
    }
}

fn checkpoint_bytes() -> Vec<u8> {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES
        .get_or_init(|| {
            let dir = tempdir();
            let path = dir.join("c.safetensors");
            write_trained(&path, 1);
            std::fs::read(path).unwrap()
        })
        .clone()
}

/// A fresh empty folder under the target directory (removed by `cargo clean`).
fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "checkpoint-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
