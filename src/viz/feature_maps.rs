//! Feature maps (one channel of a layer's output each) as small colored tiles: every map
//! is stretched to its own min..max and colored with the viridis palette, so the pattern
//! of each channel shows whatever its scale.

use super::grid::{labeled_rows, titled};
use crate::Tensor;
use image::{Rgb, RgbImage};

/// Viridis (matplotlib's default colormap) at 9 evenly spaced points, interpolated linearly.
const VIRIDIS: [[u8; 3]; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

/// The palette's color at `t` in [0, 1] (clamped).
pub fn viridis(t: f32) -> [u8; 3] {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (VIRIDIS.len() - 1) as f32;
    let i = (pos.floor() as usize).min(VIRIDIS.len() - 2);
    let f = pos - i as f32;
    let mix = |a: u8, b: u8| (a as f32 + f * (b as f32 - a as f32)).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    [mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2])]
}

/// Channel `c` of sample `n` of a `[N, C, H, W]` tensor as a tile; a constant map is drawn
/// in the palette's darkest color.
pub fn tile(maps: &Tensor, n: usize, c: usize) -> RgbImage {
    let (h, w) = (maps.shape()[2], maps.shape()[3]);
    let at = |y: usize, x: usize| maps[[n, c, y, x]];
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for y in 0..h {
        for x in 0..w {
            lo = lo.min(at(y, x));
            hi = hi.max(at(y, x));
        }
    }
    let span = if hi - lo > 1e-12 {
        hi - lo
    } else {
        f32::INFINITY
    };
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        Rgb(viridis((at(y as usize, x as usize) - lo) / span))
    })
}

/// The first `max_maps` channels of sample `n` in rows of `cols`, under `title`, each tile
/// enlarged `scale` times with nearest-neighbor sampling (a feature map's cells are its data).
pub fn feature_map_grid(
    title: &str,
    maps: &Tensor,
    n: usize,
    max_maps: usize,
    cols: usize,
    scale: u32,
) -> RgbImage {
    let channels = maps.shape()[1].min(max_maps.max(1));
    let tiles: Vec<RgbImage> = (0..channels)
        .map(|c| {
            let t = tile(maps, n, c);
            let (w, h) = (t.width() * scale.max(1), t.height() * scale.max(1));
            image::imageops::resize(&t, w, h, image::imageops::FilterType::Nearest)
        })
        .collect();
    let rows: Vec<(String, Vec<RgbImage>)> = tiles
        .chunks(cols.max(1))
        .enumerate()
        .map(|(r, chunk)| (format!("{}", r * cols.max(1)), chunk.to_vec()))
        .collect();
    titled(title, &labeled_rows(&rows, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_ends_and_clamps() {
        assert_eq!(viridis(0.0), VIRIDIS[0]);
        assert_eq!(viridis(1.0), VIRIDIS[8]);
        assert_eq!(viridis(-3.0), VIRIDIS[0]);
        assert_eq!(viridis(7.0), VIRIDIS[8]);
        assert_eq!(viridis(f32::NAN), VIRIDIS[0]);
        assert_eq!(viridis(0.5), VIRIDIS[4]);
    }

    #[test]
    fn each_map_is_stretched_to_its_own_range() {
        let mut t = Tensor::zeros(vec![1, 2, 2, 2]);
        t[[0, 0, 0, 0]] = -5.0;
        t[[0, 0, 1, 1]] = 5.0;
        t[[0, 1, 0, 1]] = 0.001;
        let a = tile(&t, 0, 0);
        assert_eq!(a.get_pixel(0, 0).0, VIRIDIS[0]);
        assert_eq!(a.get_pixel(1, 1).0, VIRIDIS[8]);
        assert_eq!(a.get_pixel(1, 0).0, VIRIDIS[4]);
        let b = tile(&t, 0, 1);
        assert_eq!(b.get_pixel(1, 0).0, VIRIDIS[8]);
        assert_eq!(b.get_pixel(0, 0).0, VIRIDIS[0]);
        let flat = tile(&Tensor::zeros(vec![1, 1, 3, 3]), 0, 0);
        assert!(flat.pixels().all(|p| p.0 == VIRIDIS[0]));
    }

    #[test]
    fn grids_hold_at_most_max_maps_tiles() {
        let t = Tensor::zeros(vec![1, 10, 4, 4]);
        let few = feature_map_grid("x", &t, 0, 4, 2, 1);
        let all = feature_map_grid("x", &t, 0, 100, 2, 1);
        assert!(all.height() > few.height());
    }
}
