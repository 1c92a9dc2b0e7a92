//! `prepare`: a CelebA-layout folder -> an image cache. JPEGs are decoded in parallel,
//! center-cropped (CelebA's customary 148x148 of 178x218, proportionally for other sizes
//! and aspect ratios) and resized with a Lanczos-3 filter. A file that cannot be decoded is
//! skipped and reported; malformed annotation files are errors naming file and line.

use super::balanced_split::{balanced_split, SplitRule};
use super::cache::CacheContents;
use super::celeba::{load_attributes, load_partition, Attributes, Split};
use super::folder::{fingerprint, image_folder, list_images, Fnv};
use crate::{Error, Result};
use image::imageops::FilterType;
use indicatif::ProgressBar;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// CelebA's customary crop: 148 pixels of the 178-pixel-wide aligned images.
pub const CELEBA_CROP_FRACTION: f32 = 148.0 / 178.0;

#[derive(Clone, Debug)]
pub struct PrepareOptions {
    pub width: usize,
    pub height: usize,
    /// Width of the center crop as a fraction of the image width.
    pub crop_fraction: f32,
    pub filter: ResizeFilter,
    pub split: SplitRule,
}

impl PrepareOptions {
    /// `width x height`, `crop_fraction`, Lanczos-3 and the official split.
    pub fn new(width: usize, height: usize, crop_fraction: f32) -> PrepareOptions {
        PrepareOptions {
            width,
            height,
            crop_fraction,
            filter: ResizeFilter::default(),
            split: SplitRule::default(),
        }
    }

    /// Whether the filter or the split is not the default (such caches get their own
    /// default name and fingerprint).
    pub fn is_custom(&self) -> bool {
        self.filter != ResizeFilter::default() || self.split != SplitRule::default()
    }
}

/// The resampling filter of the resize. Downscaling widens each filter by the scale, so
/// `Triangle` is the antialiased bilinear of PIL and torchvision (`antialias=True`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResizeFilter {
    #[default]
    Lanczos3,
    Triangle,
    Nearest,
}

impl ResizeFilter {
    pub const NAMES: [&'static str; 3] = ["lanczos3", "triangle", "nearest"];

    pub fn parse(s: &str) -> Option<ResizeFilter> {
        match s {
            "lanczos3" => Some(ResizeFilter::Lanczos3),
            "triangle" => Some(ResizeFilter::Triangle),
            "nearest" => Some(ResizeFilter::Nearest),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ResizeFilter::Lanczos3 => "lanczos3",
            ResizeFilter::Triangle => "triangle",
            ResizeFilter::Nearest => "nearest",
        }
    }

    fn image_filter(&self) -> FilterType {
        match self {
            ResizeFilter::Lanczos3 => FilterType::Lanczos3,
            ResizeFilter::Triangle => FilterType::Triangle,
            ResizeFilter::Nearest => FilterType::Nearest,
        }
    }
}

/// What `prepare` found, beyond the cache itself.
#[derive(Debug, Default)]
pub struct PrepareReport {
    pub images_found: usize,
    /// `(file name, reason)` of every image that could not be used.
    pub skipped: Vec<(String, String)>,
    /// Rows of the annotation files repeated word for word (kept once).
    pub identical_duplicate_rows: usize,
    pub without_attributes: usize,
    pub attribute_rows_without_images: usize,
    pub without_partition: usize,
    /// Whether the split came from `list_eval_partition.txt`.
    pub partition_file: bool,
    pub attribute_file: bool,
    pub seconds: f64,
}

/// Parses "32" (square) or "64x48" (width x height).
pub fn parse_size(s: &str) -> Result<(usize, usize)> {
    let bad = || {
        Error::Config(format!(
            "size \"{s}\" is not N or WIDTHxHEIGHT with each from 1 to 4096 (e.g. 32 or 64x48)"
        ))
    };
    let parse = |t: &str| {
        t.trim()
            .parse::<usize>()
            .ok()
            .filter(|&v| (1..=4096).contains(&v))
    };
    match s.split_once(['x', 'X']) {
        Some((w, h)) => Ok((parse(w).ok_or_else(bad)?, parse(h).ok_or_else(bad)?)),
        None => parse(s).map(|v| (v, v)).ok_or_else(bad),
    }
}

/// The centered crop `(x0, y0, width, height)` of a `w x h` image for a `tw x th` target:
/// `fraction` of the width, the target's aspect ratio, shrunk to fit.
pub fn crop_box(w: u32, h: u32, tw: usize, th: usize, fraction: f32) -> (u32, u32, u32, u32) {
    let aspect = th as f64 / tw as f64;
    let mut cw = (w as f64 * fraction as f64).round().max(1.0);
    let mut ch = (cw * aspect).round().max(1.0);
    if ch > h as f64 {
        ch = h as f64;
        cw = (ch / aspect).round().clamp(1.0, w as f64);
    }
    let (cw, ch) = (cw.min(w as f64) as u32, ch as u32);
    ((w - cw) / 2, (h - ch) / 2, cw, ch)
}

/// Decodes, crops and resizes one image into `out` (HWC RGB bytes). A JPEG without its
/// end-of-image marker (a cut-off download) is refused: decoders would fill it in gray.
pub fn load_image(path: &Path, opts: &PrepareOptions, out: &mut [u8]) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    decode_image(&bytes, opts, out)
}

