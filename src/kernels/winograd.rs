//! Minimal filtering (Winograd; Lavin and Gray 2016, "Fast Algorithms for Convolutional
//! Neural Networks") for the 4x4 stride-2 padding-1 transposed convolution of the decoders.
//!
//! Such a layer is four 2x2 correlations on its input, one per output phase `(a, b)`:
//! `y[2j+a, 2i+b] = Σ_{ty,tx} x[j+a-1+ty, i+b-1+tx] · w[3-a-2ty, 3-b-2tx]` (from
//! `y[o] = Σ x[i]·w[k]` over `o = 2i - 1 + k`). Each phase's outputs are taken in 4x4
//! tiles `(qy, qx)`, each from a 5x5 window of the input, with F(4x4, 2x2):
//! `Z = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, the Toom-Cook matrices of the points 0, 1, -1, 2
//! and ∞ (`A_T`, `G` and `B_T` below). That is 25 products per tile instead of 64, and summed
//! over channels, 25 matrix products `M[pos] = U[pos] · V[pos]` per phase. `Aᵀ` and `Bᵀ`
//! hold small integers, so the transforms of the data are a few additions each; the
//! fractions are in `G`, applied to the weights (in f64).
//!
//! The backward pass is the adjoint of the same three linear maps:
//! `dm = A dz Aᵀ`, `dV = Uᵀ dm`, `dd = B dV Bᵀ`, and `dU = Σ_tiles dm Vᵀ`, `dg = Gᵀ dU G`.
//!
//! Layouts, per chunk of `images`: `V[pos][channel][tile]` and `M[pos][channel][tile]` with
//! tiles `(image, qy, qx)` in row-major order; `U[phase][pos][o][c]`; `pos = 5ξ + ν`. The
//! input is read through window planes and the output written through planes of rows and
//! columns modulo 8 ([`super::winograd_planes`]), so that every transform reads and writes
//! contiguous runs of one value per tile, a vector register of 16 tiles at a time
//! (`lane_blocks`).

use super::lane_blocks::{both_sides, both_sides_transposed, in_blocks, BlockMap};
use super::simd::simd_versions;
use super::winograd_planes::{output_planes_len, window_planes_len, OUT_SPAN, SPAN};
use rayon::prelude::*;

/// Values per tile in the transformed domain (5x5).
pub const POSITIONS: usize = 25;
/// Output phases of a stride-2 layer.
pub const PHASES: usize = 4;
/// Outputs per tile side, in one phase.
pub(super) const TILE: usize = 4;

/// `Aᵀ` (4x5): output `i` from the 5 products of a row.
const A_T: [[f32; 5]; 4] = [
    [1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 0.0],
    [0.0, 1.0, -1.0, 8.0, 1.0],
];

/// `G` (5x2), the kernel's values at 0, 1, -1, 2 and ∞, over the interpolation's
/// denominators.
const G: [[f64; 2]; 5] = [
    [0.5, 0.0],
    [0.5, 0.5],
    [1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 6.0, 1.0 / 3.0],
    [0.0, 1.0],
];

/// `Bᵀ` (5x5): the window's transformed values (`Bᵀ = V⁻ᵀ` for the Vandermonde matrix `V`
/// of the points, rows scaled to integers).
const B_T: [[f32; 5]; 5] = [
    [2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 2.0, 1.0, -1.0, 0.0],
    [0.0, -2.0, 3.0, -1.0, 0.0],
    [0.0, -1.0, 0.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0],
];

/// One chunk's geometry: `images` planes of `h x w` input pixels per channel; each phase
/// has `th x tw` tiles (the last row or column of tiles partly outside unless 4 divides
/// h or w).
#[derive(Clone, Copy, Debug)]
pub struct Tiles {
    pub images: usize,
    pub h: usize,
    pub w: usize,
    pub th: usize,
    pub tw: usize,
}

impl Tiles {
    pub fn new(images: usize, h: usize, w: usize) -> Tiles {
        Tiles {
            images,
            h,
            w,
            th: h.div_ceil(TILE),
            tw: w.div_ceil(TILE),
        }
    }

