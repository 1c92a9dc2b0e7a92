//! Minimal filtering (Winograd; Lavin and Gray 2016, "Fast Algorithms for Convolutional
//! Neural Networks") for the 4x4 stride-2 padding-1 transposed convolution of the decoders.
//!
//! Such a layer is four 2x2 correlations on its input, one per output phase `(a, b)`:
//! `y[2j+a, 2i+b] = Σ_{ty,tx} x[j+a-1+ty, i+b-1+tx] · w[3-a-2ty, 3-b-2tx]` (from
//! `y[o] = Σ x[i]·w[k]` over `o = 2i - 1 + k`). Each phase's outputs are taken in 2x2
//! tiles `(qy, qx)`, each from a 3x3 window of the input, with F(2x2, 2x2):
//! `Z = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, where per axis
//! `Bᵀ d = (d0 - d1, d1, d2 - d1)`, `G g = (g0, g0 + g1, g1)`, `Aᵀ m = (m0 + m1, m1 + m2)`.
//! That is 9 products per tile instead of 16, and summed over channels, 9 matrix products
//! `M[pos] = U[pos] · V[pos]` per phase. Every coefficient is 0 or ±1, so the transforms
//! are additions and the rounding stays that of a few extra sums.
//!
//! The backward pass is the adjoint of the same three linear maps:
//! `dm = A dz Aᵀ` with `A z = (z0, z0 + z1, z1)`, `dV = Uᵀ dm`, `dd = B dV Bᵀ` with
//! `B v = (v0, v1 - v0 - v2, v2)`, and `dU = Σ_tiles dm Vᵀ`, `dg = Gᵀ dU G` with
//! `Gᵀ u = (u0 + u1, u1 + u2)`.
//!
//! Layouts, per chunk of `images`: `V[pos][channel][tile]` and `M[pos][channel][tile]` with
//! tiles `(image, qy, qx)` in row-major order; `U[phase][pos][o][c]`; `pos = 3ξ + ν`. The
//! input is read through padded parity planes ([`split_parities`]) and the output written
//! through quarter planes ([`split_quarters`]), so that every transform reads and writes
//! contiguous runs of a tile row.

use super::simd::simd_versions;
use std::mem::MaybeUninit;

/// Values per tile in the transformed domain (3x3).
pub const POSITIONS: usize = 9;
/// Output phases of a stride-2 layer.
pub const PHASES: usize = 4;

/// One chunk's geometry: `images` planes of `h x w` input pixels per channel; each phase
/// has `th x tw` tiles (the last row or column of tiles half outside when h or w is odd).
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
            th: h.div_ceil(2),
            tw: w.div_ceil(2),
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

/// `U = G g Gᵀ` of every phase and output/input channel pair, `[phase][pos][o][c]`, from
/// the transposed convolution's weight `[c][o][4][4]`.
pub fn weight_transform(w: &[f32], c: usize, o: usize) -> Vec<f32> {
    assert_eq!(w.len(), c * o * 16, "a [{c}, {o}, 4, 4] weight");
    let mut u = vec![0.0f32; PHASES * POSITIONS * o * c];
    for phase in 0..PHASES {
        let (a, b) = parity(phase);
        for ci in 0..c {
            for oi in 0..o {
                let k = &w[(ci * o + oi) * 16..][..16];
                let g = |ty: usize, tx: usize| k[kernel_index(a, ty) * 4 + kernel_index(b, tx)];
                let rows = [[g(0, 0), g(0, 1)], [g(1, 0), g(1, 1)]];
                let gg = expand_g(expand_g_rows(rows));
                for (pos, value) in gg.iter().flatten().enumerate() {
                    u[((phase * POSITIONS + pos) * o + oi) * c + ci] = *value;
                }
            }
        }
    }
    u
}

/// `G g` along the first axis: 2 rows -> 3.
fn expand_g_rows(g: [[f32; 2]; 2]) -> [[f32; 2]; 3] {
    [g[0], [g[0][0] + g[1][0], g[0][1] + g[1][1]], g[1]]
}

