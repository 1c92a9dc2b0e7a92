//! The plane layouts that minimal filtering's transforms read and write
//! ([`super::winograd`]): a chunk's input as window planes (every tile's window value at
//! one offset, over all tiles) and its output as planes of rows and columns modulo 8.
//! Each place's pixel comes from a table built once per chunk.

use super::winograd::{Tiles, TILE};
use std::mem::MaybeUninit;

/// Input rows (columns) a tile's window spans over all phases: `4qy - 1 ..= 4qy + 4`.
pub(super) const SPAN: usize = 6;
/// Output rows (columns) a tile spans over all phases: `8qy ..= 8qy + 7`.
pub(super) const OUT_SPAN: usize = 2 * TILE;

/// Values of one channel's window planes: `6 x 6` planes of one value per tile.
pub fn window_planes_len(t: &Tiles) -> usize {
    SPAN * SPAN * t.per_image()
}

/// The input row (column) of tile `q` at window offset `r` (`4q + r - 1`), if inside `n`.
#[inline(always)]
fn window_index(q: usize, r: usize, n: usize) -> Option<usize> {
    (TILE * q + r).checked_sub(1).filter(|&i| i < n)
}

/// A place with no pixel (padding, or past the image): `u32::MAX`, out of every plane.
const NONE: u32 = u32::MAX;

/// For each place of one channel's window planes (`[r][s][tile]`), the input pixel
/// (`y·w + x`) it holds, or [`NONE`].
fn window_sources(t: &Tiles) -> Vec<u32> {
    let mut sources = vec![NONE; window_planes_len(t)];
    let places = (0..SPAN * SPAN).flat_map(|rs| (0..t.per_image()).map(move |q| (rs, q)));
    for ((rs, q), source) in places.zip(&mut sources) {
        let (r, s, qy, qx) = (rs / SPAN, rs % SPAN, q / t.tw, q % t.tw);
        if let (Some(y), Some(x)) = (window_index(qy, r, t.h), window_index(qx, s, t.w)) {
            *source = (y * t.w + x) as u32;
        }
    }
    sources
}

/// The chunk `x` (`[images][c][h][w]`) as window planes `d` (`[images][c][r][s][tile]`):
/// `d[.., r, s, qy·tw + qx] = x[.., 4qy + r - 1, 4qx + s - 1]`, zero outside the image.
/// Phase `(a, b)`'s window value `(e, f)` of every tile is then plane `(a + e, b + f)`.
pub fn gather_windows(x: &[f32], c: usize, t: &Tiles, d: &mut [f32]) {
    let (plane, len) = (t.h * t.w, window_planes_len(t));
    assert_eq!(x.len(), t.images * c * plane);
    assert_eq!(d.len(), t.images * c * len);
    let sources = window_sources(t);
    for (x_plane, planes) in x.chunks_exact(plane).zip(d.chunks_exact_mut(len)) {
        for (v, &at) in planes.iter_mut().zip(&sources) {
            *v = x_plane.get(at as usize).copied().unwrap_or(0.0);
        }
    }
}

/// The input gradient `dx` (`[images][c][h][w]`, overwritten) from its window planes `dd`:
/// the adjoint of [`gather_windows`], each pixel the sum of its places in the planes.
pub fn scatter_windows(dd: &[f32], c: usize, t: &Tiles, dx: &mut [f32]) {
    let (plane, len) = (t.h * t.w, window_planes_len(t));
    assert_eq!(dx.len(), t.images * c * plane);
    assert_eq!(dd.len(), t.images * c * len);
    let sources = window_sources(t);
    dx.fill(0.0);
    for (dx_plane, planes) in dx.chunks_exact_mut(plane).zip(dd.chunks_exact(len)) {
        for (v, &at) in planes.iter().zip(&sources) {
            if let Some(d) = dx_plane.get_mut(at as usize) {
                *d += v;
            }
        }
    }
}

/// Values of one output plane's planes modulo 8: `8 x 8` planes of one value per tile.
pub fn output_planes_len(t: &Tiles) -> usize {
    OUT_SPAN * OUT_SPAN * t.per_image()
}

/// For each place of one channel's planes modulo 8 (`[r][s][tile]`), the output pixel
/// (`(8qy + r)·2w + 8qx + s`) it holds, or [`NONE`] past the image.
fn output_places(t: &Tiles) -> Vec<u32> {
    let (out_h, out_w) = (2 * t.h, 2 * t.w);
    let mut places = vec![NONE; output_planes_len(t)];
    let all = (0..OUT_SPAN * OUT_SPAN).flat_map(|rs| (0..t.per_image()).map(move |q| (rs, q)));
    for ((rs, q), place) in all.zip(&mut places) {
        let y = OUT_SPAN * (q / t.tw) + rs / OUT_SPAN;
        let x = OUT_SPAN * (q % t.tw) + rs % OUT_SPAN;
        if y < out_h && x < out_w {
            *place = (y * out_w + x) as u32;
        }
    }
    places
}

