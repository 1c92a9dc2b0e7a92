//! What a data folder holds: its image files (only regular files, after following
//! symlinks, with names a cache can store), and a fingerprint of everything `prepare`
//! reads from it, so that a cache made from the folder is known to be out of date once an
//! image is added, removed or changed.

use super::prepare::PrepareOptions;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The folder holding the images: `DIR/img_align_celeba` (CelebA's layout) or `DIR`.
pub fn image_folder(dir: &Path) -> Result<PathBuf> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::File {
            path: dir.to_path_buf(),
            message: "is a file, not a folder (expected a CelebA folder with img_align_celeba/, \
                      or a cache from `vae-cpu prepare`)"
                .into(),
        });
    }
    if !dir.is_dir() {
        return Err(Error::File {
            path: dir.to_path_buf(),
            message: "no such folder (expected a CelebA folder with img_align_celeba/)".into(),
        });
    }
    Ok(images_in(dir))
}

/// `DIR/img_align_celeba` when it is a folder, else `DIR` (no checks).
fn images_in(dir: &Path) -> PathBuf {
    let celeba = dir.join("img_align_celeba");
    if celeba.is_dir() {
        celeba
    } else {
        dir.to_path_buf()
    }
}

/// The image files of a folder, sorted by name, and the entries that look like images but
/// cannot be used, with the reason.
#[derive(Debug, Default)]
pub struct Listing {
    pub names: Vec<String>,
    pub skipped: Vec<(String, String)>,
}

/// Whether a file name has an image extension (jpg, jpeg, png; any case).
fn is_image_name(name: &str) -> bool {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png"))
}

/// Lists `folder`'s images. A FIFO, device or folder named like an image is skipped (reading
/// a FIFO would wait forever), and so is a name that is not UTF-8 or holds a line break
/// (the cache stores one name per line).
pub fn list_images(folder: &Path) -> Result<Listing> {
    let io = |source| Error::Io {
        path: folder.to_path_buf(),
        source,
    };
    let mut listing = Listing::default();
    for entry in std::fs::read_dir(folder).map_err(io)? {
        let entry = entry.map_err(io)?;
        let raw = entry.file_name();
        let shown = raw.to_string_lossy().replace(['\n', '\r'], "\\n");
        if !is_image_name(&shown) {
            continue;
        }
        let Some(name) = raw.to_str() else {
            listing
                .skipped
                .push((shown, "the file name is not UTF-8".into()));
            continue;
        };
        if name.contains(['\n', '\r']) {
            let why = "the file name holds a line break (a cache stores one name per line)";
            listing.skipped.push((shown, why.into()));
            continue;
        }
        match std::fs::metadata(entry.path()) {
            Ok(m) if m.is_file() => listing.names.push(name.to_string()),
            Ok(_) => listing.skipped.push((
                shown,
                "not a regular file (a folder, FIFO or device)".into(),
            )),
            Err(e) => listing
                .skipped
                .push((shown, format!("cannot be read: {e}"))),
        }
    }
    if listing.names.is_empty() {
        let also = match listing.skipped.len() {
            0 => String::new(),
            n => format!(" ({n} entries named like images could not be used)"),
        };
        return Err(Error::File {
            path: folder.to_path_buf(),
            message: format!("no images (.jpg, .jpeg or .png) in this folder{also}"),
        });
    }
    listing.names.sort();
    listing.skipped.sort();
    Ok(listing)
}

/// A digest of what `prepare` would read from `dir` with `opts`: the settings, and the
/// name, size and modification time of every image and of the annotation and IDX files.
/// Two calls agree exactly when nothing `prepare` reads has changed.
pub fn fingerprint(dir: &Path, opts: &PrepareOptions) -> String {
    let mut hash = Fnv::default();
    let settings = format!("{}x{} {}", opts.width, opts.height, opts.crop_fraction);
    hash.add(settings.as_bytes());
    // The defaults add nothing, so caches prepared before these options keep their print.
    if opts.is_custom() {
        hash.add(format!(" {} {}", opts.filter.name(), opts.split.describe()).as_bytes());
    }
    let mut files = 0usize;
    let images = images_in(dir);
    let passes: [(&Path, NameFilter); 2] = [(dir, is_annotation_name), (&images, is_image_name)];
    for (folder, wanted) in passes {
        let Ok(entries) = std::fs::read_dir(folder) else {
            continue;
        };
        let mut found: Vec<(String, u64, u128)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let m = std::fs::metadata(e.path()).ok().filter(|m| m.is_file())?;
                let modified = m
                    .modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?;
                wanted(&name).then_some((name, m.len(), modified.as_nanos()))
            })
            .collect();
        found.sort();
        files += found.len();
        for (name, size, modified) in found {
            hash.add(format!("{name}\0{size}\0{modified}\n").as_bytes());
        }
    }
    format!("{files} files, {:016x}", hash.0)
}

type NameFilter = fn(&str) -> bool;

/// The annotation and MNIST files `prepare` reads beside the images.
fn is_annotation_name(name: &str) -> bool {
    name == "list_attr_celeba.txt" || name == "list_eval_partition.txt" || name.contains("ubyte")
}

/// FNV-1a, 64 bit: a stable digest (the standard library's hasher may change between
/// releases, and a cache outlives the binary that made it). Also splits the images no
/// partition file lists ([`super::prepare::deterministic_split`]).
pub(crate) struct Fnv(pub(crate) u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf29ce484222325)
    }
}

impl Fnv {
    pub(crate) fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100000001b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> PrepareOptions {
        PrepareOptions::new(8, 8, 1.0)
    }

    #[test]
    fn the_fingerprint_follows_the_files_and_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), b"x").unwrap();
        let first = fingerprint(dir.path(), &opts());
        assert_eq!(first, fingerprint(dir.path(), &opts()));
        std::fs::write(dir.path().join("notes.md"), b"x").unwrap();
        assert_eq!(
            first,
            fingerprint(dir.path(), &opts()),
            "other files do not count"
        );
        std::fs::write(dir.path().join("b.png"), b"x").unwrap();
        let second = fingerprint(dir.path(), &opts());
        assert_ne!(first, second);
        std::fs::write(dir.path().join("list_eval_partition.txt"), b"a.jpg 0\n").unwrap();
        assert_ne!(second, fingerprint(dir.path(), &opts()));
        let mut wider = opts();
        wider.width = 9;
        assert_ne!(
            fingerprint(dir.path(), &opts()),
            fingerprint(dir.path(), &wider)
        );
    }

    #[cfg(unix)]
    #[test]
    fn special_files_and_unstorable_names_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("two\nlines.jpg"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("folder.jpg")).unwrap();
        let fifo = dir.path().join("pipe.jpg");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let l = list_images(dir.path()).unwrap();
        assert_eq!(l.names, ["good.jpg"]);
        let skipped: Vec<&str> = l.skipped.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(skipped, ["folder.jpg", "pipe.jpg", "two\\nlines.jpg"]);
    }
}
