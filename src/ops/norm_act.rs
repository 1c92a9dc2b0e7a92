//! Batch normalization followed by a leaky ReLU (ReLU: slope 0) or a PReLU, in one pass
//! over memory each way (instance normalization's fused op, whose statistics are each
//! plane's own, goes plane by plane: `instance_norm_act`). Unfused, the pair reads and
//! writes the tensor seven times forward (statistics, normalize writing `y` and the saved
//! `xhat`, activation) and seven times backward; fused, four and five: the saved input `x`
//! serves both, `xhat = (x - mean) * inv_std` is recomputed where needed, and no
//! intermediate tensor is kept.
//!
//! With `pre = gamma * xhat + beta` and `y = pre > 0 ? pre : a * pre`, the backward first
//! forms `dpre = dy * (pre > 0 ? 1 : a)` (and the slope gradient `sum_{pre<=0} dy * pre`),
//! then applies batch norm's input gradient (see `norm_core`) to `dpre`.

use super::batch_norm::{ncp, statistics, BatchNormMode, RunningStats};
use super::elementwise::{row_major, standard};
use super::norm_core::fold_channels;
use super::sync_stats::Span;
use crate::autograd::Var;
use crate::kernels::lanes;
use crate::kernels::scratch::with_scratch;
use crate::kernels::simd::simd_versions;
use crate::kernels::zeroed::written_in_chunks;
use crate::Tensor;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The activation after the normalization.
#[derive(Clone)]
pub enum Activation {
    /// `pre > 0 ? pre : alpha * pre` (ReLU: alpha 0).
    Leaky(f32),
    /// Learned slopes, `[1]` (shared) or `[C]`.
    PRelu(Var),
}

/// The per-channel constants of one pass.
struct Channels {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    /// The negative-side slope of each channel.
    slope: Vec<f32>,
}

impl Channels {
    /// Channel `ch`'s constants, read once per plane so the inner loops vectorize.
    fn of(&self, ch: usize) -> Channel {
        Channel {
            mean: self.mean[ch],
            inv_std: self.inv_std[ch],
            gamma: self.gamma[ch],
            beta: self.beta[ch],
            slope: self.slope[ch],
        }
    }
}

#[derive(Clone, Copy)]
pub(super) struct Channel {
    pub(super) mean: f32,
    pub(super) inv_std: f32,
    pub(super) gamma: f32,
    pub(super) beta: f32,
    pub(super) slope: f32,
}

impl Channel {
    /// `(xhat, pre)` of one value, in the unfused ops' order of operations.
    #[inline(always)]
    pub(super) fn pre(self, x: f32) -> (f32, f32) {
        let xh = (x - self.mean) * self.inv_std;
        (xh, self.gamma * xh + self.beta)
    }
}

/// `activation(batch_norm(x))`; see the module notes.
pub fn batch_norm_act(
    x: &Var,
    gamma: &Var,
    beta: &Var,
    stats: &mut RunningStats,
    mode: BatchNormMode,
    eps: f32,
    act: &Activation,
) -> Var {
    let (_, c, _) = ncp(x.shape());
    assert!(
        gamma.shape() == [c] && beta.shape() == [c],
        "batch_norm: gamma/beta must have shape [{c}]"
    );
    let x_val = standard(x.shared());
    let (mean, inv_std, span) = statistics(x_val.as_slice().unwrap(), x.shape(), stats, mode, eps);
    let k = Channels {
        mean,
        inv_std,
        gamma: row_major(gamma.value()).into_owned(),
        beta: row_major(beta.value()).into_owned(),
        slope: slopes(act, c),
    };
    let batch_stats = matches!(mode, BatchNormMode::Train { .. });
    normalize_act(x, gamma, beta, act, x_val, k, batch_stats.then_some(span))
}

/// The negative-side slope of each of `c` channels.
pub(super) fn slopes(act: &Activation, c: usize) -> Vec<f32> {
    match act {
        Activation::Leaky(alpha) => vec![*alpha; c],
        Activation::PRelu(a) => {
            let a = row_major(a.value());
            assert!(
                a.len() == 1 || a.len() == c,
                "prelu: slope must have shape [1] or [{c}]"
            );
            (0..c)
                .map(|ch| a[if a.len() == 1 { 0 } else { ch }])
                .collect()
        }
    }
}

