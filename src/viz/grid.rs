//! Image grids: model outputs (`[N, C, H, W]` tensors) to pictures, laid out in rows with
//! optional row labels, upscaled for viewing, saved as PNG atomically.

use super::font::{draw_text, text_width, LINE_HEIGHT};
use crate::pixel_range::PixelRange;
#[cfg(feature = "engine")]
use crate::Tensor;
use crate::{Error, Result};
use image::{imageops::FilterType, Rgb, RgbImage};
use std::path::Path;

const PAD: u32 = 2;
const BACKGROUND: [u8; 3] = [255, 255, 255];
const INK: [u8; 3] = [20, 20, 20];

/// One picture per image of a `[N, C, H, W]` batch (C = 1 or 3), mapping the pixel range
/// back to bytes and clamping.
#[cfg(feature = "engine")]
pub fn to_images(batch: &Tensor, range: PixelRange) -> Vec<RgbImage> {
    let batch = batch.as_standard_layout();
    let values = batch.as_slice().expect("standard layout");
    nchw_images(batch.shape(), values, range).expect("a [N, C, H, W] tensor")
}

/// [`to_images`] over raw row-major values of `shape` (what the edge build gets from
/// tract); `None` unless the shape is `[N, C, H, W]` with C = 1 or 3 and matches the values.
pub fn nchw_images(shape: &[usize], values: &[f32], range: PixelRange) -> Option<Vec<RgbImage>> {
    let &[n, c, h, w] = shape else { return None };
    if !(c == 1 || c == 3) || n * c * h * w != values.len() || h == 0 || w == 0 {
        return None;
    }
    let at = |i: usize, ch: usize, y: u32, x: u32| {
        range.to_byte(values[((i * c + ch.min(c - 1)) * h + y as usize) * w + x as usize])
    };
    Some(
        (0..n)
            .map(|i| {
                RgbImage::from_fn(w as u32, h as u32, |x, y| {
                    Rgb([at(i, 0, y, x), at(i, 1, y, x), at(i, 2, y, x)])
                })
            })
            .collect(),
    )
}

/// Enlarges `img` by an integer factor with a Catmull-Rom filter (sharp, no blockiness).
pub fn upscale(img: &RgbImage, factor: u32) -> RgbImage {
    if factor <= 1 {
        return img.clone();
    }
    image::imageops::resize(
        img,
        img.width() * factor,
        img.height() * factor,
        FilterType::CatmullRom,
    )
}

/// Rows of cells (each row may have its own label, drawn left of it), padded on white.
/// Cells are scaled by `scale`; all cells must have the same size.
pub fn labeled_rows(rows: &[(String, Vec<RgbImage>)], scale: u32) -> RgbImage {
    labeled_grid(&[], rows, scale)
}

/// Like [`labeled_rows`], with a label centered above each column (`columns` may be
/// shorter than the widest row, or empty for no header).
pub fn labeled_grid(columns: &[String], rows: &[(String, Vec<RgbImage>)], scale: u32) -> RgbImage {
    let cells: Vec<&RgbImage> = rows.iter().flat_map(|(_, r)| r).collect();
    let Some(first) = cells.first() else {
        return RgbImage::from_pixel(1, 1, Rgb(BACKGROUND));
    };
    let (cw, ch) = (first.width() * scale.max(1), first.height() * scale.max(1));
    let cols = rows.iter().map(|(_, r)| r.len()).max().unwrap_or(0) as u32;
    let label_w = rows
        .iter()
        .map(|(l, _)| {
            if l.is_empty() {
                0
            } else {
                text_width(l, 1) + 2 * PAD
            }
        })
        .max()
        .unwrap_or(0);
    let header_h = if columns.iter().any(|c| !c.is_empty()) {
        LINE_HEIGHT + 2 * PAD
    } else {
        0
    };
    let width = label_w + PAD + cols * (cw + PAD);
    let height = header_h + PAD + rows.len() as u32 * (ch + PAD);
    let mut out = RgbImage::from_pixel(width, height, Rgb(BACKGROUND));
    for (c, label) in columns.iter().enumerate().take(cols as usize) {
        let center = (label_w + PAD + c as u32 * (cw + PAD) + cw / 2) as i64;
        let tx = center - text_width(label, 1) as i64 / 2;
        draw_text(&mut out, tx, PAD as i64 + 1, label, 1, INK);
    }
    for (r, (label, images)) in rows.iter().enumerate() {
        let y = header_h + PAD + r as u32 * (ch + PAD);
        if !label.is_empty() {
            let ty = y as i64 + (ch as i64 - LINE_HEIGHT as i64) / 2;
            draw_text(&mut out, PAD as i64, ty, label, 1, INK);
        }
        for (c, img) in images.iter().enumerate() {
            let x = label_w + PAD + c as u32 * (cw + PAD);
            image::imageops::replace(&mut out, &upscale(img, scale), x as i64, y as i64);
        }
    }
    out
}

/// `img` under a line of text.
pub fn titled(title: &str, img: &RgbImage) -> RgbImage {
    let band = LINE_HEIGHT + 3 * PAD;
    let width = img.width().max(text_width(title, 1) + 4 * PAD);
    let mut out = RgbImage::from_pixel(width, img.height() + band, Rgb(BACKGROUND));
    draw_text(&mut out, 2 * PAD as i64, 2 * PAD as i64, title, 1, INK);
    image::imageops::replace(&mut out, img, 0, band as i64);
    out
}

