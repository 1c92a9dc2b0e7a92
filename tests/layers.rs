//! Layers: PyTorch's initializations, stable names, and train/eval behaviour.
#![cfg(feature = "engine")]

use ndarray::IxDyn;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use vae_cpu::nn::{
    named_shapes, BatchNorm, Conv2d, ConvTranspose2d, InstanceNorm, Linear, Mode, Module, PRelu,
    Slot,
};
use vae_cpu::ops::{Conv2dSpec, ConvTranspose2dSpec, Padding};
use vae_cpu::{Tape, Tensor, Var};

fn max_abs(t: &Tensor) -> f32 {
    t.iter().fold(0.0, |m, v| m.max(v.abs()))
}

#[test]
fn initializations_use_pytorch_bounds() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    // bound = 1/sqrt(fan_in); with many draws the largest |w| is close to it.
    let conv = Conv2d::new(
        128,
        128,
        4,
        Conv2dSpec::new(2, Padding::Same),
        true,
        &mut rng,
    );
    let b = 1.0 / (128.0f32 * 16.0).sqrt();
    assert!(max_abs(conv.weight.value()) <= b && max_abs(conv.weight.value()) > 0.99 * b);
    let lin = Linear::new(512, 200, true, &mut rng);
    let b = 1.0 / 512f32.sqrt();
    assert!(max_abs(lin.weight.value()) <= b && max_abs(lin.weight.value()) > 0.99 * b);
    // ConvTranspose2d: fan_in from the weight's second dimension (out * k * k).
    let ct = ConvTranspose2d::new(128, 3, 3, ConvTranspose2dSpec::new(1, 1, 0), true, &mut rng);
    let b = 1.0 / (3.0f32 * 9.0).sqrt();
    assert!(max_abs(ct.weight.value()) <= b && max_abs(ct.weight.value()) > 0.9 * b);
    assert_eq!(ct.weight.value().shape(), &[128, 3, 3, 3]);
    let mean: f32 = conv.weight.value().iter().sum::<f32>() / conv.weight.value().len() as f32;
    assert!(mean.abs() < 1e-3);
    assert!(PRelu::new(4).slope.value().iter().all(|&a| a == 0.25));
    let bn = BatchNorm::new(3);
    assert!(bn.gamma.value().iter().all(|&g| g == 1.0) && bn.running.var.iter().all(|&v| v == 1.0));
}

#[test]
fn parameters_and_buffers_have_stable_names() {
    let mut bn = BatchNorm::new(2);
    let names: Vec<(String, Vec<usize>, bool)> = named_shapes(&mut bn);
    assert_eq!(
        names,
        vec![
            ("weight".into(), vec![2], true),
            ("bias".into(), vec![2], true),
            ("running_mean".into(), vec![2], false),
            ("running_var".into(), vec![2], false),
        ]
    );
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut lin = Linear::new(3, 2, true, &mut rng);
    let mut seen = vec![];
    lin.visit("encoder.fc", &mut |name, slot| {
        seen.push((name.to_string(), matches!(slot, Slot::Param(_))))
    });
    assert_eq!(
        seen,
        vec![
            ("encoder.fc.weight".to_string(), true),
            ("encoder.fc.bias".to_string(), true)
        ]
    );
}

#[test]
fn batch_norm_layer_updates_running_stats_only_in_training() {
    let mut bn = BatchNorm::new(1);
    let x =
        Var::constant(Tensor::from_shape_vec(IxDyn(&[4, 1]), vec![1.0, 2.0, 3.0, 4.0]).unwrap());
    bn.forward(&Tape::no_grad(), &x, Mode::Eval);
    assert_eq!(bn.running.mean[[0]], 0.0);
    let y = bn.forward(&Tape::no_grad(), &x, Mode::Train);
    // mean 2.5; running_mean = 0.1 * 2.5
    assert!((bn.running.mean[[0]] - 0.25).abs() < 1e-6);
    // unbiased var = 5/3; running_var = 0.9 + 0.1 * 5/3
    assert!((bn.running.var[[0]] - (0.9 + 0.5 / 3.0)).abs() < 1e-6);
    assert!(y.value().iter().sum::<f32>().abs() < 1e-5);
    let inorm = InstanceNorm::new(1);
    let x4 = Var::constant(
        Tensor::from_shape_vec(IxDyn(&[1, 1, 2, 2]), vec![1.0, 2.0, 3.0, 4.0]).unwrap(),
    );
    assert!(
        inorm
            .forward(&Tape::no_grad(), &x4)
            .value()
            .iter()
            .sum::<f32>()
            .abs()
            < 1e-5
    );
}

/// Weight gradients are summed over batch chunks in a fixed order: repeated backward passes
/// in an oversubscribed pool (where work stealing varies) give bit-identical results.
#[test]
fn weight_gradients_repeat_bit_for_bit_under_work_stealing() {
    use vae_cpu::ops::{conv2d, conv_transpose2d, sum};
    let x = Tensor::from_shape_fn(IxDyn(&[96, 4, 8, 8]), |d| {
        ((d[0] * 7 + d[1] * 3 + d[2] * d[3]) % 13) as f32 / 13.0 - 0.4
    });
    let w = Tensor::from_shape_fn(IxDyn(&[4, 4, 3, 3]), |d| {
        ((d[0] + 2 * d[1] + d[2] * d[3]) % 5) as f32 / 5.0 - 0.3
    });
    let grads = || {
        let tape = Tape::new();
        let (xv, wv) = (tape.leaf(x.clone()), tape.leaf(w.clone()));
        let y = conv2d(&xv, &wv, None, Conv2dSpec::new(1, Padding::symmetric(1)));
        let z = conv_transpose2d(&y, &wv, None, ConvTranspose2dSpec::new(1, 1, 0));
        let g = tape.backward(&sum(&z));
        g.get(&wv)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<u32>>()
    };
    let pool = vae_cpu::threads::thread_pool(6).unwrap();
    let first = pool.install(grads);
    for _ in 0..30 {
        assert_eq!(pool.install(grads), first);
    }
}
