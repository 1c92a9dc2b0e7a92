//! Procedurally drawn faces in CelebA's layout (`img_align_celeba/*.jpg` of 178x218,
//! `list_attr_celeba.txt`, `list_eval_partition.txt`, CRLF endings like the official
//! files). The attributes really change the picture: Smiling curves the mouth up (and opens
//! it), Eyeglasses draws frames, Male adds a beard shadow and short hair, the hair colors
//! color the hair, Wearing_Hat draws a hat, Pale_Skin lightens the skin, Attractive adds
//! rosy cheeks and make-up. Used by `vae-cpu demo` and by tests that need real files.

use crate::{Error, Result};
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::Path;

/// The 40 attribute names of CelebA, in the official order.
pub const ATTRIBUTE_NAMES: [&str; 40] = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
];

pub const WIDTH: u32 = 178;
pub const HEIGHT: u32 = 218;

/// The traits one face is drawn with.
#[derive(Clone, Debug)]
pub struct Face {
    pub smiling: bool,
    pub eyeglasses: bool,
    pub male: bool,
    pub attractive: bool,
    pub pale: bool,
    pub hat: bool,
    /// 0 black, 1 blond, 2 brown, 3 gray.
    pub hair: usize,
}

impl Face {
    pub fn random(rng: &mut impl Rng) -> Face {
        Face {
            smiling: rng.gen_bool(0.5),
            eyeglasses: rng.gen_bool(0.3),
            male: rng.gen_bool(0.45),
            attractive: rng.gen_bool(0.5),
            pale: rng.gen_bool(0.25),
            hat: rng.gen_bool(0.15),
            hair: rng.gen_range(0..4),
        }
    }

    /// The 40 attribute values (+1 / -1) this face carries.
    pub fn attributes(&self) -> [i8; 40] {
        let mut a = [-1i8; 40];
        let mut set = |name: &str, on: bool| {
            let j = ATTRIBUTE_NAMES
                .iter()
                .position(|n| *n == name)
                .expect("known name");
            a[j] = if on { 1 } else { -1 };
        };
        set("Smiling", self.smiling);
        set("Mouth_Slightly_Open", self.smiling);
        set("Eyeglasses", self.eyeglasses);
        set("Male", self.male);
        set("No_Beard", !self.male);
        set("5_o_Clock_Shadow", self.male);
        set("Wearing_Lipstick", !self.male);
        set("Attractive", self.attractive);
        set("Rosy_Cheeks", self.attractive);
        set("Heavy_Makeup", self.attractive && !self.male);
        set("Pale_Skin", self.pale);
        set("Wearing_Hat", self.hat);
        set("Black_Hair", self.hair == 0);
        set("Blond_Hair", self.hair == 1);
        set("Brown_Hair", self.hair == 2);
        set("Gray_Hair", self.hair == 3);
        set("Young", self.hair != 3);
        a
    }
}

fn in_ellipse(x: f32, y: f32, cx: f32, cy: f32, rx: f32, ry: f32) -> f32 {
    ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2)
}

fn fill_ellipse(img: &mut RgbImage, c: (f32, f32), r: (f32, f32), color: [u8; 3]) {
    paint(img, c, r, |d| d <= 1.0, color);
}

fn ring(img: &mut RgbImage, c: (f32, f32), r: (f32, f32), width: f32, color: [u8; 3]) {
    let inner = ((r.0 - width) / r.0).powi(2);
    paint(img, c, r, |d| d <= 1.0 && d >= inner, color);
}

fn paint(
    img: &mut RgbImage,
    c: (f32, f32),
    r: (f32, f32),
    inside: impl Fn(f32) -> bool,
    color: [u8; 3],
) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let y0 = ((c.1 - r.1).floor() as i64).max(0);
    let y1 = ((c.1 + r.1).ceil() as i64).min(h - 1);
    let x0 = ((c.0 - r.0).floor() as i64).max(0);
    let x1 = ((c.0 + r.0).ceil() as i64).min(w - 1);
    for y in y0..=y1 {
        for x in x0..=x1 {
            if inside(in_ellipse(x as f32, y as f32, c.0, c.1, r.0, r.1)) {
                img.put_pixel(x as u32, y as u32, Rgb(color));
            }
        }
    }
}

