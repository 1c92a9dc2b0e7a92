//! The prepared-image cache: one safetensors file that training memory-maps.
//!
//! Tensors: `pixels` u8 `[N, H, W, C]` (row-major RGB, as decoded), `split` u8 `[N]`
//! (0 train, 1 val, 2 test) and, when the data had attributes, `attributes` i8 `[N, A]`
//! (+1 / -1, 0 for an image without an attribute row). Metadata: a format marker, the file
//! names (one per line), the attribute names (space separated) and where the data came from.

use super::celeba::Split;
use crate::{Error, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

const FORMAT: &str = "vae-cpu-cache-1";

/// Everything a cache holds, in memory: what `prepare` builds and writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CacheContents {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub names: Vec<String>,
    pub attribute_names: Vec<String>,
    /// `names.len() * attribute_names.len()` values, row per image.
    pub attributes: Vec<i8>,
    pub splits: Vec<Split>,
    /// `names.len() * height * width * channels` bytes, HWC per image.
    pub pixels: Vec<u8>,
    /// A free-form description of the source folder and preprocessing.
    pub source: String,
    /// What the cache was made from ([`super::folder::fingerprint`]; empty when not from
    /// a folder, or made before fingerprints were kept).
    pub fingerprint: String,
}

fn split_code(s: Split) -> u8 {
    match s {
        Split::Train => 0,
        Split::Val => 1,
        Split::Test => 2,
    }
}

impl CacheContents {
    /// Writes the cache atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        let n = self.names.len();
        let bad = |m: &str| Error::File {
            path: path.to_path_buf(),
            message: m.to_string(),
        };
        if self.pixels.len() != n * self.height * self.width * self.channels
            || self.splits.len() != n
            || self.attributes.len() != n * self.attribute_names.len()
        {
            return Err(bad("cache contents have inconsistent sizes"));
        }
        let splits: Vec<u8> = self.splits.iter().map(|&s| split_code(s)).collect();
        let attributes: Vec<u8> = self.attributes.iter().map(|&a| a as u8).collect();
        let shape = vec![n, self.height, self.width, self.channels];
        let mut views = vec![
            ("pixels", TensorView::new(Dtype::U8, shape, &self.pixels)),
            ("split", TensorView::new(Dtype::U8, vec![n], &splits)),
        ];
        if !self.attribute_names.is_empty() {
            let shape = vec![n, self.attribute_names.len()];
            views.push(("attributes", TensorView::new(Dtype::I8, shape, &attributes)));
        }
        let views: Vec<_> = views
            .into_iter()
            .map(|(k, v)| v.map(|v| (k, v)))
            .collect::<Result<_, _>>()
            .map_err(|e| bad(&format!("cannot encode: {e}")))?;
        let meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("names".to_string(), self.names.join("\n")),
            (
                "attribute_names".to_string(),
                self.attribute_names.join(" "),
            ),
            ("source".to_string(), self.source.clone()),
            ("fingerprint".to_string(), self.fingerprint.clone()),
        ]);
        crate::atomic_file::write_with(path, |tmp| {
            safetensors::serialize_to_file(views, &Some(meta), tmp).map_err(|e| match e {
                safetensors::SafeTensorError::IoError(io) => io,
                other => std::io::Error::other(other.to_string()),
            })?;
            sort_metadata(tmp)
        })
    }
}

/// Rewrites the safetensors header of the file at `path` in place, at the same length,
/// with its metadata keys sorted. safetensors takes the metadata as a `HashMap`, whose
/// order changes from run to run, and the same images must give the same bytes (caches
/// prepared on several machines are compared byte for byte).
fn sort_metadata(path: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)?;
    let mut header = vec![0u8; u64::from_le_bytes(len) as usize];
    file.read_exact(&mut header)?;
    let mut value: serde_json::Value =
        serde_json::from_slice(&header).map_err(std::io::Error::other)?;
    if let Some(meta) = value.get_mut("__metadata__") {
        let sorted: std::collections::BTreeMap<String, serde_json::Value> =
            serde_json::from_value(meta.take()).map_err(std::io::Error::other)?;
        *meta = serde_json::to_value(sorted).map_err(std::io::Error::other)?;
    }
    let mut rewritten = serde_json::to_vec(&value).map_err(std::io::Error::other)?;
    if rewritten.len() > header.len() {
        return Err(std::io::Error::other("the sorted header came out longer"));
    }
    // safetensors pads its header with spaces to a multiple of 8 bytes; so do we.
    rewritten.resize(header.len(), b' ');
    file.seek(SeekFrom::Start(8))?;
    file.write_all(&rewritten)
}

/// The split codes of a cache (0 train, 1 val, 2 test); another code is an error.
fn decode_splits(codes: &[u8]) -> std::result::Result<Vec<Split>, String> {
    codes
        .iter()
        .enumerate()
        .map(|(i, &s)| match s {
            0 => Ok(Split::Train),
            1 => Ok(Split::Val),
            2 => Ok(Split::Test),
            _ => Err(format!("image {i} has split code {s}, expected 0, 1 or 2")),
        })
        .collect()
}

