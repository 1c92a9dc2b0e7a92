//! All matrix products of the engine go through [`gemm`] (single-threaded, for use inside
//! rayon tasks) or [`gemm_par`] (splits the rows of C over the current rayon pool); the
//! CPU product itself is [`super::matrix`]'s.
//!
//! When an accelerator is in use (`--device cuda`, see [`super::offload`]), both hand
//! large enough products to it first and compute on the CPU only what it declines.

use super::im2col_view::Im2colView;
pub use super::matrix::MatRef;
use super::matrix::{checked_sgemm, prepare};
use super::offload;
use super::packed_gemm;
use super::scratch::with_scratch;
use rayon::prelude::*;
use std::sync::{Arc, LazyLock, Mutex};

/// `C = alpha * A * B + beta * C`, with C a contiguous row-major `A.rows x B.cols` slice.
/// When `beta == 0`, C's previous contents are ignored (may be uninitialised garbage).
pub fn gemm(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut [f32]) {
    let Some((m, n)) = prepare(a, b, beta, c) else {
        return;
    };
    if !offload::try_gemm(alpha, a, b, beta, &mut c[..m * n]) {
        checked_sgemm(alpha, a, b, beta, c);
    }
}

/// Like [`gemm`], but splits the rows of C into blocks computed in parallel on the
/// current rayon pool. Small products stay on one thread.
pub fn gemm_par(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut [f32]) {
    let Some((m, n)) = prepare(a, b, beta, c) else {
        return;
    };
    if offload::try_gemm(alpha, a, b, beta, &mut c[..m * n]) {
        return;
    }
    let k = a.cols;
    let threads = rayon::current_num_threads();
    let flops = 2.0 * m as f64 * k as f64 * n as f64;
    if threads <= 1 || m < 2 * 16 || flops < 4.0e6 {
        return checked_sgemm(alpha, a, b, beta, c);
    }
    let blocks = threads.min(m / 16);
    let rows_per = m.div_ceil(blocks);
    c[..m * n]
        .par_chunks_mut(rows_per * n)
        .enumerate()
        .for_each(|(i, c_block)| {
            let start = i * rows_per;
            let len = c_block.len() / n;
            checked_sgemm(alpha, a.rows_range(start, len), b, beta, c_block);
        });
}

/// [`gemm`] for one of `tasks` products running side by side on the pool (a convolution's
/// chunks of images): with fewer tasks than threads (a batch of one image), the product is
/// split over the pool itself ([`gemm_par`]) so that no thread idles.
pub fn gemm_in_task(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut [f32], tasks: usize) {
    if tasks < rayon::current_num_threads() {
        gemm_par(alpha, a, b, beta, c)
    } else {
        gemm(alpha, a, b, beta, c)
    }
}

/// A left operand packed once for many products (a layer's weight, multiplied into every
/// chunk of a batch): where our kernel runs ([`packs_columns_in_place`]), its panels;
/// otherwise, or while an accelerator is in use, the view itself, multiplied as [`gemm`]
/// multiplies it.
pub struct PackedA<'a> {
    view: MatRef<'a>,
    panels: Option<Arc<Vec<f32>>>,
}

impl<'a> PackedA<'a> {
    pub fn new(view: MatRef<'a>) -> Self {
        view.check();
        let panels = own_kernel(view).then(|| Arc::new(pack(view)));
        PackedA { view, panels }
    }

    /// A layer's weight packed for one call: [`Self::new`] while it is `tracked` (on a
    /// tape, changed by every optimizer step), else [`Self::reused`].
    pub fn weight(view: MatRef<'a>, tracked: bool) -> Self {
        if tracked {
            Self::new(view)
        } else {
            Self::reused(view)
        }
    }