/// A stroke through `points`: discs of radius `r` stamped densely along the segments.
fn stroke(img: &mut RgbImage, points: &[(f32, f32)], r: f32, color: [u8; 3]) {
    for pair in points.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let steps = ((b.0 - a.0).hypot(b.1 - a.1) / (r * 0.5)).ceil().max(1.0) as usize;
        for s in 0..=steps {
            let t = s as f32 / steps as f32;
            let p = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
            fill_ellipse(img, p, (r, r), color);
        }
    }
}

fn jitter(rng: &mut impl Rng, base: [u8; 3], amount: i32) -> [u8; 3] {
    base.map(|v| (v as i32 + rng.gen_range(-amount..=amount)).clamp(0, 255) as u8)
}

/// Draws `face` at 178x218; `rng` varies pose, size and colors.
pub fn draw(face: &Face, rng: &mut impl Rng) -> RgbImage {
    let bg = [
        rng.gen_range(60..230),
        rng.gen_range(60..230),
        rng.gen_range(60..230),
    ];
    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, Rgb(bg));
    let cx = 89.0 + rng.gen_range(-5.0..5.0);
    let cy = 118.0 + rng.gen_range(-5.0..5.0);
    let s = rng.gen_range(0.92..1.08);
    let skin = if face.pale {
        [245, 222, 205]
    } else {
        [200, 150, 115]
    };
    let skin = jitter(rng, skin, 12);
    let hair_colors = [
        [25, 20, 20],
        [235, 200, 110],
        [110, 65, 30],
        [170, 170, 170],
    ];
    let hair = jitter(rng, hair_colors[face.hair], 10);
    let l = Layout {
        cx,
        cy,
        s,
        skin,
        hair,
    };
    draw_head(&mut img, face, &l, rng);
    draw_eyes_and_nose(&mut img, face, &l);
    draw_mouth(&mut img, face, &l);
    if face.eyeglasses {
        let frame = jitter(rng, [20, 20, 20], 15);
        draw_glasses(&mut img, &l, frame);
    }
    img
}

/// Where a face is drawn: its center, scale and colors.
struct Layout {
    cx: f32,
    cy: f32,
    s: f32,
    skin: [u8; 3],
    hair: [u8; 3],
}

impl Layout {
    /// The eyes' height and their distance from the center line.
    fn eyes(&self) -> (f32, f32) {
        (self.cy - 5.0 * self.s, 17.0 * self.s)
    }
}

/// Shoulders, neck, hair, the face (with a beard shadow for men), fringe and hat.
fn draw_head(img: &mut RgbImage, face: &Face, l: &Layout, rng: &mut impl Rng) {
    let (cx, cy, s, skin, hair) = (l.cx, l.cy, l.s, l.skin, l.hair);
    let shirt = jitter(rng, [60, 80, 140], 50);
    fill_ellipse(img, (cx, 240.0), (80.0 * s, 45.0), shirt);
    fill_ellipse(img, (cx, cy + 62.0 * s), (20.0 * s, 25.0 * s), skin);
    // Long hair behind the head for women.
    if !face.male {
        fill_ellipse(img, (cx, cy + 15.0 * s), (54.0 * s, 75.0 * s), hair);
    }
    fill_ellipse(img, (cx, cy - 22.0 * s), (50.0 * s, 45.0 * s), hair);
    fill_ellipse(img, (cx, cy + 5.0 * s), (42.0 * s, 56.0 * s), skin);
    if face.male {
        draw_beard(img, l);
    }
    // Fringe over the forehead.
    fill_ellipse(img, (cx, cy - 42.0 * s), (40.0 * s, 14.0 * s), hair);
    if face.hat {
        let hat = jitter(rng, [150, 30, 40], 60);
        fill_ellipse(img, (cx, cy - 50.0 * s), (60.0 * s, 10.0 * s), hat);
        fill_ellipse(img, (cx, cy - 62.0 * s), (42.0 * s, 26.0 * s), hat);
    }
}