/// `· Gᵀ` along the second axis: 2 columns -> 3.
fn expand_g(g: [[f32; 2]; 3]) -> [[f32; 3]; 3] {
    g.map(|r| [r[0], r[0] + r[1], r[1]])
}

/// The weight gradient `[c][o][4][4]` from `dU` (`[phase][pos][o][c]`): `dg = Gᵀ dU G`.
pub fn weight_grad(du: &[f32], c: usize, o: usize) -> Vec<f32> {
    assert_eq!(du.len(), PHASES * POSITIONS * o * c);
    let mut dw = vec![0.0f32; c * o * 16];
    for phase in 0..PHASES {
        let (a, b) = parity(phase);
        for oi in 0..o {
            for ci in 0..c {
                let d = |pos: usize| du[((phase * POSITIONS + pos) * o + oi) * c + ci];
                // Gᵀ along rows, then along columns: (u0 + u1, u1 + u2) each.
                let r: [[f32; 3]; 2] =
                    [0, 1].map(|t| [0, 1, 2].map(|nu| d(3 * t + nu) + d(3 * (t + 1) + nu)));
                let k = &mut dw[(ci * o + oi) * 16..][..16];
                for (ty, row) in r.iter().enumerate() {
                    for tx in 0..2 {
                        k[kernel_index(a, ty) * 4 + kernel_index(b, tx)] = row[tx] + row[tx + 1];
                    }
                }
            }
        }
    }
    dw
}

/// Each window row `e` of phase parity `a` (and likewise each column) as `(parity, shift)`:
/// input row `2(qy + shift - 1) + parity`, i.e. row `qy + shift` of the padded parity
/// plane `parity` (see [`split_parities`]).
const WINDOW: [[(usize, usize); 3]; 2] = [[(1, 0), (0, 1), (1, 1)], [(0, 1), (1, 1), (0, 2)]];

/// Values of one padded parity plane: `(th + 2) x (tw + 2)`.
pub fn parity_plane_len(t: &Tiles) -> usize {
    (t.th + 2) * (t.tw + 2)
}

/// The chunk `x` (`[images][c][h][w]`) as padded parity planes `q`
/// (`[images][c][2·pr + pc][th + 2][tw + 2]`): `q[.., 2pr + pc, i + 1, j + 1] =
/// x[.., 2i + pr, 2j + pc]`, zero around and past the plane. Every tile's 3x3 window is
/// then, row by row, contiguous runs of these planes.
pub fn split_parities(x: &[f32], c: usize, t: &Tiles, q: &mut [f32]) {
    let (plane, len, stride) = (t.h * t.w, parity_plane_len(t), t.tw + 2);
    assert_eq!(x.len(), t.images * c * plane);
    assert_eq!(q.len(), t.images * c * 4 * len);
    q.fill(0.0);
    for (x_plane, q_planes) in x.chunks_exact(plane).zip(q.chunks_exact_mut(4 * len)) {
        for (y, row) in x_plane.chunks_exact(t.w).enumerate() {
            let (i, pr) = (y / 2, y % 2);
            for pc in 0..2 {
                let dst = &mut q_planes[(2 * pr + pc) * len + (i + 1) * stride + 1..][..t.tw];
                for (d, v) in dst.iter_mut().zip(row.iter().skip(pc).step_by(2)) {
                    *d = *v;
                }
            }
        }
    }
}

/// The input gradient `dx` (`[images][c][h][w]`, overwritten) from its padded parity
/// planes `dq` (the adjoint of [`split_parities`]: the padding's values are dropped).
pub fn merge_parities(dq: &[f32], c: usize, t: &Tiles, dx: &mut [f32]) {
    let (plane, len, stride) = (t.h * t.w, parity_plane_len(t), t.tw + 2);
    assert_eq!(dx.len(), t.images * c * plane);
    assert_eq!(dq.len(), t.images * c * 4 * len);
    for (dx_plane, q_planes) in dx.chunks_exact_mut(plane).zip(dq.chunks_exact(4 * len)) {
        for (y, row) in dx_plane.chunks_exact_mut(t.w).enumerate() {
            let (i, pr) = (y / 2, y % 2);
            for pc in 0..2 {
                let src = &q_planes[(2 * pr + pc) * len + (i + 1) * stride + 1..][..t.tw];
                for (d, v) in row.iter_mut().skip(pc).step_by(2).zip(src) {
                    *d = *v;
                }
            }
        }
    }
}

