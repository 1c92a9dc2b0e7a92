//! The plane layouts that minimal filtering's transforms read and write
//! ([`super::winograd`]): a chunk's input as window planes (every tile's window value at
//! one offset, over all tiles of the chunk) and its output as planes of rows and columns
//! modulo 8. One channel's planes span every image of the chunk, so that the transforms
//! run over as many tiles as the chunk has, however small the images. Each place's pixel
//! comes from a table built once per call.

use super::winograd::{Tiles, TILE};
use std::mem::MaybeUninit;

/// Input rows (columns) a tile's window spans over all phases: `4qy - 1 ..= 4qy + 4`.
pub(super) const SPAN: usize = 6;
/// Output rows (columns) a tile spans over all phases: `8qy ..= 8qy + 7`.
pub(super) const OUT_SPAN: usize = 2 * TILE;

/// Values of one channel's window planes: `6 x 6` planes of one value per tile of the
/// chunk.
pub fn window_planes_len(t: &Tiles) -> usize {
    SPAN * SPAN * t.count()
}

/// Values of one channel's planes modulo 8: `8 x 8` planes of one value per tile of the
/// chunk.
pub fn output_planes_len(t: &Tiles) -> usize {
    OUT_SPAN * OUT_SPAN * t.count()
}

/// The input row (column) of tile `q` at window offset `r` (`4q + r - 1`), if inside `n`.
#[inline(always)]
fn window_index(q: usize, r: usize, n: usize) -> Option<usize> {
    (TILE * q + r).checked_sub(1).filter(|&i| i < n)
}

/// A place with no pixel (padding, or past the image): `u32::MAX`, out of every slice.
const NONE: u32 = u32::MAX;

/// For each place `[r][s][tile]` of planes with `span x span` offsets, the pixel offset
/// `image · image_len + pixel(r, s, qy, qx)` within channel 0 of the chunk, or [`NONE`].
fn table(
    t: &Tiles,
    span: usize,
    image_len: usize,
    pixel: impl Fn(usize, usize, usize, usize) -> Option<usize>,
) -> Vec<u32> {
    let per = t.per_image();
    let mut places = vec![NONE; span * span * t.count()];
    let all = (0..span * span).flat_map(|rs| (0..t.count()).map(move |tile| (rs, tile)));
    for ((rs, tile), place) in all.zip(&mut places) {
        let (image, q) = (tile / per, tile % per);
        if let Some(p) = pixel(rs / span, rs % span, q / t.tw, q % t.tw) {
            *place = u32::try_from(image * image_len + p).expect("a chunk under 4 G values");
        }
    }
    places
}

/// For each place of one channel's window planes (`[r][s][tile]`), the input pixel
/// (`y·w + x` in its image of `c` channels) it holds, or [`NONE`].
fn window_sources(t: &Tiles, c: usize) -> Vec<u32> {
    table(t, SPAN, c * t.h * t.w, |r, s, qy, qx| {
        let (y, x) = (window_index(qy, r, t.h)?, window_index(qx, s, t.w)?);
        Some(y * t.w + x)
    })
}

/// The chunk `x` (`[images][c][h][w]`) as window planes `d` (`[c][r][s][tile]`):
/// `d[ch, r, s, (image, qy, qx)] = x[image, ch, 4qy + r - 1, 4qx + s - 1]`, zero outside
/// the image. Phase `(a, b)`'s window value `(e, f)` of every tile is then plane
/// `(a + e, b + f)`.
pub fn gather_windows(x: &[f32], c: usize, t: &Tiles, d: &mut [f32]) {
    let plane = t.h * t.w;
    assert_eq!(x.len(), t.images * c * plane);
    assert_eq!(d.len(), c * window_planes_len(t));
    let sources = window_sources(t, c);
    gather_by_table(x, plane, &sources, d);
}

/// The input gradient from its window planes `dd`, added into `dx` (`[images][c][h][w]`;
/// zeroed by the caller): the adjoint of [`gather_windows`], each pixel the sum of its
/// places in the planes.
pub fn scatter_windows(dd: &[f32], c: usize, t: &Tiles, dx: &mut [f32]) {
    let plane = t.h * t.w;
    assert_eq!(dx.len(), t.images * c * plane);
    assert_eq!(dd.len(), c * window_planes_len(t));
    let sources = window_sources(t, c);
    for (ch, planes) in dd.chunks_exact(sources.len()).enumerate() {
        let channel = &mut dx[ch * plane..];
        for (v, &at) in planes.iter().zip(&sources) {
            if let Some(d) = channel.get_mut(at as usize) {
                *d += v;
            }
        }
    }
}