/// An opened cache. Pixels and attributes stay in the memory map; names and splits are
/// decoded once.
pub struct Dataset {
    pub path: PathBuf,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub names: Vec<String>,
    pub attribute_names: Vec<String>,
    pub splits: Vec<Split>,
    pub source: String,
    pub fingerprint: String,
    bytes: Bytes,
    pixels: Range<usize>,
    attributes: Range<usize>,
}

enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

impl Dataset {
    /// Memory-maps a cache written by `prepare`; anything malformed is an error naming the
    /// file (a cache is outside data: it is never trusted).
    pub fn open(path: &Path) -> Result<Dataset> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let bytes = if len == 0 {
            Bytes::Owned(vec![])
        } else {
            // SAFETY: the map is read-only and private to this process. Another process
            // truncating the cache while we train could fault; `prepare` never rewrites a
            // cache in place (it writes a new file and renames it).
            Bytes::Mapped(unsafe { memmap2::Mmap::map(&file) }.map_err(io)?)
        };
        Self::from_bytes(path, bytes)
    }

    /// Parses cache bytes held in memory (used by fuzzing and tests).
    pub fn from_vec(path: &Path, bytes: Vec<u8>) -> Result<Dataset> {
        Self::from_bytes(path, Bytes::Owned(bytes))
    }

    fn from_bytes(path: &Path, bytes: Bytes) -> Result<Dataset> {
        let bad = |m: String| Error::File {
            path: path.to_path_buf(),
            message: m,
        };
        let st = SafeTensors::deserialize(&bytes).map_err(|e| {
            bad(format!(
                "not a readable image cache (truncated or corrupt?): {e}"
            ))
        })?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("unreadable header: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad(
                "not a vae-cpu image cache (run `vae-cpu prepare` to make one)".into(),
            ));
        }
        let range_of =
            |name: &str, dtype: Dtype, rank: usize| -> Result<(Range<usize>, Vec<usize>)> {
                let view = st
                    .tensor(name)
                    .map_err(|_| bad(format!("the cache has no \"{name}\" tensor")))?;
                if view.dtype() != dtype || view.shape().len() != rank {
                    return Err(bad(format!(
                        "\"{name}\" is {:?} {:?}, expected {dtype:?} of rank {rank}",
                        view.dtype(),
                        view.shape()
                    )));
                }
                let start = view.data().as_ptr() as usize - bytes.as_ptr() as usize;
                Ok((start..start + view.data().len(), view.shape().to_vec()))
            };
        let (pixels, shape) = range_of("pixels", Dtype::U8, 4)?;
        let [n, height, width, channels] = [shape[0], shape[1], shape[2], shape[3]];
        if height == 0 || width == 0 || !(channels == 1 || channels == 3) {
            return Err(bad(format!(
                "images of {width}x{height}x{channels} are not supported"
            )));
        }
        let (split_range, _) = range_of("split", Dtype::U8, 1)?;
        if split_range.len() != n {
            return Err(bad(format!(
                "{} split entries for {n} images",
                split_range.len()
            )));
        }
        let splits = decode_splits(&bytes[split_range]).map_err(bad)?;
        let names: Vec<String> = match meta.get("names").map(String::as_str) {
            None => return Err(bad("the cache lists no file names".into())),
            Some("") => vec![],
            Some(s) => s.split('\n').map(str::to_string).collect(),
        };
        if names.len() != n {
            return Err(bad(format!("{} file names for {n} images", names.len())));
        }
        let attribute_names: Vec<String> = meta
            .get("attribute_names")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let attributes = if attribute_names.is_empty() {
            0..0
        } else {
            let (range, shape) = range_of("attributes", Dtype::I8, 2)?;
            if shape != [n, attribute_names.len()] {
                return Err(bad(format!(
                    "attributes are {shape:?}, expected [{n}, {}]",
                    attribute_names.len()
                )));
            }
            range
        };
        let source = meta.get("source").cloned().unwrap_or_default();
        let fingerprint = meta.get("fingerprint").cloned().unwrap_or_default();
        drop(st);
        Ok(Dataset {
            path: path.to_path_buf(),
            height,
            width,
            channels,
            names,
            attribute_names,
            splits,
            source,
            fingerprint,
            bytes,
            pixels,
            attributes,
        })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Bytes per image (`H * W * C`).
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Image `i`, HWC bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        let start = self.pixels.start + i * self.image_len();
        &self.bytes[start..start + self.image_len()]
    }

    /// Attribute `j` of image `i`: +1, -1, or 0 when unknown.
    pub fn attribute(&self, i: usize, j: usize) -> i8 {
        self.bytes[self.attributes.start + i * self.attribute_names.len() + j] as i8
    }

    /// Attribute `j` of each of the images `indices`.
    pub fn attribute_of(&self, indices: &[usize], j: usize) -> Vec<i8> {
        indices.iter().map(|&i| self.attribute(i, j)).collect()
    }

    /// The column of an attribute; an unknown name is an error listing the valid ones.
    pub fn attribute_index(&self, name: &str) -> Result<usize> {
        if self.attribute_names.is_empty() {
            return Err(Error::File {
                path: self.path.clone(),
                message: "this cache has no attributes (its data had no list_attr_celeba.txt)"
                    .into(),
            });
        }
        super::celeba::attribute_column(&self.attribute_names, name)
    }

    /// Indices of the images of one split, in file order.
    pub fn indices(&self, split: Split) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.splits[i] == split)
            .collect()
    }

    /// The columns of a conditional model's condition attributes, in the model's order;
    /// an attribute the cache lacks is an error naming it.
    pub fn condition_columns(&self, config: &crate::config::Config) -> Result<Vec<usize>> {
        config
            .model
            .conditions
            .iter()
            .map(|name| {
                self.attribute_index(name).map_err(|e| Error::File {
                    path: self.path.clone(),
                    message: format!(
                        "model \"{}\" is conditioned on attribute {name}: {e}",
                        config.model.name
                    ),
                })
            })
            .collect()
    }

    /// The images must have the model's size, and the cache the attributes a conditional
    /// model is conditioned on.
    pub fn check_fits(&self, config: &crate::config::Config) -> Result<()> {
        let m = &config.model;
        self.check_image_size(&m.name, [m.channels, m.height, m.width])?;
        self.condition_columns(config).map(|_| ())
    }

    /// The images must be `[channels, height, width]`, the input of model `model`.
    pub fn check_image_size(&self, model: &str, [c, h, w]: [usize; 3]) -> Result<()> {
        if (self.channels, self.height, self.width) == (c, h, w) {
            return Ok(());
        }
        Err(Error::File {
            path: self.path.clone(),
            message: format!(
                "the cache holds {}x{}x{} images but model \"{model}\" takes {w}x{h}x{c}; \
                 run `vae-cpu prepare --size {w}x{h}` for it",
                self.width, self.height, self.channels,
            ),
        })
    }

    /// A line such as "train 4000, val 500, test 500".
    pub fn split_summary(&self) -> String {
        split_summary(&self.splits)
    }
}