/// Where the 9 runs of `tw` values of one tile row's windows start in a plane's parity
/// planes (`[4][th + 2][tw + 2]`): `[e][f]` is window row `e`, column `f`, over the row's
/// tiles.
#[inline(always)]
fn window_runs(t: &Tiles, (a, b): (usize, usize), qy: usize) -> [usize; 9] {
    let (len, stride) = (parity_plane_len(t), t.tw + 2);
    std::array::from_fn(|k| {
        let ((pr, sy), (pc, sx)) = (WINDOW[a][k / 3], WINDOW[b][k % 3]);
        (2 * pr + pc) * len + (qy + sy) * stride + sx
    })
}

simd_versions! {
    /// `V = Bᵀ d B` of phase `phase` from a chunk's padded parity planes `q`
    /// ([`split_parities`]) into `v` (`[pos][c][tile]`, overwritten).
    pub fn input_transform(q: &[f32], c: usize, t: &Tiles, phase: usize, v: &mut [f32]) = input_transform_body;
}

#[inline(always)]
fn input_transform_body<const FMA: bool>(
    q: &[f32],
    c: usize,
    t: &Tiles,
    phase: usize,
    v: &mut [f32],
) {
    let (tiles, tw, len) = (t.count(), t.tw, parity_plane_len(t));
    assert_eq!(q.len(), t.images * c * 4 * len);
    assert_eq!(v.len(), POSITIONS * c * tiles);
    for (plane_index, planes) in q.chunks_exact(4 * len).enumerate() {
        let (img, ch) = (plane_index / c, plane_index % c);
        for qy in 0..t.th {
            let runs = window_runs(t, parity(phase), qy);
            let d: [&[f32]; 9] = runs.map(|at| &planes[at..][..tw]);
            let first = img * t.per_image() + qy * tw;
            let outs = nine_runs_mut(v, c * tiles, ch * tiles + first, tw);
            // Bᵀ along rows and columns: transformed row (column) ξ is window row `e`
            // minus row `e_less` (when there is one), as listed in B_T.
            for (xi, &(e, e_less)) in B_T.iter().enumerate() {
                for (nu, &(f, f_less)) in B_T.iter().enumerate() {
                    let out = &mut *outs[3 * xi + nu];
                    let at = |e: usize, f: usize| d[3 * e + f];
                    match (e_less, f_less) {
                        (Some(e2), Some(f2)) => {
                            sub4(out, at(e, f), at(e2, f), at(e, f2), at(e2, f2))
                        }
                        (Some(e2), None) => sub2(out, at(e, f), at(e2, f)),
                        (None, Some(f2)) => sub2(out, at(e, f), at(e, f2)),
                        (None, None) => out.copy_from_slice(at(e, f)),
                    }
                }
            }
        }
    }
}

/// `Bᵀ`'s rows as (the window element, the one subtracted): `(d0 - d1, d1, d2 - d1)`.
const B_T: [(usize, Option<usize>); 3] = [(0, Some(1)), (1, None), (2, Some(1))];

/// `out = a - b`, lane by lane.
#[inline(always)]
fn sub2(out: &mut [f32], a: &[f32], b: &[f32]) {
    for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
        *o = a - b;
    }
}

/// `out = (a - b) - (c - d)`.
#[inline(always)]
fn sub4(out: &mut [f32], a: &[f32], b: &[f32], c: &[f32], d: &[f32]) {
    for ((((o, a), b), c), d) in out.iter_mut().zip(a).zip(b).zip(c).zip(d) {
        *o = (a - b) - (c - d);
    }
}

/// `out = a + b`.
#[inline(always)]
fn add2(out: &mut [f32], a: &[f32], b: &[f32]) {
    for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
        *o = a + b;
    }
}