/// A beard shadow over the jaw: the face's lower part, around the mouth.
fn draw_beard(img: &mut RgbImage, l: &Layout) {
    let (cx, cy, s) = (l.cx, l.cy, l.s);
    let beard = l.skin.map(|v| (v as f32 * 0.7) as u8);
    for y in (cy + 25.0 * s) as i64..(cy + 61.0 * s) as i64 {
        for x in (cx - 42.0 * s) as i64..(cx + 42.0 * s) as i64 {
            let (xf, yf) = (x as f32, y as f32);
            if in_ellipse(xf, yf, cx, cy + 5.0 * s, 42.0 * s, 56.0 * s) <= 1.0
                && in_ellipse(xf, yf, cx, cy + 36.0 * s, 18.0 * s, 10.0 * s) > 1.0
                && y >= 0
                && x >= 0
                && (y as u32) < HEIGHT
                && (x as u32) < WIDTH
            {
                img.put_pixel(x as u32, y as u32, Rgb(beard));
            }
        }
    }
}

/// Eyes (with eye shadow and blush for attractive faces), brows and the nose.
fn draw_eyes_and_nose(img: &mut RgbImage, face: &Face, l: &Layout) {
    let (cx, cy, s) = (l.cx, l.cy, l.s);
    let (eye_y, dx) = l.eyes();
    for side in [-1.0, 1.0] {
        let ex = cx + side * dx;
        if face.attractive && !face.male {
            fill_ellipse(img, (ex, eye_y - 3.0), (9.0 * s, 5.0 * s), [150, 90, 120]);
        }
        fill_ellipse(img, (ex, eye_y), (7.0 * s, 4.0 * s), [250, 250, 250]);
        fill_ellipse(img, (ex, eye_y), (3.5 * s, 3.5 * s), [40, 30, 30]);
        let brow = [
            (ex - 8.0 * s, eye_y - 10.0 * s),
            (ex + 8.0 * s, eye_y - 11.0 * s),
        ];
        stroke(img, &brow, 1.6 * s, l.hair);
        if face.attractive {
            let cheek = (ex + side * 6.0 * s, cy + 17.0 * s);
            fill_ellipse(img, cheek, (8.0 * s, 5.0 * s), [235, 120, 120]);
        }
    }
    let nose = l.skin.map(|v| (v as f32 * 0.8) as u8);
    let bridge = [
        (cx, eye_y + 4.0 * s),
        (cx - 3.0 * s, cy + 18.0 * s),
        (cx + 3.0 * s, cy + 19.0 * s),
    ];
    stroke(img, &bridge, 1.5 * s, nose);
}

/// Mouth: a smile's corners lie 9 pixels above its middle; a closed mouth is flat.
fn draw_mouth(img: &mut RgbImage, face: &Face, l: &Layout) {
    let (cx, s) = (l.cx, l.s);
    let my = l.cy + 33.0 * s;
    let lips = if face.male {
        [140, 70, 60]
    } else {
        [200, 30, 50]
    };
    let mw = 15.0 * s;
    if !face.smiling {
        let line = [(cx - mw * 0.8, my), (cx + mw * 0.8, my + 0.5)];
        stroke(img, &line, 2.0 * s, lips);
        return;
    }
    let curve: Vec<(f32, f32)> = (0..=16)
        .map(|i| {
            let t = i as f32 / 8.0 - 1.0;
            (cx + t * mw, my - 5.0 * s + 9.0 * s * (1.0 - t * t))
        })
        .collect();
    // An open smile: dark inside, teeth on top, lips around.
    fill_ellipse(img, (cx, my + 1.0 * s), (mw * 0.9, 6.0 * s), [70, 20, 30]);
    fill_ellipse(
        img,
        (cx, my - 2.0 * s),
        (mw * 0.75, 2.5 * s),
        [245, 245, 240],
    );
    stroke(img, &curve, 1.8 * s, lips);
    let top = [(cx - mw, my - 5.0 * s), (cx + mw, my - 5.0 * s)];
    stroke(img, &top, 1.2 * s, lips);
}

/// Two rings around the eyes and the bridge between them.
fn draw_glasses(img: &mut RgbImage, l: &Layout, frame: [u8; 3]) {
    let (cx, s) = (l.cx, l.s);
    let (eye_y, dx) = l.eyes();
    for side in [-1.0, 1.0] {
        ring(
            img,
            (cx + side * dx, eye_y),
            (12.0 * s, 10.0 * s),
            2.2 * s,
            frame,
        );
    }
    let bridge = [(cx - dx + 12.0 * s, eye_y), (cx + dx - 12.0 * s, eye_y)];
    stroke(img, &bridge, 1.5 * s, frame);
}