/// The inputs a fused op records (`x`, `gamma`, `beta`, and a PReLU's slopes, which get a
/// gradient too) and the slopes' length (`[1]` shared or `[C]`; 0 for a leaky ReLU).
pub(super) fn recorded_inputs<'a>(
    [x, gamma, beta]: [&'a Var; 3],
    act: &'a Activation,
) -> (Vec<&'a Var>, usize) {
    match act {
        Activation::PRelu(a) => (vec![x, gamma, beta, a], a.value().len()),
        Activation::Leaky(_) => (vec![x, gamma, beta], 0),
    }
}

/// The fused forward and its backward, for per-channel statistics `k` (plane `i` uses
/// channel `i % groups`).
/// `batch_stats`: the values the statistics came from (None: constants, eval mode).
fn normalize_act(
    x: &Var,
    gamma: &Var,
    beta: &Var,
    act: &Activation,
    x_val: std::sync::Arc<Tensor>,
    k: Channels,
    batch_stats: Option<Span>,
) -> Var {
    let (_, c, p) = ncp(x.shape());
    let groups = k.mean.len();
    let xs = x_val.as_slice().unwrap();
    let per = planes_per_task(p);
    // SAFETY: each task writes its planes whole (`xs` holds whole planes).
    let (y, _) = unsafe {
        written_in_chunks(xs.len(), per * p, |task, y| {
            for (i, y) in y.chunks_exact_mut(p).enumerate() {
                let plane = task * per + i;
                forward_plane(&xs[plane * p..][..p], k.of(plane % groups), y);
            }
        })
    };
    let shape = x.value().raw_dim();
    let y = Tensor::from_shape_vec(shape.clone(), y).unwrap();
    let (inputs, slope_len) = recorded_inputs([x, gamma, beta], act);
    Var::record(&inputs, y, move |dy, wants| {
        let dy = row_major(dy);
        let xs = x_val.as_slice().unwrap();
        let (mut dx, sums) = pre_activation_grad(xs, &dy, &k, p);
        // Per group, in plane order (the same order whatever the thread count).
        let (mut s_dy, mut s_dy_xh, mut s_slope) = (
            vec![0.0f64; groups],
            vec![0.0f64; groups],
            vec![0.0f64; groups],
        );
        for (plane, [a, b, d]) in sums.into_iter().enumerate() {
            let g = plane % groups;
            (s_dy[g], s_dy_xh[g], s_slope[g]) = (s_dy[g] + a, s_dy_xh[g] + b, s_slope[g] + d);
        }
        let f32s = |v: &[f64]| v.iter().map(|&s| s as f32).collect::<Vec<f32>>();
        let (sum_dy, sum_dy_xh) = (f32s(&s_dy), f32s(&s_dy_xh));
        let dx = wants[0].then(|| {
            // Sync batch norm: the input gradient needs the whole group's sums.
            let stats = batch_stats.as_ref().map(|span| {
                let (all_dy, all_dy_xh) = span.grad_sums(&s_dy, &s_dy_xh);
                (all_dy, all_dy_xh, span.count)
            });
            input_grad(&mut dx, xs, &k, stats.as_ref(), p);
            Tensor::from_shape_vec(shape, dx).unwrap()
        });
        // Group sums to channels (instance norm's groups repeat the channels per image).
        let mut grads = vec![
            dx,
            wants[1].then(|| fold_channels(&sum_dy_xh, c)),
            wants[2].then(|| fold_channels(&sum_dy, c)),
        ];
        if slope_len > 0 {
            grads.push(wants[3].then(|| fold_channels(&f32s(&s_slope), slope_len)));
        }
        grads
    })
}

/// `dpre` for every value (returned in the buffer that becomes `dx`), and per plane the
/// sums `(Σ dpre, Σ dpre·xhat, Σ_{pre<=0} dy·pre)`.
fn pre_activation_grad(
    xs: &[f32],
    dy: &[f32],
    k: &Channels,
    p: usize,
) -> (Vec<f32>, Vec<[f64; 3]>) {
    let groups = k.mean.len();
    let per = planes_per_task(p);
    // SAFETY: each task writes its planes whole (a copy of each plane's `dpre`).
    let (dpre, sums) = unsafe {
        written_in_chunks(xs.len(), per * p, |task, d| {
            with_scratch(p, |dpre| {
                let sums = d.chunks_exact_mut(p).enumerate().map(|(i, d)| {
                    let plane = task * per + i;
                    let range = plane * p..(plane + 1) * p;
                    let sums = pre_activation_plane(
                        &xs[range.clone()],
                        &dy[range],
                        k.of(plane % groups),
                        dpre,
                    );
                    for (d, &v) in d.iter_mut().zip(dpre.iter()) {
                        d.write(v);
                    }
                    sums
                });
                sums.collect::<Vec<_>>()
            })
        })
    };
    (dpre, sums.into_iter().flatten().collect())
}

