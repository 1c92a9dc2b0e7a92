//! Line charts (loss curves) drawn straight onto an image: axes with "nice" ticks, grid
//! lines, one colored polyline per series and a legend.

use super::font::{draw_text, text_width, LINE_HEIGHT};
use image::{Rgb, RgbImage};

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: [u8; 3],
}

/// The chart's frame: data bounds and the pixel box they map to.
pub struct Frame {
    pub x: (f64, f64),
    pub y: (f64, f64),
    pub left: u32,
    pub top: u32,
    pub right: u32,
    pub bottom: u32,
}

impl Frame {
    /// Pixel position of the data point `(x, y)`.
    pub fn to_pixel(&self, x: f64, y: f64) -> (f64, f64) {
        let fx = (x - self.x.0) / (self.x.1 - self.x.0);
        let fy = (y - self.y.0) / (self.y.1 - self.y.0);
        (
            self.left as f64 + fx * (self.right - self.left) as f64,
            self.bottom as f64 - fy * (self.bottom - self.top) as f64,
        )
    }
}

/// A step of 1, 2 or 5 times a power of ten giving about `target` intervals over `span`.
pub fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let m = raw / magnitude;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Bounds of the finite values, widened when empty or flat.
pub(crate) fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let d = lo.abs().max(1.0) * 0.5;
        return (lo - d, hi + d);
    }
    (lo, hi)
}

fn label(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e5 || v.abs() < 1e-3 {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A thick line from `a` to `b` (pixel coordinates), clipped to the image.
pub fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), thickness: f64, color: [u8; 3]) {
    let steps = (b.0 - a.0).hypot(b.1 - a.1).ceil().max(1.0) as usize;
    let r = (thickness / 2.0).max(0.5);
    for s in 0..=steps {
        let t = s as f64 / steps as f64;
        let (x, y) = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
        dot(img, (x, y), r, color);
    }
}

/// A filled square of half-width `r` centered at `p`, clipped to the image.
pub fn dot(img: &mut RgbImage, p: (f64, f64), r: f64, color: [u8; 3]) {
    let (x0, x1) = ((p.0 - r).round() as i64, (p.0 + r).round() as i64);
    let (y0, y1) = ((p.1 - r).round() as i64, (p.1 + r).round() as i64);
    for y in y0.max(0)..=y1.min(img.height() as i64 - 1) {
        for x in x0.max(0)..=x1.min(img.width() as i64 - 1) {
            img.put_pixel(x as u32, y as u32, Rgb(color));
        }
    }
}

/// Draws the axes, ticks and title of a chart over `x` and `y`, returning its frame.
pub fn axes(img: &mut RgbImage, title: &str, x_label: &str, x: (f64, f64), y: (f64, f64)) -> Frame {
    let (w, h) = (img.width(), img.height());
    let pad_y = (y.1 - y.0) * 0.05;
    let frame = Frame {
        x,
        y: (y.0 - pad_y, y.1 + pad_y),
        left: 64,
        top: 24,
        right: w - 16,
        bottom: h - 34,
    };
    let ink = [30, 30, 30];
    let grid = [225, 225, 225];
    let tick = |v: f64, vertical: bool, img: &mut RgbImage| {
        let (px, py) = frame.to_pixel(v, v);
        let text = label(v);
        if vertical {
            line(
                img,
                (px, frame.top as f64),
                (px, frame.bottom as f64),
                1.0,
                grid,
            );
            let tx = px as i64 - text_width(&text, 1) as i64 / 2;
            draw_text(img, tx, frame.bottom as i64 + 5, &text, 1, ink);
        } else {
            line(
                img,
                (frame.left as f64, py),
                (frame.right as f64, py),
                1.0,
                grid,
            );
            let tx = frame.left as i64 - 4 - text_width(&text, 1) as i64;
            draw_text(img, tx, py as i64 - LINE_HEIGHT as i64 / 2, &text, 1, ink);
        }
    };
    for (range, vertical) in [(frame.x, true), (frame.y, false)] {
        let step = nice_step(range.1 - range.0, 5);
        let mut v = (range.0 / step).ceil() * step;
        while v <= range.1 + step * 1e-9 {
            tick(if v.abs() < step * 1e-9 { 0.0 } else { v }, vertical, img);
            v += step;
        }
    }
    let (l, t, r, b) = (
        frame.left as f64,
        frame.top as f64,
        frame.right as f64,
        frame.bottom as f64,
    );
    line(img, (l, b), (r, b), 1.0, ink);
    line(img, (l, t), (l, b), 1.0, ink);
    draw_text(
        img,
        (w as i64 - text_width(title, 1) as i64) / 2,
        8,
        title,
        1,
        ink,
    );
    let lx = (frame.left + frame.right) as i64 / 2 - text_width(x_label, 1) as i64 / 2;
    draw_text(img, lx, h as i64 - 12, x_label, 1, ink);
    frame
}

/// A line chart of `series` on a `width x height` white image.
pub fn line_chart(
    title: &str,
    x_label: &str,
    series: &[Series],
    width: u32,
    height: u32,
) -> RgbImage {
    let mut img = RgbImage::from_pixel(width.max(160), height.max(120), Rgb([255; 3]));
    let all = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
    };
    let frame = axes(
        &mut img,
        title,
        x_label,
        bounds(all().map(|p| p.0)),
        bounds(all().map(|p| p.1)),
    );
    for s in series {
        let finite: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| frame.to_pixel(x, y))
            .collect();
        for w in finite.windows(2) {
            line(&mut img, w[0], w[1], 2.0, s.color);
        }
        for &p in &finite {
            dot(&mut img, p, 2.0, s.color);
        }
    }
    // Legend, top right inside the frame.
    for (i, s) in series.iter().enumerate() {
        let y = frame.top as i64 + 6 + i as i64 * (LINE_HEIGHT as i64 + 4);
        let x = frame.right as i64 - 14 - text_width(&s.name, 1) as i64;
        dot(&mut img, (x as f64 - 8.0, y as f64 + 3.0), 3.0, s.color);
        draw_text(&mut img, x, y, &s.name, 1, [30, 30, 30]);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_1_2_5_powers_of_ten() {
        assert_eq!(nice_step(10.0, 5), 2.0);
        assert_eq!(nice_step(1.0, 5), 0.2);
        assert_eq!(nice_step(300.0, 5), 100.0);
        assert!((nice_step(0.03, 5) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn series_are_drawn_where_their_points_map() {
        let s = Series {
            name: "train".into(),
            points: vec![(1.0, 10.0), (2.0, 5.0), (3.0, f64::NAN)],
            color: [200, 0, 0],
        };
        let img = line_chart("loss", "epoch", &[s], 320, 200);
        let frame = Frame {
            x: (1.0, 2.0),
            y: (5.0 - 0.25, 10.0 + 0.25),
            left: 64,
            top: 24,
            right: 304,
            bottom: 166,
        };
        for (x, y) in [(1.0, 10.0), (1.5, 7.5), (2.0, 5.0)] {
            let (px, py) = frame.to_pixel(x, y);
            assert_eq!(
                img.get_pixel(px.round() as u32, py.round() as u32).0,
                [200, 0, 0],
                "({x}, {y})"
            );
        }
        // An empty chart still draws.
        let empty = line_chart("none", "x", &[], 10, 10);
        assert_eq!((empty.width(), empty.height()), (160, 120));
    }
}