/// `out = (a + b) + (c + d)`.
#[inline(always)]
fn add4(out: &mut [f32], a: &[f32], b: &[f32], c: &[f32], d: &[f32]) {
    for ((((o, a), b), c), d) in out.iter_mut().zip(a).zip(b).zip(c).zip(d) {
        *o = (a + b) + (c + d);
    }
}

/// `out = b - a - c` (B's middle row: `v1 - v0 - v2`).
#[inline(always)]
fn middle(out: &mut [f32], a: &[f32], b: &[f32], c: &[f32]) {
    for (((o, a), b), c) in out.iter_mut().zip(a).zip(b).zip(c) {
        *o = b - a - c;
    }
}

/// `dst += a`.
#[inline(always)]
fn accumulate(dst: &mut [f32], a: &[f32]) {
    for (d, a) in dst.iter_mut().zip(a) {
        *d += a;
    }
}

/// `dst += b - a - c`.
#[inline(always)]
fn accumulate_middle(dst: &mut [f32], a: &[f32], b: &[f32], c: &[f32]) {
    for (((d, a), b), c) in dst.iter_mut().zip(a).zip(b).zip(c) {
        *d += b - a - c;
    }
}

/// The 9 runs `buf[pos·pos_stride + offset ..][..len]` for `pos` in `0..9`, mutable.
#[inline(always)]
fn nine_runs_mut(buf: &mut [f32], pos_stride: usize, offset: usize, len: usize) -> [&mut [f32]; 9] {
    assert!(offset + len <= pos_stride && buf.len() >= 9 * pos_stride);
    let mut rest = &mut buf[..9 * pos_stride];
    std::array::from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(pos_stride);
        rest = tail;
        &mut head[offset..][..len]
    })
}

/// The 9 runs `buf[pos·pos_stride + offset ..][..len]` for `pos` in `0..9`.
#[inline(always)]
fn nine_runs(buf: &[f32], pos_stride: usize, offset: usize, len: usize) -> [&[f32]; 9] {
    std::array::from_fn(|pos| &buf[pos * pos_stride + offset..][..len])
}

/// Values of one output plane's quarter planes: `16 x th x tw` (see [`split_quarters`]).
pub fn quarter_planes_len(t: &Tiles) -> usize {
    16 * t.per_image()
}

/// The output (gradient) `dy` (`[images][o][2h][2w]`) as quarter planes `dz`
/// (`[images][o][r][s][th][tw]`, `r` and `s` the row and column modulo 4): row
/// `4qy + 2ey + a`, column `4qx + 2ex + b` is phase `(a, b)`'s tile `(qy, qx)` output
/// `(ey, ex)`. So each phase's outputs of a tile row are 4 contiguous runs. Zero where a
/// tile is half outside (odd h or w). One pass over `dy`, row by row.
pub fn split_quarters(dy: &[f32], o: usize, t: &Tiles, dz: &mut [f32]) {
    let (plane, len, tw, out_w) = (4 * t.h * t.w, quarter_planes_len(t), t.tw, 2 * t.w);
    assert_eq!(dy.len(), t.images * o * plane);
    assert_eq!(dz.len(), t.images * o * len);
    if t.h % 2 == 1 || t.w % 2 == 1 {
        dz.fill(0.0);
    }
    for (dy_plane, quarters) in dy.chunks_exact(plane).zip(dz.chunks_exact_mut(len)) {
        for (r, row) in dy_plane.chunks_exact(out_w).enumerate() {
            let at = |s: usize| ((r % 4) * 4 + s) * t.per_image() + (r / 4) * tw;
            let (s0, s1, s2, s3) = (at(0), at(1), at(2), at(3));
            let mut quads = row.chunks_exact(4);
            for (qx, px) in quads.by_ref().enumerate() {
                quarters[s0 + qx] = px[0];
                quarters[s1 + qx] = px[1];
                quarters[s2 + qx] = px[2];
                quarters[s3 + qx] = px[3];
            }
            // An odd width ends on columns 4qx and 4qx + 1 only.
            if let [v0, v1] = quads.remainder() {
                (quarters[s0 + tw - 1], quarters[s1 + tw - 1]) = (*v0, *v1);
            }
        }
    }
}