/// [`load_image`] on bytes held in memory (used by fuzzing and tests). `out` must hold
/// `opts.width * opts.height * 3` bytes.
pub fn decode_image(bytes: &[u8], opts: &PrepareOptions, out: &mut [u8]) -> Result<(), String> {
    let format = image::guess_format(bytes).map_err(|e| e.to_string())?;
    if format == image::ImageFormat::Jpeg && !has_jpeg_end(bytes) {
        return Err("truncated JPEG (no end-of-image marker)".into());
    }
    let reader = || image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let (w, h) = reader().into_dimensions().map_err(|e| e.to_string())?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels > MAX_PIXELS {
        return Err(format!(
            "{w} x {h} pixels is over the {} megapixel limit",
            MAX_PIXELS / 1_000_000
        ));
    }
    if pixels > bytes.len() as u64 * MAX_PIXELS_PER_BYTE {
        return Err(format!(
            "{w} x {h} pixels from {} bytes: more than a real image compresses to \
             (over {MAX_PIXELS_PER_BYTE} pixels a byte)",
            bytes.len()
        ));
    }
    let img = reader().decode().map_err(|e| e.to_string())?.to_rgb8();
    fit_image(&img, opts, out);
    Ok(())
}

/// Crops `img` as `prepare` does and resizes it to `opts`' size into `out` (RGB bytes).
pub fn fit_image(img: &image::RgbImage, opts: &PrepareOptions, out: &mut [u8]) {
    let (x, y, cw, ch) = crop_box(
        img.width(),
        img.height(),
        opts.width,
        opts.height,
        opts.crop_fraction,
    );
    let cropped = image::imageops::crop_imm(img, x, y, cw, ch).to_image();
    let resized = image::imageops::resize(
        &cropped,
        opts.width as u32,
        opts.height as u32,
        opts.filter.image_filter(),
    );
    out.copy_from_slice(resized.as_raw());
}

/// The largest image `decode_image` decodes, 10000 x 10000 (the largest `prepare`
/// promises, docs/robustness.md): a header may promise far more pixels than its few bytes
/// hold (a decompression bomb: seconds and gigabytes for nothing).
pub const MAX_PIXELS: u64 = 100_000_000;

/// The most pixels per byte of file `decode_image` decodes. A JPEG holds at most about 64
/// pixels a byte (an 8x8 block takes at least a few bits), an RGB PNG about 350 and a
/// grayscale one about 1000 (deflate's 1032:1), so a header promising more is a bomb: a
/// few hundred bytes claiming 100 megapixels decode for seconds into nothing. (Only a
/// uniform 1-bit PNG could hold more.)
pub const MAX_PIXELS_PER_BYTE: u64 = 2048;

