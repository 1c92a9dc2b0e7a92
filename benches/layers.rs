//! Per-layer timing of celeba64x48-in's convolutions and of celeba32's 128-channel 4x4
//! stride-2 ones (the last seven rows): `cargo bench --bench layers`.
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

/// One layer: transposed or not, channels in and out, kernel, stride, input height and width.
type Layer = (bool, usize, usize, usize, usize, usize, usize);

/// The forward's and forward + backward's best seconds and the forward's FLOPs of `layer`
/// at batch `n` (padding 1, as in the model).
fn measure(n: usize, (transposed, cin, cout, k, s, h, w): Layer) -> (f64, f64, f64) {
    let x = filled(&[n, cin, h, w]);
    if transposed {
        let spec = ConvTranspose2dSpec::new(s, 1, 0);
        let weight = filled(&[cin, cout, k, k]);
        let (fwd, all) = time(&x, &weight, |x, w| ops::conv_transpose2d(x, w, None, spec));
        (fwd, all, 2.0 * (n * cin * cout * k * k * h * w) as f64)
    } else {
        let spec = Conv2dSpec::new(s, Padding::symmetric(1));
        let weight = filled(&[cout, cin, k, k]);
        let (fwd, all) = time(&x, &weight, |x, w| ops::conv2d(x, w, None, spec));
        let (oh, ow) = (h / s, w / s);
        (fwd, all, 2.0 * (n * cin * cout * k * k * oh * ow) as f64)
    }
}

fn main() {
    let n = 64;
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    let pool = vae_cpu::threads::thread_pool(env("THREADS").unwrap_or(2)).unwrap();
    let only = env("ONLY");
    let layers: [Layer; 20] = [
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
        (true, 128, 128, 4, 2, 16, 16),
        (true, 128, 128, 4, 2, 8, 8),
        (true, 128, 128, 4, 2, 4, 4),
        (true, 128, 128, 4, 2, 2, 2),
        (false, 128, 128, 4, 2, 16, 16),
        (false, 128, 128, 4, 2, 8, 8),
        (false, 128, 128, 4, 2, 4, 4),
    ];
    let mut total = 0.0;
    pool.install(|| {
        for (i, layer) in layers.into_iter().enumerate() {
            if only.is_some_and(|o| o != i) {
                continue;
            }
            let (fwd, all, flops) = measure(n, layer);
            total += all;
            let (t, cin, cout, k, s, h, w) = layer;
            let kind = if t { "convT" } else { "conv " };
            println!(
                "{kind} {cin:>3}->{cout:>3} k{k} s{s} {h:>2}x{w:<2}: fwd {:6.2} ms {:5.0} GF/s \
                 | fwd+bwd {:6.2} ms {:5.0} GF/s",
                fwd * 1e3,
                flops / fwd / 1e9,
                all * 1e3,
                3.0 * flops / all / 1e9
            );
        }
    });
    println!("total fwd+bwd {:.1} ms", total * 1e3);
}
