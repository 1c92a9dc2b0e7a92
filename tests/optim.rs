//! Optimizers and schedules against hand-computed steps.
#![cfg(feature = "engine")]

use ndarray::IxDyn;
use vae_cpu::nn::{Linear, Module, Slot};
use vae_cpu::optim::{Adam, ExponentialLr, LrSchedule, Optimizer, Sgd, StepLr};
use vae_cpu::{ops, Param, Tape, Tensor, Var};

/// A module with one parameter, for stepping optimizers by hand.
struct One(Param);

impl Module for One {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        f(&vae_cpu::nn::join(prefix, "p"), Slot::Param(&mut self.0));
    }
}

fn t(v: &[f32]) -> Tensor {
    Tensor::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap()
}

/// Gradients of loss = sum(p * c): exactly c.
fn grads_of(m: &One, c: &[f32]) -> vae_cpu::Gradients {
    let tape = Tape::new();
    let loss = ops::sum(&ops::mul(&tape.param(&m.0), &Var::constant(t(c))));
    tape.backward(&loss)
}

#[test]
fn adam_matches_hand_computed_steps() {
    let mut m = One(Param::new(t(&[1.0, -2.0])));
    let mut adam = Adam::new(0.1).with_weight_decay(0.5);
    let g = [0.3f32, -4.0];
    // Step 1 by hand: g' = g + wd*p; m = 0.1 g'; v = 0.001 g'^2; m_hat = g'; v_hat = g'^2;
    // p -= 0.1 * g' / (|g'| + 1e-8)  => p -= 0.1 * sign(g').
    let mut p = [1.0f64, -2.0];
    let (mut mm, mut vv) = ([0.0f64; 2], [0.0f64; 2]);
    for step in 1..=3 {
        let g_ = grads_of(&m, &g);
        adam.step(&mut m, &g_);
        for i in 0..2 {
            let gi = g[i] as f64 + 0.5 * p[i];
            mm[i] = 0.9 * mm[i] + 0.1 * gi;
            vv[i] = 0.999 * vv[i] + 0.001 * gi * gi;
            let mh = mm[i] / (1.0 - 0.9f64.powi(step));
            let vh = vv[i] / (1.0 - 0.999f64.powi(step));
            p[i] -= 0.1 * mh / (vh.sqrt() + 1e-8);
        }
        for (i, want) in p.iter().enumerate() {
            assert!(
                (m.0.value()[[i]] as f64 - want).abs() < 1e-5,
                "step {step}: {} vs {want}",
                m.0.value()[[i]],
            );
        }
    }
    // The first step moves each weight by exactly lr against the sign of its gradient.
    let mut fresh = One(Param::new(t(&[1.0, -2.0])));
    let g_ = grads_of(&fresh, &g);
    Adam::new(0.1).step(&mut fresh, &g_);
    assert!((fresh.0.value()[[0]] - 0.9).abs() < 1e-6 && (fresh.0.value()[[1]] + 1.9).abs() < 1e-6);
    assert_eq!(adam.state["p"].step, 3);
}

#[test]
fn sgd_momentum_matches_hand_computed_steps() {
    let mut m = One(Param::new(t(&[1.0])));
    let mut sgd = Sgd::new(0.1, 0.9);
    sgd.weight_decay = 0.1;
    // step 1: d = 2 + 0.1*1 = 2.1; buf = 2.1; p = 1 - 0.21 = 0.79
    let g_ = grads_of(&m, &[2.0]);
    sgd.step(&mut m, &g_);
    assert!((m.0.value()[[0]] - 0.79).abs() < 1e-6);
    // step 2: d = 2 + 0.079 = 2.079; buf = 0.9*2.1 + 2.079 = 3.969; p = 0.79 - 0.3969
    let g_ = grads_of(&m, &[2.0]);
    sgd.step(&mut m, &g_);
    assert!((m.0.value()[[0]] - (0.79 - 0.3969)).abs() < 1e-6);
}

/// Nesterov momentum with dampening and weight decay on a tensor large enough to be split
/// over the threads: three steps against the formula, the same values on 1 and 3 threads.
#[test]
fn sgd_nesterov_steps_large_tensors_alike_on_any_pool() {
    let n = 40_000;
    let start: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
        .collect();
    let g: Vec<f32> = (0..n)
        .map(|i| ((i * 53 % 89) as f32 - 44.0) / 11.0)
        .collect();
    let (lr, mom, damp, wd) = (0.05f32, 0.9f32, 0.25f32, 0.01f32);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut m = One(Param::new(t(&start)));
        let mut sgd = Sgd::new(lr, mom).with_weight_decay(wd);
        (sgd.dampening, sgd.nesterov) = (damp, true);
        for _ in 0..3 {
            let grads = grads_of(&m, &g);
            pool.install(|| sgd.step(&mut m, &grads));
        }
        m.0.value().iter().copied().collect::<Vec<f32>>()
    };
    let one = run(1);
    assert_eq!(one, run(3), "the update depends on the pool");
    for i in [0, 1, 777, n - 1] {
        let (mut p, mut buf) = (start[i] as f64, 0.0f64);
        for step in 0..3 {
            let d = g[i] as f64 + wd as f64 * p;
            buf = if step == 0 {
                d
            } else {
                mom as f64 * buf + (1.0 - damp as f64) * d
            };
            p -= lr as f64 * (d + mom as f64 * buf);
        }
        assert!(
            (one[i] as f64 - p).abs() < 1e-4,
            "value {i}: {} vs {p}",
            one[i]
        );
    }
}

#[test]
fn optimizers_reduce_a_quadratic_through_a_layer() {
    // Fit y = 3x - 1 with one Linear layer: the loss must fall by orders of magnitude.
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut layer = Linear::new(1, 1, true, &mut rng);
    let x = Tensor::from_shape_vec(
        IxDyn(&[8, 1]),
        (0..8).map(|i| i as f32 / 4.0 - 1.0).collect(),
    )
    .unwrap();
    let y = x.mapv(|v| 3.0 * v - 1.0);
    let mut opt = Adam::new(0.05);
    let loss_at = |layer: &Linear| {
        ops::mse(
            &layer.forward(&Tape::no_grad(), &Var::constant(x.clone())),
            &y,
            ops::Reduction::Mean,
        )
        .item()
    };
    let start = loss_at(&layer);
    for _ in 0..500 {
        let tape = Tape::new();
        let loss = ops::mse(
            &layer.forward(&tape, &Var::constant(x.clone())),
            &y,
            ops::Reduction::Mean,
        );
        let grads = tape.backward(&loss);
        drop(loss);
        opt.step(&mut layer, &grads);
    }
    let end = loss_at(&layer);
    assert!(end < start * 1e-4, "loss {start} -> {end}");
}

#[test]
fn schedules_follow_pytorch() {
    let step = StepLr {
        step_size: 3,
        gamma: 0.5,
    };
    let lrs: Vec<f32> = (0..7).map(|e| step.lr_at(1.0, e)).collect();
    assert_eq!(lrs, vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
    let exp = ExponentialLr { gamma: 0.9 };
    assert!((exp.lr_at(2.0, 2) - 2.0 * 0.81).abs() < 1e-6);
}
