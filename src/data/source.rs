//! `--data CACHE_OR_DIR`: a cache file is opened as is; a folder is prepared once into
//! `cache/<folder>-<W>x<H>.vaecache`, reused while the folder's fingerprint (its images'
//! names, sizes and times, the annotation files, the size) matches the cache's, and
//! prepared again once it does not.

use super::balanced_split::SplitRule;
use super::folder::fingerprint;
use super::prepare::{
    prepare, write_skipped_log, PrepareOptions, PrepareReport, ResizeFilter, CELEBA_CROP_FRACTION,
};
use super::{cache::split_summary, idx, Dataset};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Opens `data` for a model of `width x height`, preparing a folder first if needed.
pub fn open(data: &Path, width: usize, height: usize, quiet: bool) -> Result<Dataset> {
    if data.is_file() {
        return Dataset::open(data);
    }
    if !data.exists() {
        return Err(Error::File {
            path: data.to_path_buf(),
            message:
                "no such file or folder (give a cache from `vae-cpu prepare` or a CelebA folder)"
                    .into(),
        });
    }
    let canonical = data.canonicalize().map_err(|source| Error::Io {
        path: data.to_path_buf(),
        source,
    })?;
    let opts = PrepareOptions::new(width, height, CELEBA_CROP_FRACTION);
    let cache = default_cache_path(&canonical, &opts);
    let now = fingerprint(&canonical, &opts);
    if let Ok(ds) = Dataset::open(&cache) {
        if ds.fingerprint == now {
            if !quiet {
                eprintln!("using the prepared cache {}", cache.display());
            }
            return Ok(ds);
        }
        if ds.source.starts_with(&format!("{} ", canonical.display())) {
            eprintln!(
                "{} changed since {} was made from it ({} then, {now} now): preparing it again",
                data.display(),
                cache.display(),
                if ds.fingerprint.is_empty() {
                    "no fingerprint"
                } else {
                    &ds.fingerprint
                },
            );
        }
    }
    create_cache_folder()?;
    prepare_into(&canonical, &opts, &cache, quiet)?;
    Dataset::open(&cache)
}

/// Creates `cache/` in the current folder, with a message that names it.
pub fn create_cache_folder() -> Result<()> {
    let here = std::env::current_dir().unwrap_or_default();
    std::fs::create_dir_all("cache").map_err(|e| Error::File {
        path: here.join("cache"),
        message: format!(
            "cannot create the cache folder: {e} (give --out, or run from a writable folder)"
        ),
    })
}

/// Where a folder's cache lives by default: `cache/<folder name>-<W>x<H>.vaecache`, the
/// name taken from the folder's canonical path (so `.` gets its real name). A filter or
/// split other than the default adds to the name (`-triangle`, `-balanced-Smiling-Male`),
/// so that such a cache and the default one never replace each other.
pub fn default_cache_path(dir: &Path, opts: &PrepareOptions) -> PathBuf {
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let name = canonical
        .file_name()
        .map_or("data".into(), |n| n.to_string_lossy().into_owned());
    let mut file = format!("{name}-{}x{}", opts.width, opts.height);
    if opts.filter != ResizeFilter::default() {
        file.push_str(&format!("-{}", opts.filter.name()));
    }
    if let SplitRule::Balanced(on) = &opts.split {
        file.push_str(&format!("-balanced-{}", on.join("-")));
    }
    PathBuf::from("cache").join(format!("{file}.vaecache"))
}