/// For each place of one channel's planes modulo 8 (`[r][s][tile]`), the output pixel
/// (`(8qy + r)·2w + 8qx + s` in its image) it holds, or [`NONE`] past the image.
fn output_places(t: &Tiles, o: usize) -> Vec<u32> {
    let (out_h, out_w) = (2 * t.h, 2 * t.w);
    table(t, OUT_SPAN, o * out_h * out_w, |r, s, qy, qx| {
        let (y, x) = (OUT_SPAN * qy + r, OUT_SPAN * qx + s);
        (y < out_h && x < out_w).then_some(y * out_w + x)
    })
}

/// The output (gradient) `dy` (`[images][o][2h][2w]`) as planes modulo 8 `z`
/// (`[o][r][s][tile]`): `z[.., r, s, (image, qy, qx)] = dy[image, .., 8qy + r, 8qx + s]`,
/// zero past the image. Phase `(a, b)`'s output `(ey, ex)` of every tile is plane
/// `(2ey + a, 2ex + b)`.
pub fn split_outputs(dy: &[f32], o: usize, t: &Tiles, z: &mut [f32]) {
    assert_eq!(dy.len(), t.images * o * 4 * t.h * t.w);
    assert_eq!(z.len(), o * output_planes_len(t));
    gather_by_table(dy, 4 * t.h * t.w, &output_places(t, o), z);
}

/// The adjoint of [`split_outputs`] for the forward pass: `y` (`[images][o][2h][2w]`)
/// written whole from its planes modulo 8 `z` (every pixel has exactly one place).
pub fn merge_outputs(z: &[f32], o: usize, t: &Tiles, y: &mut [MaybeUninit<f32>]) {
    let plane = 4 * t.h * t.w;
    assert_eq!(y.len(), t.images * o * plane);
    assert_eq!(z.len(), o * output_planes_len(t));
    let places = output_places(t, o);
    for (ch, planes) in z.chunks_exact(places.len()).enumerate() {
        let channel = &mut y[ch * plane..];
        for (v, &at) in planes.iter().zip(&places) {
            if let Some(out) = channel.get_mut(at as usize) {
                out.write(*v);
            }
        }
    }
}

/// `planes[ch][place] = src[ch·channel_len + table[place]]`, zero where the table has
/// [`NONE`]: one run of `table.len()` places per channel.
fn gather_by_table(src: &[f32], channel_len: usize, table: &[u32], planes: &mut [f32]) {
    assert_eq!(planes.len() % table.len().max(1), 0);
    for (ch, planes) in planes.chunks_exact_mut(table.len()).enumerate() {
        let channel = &src[ch * channel_len..];
        for (v, &at) in planes.iter_mut().zip(table) {
            *v = channel.get(at as usize).copied().unwrap_or(0.0);
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
                values(c * window_planes_len(&t)),
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
            let (per, tiles) = (t.per_image(), t.count());
            for (i, v) in gathered.iter().enumerate() {
                let (ch, rs, tile) = (i / (36 * tiles), i / tiles % 36, i % tiles);
                let (image, q) = (tile / per, tile % per);
                let (y, xx) = (4 * (q / t.tw) + rs / 6, 4 * (q % t.tw) + rs % 6);
                let inside = (1..=t.h).contains(&y) && (1..=t.w).contains(&xx);
                let plane = image * c + ch;
                let want = if inside { x[(plane * t.h + y - 1) * t.w + xx - 1] } else { 0.0 };
                prop_assert_eq!(*v, want, "place {}", i);
            }
            let mut scattered = vec![0.0; x.len()];
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
            let mut z = vec![f32::NAN; c * output_planes_len(&t)];
            split_outputs(&dy, c, &t, &mut z);
            let (per, tiles) = (t.per_image(), t.count());
            for (i, v) in z.iter().enumerate() {
                let (ch, rs, tile) = (i / (64 * tiles), i / tiles % 64, i % tiles);
                let (image, q) = (tile / per, tile % per);
                let (y, x) = (8 * (q / t.tw) + rs / 8, 8 * (q % t.tw) + rs % 8);
                let plane = image * c + ch;
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
