//! GEMM offload (`--device cuda`): every op's output and gradients with the products on
//! the accelerator match the CPU within 1e-4 (relative to the tensor's largest value);
//! training steps match too (so a weight changed by the optimizer is never served
//! stale from the device); the weight cache saves copies; a failing device hands over to
//! the CPU; the CLI says once why it runs on the CPU.
//!
//! The accelerator is the GPU when one is usable (the `cuda` feature, a CUDA driver, a
//! GPU), else the reference accelerator: cuBLAS's column-major contract run on the CPU,
//! which checks the same plans, routing and copies.

mod common;

use common::{small_config, stderr, vae_cpu};
use ndarray::IxDyn;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex, MutexGuard};
use vae_cpu::kernels::offload::{self, Accelerator, Device, Job, Reference, TransferStats};
use vae_cpu::model::Vae;
use vae_cpu::nn::Mode;
use vae_cpu::ops::{self, Conv2dSpec, ConvTranspose2dSpec, Padding};
use vae_cpu::optim::{Optimizer, Sgd};
use vae_cpu::{Tape, Tensor, Var};

/// The accelerator is process-wide: tests that switch it take turns.
static DEVICE: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    DEVICE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on the CPU, then with every product (however small) on the accelerator.
/// Returns both results and what the accelerator did.
fn cpu_and_device<T>(f: impl Fn() -> T) -> (T, T, TransferStats) {
    offload::stop();
    let cpu = f();
    if offload::use_device(Device::Cuda).is_err() {
        offload::use_accelerator(Reference::new());
    }
    offload::set_min_offload_macs(0);
    let before = offload::stats();
    let device = f();
    let stats = offload::stats().since(&before);
    offload::stop();
    offload::set_min_offload_macs(offload::MIN_OFFLOAD_MACS);
    (cpu, device, stats)
}

fn random(shape: &[usize], rng: &mut ChaCha8Rng) -> Tensor {
    Tensor::from_shape_simple_fn(IxDyn(shape), || rng.gen_range(-1.0..1.0))
}

/// `max |a - b| <= 1e-4 * max |b|`: the products' rounding differs, nothing else may.
fn assert_close(what: &str, device: &Tensor, cpu: &Tensor) {
    assert_eq!(device.shape(), cpu.shape(), "{what}");
    let scale = cpu.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let worst = device
        .iter()
        .zip(cpu.iter())
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst <= 1e-4 * scale,
        "{what}: differs by {worst} (largest value {scale})"
    );
}

/// An op's output and the gradients of all its inputs, for a random upstream gradient.
fn output_and_gradients(inputs: &[Tensor], op: impl Fn(&[Var]) -> Var) -> Vec<Tensor> {
    let tape = Tape::new();
    let vars: Vec<Var> = inputs.iter().map(|t| tape.leaf(t.clone())).collect();
    let y = op(&vars);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let seed = random(y.shape(), &mut rng);
    let grads = tape.backward_with(&y, seed);
    let mut out = vec![y.value().clone()];
    out.extend(
        vars.iter()
            .map(|v| grads.get(v).expect("a gradient").clone()),
    );
    out
}