/// Prepares `dir` into the cache file `out`, printing what was found.
pub fn prepare_into(
    dir: &Path,
    opts: &PrepareOptions,
    out: &Path,
    quiet: bool,
) -> Result<PrepareReport> {
    let log = out.with_extension("skipped.txt");
    let (attrs, parts) = (
        dir.join("list_attr_celeba.txt"),
        dir.join("list_eval_partition.txt"),
    );
    crate::file_guard::check_command(
        &[
            ("--data", dir),
            ("--data's attribute list", &attrs),
            ("--data's partition list", &parts),
        ],
        &[("the cache", out), ("the list of skipped images", &log)],
    )?;
    // One writer per cache: a second prepare of the same path waits for no one, it stops.
    let _lock = crate::folder_lock::lock_file(out)?;
    if idx::is_mnist_folder(dir) {
        if opts.is_custom() {
            return Err(Error::File {
                path: dir.to_path_buf(),
                message: "an MNIST folder is prepared as it is: --filter and --split apply \
                          to image folders"
                    .into(),
            });
        }
        return prepare_mnist(dir, opts, out, quiet);
    }
    let bar = crate::progress::bar(0, "images", quiet);
    bar.set_prefix("decoding");
    let (contents, report) = prepare(dir, opts, &bar)?;
    contents.write(out)?;
    if !report.skipped.is_empty() {
        write_skipped_log(&log, &report.skipped)?;
    }
    if !quiet {
        let kept = contents.names.len();
        eprintln!(
            "prepared {kept} of {} images at {}x{} in {:.1}s ({:.0} images/s) -> {}",
            report.images_found,
            opts.width,
            opts.height,
            report.seconds,
            report.images_found as f64 / report.seconds.max(1e-9),
            out.display()
        );
        if report.identical_duplicate_rows > 0 {
            eprintln!(
                "warning: {} rows of the annotation files repeat an earlier row word for word; each was kept once",
                report.identical_duplicate_rows
            );
        }
        if !report.skipped.is_empty() {
            eprintln!(
                "skipped {} unusable images, listed in {}",
                report.skipped.len(),
                log.display()
            );
        }
        if !report.attribute_file {
            eprintln!("no list_attr_celeba.txt: the cache has no attributes");
        } else {
            if report.without_attributes > 0 {
                eprintln!(
                    "{} images have no attribute row (their attributes are 0)",
                    report.without_attributes
                );
            }
            if report.attribute_rows_without_images > 0 {
                eprintln!(
                    "{} attribute rows name images that are not in the folder",
                    report.attribute_rows_without_images
                );
            }
        }
        if !report.partition_file {
            eprintln!("no list_eval_partition.txt: split 80/10/10 by a hash of each file name");
        } else if report.without_partition > 0 {
            eprintln!(
                "{} images are not in list_eval_partition.txt: split by a hash of their names",
                report.without_partition
            );
        }
        eprintln!("splits: {}", split_summary(&contents.splits));
    }
    Ok(report)
}

/// An MNIST folder (IDX files) into the cache `out`; the images keep their own size.
fn prepare_mnist(
    dir: &Path,
    opts: &PrepareOptions,
    out: &Path,
    quiet: bool,
) -> Result<PrepareReport> {
    let start = std::time::Instant::now();
    let contents = idx::load_folder(dir)?;
    if (contents.width, contents.height) != (opts.width, opts.height) {
        return Err(Error::File { path: dir.to_path_buf(), message: format!(
            "MNIST images are {}x{}, not {}x{}; prepare with --size {}x{} (models/mnist-mlp.toml takes them as they are)",
            contents.width,
            contents.height,
            opts.width,
            opts.height,
            contents.width,
            contents.height
        )});
    }
    let mut contents = contents;
    contents.fingerprint = fingerprint(dir, opts);
    contents.write(out)?;
    let report = PrepareReport {
        images_found: contents.names.len(),
        seconds: start.elapsed().as_secs_f64(),
        attribute_file: true,
        partition_file: true,
        ..PrepareReport::default()
    };
    if !quiet {
        eprintln!(
            "prepared {} MNIST images ({}x{}, labels as attributes digit_0..digit_9) -> {}",
            contents.names.len(),
            contents.width,
            contents.height,
            out.display()
        );
        eprintln!("splits: {}", split_summary(&contents.splits));
    }
    Ok(report)
}