simd_versions! {
    /// `y = activation(gamma * xhat + beta)` for one plane.
    pub(super) fn forward_plane(x: &[f32], k: Channel, y: &mut [MaybeUninit<f32>]) = forward_plane_body;
}

#[inline(always)]
fn forward_plane_body<const FMA: bool>(x: &[f32], k: Channel, y: &mut [MaybeUninit<f32>]) {
    for (y, &x) in y.iter_mut().zip(x) {
        let (_, pre) = k.pre(x);
        y.write(if pre > 0.0 { pre } else { k.slope * pre });
    }
}

simd_versions! {
    /// One plane's `dpre = dy * (pre > 0 ? 1 : slope)` (written to `dpre`) and the sums
    /// `[Σ dpre, Σ dpre·xhat, Σ_{pre<=0} dy·pre]`, in one pass: each sum accumulated in
    /// lanes as [`lanes::sum`], [`lanes::dot`] and [`lanes::dot_nonpositive`] would over
    /// stored `dpre`, `xhat` and `pre` (the same bits, without storing them).
    pub(super) fn pre_activation_plane(x: &[f32], dy: &[f32], k: Channel, dpre: &mut [f32]) -> [f64; 3] = pre_activation_body;
}

#[inline(always)]
fn pre_activation_body<const FMA: bool>(
    x: &[f32],
    dy: &[f32],
    k: Channel,
    dpre: &mut [f32],
) -> [f64; 3] {
    assert!(x.len() == dy.len() && x.len() == dpre.len());
    let terms = |x: f32, g: f32| {
        let (xh, pre) = k.pre(x);
        let d = if pre > 0.0 { g } else { k.slope * g };
        (d, [d, d * xh, if pre <= 0.0 { pre * g } else { 0.0 }])
    };
    let whole = x.len() / lanes::LANES * lanes::LANES;
    let mut acc = [[0.0f32; lanes::LANES]; 3];
    let blocks = x[..whole]
        .chunks_exact(lanes::LANES)
        .zip(dy[..whole].chunks_exact(lanes::LANES));
    for ((x, g), d) in blocks.zip(dpre[..whole].chunks_exact_mut(lanes::LANES)) {
        for i in 0..lanes::LANES {
            let (di, t) = terms(x[i], g[i]);
            d[i] = di;
            for (acc, t) in acc.iter_mut().zip(t) {
                acc[i] += t;
            }
        }
    }
    // The last values (fewer than the lanes), summed in f64 in order as the reductions do.
    let mut tail = [[0.0f32; 3]; lanes::LANES];
    for (i, t) in (whole..x.len()).zip(&mut tail) {
        let (di, terms) = terms(x[i], dy[i]);
        (dpre[i], *t) = (di, terms);
    }
    let tail = &tail[..x.len() - whole];
    std::array::from_fn(|j| lanes::combine(&acc[j], tail.iter().map(|t| t[j] as f64).sum()))
}

/// Planes per task of the passes above: about [`VALUES_PER_TASK`] values, whole planes.
fn planes_per_task(p: usize) -> usize {
    VALUES_PER_TASK.div_ceil(p.max(1))
}

/// Values per task: enough that a task's overhead (and its scratch) is small against it.
const VALUES_PER_TASK: usize = 4096;