fn check_op(name: &str, inputs: Vec<Tensor>, op: impl Fn(&[Var]) -> Var) {
    let _guard = exclusive();
    let (cpu, device, stats) = cpu_and_device(|| output_and_gradients(&inputs, &op));
    assert!(
        stats.offloaded > 0,
        "{name}: nothing ran on the accelerator"
    );
    let names = [
        "output",
        "input gradient",
        "weight gradient",
        "bias gradient",
    ];
    for ((d, c), what) in device.iter().zip(&cpu).zip(names) {
        assert_close(&format!("{name} {what}"), d, c);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_matches_the_cpu(n in 1usize..5, c in 1usize..4, o in 1usize..6, size in 3usize..9,
                              k in 1usize..4, stride in 1usize..3, same: bool, seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let padding = if same { Padding::Same } else { Padding::symmetric(k / 2) };
        let spec = Conv2dSpec::new(stride, padding);
        let inputs = vec![random(&[n, c, size, size], &mut rng), random(&[o, c, k, k], &mut rng),
                          random(&[o], &mut rng)];
        check_op("conv2d", inputs, |v| ops::conv2d(&v[0], &v[1], Some(&v[2]), spec));
    }

    #[test]
    fn conv_transpose2d_matches_the_cpu(n in 1usize..5, c in 1usize..4, o in 1usize..6,
                                        size in 2usize..7, k in 2usize..5, stride in 1usize..3,
                                        seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let spec = ConvTranspose2dSpec::new(stride, (k - 1) / 2, stride - 1);
        let inputs = vec![random(&[n, c, size, size], &mut rng), random(&[c, o, k, k], &mut rng),
                          random(&[o], &mut rng)];
        check_op("conv_transpose2d", inputs,
                 |v| ops::conv_transpose2d(&v[0], &v[1], Some(&v[2]), spec));
    }

    #[test]
    fn linear_matches_the_cpu(n in 1usize..40, fan_in in 1usize..50, fan_out in 1usize..50,
                              seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let inputs = vec![random(&[n, fan_in], &mut rng), random(&[fan_out, fan_in], &mut rng),
                          random(&[fan_out], &mut rng)];
        check_op("linear", inputs, |v| ops::linear(&v[0], &v[1], Some(&v[2])));
    }
}

/// Three training steps of the small model (convs, transposed convs, linears, batch
/// norm): losses and final weights match. After each optimizer step the weights change
/// in place, so a stale device copy would show here. (Plain SGD: Adam divides by the
/// gradient's size, which turns the rounding noise of the near-zero gradient of a bias
/// before batch norm into full steps.)
#[test]
fn training_steps_match_the_cpu_and_weights_are_uploaded_again_after_each_step() {
    let _guard = exclusive();
    let config = small_config(1, 16);
    let train = || {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut model = Vae::new(&config, &mut rng).unwrap();
        let mut sgd = Sgd::new(1e-4, 0.0);
        let x = Var::constant(Tensor::from_shape_simple_fn(
            IxDyn(&[16, 3, 16, 16]),
            || rng.gen::<f32>(),
        ));
        let mut losses = vec![];
        for _ in 0..3 {
            let tape = Tape::new();
            let out = model.forward(&tape, &x, Mode::Train, &mut rng);
            let loss = model.loss(&out, x.value());
            let grads = tape.backward(&loss.total);
            losses.push(Tensor::from_elem(IxDyn(&[1]), loss.total.item()));
            drop((out, loss, tape));
            sgd.step(&mut model, &grads);
        }
        let mut weights = vec![];
        vae_cpu::nn::Module::visit(&mut model, "", &mut |name, slot| {
            if let vae_cpu::nn::Slot::Param(p) = slot {
                weights.push((name.to_string(), p.value().clone()));
            }
        });
        (losses, weights)
    };
    let ((cpu_losses, cpu_weights), (dev_losses, dev_weights), stats) = cpu_and_device(train);
    for (i, (d, c)) in dev_losses.iter().zip(&cpu_losses).enumerate() {
        assert_close(&format!("loss of step {}", i + 1), d, c);
    }
    for ((name, d), (_, c)) in dev_weights.iter().zip(&cpu_weights) {
        assert_close(name, d, c);
    }
    assert!(stats.offloaded > 0 && stats.bytes_down > 0);
    assert!(
        stats.bytes_kept > 0,
        "the backward pass should reuse the forward's weights: {stats}"
    );
}

/// Decoding twice with the same weights copies the weights once.
#[test]
fn inference_keeps_weights_on_the_device() {
    let _guard = exclusive();
    let config = small_config(1, 16);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let model = Mutex::new(Vae::new(&config, &mut rng).unwrap());
    let z = Var::constant(random(&[8, 6], &mut rng));
    let decode = || {
        let mut model = model.lock().unwrap();
        let first_before = offload::stats();
        let first = model.decode(&Tape::no_grad(), &z, Mode::Eval);
        let first_stats = offload::stats().since(&first_before);
        let again = model.decode(&Tape::no_grad(), &z, Mode::Eval);
        let again_stats = offload::stats().since(&first_before).since(&first_stats);
        (
            first.value().clone(),
            again.value().clone(),
            first_stats,
            again_stats,
        )
    };
    let ((cpu, _, _, _), (first, again, first_stats, again_stats), _) = cpu_and_device(decode);
    assert_close("first decode", &first, &cpu);
    assert_close("second decode", &again, &cpu);
    assert!(
        again_stats.bytes_kept > first_stats.bytes_kept
            && again_stats.bytes_up < first_stats.bytes_up,
        "the second decode should find its weights on the device: first {first_stats}; \
         second {again_stats}"
    );
}

/// A device that fails: the product is computed on the CPU, and the device is dropped.
struct Broken;

impl Accelerator for Broken {
    fn name(&self) -> String {
        "a broken device".into()
    }
    fn sgemm(&self, job: Job<'_>) -> Result<(), String> {
        job.c.iter_mut().for_each(|v| *v = f32::NAN);
        Err("out of memory".into())
    }
}

#[test]
fn a_failing_device_hands_over_to_the_cpu() {
    let _guard = exclusive();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (x, w) = (random(&[64, 128], &mut rng), random(&[96, 128], &mut rng));
    let product = || ops::linear(&Var::constant(x.clone()), &Var::constant(w.clone()), None);
    let cpu = product();
    offload::use_accelerator(Arc::new(Broken));
    offload::set_min_offload_macs(0);
    assert!(offload::is_active());
    let after_failure = product();
    assert!(!offload::is_active(), "the broken device is still in use");
    offload::stop();
    offload::set_min_offload_macs(offload::MIN_OFFLOAD_MACS);
    assert_close(
        "product after a device failure",
        after_failure.value(),
        cpu.value(),
    );
}

/// The binary: `--device cuda` or `VAE_CPU_DEVICE=cuda` either uses the GPU (and says
/// which) or says once why not and goes on with the CPU; a bad value is refused.
#[test]
fn the_cli_says_where_the_products_run() {
    let dir = tempfile::tempdir().unwrap();
    let by_flag = vae_cpu(&["info", "--device", "cuda"], dir.path());
    let by_env = std::process::Command::new(env!("CARGO_BIN_EXE_vae-cpu"))
        .arg("info")
        .env("VAE_CPU_DEVICE", "cuda")
        .output()
        .unwrap();
    for out in [by_flag, by_env] {
        assert!(out.status.success(), "{}", stderr(&out));
        let (err, text) = (
            stderr(&out),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        );
        if err.contains("matrix products run on") {
            assert!(!text.contains("matrix products on: cpu"), "{text}");
        } else {
            assert_eq!(err.matches("warning: --device cuda:").count(), 1, "{err}");
            assert!(err.contains("running on the CPU"), "{err}");
            assert!(text.contains("matrix products on: cpu"), "{text}");
            if !cfg!(feature = "cuda") {
                assert!(err.contains("--features cuda"), "{err}");
            }
        }
        assert!(
            !err.contains("panicked") && !err.contains("internal error"),
            "{err}"
        );
    }
    let bad = vae_cpu(&["info", "--device", "tpu"], dir.path());
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("expected cpu or cuda"),
        "{}",
        stderr(&bad)
    );
}