    /// [`Self::new`] for a weight that does not change between calls (inference): the
    /// panels of a view marked [`MatRef::kept`] are kept across calls while its tensor
    /// lives unchanged (as the accelerator's device copies, [`offload::WeightCache`]), so
    /// that decoding one face after another packs each weight once. Packing was 10-20% of
    /// decoding one face (celeba32, celeba64) before.
    pub fn reused(view: MatRef<'a>) -> Self {
        let Some(owner) = view.owner.filter(|_| own_kernel(view)) else {
            return Self::new(view);
        };
        view.check();
        let data = &view.data[..view.span()];
        // The layout tells apart a weight's packings (as is, transposed).
        let form = [view.rows, view.cols, view.rs, view.cs];
        let cache = || PACKED.lock().unwrap_or_else(|e| e.into_inner());
        // Packed without the lock held: the packing runs on the pool, whose threads may
        // meanwhile take up another product that asks the cache.
        let found = cache().get(owner, data, form);
        let panels = found.unwrap_or_else(|| {
            let panels = pack(view);
            cache().insert(owner, data, form, panels)
        });
        PackedA {
            view,
            panels: Some(panels),
        }
    }
}

/// Packed panels of weights used without a tape, at most 256 MiB of them.
static PACKED: LazyLock<Mutex<offload::WeightCache<Vec<f32>>>> =
    LazyLock::new(|| Mutex::new(offload::WeightCache::new(256 << 20)));

/// `view` in our kernel's panels.
fn pack(view: MatRef) -> Vec<f32> {
    packed_gemm::packed_par(view)
}

/// Whether products with this left operand run on our own kernel.
fn own_kernel(a: MatRef) -> bool {
    packs_columns_in_place() && a.rows > 0 && a.cols > 0
}

/// Whether products run on our own kernel (`kernels::packed_gemm`), which packs a
/// convolution's column matrix straight from the images ([`gemm_packed_columns`],
/// [`gemm_columns_t`]): an x86-64 CPU with AVX-512, or with AVX2 and FMA, and no
/// accelerator in use. Elsewhere the columns are written out first, and a convolution
/// may as well keep them for its backward. On AVX2 (an AMD EPYC Zen 3 host) this path
/// trained celeba64x48-in 140.4 -> 158.2 images/s and celeba32 186.6 -> 196.7 against
/// `matrixmultiply` on written-out columns (medians of 5 alternating runs,
/// `scripts/ab-builds.sh`, session 33).
pub fn packs_columns_in_place() -> bool {
    cfg!(target_arch = "x86_64")
        && super::simd::level() >= super::simd::Level::Avx2
        && !offload::is_active()
}

/// [`gemm`] with a packed left operand.
pub fn gemm_packed(alpha: f32, a: &PackedA, b: MatRef, beta: f32, c: &mut [f32]) {
    let Some(panels) = &a.panels else {
        return gemm(alpha, a.view, b, beta, c);
    };
    if let Some((m, n)) = prepare(a.view, b, beta, c) {
        packed_gemm::sgemm_packed(alpha, panels, m, &b, beta, c, n);
    }
}

/// [`gemm_packed`] with rows `start..start+len` of A: `C = alpha * A[rows] * B + beta *
/// C`. On our kernel `start` must begin a panel (a multiple of `packed_gemm::MR`).
pub fn gemm_packed_rows(
    alpha: f32,
    a: &PackedA,
    (start, len): (usize, usize),
    b: MatRef,
    beta: f32,
    c: &mut [f32],
) {
    let view = a.view.rows_range(start, len);
    let Some(panels) = &a.panels else {
        return gemm(alpha, view, b, beta, c);
    };
    assert!(
        start.is_multiple_of(packed_gemm::MR),
        "gemm: rows must begin a panel"
    );
    if let Some((m, n)) = prepare(view, b, beta, c) {
        let panels = &panels[start * a.view.cols..];
        packed_gemm::sgemm_packed(alpha, panels, m, &b, beta, c, n);
    }
}

/// [`gemm_in_task`] with a packed left operand: with fewer tasks than threads, the rows of
/// C are split over the pool in whole panels.
pub fn gemm_packed_in_task(
    alpha: f32,
    a: &PackedA,
    b: MatRef,
    beta: f32,
    c: &mut [f32],
    tasks: usize,
) {
    let threads = rayon::current_num_threads();
    let Some(panels) = a.panels.as_ref().filter(|_| tasks < threads) else {
        return gemm_packed(alpha, a, b, beta, c);
    };
    let Some((m, n)) = prepare(a.view, b, beta, c) else {
        return;
    };
    let k = a.view.cols;
    let rows_per = m.div_ceil(threads).div_ceil(packed_gemm::MR) * packed_gemm::MR;
    c[..m * n]
        .par_chunks_mut(rows_per * n)
        .enumerate()
        .for_each(|(i, c_block)| {
            let len = c_block.len() / n;
            let block_panels = &panels[i * rows_per * k..];
            packed_gemm::sgemm_packed(alpha, block_panels, len, &b, beta, c_block, n);
        });
}