/// Batch norm's input gradient applied in place to `dpre` (see `norm_core`): with batch
/// statistics `k * (dpre - mean(dpre) - xhat * mean(dpre * xhat))`, else `k * dpre`, where
/// `k = gamma * inv_std`. `batch_stats`: per group `Σ dpre`, `Σ dpre·xhat` and the count of
/// values behind the statistics.
fn input_grad(
    dpre: &mut [f32],
    xs: &[f32],
    k: &Channels,
    batch_stats: Option<&(Vec<f32>, Vec<f32>, usize)>,
    p: usize,
) {
    let groups = k.mean.len();
    dpre.par_chunks_mut(p)
        .zip(xs.par_chunks(p))
        .enumerate()
        .for_each(|(plane, (d, x))| {
            let ch = plane % groups;
            let k = k.of(ch);
            let scale = k.gamma * k.inv_std;
            let Some((sum_dy, sum_dy_xh, count)) = batch_stats else {
                d.iter_mut().for_each(|d| *d *= scale);
                return;
            };
            let m = *count as f32;
            batch_input_grad_plane(d, x, k, sum_dy[ch] / m, sum_dy_xh[ch] / m);
        });
}

simd_versions! {
    /// One plane's `dx = gamma * inv_std * (dpre - mean(dpre) - xhat * mean(dpre * xhat))`
    /// in place of `dpre`, the means over the channel's batch.
    fn batch_input_grad_plane(d: &mut [f32], x: &[f32], k: Channel, mean_dy: f32, mean_dy_xh: f32) = batch_input_grad_body;
}