    /// Tiles of one image in one phase.
    pub fn per_image(&self) -> usize {
        self.th * self.tw
    }

    /// Tiles of the chunk in one phase: the columns of each product.
    pub fn count(&self) -> usize {
        self.images * self.per_image()
    }
}

/// `(a, b)` of phase `0..4`: the output row and column parity.
fn parity(phase: usize) -> (usize, usize) {
    (phase / 2, phase % 2)
}

/// The kernel index of tap `t` in phase parity `a` (`k = 3 - a - 2t`).
fn kernel_index(a: usize, t: usize) -> usize {
    3 - a - 2 * t
}

/// The taps `(ty, tx)` of a phase's 2x2 kernel.
const TAPS: [(usize, usize); 4] = [(0, 0), (0, 1), (1, 0), (1, 1)];

/// The weight of tap `(ty, tx)` in transformed position `pos`: `(G g Gᵀ)[ξ][ν]` is
/// `Σ G[ξ][ty] · G[ν][tx] · g[ty][tx]`.
fn coefficient(pos: usize, (ty, tx): (usize, usize)) -> f64 {
    G[pos / 5][ty] * G[pos % 5][tx]
}

/// `U = G g Gᵀ` of every phase and output/input channel pair, `[phase][pos][o][c]`, from
/// the transposed convolution's weight `[c][o][4][4]`, one `[o][c]` block per task,
/// summed in f64.
pub fn weight_transform(w: &[f32], c: usize, o: usize) -> Vec<f32> {
    assert_eq!(w.len(), c * o * 16, "a [{c}, {o}, 4, 4] weight");
    let taps = taps_first(w, c, o);
    let mut u = vec![0.0f32; PHASES * POSITIONS * o * c];
    u.par_chunks_exact_mut(o * c)
        .enumerate()
        .for_each(|(block, u)| {
            let (phase, pos) = (block / POSITIONS, block % POSITIONS);
            let (a, b) = parity(phase);
            let coef = TAPS.map(|tap| coefficient(pos, tap));
            let [t0, t1, t2, t3] = TAPS.map(|(ty, tx)| {
                let k = kernel_index(a, ty) * 4 + kernel_index(b, tx);
                &taps[k * o * c..][..o * c]
            });
            for (i, u) in u.iter_mut().enumerate() {
                let sum = coef[0] * t0[i] as f64 + coef[1] * t1[i] as f64;
                *u = (sum + coef[2] * t2[i] as f64 + coef[3] * t3[i] as f64) as f32;
            }
        });
    u
}

/// `w` (`[c][o][16]`) as `[16][o][c]`.
fn taps_first(w: &[f32], c: usize, o: usize) -> Vec<f32> {
    let mut taps = vec![0.0f32; 16 * o * c];
    for (pair, kernel) in w.chunks_exact(16).enumerate() {
        let (ci, oi) = (pair / o, pair % o);
        for (k, v) in kernel.iter().enumerate() {
            taps[(k * o + oi) * c + ci] = *v;
        }
    }
    taps
}

/// The weight gradient `[c][o][4][4]` from `dU` (`[phase][pos][o][c]`): `dg = Gᵀ dU G`,
/// one kernel index per task (each belongs to one phase), summed in f64.
pub fn weight_grad(du: &[f32], c: usize, o: usize) -> Vec<f32> {
    assert_eq!(du.len(), PHASES * POSITIONS * o * c);
    let mut taps = vec![0.0f32; 16 * o * c];
    taps.par_chunks_exact_mut(o * c)
        .enumerate()
        .for_each(|(k, dg)| {
            // k = 4·(3 - a - 2ty) + (3 - b - 2tx).
            let ((a, ty), (b, tx)) = [k / 4, k % 4].map(|i| ((3 - i) % 2, (3 - i) / 2)).into();
            let phase = 2 * a + b;
            let mut sum = vec![0.0f64; o * c];
            for pos in 0..POSITIONS {
                let coef = coefficient(pos, (ty, tx));
                if coef != 0.0 {
                    let du = &du[(phase * POSITIONS + pos) * o * c..][..o * c];
                    for (s, g) in sum.iter_mut().zip(du) {
                        *s += coef * *g as f64;
                    }
                }
            }
            for (d, s) in dg.iter_mut().zip(sum) {
                *d = s as f32;
            }
        });
    // [16][o][c] back to [c][o][16].
    let mut dw = vec![0.0f32; c * o * 16];
    for (k, plane) in taps.chunks_exact(o * c).enumerate() {
        for (oi, row) in plane.chunks_exact(c).enumerate() {
            for (ci, v) in row.iter().enumerate() {
                dw[(ci * o + oi) * 16 + k] = *v;
            }
        }
    }
    dw
}