/// The output (gradient) `dy` (`[images][o][2h][2w]`) as planes modulo 8 `z`
/// (`[images][o][r][s][tile]`): `z[.., r, s, qy·tw + qx] = dy[.., 8qy + r, 8qx + s]`, zero
/// past the image. Phase `(a, b)`'s output `(ey, ex)` of every tile is plane
/// `(2ey + a, 2ex + b)`.
pub fn split_outputs(dy: &[f32], o: usize, t: &Tiles, z: &mut [f32]) {
    let (plane, len) = (4 * t.h * t.w, output_planes_len(t));
    assert_eq!(dy.len(), t.images * o * plane);
    assert_eq!(z.len(), t.images * o * len);
    let places = output_places(t);
    for (dy_plane, planes) in dy.chunks_exact(plane).zip(z.chunks_exact_mut(len)) {
        for (v, &at) in planes.iter_mut().zip(&places) {
            *v = dy_plane.get(at as usize).copied().unwrap_or(0.0);
        }
    }
}

/// The adjoint of [`split_outputs`] for the forward pass: `y` (`[images][o][2h][2w]`)
/// written whole from its planes modulo 8 `z` (every pixel has exactly one place).
pub fn merge_outputs(z: &[f32], o: usize, t: &Tiles, y: &mut [MaybeUninit<f32>]) {
    let (plane, len) = (4 * t.h * t.w, output_planes_len(t));
    assert_eq!(y.len(), t.images * o * plane);
    assert_eq!(z.len(), t.images * o * len);
    let places = output_places(t);
    for (y_plane, planes) in y.chunks_exact_mut(plane).zip(z.chunks_exact(len)) {
        for (v, &at) in planes.iter().zip(&places) {
            if let Some(out) = y_plane.get_mut(at as usize) {
                out.write(*v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A chunk's geometry (images, channels, h, w) and values for its input and output.
    fn chunk() -> impl Strategy<Value = (Tiles, usize, Vec<f32>, Vec<f32>)> {
        (1usize..3, 1usize..3, 1usize..14, 1usize..14).prop_flat_map(|(n, c, h, w)| {
            let t = Tiles::new(n, h, w);
            let values = |len| prop::collection::vec(-1.0f32..1.0, len);
            (
                Just(t),
                Just(c),
                values(n * c * h * w),
                values(n * c * window_planes_len(&t)),
            )
        })
    }

    proptest! {
        /// Every window plane place holds `x[4qy + r - 1, 4qx + s - 1]` or zero, and
        /// [`scatter_windows`] is its adjoint: `<gather(x), d> = <x, scatter(d)>`.
        #[test]
        fn windows_gather_by_definition_and_scatter_adjointly((t, c, x, d) in chunk()) {
            let mut gathered = vec![f32::NAN; d.len()];
            gather_windows(&x, c, &t, &mut gathered);
            let per = t.per_image();
            for (i, v) in gathered.iter().enumerate() {
                let (plane, rs, q) = (i / (36 * per), i / per % 36, i % per);
                let (y, xx) = (4 * (q / t.tw) + rs / 6, 4 * (q % t.tw) + rs % 6);
                let inside = (1..=t.h).contains(&y) && (1..=t.w).contains(&xx);
                let want = if inside { x[(plane * t.h + y - 1) * t.w + xx - 1] } else { 0.0 };
                prop_assert_eq!(*v, want, "place {}", i);
            }
            let mut scattered = vec![f32::NAN; x.len()];
            scatter_windows(&d, c, &t, &mut scattered);
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>();
            let (left, right) = (dot(&gathered, &d), dot(&x, &scattered));
            prop_assert!((left - right).abs() < 1e-4 * (1.0 + left.abs()), "{} vs {}", left, right);
        }

        /// [`split_outputs`] puts `dy[8qy + r, 8qx + s]` at `[r][s][tile]` (zero past the
        /// image) and [`merge_outputs`] undoes it.
        #[test]
        fn output_planes_split_by_definition_and_merge_back((t, c, _x, _d) in chunk(), seed: u64) {
            let (out_h, out_w) = (2 * t.h, 2 * t.w);
            let dy: Vec<f32> = (0..t.images * c * out_h * out_w).map(|i| (i as u64 ^ seed) as f32).collect();
            let mut z = vec![f32::NAN; t.images * c * output_planes_len(&t)];
            split_outputs(&dy, c, &t, &mut z);
            let per = t.per_image();
            for (i, v) in z.iter().enumerate() {
                let (plane, rs, q) = (i / (64 * per), i / per % 64, i % per);
                let (y, x) = (8 * (q / t.tw) + rs / 8, 8 * (q % t.tw) + rs % 8);
                let want = if y < out_h && x < out_w { dy[(plane * out_h + y) * out_w + x] } else { 0.0 };
                prop_assert_eq!(*v, want, "place {}", i);
            }
            let mut y = vec![MaybeUninit::new(f32::NAN); dy.len()];
            merge_outputs(&z, c, &t, &mut y);
            // SAFETY: initialized above (merge_outputs overwrites).
            let y: Vec<f32> = y.into_iter().map(|v| unsafe { v.assume_init() }).collect();
            prop_assert_eq!(y, dy);
        }
    }
}