/// The adjoint of [`split_quarters`] for the forward pass: `y` (`[images][o][2h][2w]`)
/// written whole from its quarter planes `dz`.
pub fn merge_quarters(dz: &[f32], o: usize, t: &Tiles, y: &mut [MaybeUninit<f32>]) {
    let (plane, len, tw, out_w) = (4 * t.h * t.w, quarter_planes_len(t), t.tw, 2 * t.w);
    assert_eq!(y.len(), t.images * o * plane);
    assert_eq!(dz.len(), t.images * o * len);
    for (y_plane, quarters) in y.chunks_exact_mut(plane).zip(dz.chunks_exact(len)) {
        for (r, row) in y_plane.chunks_exact_mut(out_w).enumerate() {
            let at = |s: usize| ((r % 4) * 4 + s) * t.per_image() + (r / 4) * tw;
            let (s0, s1, s2, s3) = (at(0), at(1), at(2), at(3));
            let mut quads = row.chunks_exact_mut(4);
            for (qx, px) in quads.by_ref().enumerate() {
                px[0].write(quarters[s0 + qx]);
                px[1].write(quarters[s1 + qx]);
                px[2].write(quarters[s2 + qx]);
                px[3].write(quarters[s3 + qx]);
            }
            if let [v0, v1] = quads.into_remainder() {
                v0.write(quarters[s0 + tw - 1]);
                v1.write(quarters[s1 + tw - 1]);
            }
        }
    }
}

/// Where phase `(a, b)`'s output `(ey, ex)` of tile row `qy` starts in a plane's quarter
/// planes.
#[inline(always)]
fn quarter_run(t: &Tiles, (a, b): (usize, usize), ey: usize, ex: usize, qy: usize) -> usize {
    ((2 * ey + a) * 4 + 2 * ex + b) * t.per_image() + qy * t.tw
}

simd_versions! {
    /// `Z = Aᵀ M A` of phase `phase` into its runs of the quarter planes `dz`
    /// ([`split_quarters`]'s layout; the phase's runs overwritten); `m` is `[pos][o][tile]`.
    pub fn output_transform(m: &[f32], o: usize, t: &Tiles, phase: usize, dz: &mut [f32]) = output_transform_body;
}

#[inline(always)]
fn output_transform_body<const FMA: bool>(
    m: &[f32],
    o: usize,
    t: &Tiles,
    phase: usize,
    dz: &mut [f32],
) {
    let (tiles, tw, len) = (t.count(), t.tw, quarter_planes_len(t));
    assert_eq!(m.len(), POSITIONS * o * tiles);
    assert_eq!(dz.len(), t.images * o * len);
    for (plane_index, quarters) in dz.chunks_exact_mut(len).enumerate() {
        let (img, oc) = (plane_index / o, plane_index % o);
        for qy in 0..t.th {
            let mv = nine_runs(m, o * tiles, oc * tiles + img * t.per_image() + qy * tw, tw);
            // Aᵀ along rows and columns: output (ey, ex) sums transformed rows ey, ey + 1
            // and columns ex, ex + 1.
            for (ey, ex) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let out = &mut quarters[quarter_run(t, parity(phase), ey, ex, qy)..][..tw];
                let at = |xi: usize, nu: usize| mv[3 * xi + nu];
                add4(
                    out,
                    at(ey, ex),
                    at(ey, ex + 1),
                    at(ey + 1, ex),
                    at(ey + 1, ex + 1),
                );
            }
        }
    }
}

simd_versions! {
    /// `dm = A dz Aᵀ` of phase `phase` from the output gradient's quarter planes `dz`
    /// ([`split_quarters`]) into `dm` (`[pos][o][tile]`, overwritten).
    pub fn output_grad_transform(dz: &[f32], o: usize, t: &Tiles, phase: usize, dm: &mut [f32]) = output_grad_transform_body;
}