/// `Bᵀ d B`.
struct InputMap;
/// `Aᵀ m A`.
struct OutputMap;
/// `A dz Aᵀ`.
struct OutputGradMap;
/// `B dv Bᵀ`.
struct InputGradMap;

impl BlockMap<5, 5> for InputMap {
    #[inline(always)]
    fn apply<const L: usize>(d: &[[[f32; L]; 5]; 5], out: &mut [[[f32; L]; 5]; 5]) {
        both_sides(&B_T, d, out)
    }
}

impl BlockMap<5, 4> for OutputMap {
    #[inline(always)]
    fn apply<const L: usize>(d: &[[[f32; L]; 5]; 5], out: &mut [[[f32; L]; 4]; 4]) {
        both_sides(&A_T, d, out)
    }
}

impl BlockMap<4, 5> for OutputGradMap {
    #[inline(always)]
    fn apply<const L: usize>(d: &[[[f32; L]; 4]; 4], out: &mut [[[f32; L]; 5]; 5]) {
        both_sides_transposed(&A_T, d, out)
    }
}

impl BlockMap<5, 5> for InputGradMap {
    #[inline(always)]
    fn apply<const L: usize>(d: &[[[f32; L]; 5]; 5], out: &mut [[[f32; L]; 5]; 5]) {
        both_sides_transposed(&B_T, d, out)
    }
}

/// Where the runs of `[pos][channel][tile]` for channel `ch` start.
#[inline(always)]
fn position_runs(t: &Tiles, channels: usize, ch: usize) -> [[usize; 5]; 5] {
    let tiles = t.count();
    std::array::from_fn(|xi| std::array::from_fn(|nu| ((xi * 5 + nu) * channels + ch) * tiles))
}

/// Where phase `(a, b)`'s window runs `(e, f)` start in a channel's window planes.
fn window_runs(t: &Tiles, (a, b): (usize, usize)) -> [[usize; 5]; 5] {
    let tiles = t.count();
    std::array::from_fn(|e| std::array::from_fn(|f| ((a + e) * SPAN + b + f) * tiles))
}

/// Where phase `(a, b)`'s output runs `(ey, ex)` start in a channel's planes modulo 8.
fn output_runs(t: &Tiles, (a, b): (usize, usize)) -> [[usize; TILE]; TILE] {
    let tiles = t.count();
    std::array::from_fn(|ey| {
        std::array::from_fn(|ex| ((2 * ey + a) * OUT_SPAN + 2 * ex + b) * tiles)
    })
}

simd_versions! {
    /// `V = Bᵀ d B` of phase `phase` from a chunk's window planes `d`
    /// (`gather_windows`) into `v` (`[pos][c][tile]`, overwritten).
    pub fn input_transform(d: &[f32], c: usize, t: &Tiles, phase: usize, v: &mut [f32]) = input_transform_body;
}

#[inline(always)]
fn input_transform_body<const FMA: bool>(
    d: &[f32],
    c: usize,
    t: &Tiles,
    phase: usize,
    v: &mut [f32],
) {
    let len = window_planes_len(t);
    assert_eq!(d.len(), c * len);
    assert_eq!(v.len(), POSITIONS * c * t.count());
    let from = window_runs(t, parity(phase));
    for (ch, planes) in d.chunks_exact(len).enumerate() {
        let to = position_runs(t, c, ch);
        in_blocks::<InputMap, 5, 5, false>(t.count(), planes, &from, v, &to);
    }
}