/// Whether the JPEG end-of-image marker (FF D9) is among the last bytes (some writers
/// append padding after it).
fn has_jpeg_end(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// The split of an image not listed in a partition file: 80% train, 10% val, 10% test by a
/// hash of its name, so it does not depend on which other files are present.
pub fn deterministic_split(name: &str) -> Split {
    let mut hash = Fnv::default();
    hash.add(name.as_bytes());
    match hash.0 % 10 {
        0 => Split::Val,
        1 => Split::Test,
        _ => Split::Train,
    }
}

/// Reads the folder `dir` and builds the cache contents. Runs on the current rayon pool.
pub fn prepare(
    dir: &Path,
    opts: &PrepareOptions,
    bar: &ProgressBar,
) -> Result<(CacheContents, PrepareReport)> {
    let start = std::time::Instant::now();
    let folder = image_folder(dir)?;
    let fingerprint = fingerprint(dir, opts);
    let listing = list_images(&folder)?;
    let names = listing.names;
    let mut report = PrepareReport {
        images_found: names.len() + listing.skipped.len(),
        skipped: listing.skipped,
        ..Default::default()
    };
    let (attributes, partition) = read_annotations(dir, &mut report)?;
    let (kept, pixels) = decode_all(&folder, &names, opts, bar, &mut report)?;
    let (attribute_names, attribute_values) = match &attributes {
        None => (vec![], vec![]),
        Some(a) => attribute_table(a, &kept, &names, &mut report),
    };
    let splits = match &opts.split {
        SplitRule::Official => assign_splits(&kept, partition.as_ref(), &mut report),
        SplitRule::Balanced(on) if attribute_names.is_empty() => {
            return Err(Error::File {
                path: dir.to_path_buf(),
                message: format!(
                    "--split balanced on {} needs the attribute file list_attr_celeba.txt",
                    on.join(",")
                ),
            })
        }
        SplitRule::Balanced(on) => balanced_split(&kept, &attribute_names, &attribute_values, on)?,
    };
    report.seconds = start.elapsed().as_secs_f64();
    let contents = CacheContents {
        height: opts.height,
        width: opts.width,
        channels: 3,
        names: kept,
        attribute_names,
        attributes: attribute_values,
        splits,
        pixels,
        fingerprint,
        source: format!(
            "{} cropped to {:.4} of the width, resized to {}x{} ({}), {}",
            dir.display(),
            opts.crop_fraction,
            opts.width,
            opts.height,
            opts.filter.name(),
            opts.split.describe()
        ),
    };
    Ok((contents, report))
}

type Partition = HashMap<String, Split>;

/// `list_attr_celeba.txt` and `list_eval_partition.txt` of `dir`, where present.
fn read_annotations(
    dir: &Path,
    report: &mut PrepareReport,
) -> Result<(Option<Attributes>, Option<Partition>)> {
    let attr_path = dir.join("list_attr_celeba.txt");
    let attributes = if attr_path.exists() {
        report.attribute_file = true;
        let a = load_attributes(&attr_path)?;
        report.identical_duplicate_rows += a.identical_duplicates;
        Some(a)
    } else {
        None
    };
    let part_path = dir.join("list_eval_partition.txt");
    let partition = if part_path.exists() {
        report.partition_file = true;
        let p = load_partition(&part_path)?;
        report.identical_duplicate_rows += p.identical_duplicates;
        Some(p.rows.into_iter().collect())
    } else {
        None
    };
    Ok((attributes, partition))
}

/// Decodes every image in parallel; returns the names kept and their pixels (the
/// undecodable ones go to `report.skipped`). None decodable is an error naming the folder.
fn decode_all(
    folder: &Path,
    names: &[String],
    opts: &PrepareOptions,
    bar: &ProgressBar,
    report: &mut PrepareReport,
) -> Result<(Vec<String>, Vec<u8>)> {
    let image_len = opts.width * opts.height * 3;
    let mut pixels = vec![0u8; names.len() * image_len];
    bar.set_length(names.len() as u64);
    let outcomes: Vec<std::result::Result<(), String>> = pixels
        .par_chunks_mut(image_len)
        .zip(names.par_iter())
        .map(|(out, name)| {
            let r = load_image(&folder.join(name), opts, out);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    // Keep the decoded images, compacting the pixel buffer over the skipped ones.
    let mut kept = vec![];
    for (i, (name, outcome)) in names.iter().zip(outcomes).enumerate() {
        match outcome {
            Ok(()) => {
                let k = kept.len();
                pixels.copy_within(i * image_len..(i + 1) * image_len, k * image_len);
                kept.push(name.clone());
            }
            Err(reason) => report.skipped.push((name.clone(), reason)),
        }
    }
    pixels.truncate(kept.len() * image_len);
    if kept.is_empty() {
        return Err(Error::File {
            path: folder.to_path_buf(),
            message: format!("none of the {} images could be decoded", names.len()),
        });
    }
    Ok((kept, pixels))
}

/// The attribute names and the kept images' rows (0 for an image without a row); counts
/// the rows that name no image of the folder (`names`: every image listed).
fn attribute_table(
    a: &Attributes,
    kept: &[String],
    names: &[String],
    report: &mut PrepareReport,
) -> (Vec<String>, Vec<i8>) {
    let rows: HashMap<&str, &Vec<i8>> = a.rows.iter().map(|(n, v)| (n.as_str(), v)).collect();
    let mut values = Vec::with_capacity(kept.len() * a.names.len());
    for name in kept {
        match rows.get(name.as_str()) {
            Some(v) => values.extend_from_slice(v),
            None => {
                report.without_attributes += 1;
                values.extend(std::iter::repeat_n(0, a.names.len()));
            }
        }
    }
    let present: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    report.attribute_rows_without_images = a
        .rows
        .iter()
        .filter(|(n, _)| !present.contains(n.as_str()))
        .count();
    (a.names.clone(), values)
}

/// Each kept image's split: the partition file's, or a hash of its name.
fn assign_splits(
    kept: &[String],
    partition: Option<&Partition>,
    report: &mut PrepareReport,
) -> Vec<Split> {
    kept.iter()
        .map(|name| match partition.and_then(|p| p.get(name)) {
            Some(&s) => s,
            None => {
                report.without_partition += usize::from(partition.is_some());
                deterministic_split(name)
            }
        })
        .collect()
}

/// Writes the names and reasons of skipped images, one per line.
pub fn write_skipped_log(path: &Path, skipped: &[(String, String)]) -> Result<()> {
    let text: String = skipped.iter().map(|(n, r)| format!("{n}\t{r}\n")).collect();
    crate::atomic_file::write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16x16 JPEG whose frame header claims `height` x `width` pixels.
    fn jpeg_claiming(height: u16, width: u16) -> Vec<u8> {
        let mut jpeg = Vec::new();
        image::RgbImage::new(16, 16)
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        // The frame header (FF C0, length, precision) then height and width, big-endian.
        let sof = jpeg.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        jpeg
    }

    #[test]
    fn an_image_whose_header_promises_too_many_pixels_is_refused_before_decoding() {
        let opts = PrepareOptions::new(8, 8, CELEBA_CROP_FRACTION);
        let jpeg = jpeg_claiming(0x400E, 0x2024);
        let err = decode_image(&jpeg, &opts, &mut [0; 8 * 8 * 3]).unwrap_err();
        assert!(err.contains("8228 x 16398 pixels"), "{err}");
    }

    /// A few hundred bytes claiming just under the limit (a fuzzer's find: 65524 x 1522,
    /// seconds of decoding and 300 MB for nothing) are refused before decoding too.
    #[test]
    fn a_header_promising_far_more_pixels_than_its_bytes_can_hold_is_refused() {
        let opts = PrepareOptions::new(8, 8, CELEBA_CROP_FRACTION);
        let jpeg = jpeg_claiming(1522, 65524);
        let err = decode_image(&jpeg, &opts, &mut [0; 8 * 8 * 3]).unwrap_err();
        assert!(err.contains("65524 x 1522 pixels from"), "{err}");
    }

    #[test]
    fn celeba_images_get_the_customary_148_square() {
        assert_eq!(
            crop_box(178, 218, 32, 32, CELEBA_CROP_FRACTION),
            (15, 35, 148, 148)
        );
        assert_eq!(
            crop_box(178, 218, 64, 64, CELEBA_CROP_FRACTION),
            (15, 35, 148, 148)
        );
        // Twice the size: twice the crop.
        assert_eq!(
            crop_box(356, 436, 32, 32, CELEBA_CROP_FRACTION),
            (30, 70, 296, 296)
        );
        // 64 wide by 48 high keeps the target's aspect ratio.
        assert_eq!(
            crop_box(178, 218, 64, 48, CELEBA_CROP_FRACTION),
            (15, 53, 148, 111)
        );
    }

    #[test]
    fn crops_always_fit_the_image() {
        for (w, h) in [(1, 1), (1, 1000), (1000, 1), (178, 20), (3, 7)] {
            for (tw, th) in [(32, 32), (64, 48), (16, 64)] {
                let (x, y, cw, ch) = crop_box(w, h, tw, th, CELEBA_CROP_FRACTION);
                assert!(
                    cw >= 1 && ch >= 1 && x + cw <= w && y + ch <= h,
                    "{w}x{h} -> {tw}x{th}"
                );
            }
        }
    }

    #[test]
    fn sizes_parse_square_and_rectangular() {
        assert_eq!(parse_size("32").unwrap(), (32, 32));
        assert_eq!(parse_size("64x48").unwrap(), (64, 48));
        for bad in ["", "0", "x", "64x", "-3", "32x0", "99999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deterministic_split_keeps_its_assignments() {
        // FNV-1a of each name, mod 10 (0 val, 1 test, else train): caches made by
        // earlier releases must keep their splits.
        let names: Vec<String> = (1..=39).map(|i| format!("{i:06}.jpg")).collect();
        let codes: String = names
            .iter()
            .map(|n| match deterministic_split(n) {
                Split::Val => '0',
                Split::Test => '1',
                Split::Train => 't',
            })
            .collect();
        assert_eq!(codes, "tttttttt1ttt0ttt0100ttttttttttttttt1t1t");
    }

    #[test]
    fn deterministic_split_is_roughly_80_10_10() {
        let names: Vec<String> = (1..=10000).map(|i| format!("{i:06}.jpg")).collect();
        let count = |s| names.iter().filter(|n| deterministic_split(n) == s).count();
        assert!((7500..8500).contains(&count(Split::Train)));
        assert!((700..1300).contains(&count(Split::Val)));
        assert!((700..1300).contains(&count(Split::Test)));
    }
}