#[inline(always)]
fn output_grad_transform_body<const FMA: bool>(
    dz: &[f32],
    o: usize,
    t: &Tiles,
    phase: usize,
    dm: &mut [f32],
) {
    let (tiles, tw, len) = (t.count(), t.tw, quarter_planes_len(t));
    assert_eq!(dz.len(), t.images * o * len);
    assert_eq!(dm.len(), POSITIONS * o * tiles);
    for (plane_index, quarters) in dz.chunks_exact(len).enumerate() {
        let (img, oc) = (plane_index / o, plane_index % o);
        for qy in 0..t.th {
            let first = oc * tiles + img * t.per_image() + qy * tw;
            let outs = nine_runs_mut(dm, o * tiles, first, tw);
            let at =
                |ey: usize, ex: usize| &quarters[quarter_run(t, parity(phase), ey, ex, qy)..][..tw];
            // A along rows and columns: transformed row ξ sums output rows A_ROWS[ξ].
            for (xi, rows) in A_ROWS.iter().enumerate() {
                for (nu, cols) in A_ROWS.iter().enumerate() {
                    let out = &mut *outs[3 * xi + nu];
                    match (*rows, *cols) {
                        (&[ey], &[ex]) => out.copy_from_slice(at(ey, ex)),
                        (&[ey], &[e0, e1]) => add2(out, at(ey, e0), at(ey, e1)),
                        (&[y0, y1], &[ex]) => add2(out, at(y0, ex), at(y1, ex)),
                        (&[y0, y1], &[e0, e1]) => {
                            add4(out, at(y0, e0), at(y0, e1), at(y1, e0), at(y1, e1))
                        }
                        _ => unreachable!("one or two terms"),
                    }
                }
            }
        }
    }
}

/// `A`'s rows as the outputs they sum: `(z0, z0 + z1, z1)`.
const A_ROWS: [&[usize]; 3] = [&[0], &[0, 1], &[1]];

simd_versions! {
    /// `dd = B dV Bᵀ` of phase `phase` added into the padded parity planes `dq` of the
    /// input gradient (`[images][c][4][th + 2][tw + 2]`, see [`merge_parities`]); `dv` is
    /// `[pos][c][tile]`. The adjoint of [`input_transform`].
    pub fn add_input_grad(dv: &[f32], c: usize, t: &Tiles, phase: usize, dq: &mut [f32]) = add_input_grad_body;
}

#[inline(always)]
fn add_input_grad_body<const FMA: bool>(
    dv: &[f32],
    c: usize,
    t: &Tiles,
    phase: usize,
    dq: &mut [f32],
) {
    let (tiles, tw, len) = (t.count(), t.tw, parity_plane_len(t));
    assert_eq!(dq.len(), t.images * c * 4 * len);
    assert_eq!(dv.len(), POSITIONS * c * tiles);
    let mut rows_mid = vec![0.0f32; 3 * tw];
    for (plane_index, planes) in dq.chunks_exact_mut(4 * len).enumerate() {
        let (img, ch) = (plane_index / c, plane_index % c);
        for qy in 0..t.th {
            let g = nine_runs(
                dv,
                c * tiles,
                ch * tiles + img * t.per_image() + qy * tw,
                tw,
            );
            // B along rows: window row 0 is transformed row 0, row 2 is row 2, and row 1
            // is row 1 - row 0 - row 2.
            for (nu, out) in rows_mid.chunks_exact_mut(tw).enumerate() {
                middle(out, g[nu], g[3 + nu], g[6 + nu]);
            }
            let row = |e: usize| -> [&[f32]; 3] {
                match e {
                    0 => [g[0], g[1], g[2]],
                    1 => std::array::from_fn(|nu| &rows_mid[nu * tw..][..tw]),
                    _ => [g[6], g[7], g[8]],
                }
            };
            // B along columns, added into the window's runs (runs of one window row or
            // column overlap: added one after another).
            let runs = window_runs(t, parity(phase), qy);
            for e in 0..3 {
                let [r0, r1, r2] = row(e);
                let dst = |f: usize| runs[3 * e + f];
                accumulate(&mut planes[dst(0)..][..tw], r0);
                accumulate_middle(&mut planes[dst(1)..][..tw], r0, r1, r2);
                accumulate(&mut planes[dst(2)..][..tw], r2);
            }
        }
    }
}