/// Writes `count` faces drawn from `seed` to `dir` in CelebA's layout: 80% train, 10% val,
/// 10% test. Image `i` depends only on `(seed, i)`.
pub fn write_dataset(dir: &Path, count: usize, seed: u64) -> Result<()> {
    let images = dir.join("img_align_celeba");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(&images).map_err(io(&images))?;
    let faces: Vec<Face> = (0..count)
        .into_par_iter()
        .map(|i| -> Result<Face> {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(i as u64);
            let face = Face::random(&mut rng);
            let img = draw(&face, &mut rng);
            let mut jpeg = vec![];
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92)
                .encode_image(&img)
                .map_err(|e| Error::File {
                    path: images.join(file_name(i)),
                    message: e.to_string(),
                })?;
            // Generated data is cheap to redo: written in place (no fsync per image), but
            // to a regular file only, as every output.
            let path = crate::file_guard::output_target(&images.join(file_name(i)))?;
            std::fs::write(&path, &jpeg).map_err(io(&path))?;
            Ok(face)
        })
        .collect::<Result<_>>()?;
    let mut attrs = format!("{count}\r\n{}\r\n", ATTRIBUTE_NAMES.join(" "));
    let mut parts = String::new();
    for (i, face) in faces.iter().enumerate() {
        let values: Vec<String> = face
            .attributes()
            .iter()
            .map(|v| format!("{v:>2}"))
            .collect();
        attrs += &format!("{} {}\r\n", file_name(i), values.join(" "));
        let split = match i % 10 {
            8 => 1,
            9 => 2,
            _ => 0,
        };
        parts += &format!("{} {split}\r\n", file_name(i));
    }
    crate::atomic_file::write(&dir.join("list_attr_celeba.txt"), attrs.as_bytes())?;
    crate::atomic_file::write(&dir.join("list_eval_partition.txt"), parts.as_bytes())
}

/// CelebA's file naming: `000001.jpg` for the first image.
pub fn file_name(i: usize) -> String {
    format!("{:06}.jpg", i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean absolute difference over the rectangle `xs` x `ys`.
    fn mean_abs_diff(
        a: &RgbImage,
        b: &RgbImage,
        xs: std::ops::Range<u32>,
        ys: std::ops::Range<u32>,
    ) -> f32 {
        let mut sum = 0.0;
        let mut n = 0.0;
        for y in ys {
            for x in xs.clone() {
                for c in 0..3 {
                    sum += (a.get_pixel(x, y)[c] as f32 - b.get_pixel(x, y)[c] as f32).abs();
                    n += 1.0;
                }
            }
        }
        sum / n
    }

    #[test]
    fn attributes_change_the_picture_where_they_should() {
        let base = Face {
            smiling: false,
            eyeglasses: false,
            male: false,
            attractive: false,
            pale: false,
            hat: false,
            hair: 0,
        };
        let draw_with = |f: &Face| draw(f, &mut ChaCha8Rng::seed_from_u64(3));
        let plain = draw_with(&base);
        // The mouth changes with a smile, the top of the picture does not.
        let smile = draw_with(&Face {
            smiling: true,
            ..base.clone()
        });
        assert!(mean_abs_diff(&plain, &smile, 70..110, 138..162) > 20.0);
        assert_eq!(mean_abs_diff(&plain, &smile, 0..178, 0..100), 0.0);
        // Glasses change the eye band and nothing below the nose.
        let glasses = draw_with(&Face {
            eyeglasses: true,
            ..base.clone()
        });
        assert!(mean_abs_diff(&plain, &glasses, 55..125, 95..125) > 10.0);
        assert_eq!(mean_abs_diff(&plain, &glasses, 0..178, 140..218), 0.0);
    }

    #[test]
    fn the_written_folder_parses_as_celeba() {
        let dir = tempfile::tempdir().unwrap();
        write_dataset(dir.path(), 12, 5).unwrap();
        let a =
            crate::data::celeba::load_attributes(&dir.path().join("list_attr_celeba.txt")).unwrap();
        assert_eq!(a.rows.len(), 12);
        assert_eq!(a.names.len(), 40);
        let p = crate::data::celeba::load_partition(&dir.path().join("list_eval_partition.txt"))
            .unwrap();
        assert_eq!(p.rows.len(), 12);
        let img = image::open(dir.path().join("img_align_celeba/000012.jpg")).unwrap();
        assert_eq!((img.width(), img.height()), (WIDTH, HEIGHT));
    }
}
