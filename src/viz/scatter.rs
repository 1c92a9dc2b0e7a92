//! Scatter plots of 2-D points in classes (e.g. a latent map colored by an attribute), with
//! each class's mean marked by a large cross and a legend.

use super::font::{draw_text, text_width, LINE_HEIGHT};
use super::plot::{axes, bounds, dot, line};
use image::{Rgb, RgbImage};

pub struct Class {
    pub name: String,
    pub color: [u8; 3],
    pub points: Vec<(f64, f64)>,
}

/// The mean of a class's finite points, if it has any.
pub fn class_mean(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let finite: Vec<_> = points
        .iter()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    if finite.is_empty() {
        return None;
    }
    let n = finite.len() as f64;
    Some((
        finite.iter().map(|p| p.0).sum::<f64>() / n,
        finite.iter().map(|p| p.1).sum::<f64>() / n,
    ))
}

/// A scatter plot of `classes` on a `width x height` white image. Points are drawn in
/// class order, interleaved so no class hides another entirely; the class means are
/// drawn last as crosses outlined in black.
pub fn scatter(title: &str, x_label: &str, classes: &[Class], width: u32, height: u32) -> RgbImage {
    let mut img = RgbImage::from_pixel(width.max(160), height.max(120), Rgb([255; 3]));
    let all = || classes.iter().flat_map(|c| c.points.iter());
    let frame = axes(
        &mut img,
        title,
        x_label,
        bounds(all().map(|p| p.0)),
        bounds(all().map(|p| p.1)),
    );
    let longest = classes.iter().map(|c| c.points.len()).max().unwrap_or(0);
    for i in 0..longest {
        for c in classes {
            if let Some(&(x, y)) = c.points.get(i) {
                if x.is_finite() && y.is_finite() {
                    dot(&mut img, frame.to_pixel(x, y), 1.5, c.color);
                }
            }
        }
    }
    for c in classes {
        if let Some((x, y)) = class_mean(&c.points) {
            let (px, py) = frame.to_pixel(x, y);
            for (thick, color) in [(5.0, [0, 0, 0]), (3.0, c.color)] {
                line(
                    &mut img,
                    (px - 9.0, py - 9.0),
                    (px + 9.0, py + 9.0),
                    thick,
                    color,
                );
                line(
                    &mut img,
                    (px - 9.0, py + 9.0),
                    (px + 9.0, py - 9.0),
                    thick,
                    color,
                );
            }
        }
    }
    for (i, c) in classes.iter().enumerate() {
        let y = frame.top as i64 + 6 + i as i64 * (LINE_HEIGHT as i64 + 4);
        let text = format!("{} ({})", c.name, c.points.len());
        let x = frame.right as i64 - 14 - text_width(&text, 1) as i64;
        dot(&mut img, (x as f64 - 8.0, y as f64 + 3.0), 3.0, c.color);
        draw_text(&mut img, x, y, &text, 1, [30, 30, 30]);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_ignore_non_finite_points() {
        assert_eq!(class_mean(&[]), None);
        let m = class_mean(&[(0.0, 2.0), (2.0, 4.0), (f64::NAN, 1.0)]).unwrap();
        assert_eq!(m, (1.0, 3.0));
    }

    #[test]
    fn points_and_means_land_in_their_colors() {
        let red = [220, 40, 40];
        let blue = [40, 40, 220];
        let classes = [
            Class {
                name: "a".into(),
                color: red,
                points: vec![(0.0, 0.0), (0.0, 2.0)],
            },
            Class {
                name: "b".into(),
                color: blue,
                points: vec![(10.0, 10.0)],
            },
        ];
        let img = scatter("t", "x", &classes, 400, 300);
        let count = |c: [u8; 3]| img.pixels().filter(|p| p.0 == c).count();
        assert!(count(red) > 20, "{}", count(red));
        assert!(count(blue) > 20, "{}", count(blue));
        // The frame `axes` lays out for x in [0, 10], y in [0, 10] (padded 5%).
        let frame = super::super::plot::Frame {
            x: (0.0, 10.0),
            y: (-0.5, 10.5),
            left: 64,
            top: 24,
            right: 384,
            bottom: 266,
        };
        let at = |x: f64, y: f64| {
            let (px, py) = frame.to_pixel(x, y);
            img.get_pixel(px.round() as u32, py.round() as u32).0
        };
        assert_eq!(at(0.0, 1.0), red, "the red mean");
        assert_eq!(at(0.0, 0.0), red);
        assert_eq!(at(10.0, 10.0), blue);
        assert_eq!(at(3.3, 6.7), [255; 3]);
    }
}