simd_versions! {
    /// `Z = Aᵀ M A` of phase `phase` into its runs of the planes modulo 8 `z`
    /// (`split_outputs`'s layout; the phase's runs overwritten); `m` is `[pos][o][tile]`.
    pub fn output_transform(m: &[f32], o: usize, t: &Tiles, phase: usize, z: &mut [f32]) = output_transform_body;
}

#[inline(always)]
fn output_transform_body<const FMA: bool>(
    m: &[f32],
    o: usize,
    t: &Tiles,
    phase: usize,
    z: &mut [f32],
) {
    let len = output_planes_len(t);
    assert_eq!(m.len(), POSITIONS * o * t.count());
    assert_eq!(z.len(), o * len);
    let to = output_runs(t, parity(phase));
    for (ch, planes) in z.chunks_exact_mut(len).enumerate() {
        let from = position_runs(t, o, ch);
        in_blocks::<OutputMap, 5, 4, false>(t.count(), m, &from, planes, &to);
    }
}

simd_versions! {
    /// `dm = A dz Aᵀ` of phase `phase` from the output gradient's planes modulo 8 `z`
    /// (`split_outputs`) into `dm` (`[pos][o][tile]`, overwritten).
    pub fn output_grad_transform(z: &[f32], o: usize, t: &Tiles, phase: usize, dm: &mut [f32]) = output_grad_transform_body;
}

#[inline(always)]
fn output_grad_transform_body<const FMA: bool>(
    z: &[f32],
    o: usize,
    t: &Tiles,
    phase: usize,
    dm: &mut [f32],
) {
    let len = output_planes_len(t);
    assert_eq!(z.len(), o * len);
    assert_eq!(dm.len(), POSITIONS * o * t.count());
    let from = output_runs(t, parity(phase));
    for (ch, planes) in z.chunks_exact(len).enumerate() {
        let to = position_runs(t, o, ch);
        in_blocks::<OutputGradMap, 4, 5, false>(t.count(), planes, &from, dm, &to);
    }
}

simd_versions! {
    /// `dd = B dV Bᵀ` of phase `phase` added into the window planes `dd` of the input
    /// gradient (`[c][r][s][tile]`, see `scatter_windows`); `dv` is
    /// `[pos][c][tile]`. The adjoint of [`input_transform`].
    pub fn add_input_grad(dv: &[f32], c: usize, t: &Tiles, phase: usize, dd: &mut [f32]) = add_input_grad_body;
}

#[inline(always)]
fn add_input_grad_body<const FMA: bool>(
    dv: &[f32],
    c: usize,
    t: &Tiles,
    phase: usize,
    dd: &mut [f32],
) {
    let len = window_planes_len(t);
    assert_eq!(dd.len(), c * len);
    assert_eq!(dv.len(), POSITIONS * c * t.count());
    let to = window_runs(t, parity(phase));
    for (ch, planes) in dd.chunks_exact_mut(len).enumerate() {
        let from = position_runs(t, c, ch);
        in_blocks::<InputGradMap, 5, 5, true>(t.count(), dv, &from, planes, &to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Aᵀ [(G g) ⊙ (Bᵀ d)] is the correlation `y_i = Σ_t d_{i+t} g_t` (1-D, exact in f64
    /// up to rounding).
    #[test]
    fn matrices_compute_the_correlation() {
        let d = [0.3, -1.2, 2.5, 0.7, -0.4];
        let g = [1.1, -0.6];
        let bd: Vec<f64> = B_T
            .iter()
            .map(|row| row.iter().zip(&d).map(|(b, d)| *b as f64 * d).sum())
            .collect();
        let gg: Vec<f64> = G.iter().map(|row| row[0] * g[0] + row[1] * g[1]).collect();
        for (i, row) in A_T.iter().enumerate() {
            let y: f64 = (0..5).map(|k| row[k] as f64 * gg[k] * bd[k]).sum();
            let want = d[i] * g[0] + d[i + 1] * g[1];
            assert!((y - want).abs() < 1e-12, "y[{i}] = {y}, want {want}");
        }
    }
}
