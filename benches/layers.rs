//! Per-layer timing of celeba64x48-in's convolutions: `cargo bench --bench layers`.
//! The forward, and forward + backward (input and weight gradients), of each distinct layer
//! at batch 64, best of 5 with the caches evicted before each, with its GFLOP/s.
//! `THREADS=n` (default 2) sets the pool; `ONLY=i` times layer `i` alone (for `perf`).

mod common;

use common::filled;
use vae_cpu::ops::{self, Conv2dSpec, ConvTranspose2dSpec, Padding};
use vae_cpu::{Tape, Tensor};

#[global_allocator]
static ALLOCATOR: vae_cpu::alloc::RecyclingAllocator =
    vae_cpu::alloc::RecyclingAllocator::new(4 << 30);

/// [`common::best_seconds`] with the caches evicted before each timed call: in a training
/// step each layer finds its input cold.
fn best_seconds(reps: usize, f: impl FnMut()) -> f64 {
    let mut junk = vec![0u8; 64 << 20];
    let evict = |r: usize| {
        junk.iter_mut().for_each(|b| *b = b.wrapping_add(r as u8));
        std::hint::black_box(&junk);
    };
    common::best_seconds(reps, evict, f)
}

fn time(
    x: &Tensor,
    w: &Tensor,
    op: impl Fn(&vae_cpu::Var, &vae_cpu::Var) -> vae_cpu::Var,
) -> (f64, f64) {
    let (xc, wc) = (
        vae_cpu::Var::constant(x.clone()),
        vae_cpu::Var::constant(w.clone()),
    );
    let fwd = best_seconds(5, || {
        let y = op(&xc, &wc);
        std::hint::black_box(y.value());
    });
    // Copies made outside the timed region (a leaf takes its tensor by value).
    let mut copies: Vec<(Tensor, Tensor)> = (0..6).map(|_| (x.clone(), w.clone())).collect();
    let all = best_seconds(5, || {
        let (x, w) = copies.pop().unwrap();
        let tape = Tape::new();
        let (xv, wv) = (tape.leaf(x), tape.leaf(w));
        let y = op(&xv, &wv);
        let seed = Tensor::ones(y.value().raw_dim());
        let g = tape.backward_with(&y, seed);
        assert!(g.get(&xv).is_some() && g.get(&wv).is_some());
    });
    (fwd, all)
}

fn main() {
    let n = 64;
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let pool = vae_cpu::threads::thread_pool(threads).unwrap();
    // (transposed, cin, cout, k, stride, h, w) of the input
    let only: Option<usize> = std::env::var("ONLY").ok().and_then(|t| t.parse().ok());
    let layers = [
        (false, 3, 32, 4, 2, 48, 64),
        (false, 32, 32, 3, 1, 24, 32),
        (false, 32, 64, 4, 2, 24, 32),
        (false, 64, 64, 3, 1, 12, 16),
        (false, 64, 128, 4, 2, 12, 16),
        (false, 128, 128, 3, 1, 6, 8),
        (false, 128, 256, 4, 2, 6, 8),
        (false, 256, 256, 3, 1, 3, 4),
        (true, 256, 128, 4, 2, 3, 4),
        (true, 128, 64, 4, 2, 6, 8),
        (true, 64, 32, 4, 2, 12, 16),
        (true, 32, 32, 4, 2, 24, 32),
        (false, 32, 3, 3, 1, 48, 64),
    ];
    let mut total = 0.0;
    pool.install(|| {
        for (i, (t, cin, cout, k, s, h, w)) in layers.into_iter().enumerate() {
            if only.is_some_and(|o| o != i) { continue; }
            let x = filled(&[n, cin, h, w]);
            let (fwd, all, flops) = if t {
                let wt = filled(&[cin, cout, k, k]);
                let (f, a) = time(&x, &wt, |x, w| ops::conv_transpose2d(x, w, None, ConvTranspose2dSpec::new(s, 1, 0)));
                (f, a, 2.0 * (n * cin * cout * k * k * h * w) as f64)
            } else {
                let wt = filled(&[cout, cin, k, k]);
                let (f, a) = time(&x, &wt, |x, w| ops::conv2d(x, w, None, Conv2dSpec::new(s, Padding::symmetric(1))));
                let (oh, ow) = (h / s, w / s);
                (f, a, 2.0 * (n * cin * cout * k * k * oh * ow) as f64)
            };
            total += all;
            println!(
                "{} {cin:>3}->{cout:>3} k{k} s{s} {h:>2}x{w:<2}: fwd {:6.2} ms {:5.0} GF/s | fwd+bwd {:6.2} ms {:5.0} GF/s",
                if t { "convT" } else { "conv " },
                fwd * 1e3, flops / fwd / 1e9, all * 1e3, 3.0 * flops / all / 1e9
            );
        }
    });
    println!("total fwd+bwd {:.1} ms", total * 1e3);
}
