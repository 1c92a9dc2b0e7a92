//! The model configs of `models/`, built into the binary, so that an installed `vae-cpu`
//! trains from any folder: `--config celeba64` works as well as `--config my.toml`. A path
//! that exists wins over a built-in name; so does `models/NAME.toml` when that file is
//! there, and when it is not (outside a checkout) it means the built-in `NAME`.

use super::Config;
use crate::{Error, Result};
use std::path::Path;

/// Every file of `models/`, by name (a test checks that none is missing).
pub const BUILT_IN: [(&str, &str); 7] = [
    ("celeba32", include_str!("../../models/celeba32.toml")),
    (
        "celeba32-cond",
        include_str!("../../models/celeba32-cond.toml"),
    ),
    (
        "celeba32-sharp",
        include_str!("../../models/celeba32-sharp.toml"),
    ),
    ("celeba64", include_str!("../../models/celeba64.toml")),
    (
        "celeba64x48-in",
        include_str!("../../models/celeba64x48-in.toml"),
    ),
    ("demo32", include_str!("../../models/demo32.toml")),
    ("mnist-mlp", include_str!("../../models/mnist-mlp.toml")),
];

/// Every file of `models/classifiers/` (attribute classifiers), by name.
pub const CLASSIFIERS: [(&str, &str); 2] = [
    (
        "attributes32",
        include_str!("../../models/classifiers/attributes32.toml"),
    ),
    (
        "attributes64",
        include_str!("../../models/classifiers/attributes64.toml"),
    ),
];

/// The TOML text of the built-in config `name`.
pub fn text(name: &str) -> Option<&'static str> {
    BUILT_IN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The built-in names, comma separated, for messages.
pub fn names() -> String {
    BUILT_IN.map(|(n, _)| n).join(", ")
}

/// Where `--config` text comes from: a file, or a built-in config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    File,
    BuiltIn(&'static str),
}

/// The text of `--config NAME_OR_PATH` and where it came from. A missing file that is not
/// a built-in name is an error listing the built-in names.
pub fn read(arg: &Path) -> Result<(String, Source)> {
    read_from(arg, &BUILT_IN, "models/")
}

/// [`read`] among the configs `table`, whose files lie in the folder `folder`.
fn read_from(
    arg: &Path,
    table: &[(&'static str, &'static str)],
    folder: &str,
) -> Result<(String, Source)> {
    if arg.exists() {
        let text = std::fs::read_to_string(arg).map_err(|source| Error::Io {
            path: arg.to_path_buf(),
            source,
        })?;
        return Ok((text, Source::File));
    }
    let name = arg.to_str().map(|s| {
        let s = s.strip_prefix(folder).unwrap_or(s);
        s.strip_suffix(".toml").unwrap_or(s)
    });
    match name.and_then(|n| table.iter().find(|(b, _)| *b == n)) {
        Some((name, text)) => Ok((text.to_string(), Source::BuiltIn(name))),
        None => Err(Error::File {
            path: arg.to_path_buf(),
            message: format!(
                "no such file, and not a built-in config; the built-in configs are: {} \
                 (`vae-cpu models` describes them)",
                table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

impl Config {
    /// Reads and validates `--config NAME_OR_PATH` (see [`read`]); errors name it.
    pub fn load_named(arg: &Path) -> Result<Config> {
        let (text, _) = read(arg)?;
        Config::parse(&text).map_err(|e| Error::File {
            path: arg.to_path_buf(),
            message: e.to_string(),
        })
    }
}

impl super::ClassifierConfig {
    /// Reads and validates `--config NAME_OR_PATH` of an attribute classifier: a file, or
    /// a built-in name of `models/classifiers/` ([`CLASSIFIERS`]).
    pub fn load_named(arg: &Path) -> Result<super::ClassifierConfig> {
        let (text, _) = read_from(arg, &CLASSIFIERS, "models/classifiers/")?;
        super::ClassifierConfig::parse(&text).map_err(|e| Error::File {
            path: arg.to_path_buf(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_and_paths_win() {
        for (name, _) in BUILT_IN {
            assert_eq!(read(Path::new(name)).unwrap().1, Source::BuiltIn(name));
            let c = Config::load_named(Path::new(name)).unwrap();
            assert!(c.plan().is_ok(), "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("celeba32");
        std::fs::write(&own, text("demo32").unwrap()).unwrap();
        assert_eq!(read(&own).unwrap().1, Source::File);
        let e = read(Path::new("celeba33")).unwrap_err().to_string();
        assert!(e.contains("celeba33") && e.contains(&names()), "{e}");
        for (name, _) in CLASSIFIERS {
            let c = super::super::ClassifierConfig::load_named(Path::new(name)).unwrap();
            assert_eq!(c.model.name, name);
        }
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/classifiers");
        assert_eq!(
            std::fs::read_dir(folder).unwrap().count(),
            CLASSIFIERS.len()
        );
    }
}
