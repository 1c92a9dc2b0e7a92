//! MNIST's IDX files (LeCun's format: two zero bytes, a type code, the number of
//! dimensions, each dimension as a big-endian u32, then the values row-major) and turning a
//! folder of them into an image cache.
//!
//! A folder is MNIST when it holds `train-images-idx3-ubyte` (the dot spelling
//! `train-images.idx3-ubyte` works too). The training files become the train split and the
//! `t10k` files, when present, the validation split. Labels become ten attributes
//! `digit_0` .. `digit_9` (+1 for the image's digit, -1 for the others), so the attribute
//! tools (`latent-map --attr digit_3`, conditional models) work on digits.

use super::cache::CacheContents;
use super::celeba::Split;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The only value type MNIST uses.
const UNSIGNED_BYTE: u8 = 0x08;
/// MNIST images are 28x28; larger dimensions are refused before allocating.
const MAX_SIDE: usize = 4096;

/// The dimensions and values of one IDX file of unsigned bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub values: Vec<u8>,
}

/// Parses IDX bytes; the message says what is wrong (the caller adds the file name).
pub fn parse(bytes: &[u8]) -> std::result::Result<Idx, String> {
    let [0, 0, kind, rank, rest @ ..] = bytes else {
        return Err("not an IDX file (it must start with two zero bytes)".into());
    };
    if *kind != UNSIGNED_BYTE {
        return Err(format!(
            "IDX value type {kind:#04x} is not supported (MNIST uses unsigned bytes, 0x08)"
        ));
    }
    let rank = *rank as usize;
    if !(1..=3).contains(&rank) {
        return Err(format!("an IDX file of {rank} dimensions is not MNIST"));
    }
    if rest.len() < 4 * rank {
        return Err("the file ends inside its header".into());
    }
    let dims: Vec<usize> = rest[..4 * rank]
        .chunks(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    if dims.iter().skip(1).any(|&d| d == 0 || d > MAX_SIDE) {
        return Err(format!(
            "image dimensions {:?} are not plausible",
            &dims[1..]
        ));
    }
    let values = &rest[4 * rank..];
    let want = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("the dimensions overflow")?;
    if values.len() != want {
        return Err(format!(
            "the header promises {want} values ({dims:?}) but the file holds {} (truncated download?)",
            values.len()
        ));
    }
    Ok(Idx {
        dims,
        values: values.to_vec(),
    })
}

/// IDX bytes for `dims` and `values` (the inverse of [`parse`]; tests write MNIST with it).
pub fn encode(dims: &[usize], values: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, UNSIGNED_BYTE, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(values);
    out
}

/// The file of `stem` (e.g. `train-images` + `idx3-ubyte`) in `dir`, in either spelling.
fn find(dir: &Path, stem: &str, kind: &str) -> Option<PathBuf> {
    [format!("{stem}-{kind}"), format!("{stem}.{kind}")]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether `dir` holds MNIST (or only its gzipped files, which [`load_folder`] explains).
pub fn is_mnist_folder(dir: &Path) -> bool {
    find(dir, "train-images", "idx3-ubyte").is_some()
        || find(dir, "train-images", "idx3-ubyte.gz").is_some()
}

fn read(path: &Path) -> Result<Idx> {
    crate::error::parse_file(path, parse)
}

/// The images `[N, H, W]` and labels `[N]` of one MNIST part (`train` or `t10k`).
fn read_part(dir: &Path, part: &str) -> Result<Option<(Idx, Idx, PathBuf)>> {
    let Some(images_path) = find(dir, &format!("{part}-images"), "idx3-ubyte") else {
        return Ok(None);
    };
    let images = read(&images_path)?;
    if images.dims.len() != 3 {
        return Err(Error::File {
            path: images_path,
            message: format!(
                "images must have 3 dimensions [N, H, W], got {:?}",
                images.dims
            ),
        });
    }
    let labels_path =
        find(dir, &format!("{part}-labels"), "idx1-ubyte").ok_or_else(|| Error::File {
            path: dir.join(format!("{part}-labels-idx1-ubyte")),
            message: format!("missing: the labels of {}", images_path.display()),
        })?;
    let labels = read(&labels_path)?;
    if labels.dims != [images.dims[0]] || labels.values.iter().any(|&l| l > 9) {
        return Err(Error::File {
            path: labels_path,
            message: format!(
                "expected {} labels from 0 to 9 (one per image), got dimensions {:?}",
                images.dims[0], labels.dims
            ),
        });
    }
    Ok(Some((images, labels, images_path)))
}

/// The MNIST folder `dir` as cache contents (1 channel, the files' own size).
pub fn load_folder(dir: &Path) -> Result<CacheContents> {
    let train = read_part(dir, "train")?.ok_or_else(|| {
        let gz = find(dir, "train-images", "idx3-ubyte.gz");
        Error::File {
            path: dir.to_path_buf(),
            message: match gz {
                Some(gz) => format!(
                    "{} is compressed; unpack the four MNIST files first (gunzip {}/*.gz)",
                    gz.display(),
                    dir.display()
                ),
                None => "no train-images-idx3-ubyte here".into(),
            },
        }
    })?;
    let test = read_part(dir, "t10k")?;
    let (h, w) = (train.0.dims[1], train.0.dims[2]);
    let mut contents = CacheContents {
        height: h,
        width: w,
        channels: 1,
        attribute_names: (0..10).map(|d| format!("digit_{d}")).collect(),
        source: format!("{} (MNIST IDX)", dir.display()),
        ..CacheContents::default()
    };
    for ((images, labels, path), split, prefix) in [
        (Some(train), Split::Train, "train"),
        (test, Split::Val, "t10k"),
    ]
    .into_iter()
    .filter_map(|(p, s, n)| p.map(|p| (p, s, n)))
    {
        if images.dims[1..] != [h, w] {
            return Err(Error::File {
                path,
                message: format!(
                    "its images are {}x{} but the training images are {w}x{h}",
                    images.dims[2], images.dims[1]
                ),
            });
        }
        for (i, &label) in labels.values.iter().enumerate() {
            contents.names.push(format!("{prefix}-{i:05}"));
            contents.splits.push(split);
            contents
                .attributes
                .extend((0..10).map(|d| if d == label { 1i8 } else { -1 }));
        }
        contents.pixels.extend_from_slice(&images.values);
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encode_then_parse_round_trips(n in 0usize..4, h in 1usize..5, w in 1usize..5, seed: u8) {
            let values: Vec<u8> = (0..n * h * w).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
            let idx = parse(&encode(&[n, h, w], &values)).unwrap();
            prop_assert_eq!(idx, Idx { dims: vec![n, h, w], values });
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&bytes);
        }
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let good = encode(&[2, 2, 2], &[0; 8]);
        assert!(parse(&good[..good.len() - 1])
            .unwrap_err()
            .contains("truncated"));
        assert!(parse(b"\x89PNG....").unwrap_err().contains("not an IDX"));
        let mut floats = good.clone();
        floats[2] = 0x0d;
        assert!(parse(&floats).unwrap_err().contains("0x0d"));
        let huge = encode(&[u32::MAX as usize, 4096, 4096], &[]);
        assert!(parse(&huge).is_err());
    }
}