/// `C = alpha * A * col + beta * C` with `col` a convolution's column matrix, for one of
/// `tasks` products side by side (as [`gemm_packed_in_task`]). On our kernel with a task
/// per thread, the panels of `col` are packed straight from the images; otherwise `col` is
/// written whole into scratch first (over the pool for one image that must keep every
/// thread busy).
pub fn gemm_packed_columns(
    alpha: f32,
    a: &PackedA,
    col: Im2colView,
    beta: f32,
    c: &mut [f32],
    tasks: usize,
) {
    let (rows, cols) = (col.rows(), col.cols());
    assert_eq!(a.view.cols, rows, "gemm: weight and columns differ");
    assert!(c.len() >= a.view.rows * cols, "gemm output slice too short");
    if cols == 0 || a.view.rows == 0 {
        return;
    }
    match &a.panels {
        Some(panels) if tasks >= rayon::current_num_threads() => {
            packed_gemm::sgemm_packed(alpha, panels, a.view.rows, &col, beta, c, cols)
        }
        _ => with_scratch(rows * cols, |buf| {
            col.write(buf, tasks < rayon::current_num_threads());
            gemm_packed_in_task(alpha, a, MatRef::new(buf, rows, cols), beta, c, tasks)
        }),
    }
}

/// `C = alpha * A * colᵀ + beta * C` with `col` a convolution's column matrix (a weight
/// gradient `dY · colᵀ`): on our kernel its panels are packed straight from the images,
/// otherwise `col` is written whole into scratch first.
pub fn gemm_columns_t(alpha: f32, a: MatRef, col: Im2colView, beta: f32, c: &mut [f32]) {
    let (rows, cols) = (col.rows(), col.cols());
    assert_eq!(a.cols, cols, "gemm: gradient and columns differ");
    assert!(c.len() >= a.rows * rows, "gemm output slice too short");
    a.check();
    if cols == 0 || a.rows == 0 {
        return c[..a.rows * rows].iter_mut().for_each(|v| *v *= beta);
    }
    if own_kernel(a) {
        return packed_gemm::sgemm(alpha, a, &col.t(), beta, c, rows);
    }
    with_scratch(rows * cols, |buf| {
        col.write(buf, false);
        gemm(alpha, a, MatRef::new(buf, rows, cols).t(), beta, c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(a: MatRef, b: MatRef) -> Vec<f32> {
        let mut c = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = 0.0f64;
                for p in 0..a.cols {
                    s += a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
                c[i * b.cols + j] = s as f32;
            }
        }
        c
    }

    /// `len` values in [-1, 1) from a seed.
    fn values(len: usize, seed: u64) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u64 * 2654435761 + seed) % 1000) as f32 / 500.0) - 1.0)
            .collect()
    }

    /// `A * B` through [`PackedA::reused`] against the definition.
    fn reused_product(a: MatRef, b: MatRef) -> Vec<f32> {
        let mut c = vec![0.0f32; a.rows * b.cols];
        gemm_packed(1.0, &PackedA::reused(a), b, 0.0, &mut c);
        c
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        for (x, y) in got.iter().zip(want) {
            assert!((x - y).abs() < 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    /// A weight's packed panels are reused while it lives unchanged, its transpose packed
    /// on its own, and a weight changed (through `Arc::make_mut`, as the optimizer and
    /// `Param` change weights) packed again.
    #[test]
    fn reused_panels_follow_the_weight() {
        let (m, k, n) = (20, 37, 9);
        let mut w = Arc::new(
            crate::Tensor::from_shape_vec(ndarray::IxDyn(&[m, k]), values(m * k, 1)).unwrap(),
        );
        let b_data = values(k * n, 2);
        let b = MatRef::new(&b_data, k, n);
        let bt_data = values(m * n, 3);
        let bt = MatRef::new(&bt_data, m, n);
        for _ in 0..2 {
            let a = MatRef::new(w.as_slice().unwrap(), m, k).kept(&w);
            assert_close(&reused_product(a, b), &naive(a, b));
            assert_close(&reused_product(a.t(), bt), &naive(a.t(), bt));
        }
        if own_kernel(MatRef::new(w.as_slice().unwrap(), m, k)) {
            let a = MatRef::new(w.as_slice().unwrap(), m, k).kept(&w);
            let (p, q) = (PackedA::reused(a), PackedA::reused(a));
            assert!(Arc::ptr_eq(
                p.panels.as_ref().unwrap(),
                q.panels.as_ref().unwrap()
            ));
        }
        Arc::make_mut(&mut w).mapv_inplace(|v| 2.0 * v + 0.25);
        let a = MatRef::new(w.as_slice().unwrap(), m, k).kept(&w);
        assert_close(&reused_product(a, b), &naive(a, b));
        assert_close(&reused_product(a.t(), bt), &naive(a.t(), bt));
    }

    /// Many weights asked for at once from the pool's tasks (images decoded in parallel):
    /// each product right, and no task waits on the cache while another packs.
    #[test]
    fn reused_panels_from_parallel_tasks() {
        let (m, k, n) = (40, 300, 5);
        let weights: Vec<Arc<crate::Tensor>> = (0..12)
            .map(|i| {
                let v = values(m * k, i);
                Arc::new(crate::Tensor::from_shape_vec(ndarray::IxDyn(&[m, k]), v).unwrap())
            })
            .collect();
        let b_data = values(k * n, 99);
        let b = MatRef::new(&b_data, k, n);
        let pool = crate::threads::thread_pool(2).unwrap();
        pool.install(|| {
            weights.par_iter().for_each(|w| {
                let a = MatRef::new(w.as_slice().unwrap(), m, k).kept(w);
                assert_close(&reused_product(a, b), &naive(a, b));
            })
        });
    }

    proptest! {
        #[test]
        fn gemm_matches_naive(m in 1usize..40, k in 0usize..40, n in 1usize..40,
                              ta: bool, tb: bool, seed: u64, par: bool) {
            let (a_data, b_data) = (values(m * k, seed), values(k * n, seed ^ 77));
            let a = if ta { MatRef::new(&a_data, k, m).t() } else { MatRef::new(&a_data, m, k) };
            let b = if tb { MatRef::new(&b_data, n, k).t() } else { MatRef::new(&b_data, k, n) };
            let expect = naive(a, b);
            let mut c = vec![1.0; m * n];
            if par { gemm_par(1.0, a, b, 0.0, &mut c) } else { gemm(1.0, a, b, 0.0, &mut c) }
            for (x, y) in c.iter().zip(&expect) {
                prop_assert!((x - y).abs() < 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
            }
            // beta = 1 accumulates.
            gemm(1.0, a, b, 1.0, &mut c);
            for (x, y) in c.iter().zip(&expect) {
                prop_assert!((x - 2.0 * y).abs() < 2e-4 * (1.0 + y.abs()));
            }
        }

        /// Products with a packed left operand equal the definition, on one thread and
        /// split over a pool (a chunk of one image), across the kernel's block edges.
        #[test]
        fn gemm_packed_matches_naive(m in 1usize..40, k in prop_oneof![1usize..40, 250usize..300],
                                     n in 1usize..70, ta: bool, tb: bool, seed: u64,
                                     beta in prop_oneof![Just(0.0f32), Just(1.0f32)]) {
            let (a_data, b_data) = (values(m * k, seed), values(k * n, seed ^ 77));
            let a = if ta { MatRef::new(&a_data, k, m).t() } else { MatRef::new(&a_data, m, k) };
            let b = if tb { MatRef::new(&b_data, n, k).t() } else { MatRef::new(&b_data, k, n) };
            let expect = naive(a, b);
            let packed = PackedA::new(a);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            for split in [false, true] {
                let mut c = vec![0.5f32; m * n];
                pool.install(|| {
                    if split {
                        gemm_packed_in_task(1.0, &packed, b, beta, &mut c, 1)
                    } else {
                        gemm_packed(1.0, &packed, b, beta, &mut c)
                    }
                });
                for (x, y) in c.iter().zip(&expect) {
                    let want = y + beta * 0.5;
                    prop_assert!((x - want).abs() < 1e-4 * (k as f32) * (1.0 + want.abs()), "{x} vs {want}");
                }
            }
        }
    }
}
