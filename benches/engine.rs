//! Engine benchmarks: `cargo bench --bench engine`. Prints, at 1 and 2 threads, sgemm
//! GFLOP/s and the forward+backward speed of the two convolution layers that dominate
//! the celeba32 model. Figures are the best of several repetitions after a warm-up.

mod common;

use common::filled;
use vae_cpu::kernels::gemm::{gemm_par, MatRef};
use vae_cpu::ops::{self, Conv2dSpec, ConvTranspose2dSpec, Padding};
use vae_cpu::{Tape, Tensor};

fn best_seconds(reps: usize, f: impl FnMut()) -> f64 {
    common::best_seconds(reps, |_| {}, f)
}

fn sgemm(n: usize) -> f64 {
    let a = filled(&[n, n]);
    let b = filled(&[n, n]);
    let mut c = vec![0.0f32; n * n];
    let (a, b) = (a.as_slice().unwrap(), b.as_slice().unwrap());
    let s = best_seconds(5, || {
        gemm_par(1.0, MatRef::new(a, n, n), MatRef::new(b, n, n), 0.0, &mut c)
    });
    2.0 * (n as f64).powi(3) / s / 1e9
}

/// Forward + backward (input and weight gradients) of one layer; returns (ms per image, GFLOP/s).
fn layer(
    batch: usize,
    forward_flops: f64,
    x: &Tensor,
    w: &Tensor,
    op: impl Fn(&vae_cpu::Var, &vae_cpu::Var) -> vae_cpu::Var,
) -> (f64, f64) {
    let s = best_seconds(3, || {
        let tape = Tape::new();
        let (xv, wv) = (tape.leaf(x.clone()), tape.leaf(w.clone()));
        let y = op(&xv, &wv);
        let seed = Tensor::ones(y.value().raw_dim());
        let g = tape.backward_with(&y, seed);
        assert!(g.get(&xv).is_some() && g.get(&wv).is_some());
    });
    // backward = two products of the forward's size (dX and dW)
    (s * 1e3 / batch as f64, 3.0 * forward_flops / s / 1e9)
}

/// One celeba32 training step (forward, backward, Adam) at `batch`; returns images/s.
fn celeba32_step(batch: usize) -> f64 {
    use rand::SeedableRng;
    use vae_cpu::optim::Optimizer;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/celeba32.toml");
    let config = vae_cpu::config::Config::load(&path).expect("models/celeba32.toml");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut vae = vae_cpu::model::Vae::new(&config, &mut rng).unwrap();
    let mut adam = vae_cpu::optim::Adam::new(1e-3);
    let x = filled(&[batch, 3, 32, 32]).mapv(|v| v + 0.5);
    let s = best_seconds(3, || {
        let tape = Tape::new();
        let out = vae.forward(
            &tape,
            &vae_cpu::Var::constant(x.clone()),
            vae_cpu::nn::Mode::Train,
            &mut rng,
        );
        let loss = vae.loss(&out, &x);
        let grads = tape.backward(&loss.total);
        drop((out, loss, tape));
        adam.step(&mut vae, &grads);
    });
    batch as f64 / s
}

fn main() {
    let batch = 128;
    println!("vae-cpu engine benchmark (best of repeated runs)");
    for threads in [1, 2] {
        let pool = vae_cpu::threads::thread_pool(threads).expect("thread pool");
        pool.install(|| {
            println!("\n== {threads} thread(s) ==");
            let mut gemm_best: f64 = 0.0;
            for n in [256, 512, 1024] {
                let g = sgemm(n);
                gemm_best = gemm_best.max(g);
                println!("sgemm {n:>4}^3: {g:7.1} GFLOP/s");
            }
            // conv2d 128 -> 128, k4 s2 "same", 16x16 -> 8x8
            let x = filled(&[batch, 128, 16, 16]);
            let w = filled(&[128, 128, 4, 4]);
            let flops = 2.0 * batch as f64 * 128.0 * 64.0 * 128.0 * 16.0;
            let (ms, gf) = layer(batch, flops, &x, &w, |x, w| ops::conv2d(x, w, None, Conv2dSpec::new(2, Padding::Same)));
            println!("conv2d 128->128 k4 s2 16x16, batch {batch}: fwd+bwd {ms:.3} ms/image, {gf:6.1} GFLOP/s ({:.0}% of sgemm)", 100.0 * gf / gemm_best);
            // conv_transpose2d 128 -> 128, k4 s2 p1, 8x8 -> 16x16
            let x = filled(&[batch, 128, 8, 8]);
            let (ms, gf) = layer(batch, flops, &x, &w, |x, w| ops::conv_transpose2d(x, w, None, ConvTranspose2dSpec::new(2, 1, 0)));
            println!("conv_transpose2d 128->128 k4 s2 p1 8x8, batch {batch}: fwd+bwd {ms:.3} ms/image, {gf:6.1} GFLOP/s ({:.0}% of sgemm)", 100.0 * gf / gemm_best);
            println!("celeba32 training step (forward, backward, Adam), batch {batch}: {:.1} images/s", celeba32_step(batch));
        });
    }
}