/// A line such as "train 4000, val 500, test 500" for the splits of a set of images.
pub fn split_summary(splits: &[Split]) -> String {
    let count = |s| splits.iter().filter(|&&x| x == s).count();
    format!(
        "train {}, val {}, test {}",
        count(Split::Train),
        count(Split::Val),
        count(Split::Test)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_contents() -> CacheContents {
        let (h, w, c, n) = (3, 2, 3, 4);
        CacheContents {
            height: h,
            width: w,
            channels: c,
            names: (0..n).map(|i| format!("{i:06}.jpg")).collect(),
            attribute_names: vec!["Smiling".into(), "Male".into()],
            attributes: vec![1, -1, -1, 1, 0, 0, 1, 1],
            splits: vec![Split::Train, Split::Val, Split::Train, Split::Test],
            pixels: (0..n * h * w * c).map(|i| (i * 7 % 256) as u8).collect(),
            source: "test".into(),
            fingerprint: "3 files, 0123456789abcdef".into(),
        }
    }

    #[test]
    fn a_written_cache_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.vaecache");
        let c = sample_contents();
        c.write(&path).unwrap();
        let d = Dataset::open(&path).unwrap();
        assert_eq!((d.height, d.width, d.channels, d.len()), (3, 2, 3, 4));
        assert_eq!(d.names, c.names);
        assert_eq!(d.attribute_names, c.attribute_names);
        assert_eq!(d.splits, c.splits);
        for i in 0..4 {
            assert_eq!(d.image(i), &c.pixels[i * 18..(i + 1) * 18]);
            for j in 0..2 {
                assert_eq!(d.attribute(i, j), c.attributes[i * 2 + j]);
            }
        }
        assert_eq!(d.indices(Split::Train), vec![0, 2]);
        assert_eq!(d.attribute_index("smiling").unwrap(), 0);
        assert!(d
            .attribute_index("Smilin")
            .unwrap_err()
            .to_string()
            .contains("Male"));
    }

    #[test]
    fn truncated_or_foreign_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.vaecache");
        sample_contents().write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 5, 8, bytes.len() / 2, bytes.len() - 1] {
            let err = Dataset::from_vec(&path, bytes[..cut].to_vec())
                .err()
                .unwrap();
            assert!(err.to_string().contains("c.vaecache"), "{err}");
        }
        let err = Dataset::open(&dir.path().join("missing")).err().unwrap();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn inconsistent_contents_are_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sample_contents();
        c.pixels.pop();
        assert!(c.write(&dir.path().join("c")).is_err());
        assert!(!dir.path().join("c").exists());
    }
}