/// Pictures side by side, top-aligned, on white.
pub fn side_by_side(images: &[RgbImage]) -> RgbImage {
    let width = images.iter().map(|i| i.width()).sum::<u32>().max(1);
    let height = images.iter().map(|i| i.height()).max().unwrap_or(1);
    let mut out = RgbImage::from_pixel(width, height, Rgb(BACKGROUND));
    let mut x = 0;
    for img in images {
        image::imageops::replace(&mut out, img, x, 0);
        x += img.width() as i64;
    }
    out
}

/// `images` in rows of `cols`, without labels.
pub fn grid(images: &[RgbImage], cols: usize, scale: u32) -> RgbImage {
    let rows: Vec<(String, Vec<RgbImage>)> = images
        .chunks(cols.max(1))
        .map(|c| (String::new(), c.to_vec()))
        .collect();
    labeled_rows(&rows, scale)
}

/// Inputs above their reconstructions, `cols` pairs per band.
pub fn reconstruction_grid(
    inputs: &[RgbImage],
    outputs: &[RgbImage],
    cols: usize,
    scale: u32,
) -> RgbImage {
    let cols = cols.max(1);
    let mut rows = vec![];
    for (a, b) in inputs.chunks(cols).zip(outputs.chunks(cols)) {
        rows.push(("in".to_string(), a.to_vec()));
        rows.push(("out".to_string(), b.to_vec()));
    }
    labeled_rows(&rows, scale)
}

/// Saves a PNG atomically; the parent folder must exist.
pub fn save_png(path: &Path, img: &RgbImage) -> Result<()> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)
        .map_err(|e| Error::File {
            path: path.to_path_buf(),
            message: format!("cannot encode PNG: {e}"),
        })?;
    crate::atomic_file::write(path, bytes.get_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "engine")]
    #[test]
    fn tensors_map_back_to_bytes_in_either_range() {
        let mut t = Tensor::zeros(vec![2, 3, 2, 2]);
        t[[1, 0, 1, 0]] = 1.0;
        t[[1, 2, 0, 1]] = 2.0; // clamped
        let imgs = to_images(&t, PixelRange::Unit);
        assert_eq!(imgs.len(), 2);
        assert_eq!(imgs[1].get_pixel(0, 1).0, [255, 0, 0]);
        assert_eq!(imgs[1].get_pixel(1, 0).0, [0, 0, 255]);
        let sym = to_images(&t, PixelRange::Symmetric);
        assert_eq!(sym[0].get_pixel(0, 0).0, [128, 128, 128]);
    }

    #[test]
    fn raw_values_need_an_image_shape() {
        let v = vec![0.0; 2 * 3 * 4 * 5];
        assert_eq!(
            nchw_images(&[2, 3, 4, 5], &v, PixelRange::Unit)
                .unwrap()
                .len(),
            2
        );
        assert!(nchw_images(&[2, 3, 4, 4], &v, PixelRange::Unit).is_none());
        assert!(nchw_images(&[3, 2, 4, 5], &v, PixelRange::Unit).is_none());
        assert!(nchw_images(&[120], &v, PixelRange::Unit).is_none());
        let grey = nchw_images(&[1, 1, 1, 1], &[0.5], PixelRange::Unit).unwrap();
        assert_eq!(grey[0].get_pixel(0, 0).0, [128, 128, 128]);
    }

    #[test]
    fn grid_places_cells_in_rows() {
        let red = RgbImage::from_pixel(4, 3, Rgb([255, 0, 0]));
        let blue = RgbImage::from_pixel(4, 3, Rgb([0, 0, 255]));
        let g = grid(&[red.clone(), blue.clone(), red.clone()], 2, 1);
        assert_eq!((g.width(), g.height()), (2 + 2 * 6, 2 + 2 * 5));
        assert_eq!(g.get_pixel(2, 2).0, [255, 0, 0]);
        assert_eq!(g.get_pixel(8, 2).0, [0, 0, 255]);
        assert_eq!(g.get_pixel(2, 7).0, [255, 0, 0]);
        assert_eq!(g.get_pixel(8, 7).0, BACKGROUND);
        let big = grid(&[red], 1, 3);
        assert_eq!((big.width(), big.height()), (2 + 14, 2 + 11));
        assert_eq!(big.get_pixel(7, 6).0, [255, 0, 0]);
    }

    #[test]
    fn column_labels_add_a_header_band() {
        let red = RgbImage::from_pixel(20, 10, Rgb([255, 0, 0]));
        let rows = vec![("a".to_string(), vec![red.clone(), red.clone()])];
        let plain = labeled_rows(&rows, 1);
        let headed = labeled_grid(&["-1".into(), "+1".into()], &rows, 1);
        assert_eq!(headed.width(), plain.width());
        assert_eq!(headed.height(), plain.height() + LINE_HEIGHT + 2 * PAD);
        // Ink above each column, none in the row-label gutter of the header.
        let inked = |x0: u32, x1: u32| {
            (x0..x1).any(|x| (0..LINE_HEIGHT + PAD).any(|y| headed.get_pixel(x, y).0 == INK))
        };
        let left = plain.width() - 2 * (20 + PAD);
        assert!(inked(left, left + 20));
        assert!(inked(left + 22, left + 42));
        assert!(!inked(0, left - PAD));
        // The cells moved down by the header.
        assert_eq!(headed.get_pixel(left, LINE_HEIGHT + 3 * PAD).0, [255, 0, 0]);
    }

    #[test]
    fn pngs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.png");
        let img = reconstruction_grid(
            &[RgbImage::from_pixel(8, 8, Rgb([1, 2, 3]))],
            &[RgbImage::from_pixel(8, 8, Rgb([4, 5, 6]))],
            4,
            1,
        );
        save_png(&path, &img).unwrap();
        assert_eq!(image::open(&path).unwrap().to_rgb8(), img);
    }
}