#[inline(always)]
fn batch_input_grad_body<const FMA: bool>(
    d: &mut [f32],
    x: &[f32],
    k: Channel,
    mean_dy: f32,
    mean_dy_xh: f32,
) {
    let scale = k.gamma * k.inv_std;
    for (d, &x) in d.iter_mut().zip(x) {
        let (xh, _) = k.pre(x);
        *d = scale * (*d - mean_dy - xh * mean_dy_xh);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{config, tensor};
    use super::*;
    use crate::ops::{batch_norm, instance_norm, instance_norm_act, leaky_relu, mul, prelu, sum};
    use proptest::prelude::*;

    fn close(a: &Tensor, b: &Tensor, tol: f32) -> Result<(), TestCaseError> {
        prop_assert_eq!(a.shape(), b.shape());
        for (x, y) in a.iter().zip(b) {
            prop_assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{} vs {}", x, y);
        }
        Ok(())
    }

    /// Values, running statistics and every gradient of the fused op against batch_norm
    /// followed by leaky_relu or prelu (whose gradients are checked against finite
    /// differences in their own files).
    /// `mode` None: instance norm.
    fn check_against_unfused(
        x: Tensor,
        g: Tensor,
        b: Tensor,
        r: Tensor,
        slope: Option<Tensor>,
        mode: Option<BatchNormMode>,
    ) -> Result<(), TestCaseError> {
        let c = g.len();
        let run = |fused: bool| {
            let tape = crate::Tape::new();
            let vars: Vec<Var> = [&x, &g, &b]
                .iter()
                .map(|t| tape.leaf((*t).clone()))
                .collect();
            let a = slope.as_ref().map(|s| tape.leaf(s.clone()));
            let mut stats = RunningStats::new(c);
            let (x, g, b) = (&vars[0], &vars[1], &vars[2]);
            let y = if fused {
                let act = match &a {
                    Some(a) => Activation::PRelu(a.clone()),
                    None => Activation::Leaky(0.2),
                };
                match mode {
                    Some(mode) => batch_norm_act(x, g, b, &mut stats, mode, 1e-5, &act),
                    None => instance_norm_act(x, g, b, 1e-5, &act),
                }
            } else {
                let pre = match mode {
                    Some(mode) => batch_norm(x, g, b, &mut stats, mode, 1e-5),
                    None => instance_norm(x, g, b, 1e-5),
                };
                match &a {
                    Some(a) => prelu(&pre, a),
                    None => leaky_relu(&pre, 0.2),
                }
            };
            let loss = sum(&mul(&y, &Var::constant(r.clone())));
            let grads = tape.backward(&loss);
            let mut all: Vec<Tensor> = vars
                .iter()
                .chain(a.iter())
                .map(|v| grads.get(v).unwrap().clone())
                .collect();
            all.push(y.value().clone());
            all.push(stats.mean);
            all.push(stats.var);
            all
        };
        let (fused, unfused) = (run(true), run(false));
        for (f, u) in fused.iter().zip(&unfused) {
            close(f, u, 2e-5)?;
        }
        Ok(())
    }

    fn problem() -> impl Strategy<Value = (Tensor, Tensor, Tensor, Tensor)> {
        // Planes of up to 80 values: whole vectors of 16 and a remainder in the reductions.
        (1usize..4, 1usize..4, 1usize..9, 2usize..11).prop_flat_map(|(n, c, h, w)| {
            let s = vec![n + 1, c, h, w];
            (
                tensor(s.clone()),
                tensor(vec![c]),
                tensor(vec![c]),
                tensor(s),
            )
        })
    }

    /// Batch norm in both modes, and instance norm.
    const MODES: [Option<BatchNormMode>; 3] = [
        Some(BatchNormMode::Train { momentum: 0.1 }),
        Some(BatchNormMode::Eval),
        None,
    ];

    /// A tensor of `shape` with values spread over about [-2, 2].
    fn spread(shape: &[usize], seed: usize) -> Tensor {
        let mut i = 0usize;
        Tensor::from_shape_simple_fn(ndarray::IxDyn(shape), || {
            i += 1;
            ((i * 7919 + seed * 104729) % 4001) as f32 / 1000.0 - 2.0
        })
    }

    /// Planes spread over several tasks of the fused passes (each of a few whole planes),
    /// whose channels do not line up with the task boundaries.
    #[test]
    fn planes_over_several_tasks_match_the_unfused_ops() {
        let (n, c, h, w) = (3, 5, 30, 45);
        assert!(n * c * h * w > 4 * VALUES_PER_TASK && !planes_per_task(h * w).is_multiple_of(c));
        let (x, r) = (spread(&[n, c, h, w], 1), spread(&[n, c, h, w], 2));
        let (g, b) = (spread(&[c], 3), spread(&[c], 4));
        let slope = Tensor::from_shape_fn(ndarray::IxDyn(&[c]), |i| 0.1 * i[0] as f32 - 0.2);
        for mode in MODES {
            check_against_unfused(x.clone(), g.clone(), b.clone(), r.clone(), None, mode).unwrap();
            let a = Some(slope.clone());
            check_against_unfused(x.clone(), g.clone(), b.clone(), r.clone(), a, mode).unwrap();
        }
    }

    proptest! {
        #![proptest_config(config(48))]

        /// The one-pass sums are the three reductions over stored `xhat`, `pre` and `dpre`,
        /// bit for bit, and `dpre` is `dy` scaled where `pre <= 0` (lengths with and
        /// without a tail past the lanes).
        #[test]
        fn pre_activation_sums_equal_the_separate_reductions(
            pairs in prop::collection::vec((-3.0f32..3.0, -3.0f32..3.0), 0..100),
            mean in -1.0f32..1.0, inv_std in 0.1f32..3.0, gamma in -2.0f32..2.0,
            beta in -1.0f32..1.0, slope in -0.5f32..0.5,
        ) {
            let (x, dy): (Vec<f32>, Vec<f32>) = pairs.into_iter().unzip();
            let k = Channel { mean, inv_std, gamma, beta, slope };
            let mut dpre = vec![f32::NAN; x.len()];
            let sums = pre_activation_plane(&x, &dy, k, &mut dpre);
            let (xhat, pre): (Vec<f32>, Vec<f32>) = x.iter().map(|&x| k.pre(x)).unzip();
            let want: Vec<f32> = pre.iter().zip(&dy).map(|(&p, &g)| if p > 0.0 { g } else { slope * g }).collect();
            prop_assert_eq!(&dpre, &want);
            let separate = [lanes::sum(&want), lanes::dot(&want, &xhat), lanes::dot_nonpositive(&pre, &dy)];
            prop_assert_eq!(sums.map(f64::to_bits), separate.map(f64::to_bits));
        }

        #[test]
        fn leaky_matches_the_norm_then_leaky_relu((x, g, b, r) in problem()) {
            for mode in MODES {
                check_against_unfused(x.clone(), g.clone(), b.clone(), r.clone(), None, mode)?;
            }
        }

        #[test]
        fn prelu_matches_the_norm_then_prelu((x, g, b, r) in problem(), shared: bool, a in -0.5f32..0.5) {
            let c = g.len();
            let k = if shared { 1 } else { c };
            let slope = Tensor::from_shape_fn(ndarray::IxDyn(&[k]), |i| a + 0.1 * i[0] as f32);
            for mode in MODES {
                check_against_unfused(x.clone(), g.clone(), b.clone(), r.clone(), Some(slope.clone()), mode)?;
            }
        }
    }
}
