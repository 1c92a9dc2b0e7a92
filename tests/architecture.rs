//! The architecture, kept true (docs/architecture.md): modules import only from lower
//! layers, no file in `src/` passes 600 lines, and no function 100. Known exceptions are
//! listed with their reason; the test also fails when one is no longer needed, so the lists
//! only shrink.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module of the library and its layer: a module may import from lower
/// layers only (and from itself).
const LAYERS: [(&str, u32); 33] = [
    ("error", 0),
    ("onnx_ops", 0),
    ("linalg", 0),
    ("condition_spec", 0),
    ("pixel_range", 0),
    ("prior", 0),
    ("threads", 0),
    ("timing", 0),
    ("progress", 0),
    ("alloc", 0),
    ("folder_lock", 0),
    ("file_guard", 0),
    ("collective", 0),
    ("atomic_file", 1),
    ("npy", 2),
    ("viz", 2),
    ("kernels", 2),
    ("autograd", 3),
    ("ops", 4),
    ("nn", 5),
    ("optim", 6),
    ("layers", 7),
    ("config", 8),
    ("model", 9),
    ("data", 9),
    ("checkpoint", 10),
    ("train", 12),
    ("latent", 12),
    ("onnx", 11),
    ("serve", 13),
    ("quality", 13),
    ("test_support", 13),
    ("cli", 14),
];

/// Imports against the layering that exist today, each with why (issue 19 removes them).
const KNOWN_UPWARD: [(&str, &str, &str); 0] = [];

/// Functions longer than 100 lines today, with their length: none may grow.
const KNOWN_LONG: [(&str, &str, usize); 0] = [];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The top-level module a file of `src/` belongs to.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(root().join("src")).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules named after `crate::` in the code (comments left out), grouped
/// imports (`use crate::{a, b::c}`) included.
fn imported_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines().map(str::trim_start) {
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group.split([',', '}']).map(str::trim).collect(),
                None => vec![rest],
            };
            for n in names {
                let name: String = n
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
    }
    found
}

fn layer(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

#[test]
fn modules_import_only_from_lower_layers() {
    let mut upward = BTreeSet::new();
    for file in rust_files(&root().join("src")) {
        let module = module_of(&file);
        if module == "main" || module == "lib" {
            continue;
        }
        let own = layer(&module).unwrap_or_else(|| panic!("{module} has no layer in LAYERS"));
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests (at the end of a file) may use the test fixtures.
        let shipped = text.split("#[cfg(test)]").next().unwrap_or("");
        for import in imported_modules(shipped) {
            let Some(theirs) = layer(&import) else {
                continue;
            }; // re-exports: Tensor, Var...
            if import != module && theirs >= own {
                upward.insert((module.clone(), import, file.display().to_string()));
            }
        }
    }
    let mut unexplained = vec![];
    for (from, to, file) in &upward {
        if !KNOWN_UPWARD.iter().any(|(f, t, _)| f == from && t == to) {
            unexplained.push(format!("{file}: {from} imports {to}"));
        }
    }
    assert!(
        unexplained.is_empty(),
        "imports against the layers:\n{}",
        unexplained.join("\n")
    );
    for (from, to, why) in KNOWN_UPWARD {
        assert!(
            upward.iter().any(|(f, t, _)| f == from && t == to),
            "{from} no longer imports {to} ({why}): remove it from KNOWN_UPWARD"
        );
    }
}

/// `(name, first line, length)` of every function of a rustfmt-formatted file: from its
/// `fn` line to the closing brace at the same indentation.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    for (i, line) in lines.iter().enumerate() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let after_vis = body.strip_prefix("pub ").or_else(|| {
            body.strip_prefix("pub(crate) ")
                .or_else(|| body.strip_prefix("pub(super) "))
        });
        let Some(sig) = after_vis.unwrap_or(body).strip_prefix("fn ") else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue;
        }
        let name: String = sig
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{indent}}}");
        if let Some(end) = lines[i + 1..].iter().position(|l| *l == close) {
            out.push((name, i + 1, end + 2));
        }
    }
    out
}

#[test]
fn files_and_functions_stay_short() {
    let mut too_long = vec![];
    let mut known_seen = vec![];
    for file in rust_files(&root().join("src")) {
        let text = std::fs::read_to_string(&file).unwrap();
        let rel = file.strip_prefix(root()).unwrap().display().to_string();
        let lines = text.lines().count();
        if lines > 600 {
            too_long.push(format!("{rel}: {lines} lines (at most 600)"));
        }
        for (name, at, len) in functions(&text) {
            let known = KNOWN_LONG.iter().find(|(f, n, _)| *f == rel && *n == name);
            match known {
                Some((_, _, was)) => {
                    if len > 100 {
                        known_seen.push((rel.clone(), name.clone()));
                    }
                    if len > *was {
                        too_long.push(format!(
                            "{rel}:{at}: {name} grew to {len} lines (was {was})"
                        ));
                    }
                }
                None if len > 100 => {
                    too_long.push(format!("{rel}:{at}: {name} has {len} lines (at most 100)"))
                }
                None => {}
            }
        }
    }
    assert!(too_long.is_empty(), "{}", too_long.join("\n"));
    for (file, name, _) in KNOWN_LONG {
        assert!(
            known_seen.iter().any(|(f, n)| f == file && n == name),
            "{file}: {name} is gone or short now: remove it from KNOWN_LONG"
        );
    }
}

#[test]
fn the_checks_see_what_they_look_for() {
    let text = "use crate::{ops::conv2d, Tensor, kernels};\n// crate::train\nlet x = crate::nn::Linear::new();\n";
    let found = imported_modules(text);
    assert_eq!(
        found,
        BTreeSet::from(["ops".into(), "kernels".into(), "nn".into()])
    );
    let f = functions("fn a() {\n    x;\n}\n\n    pub fn b(\n        y: u8,\n    ) {\n    }\n");
    assert_eq!(f, [("a".to_string(), 1, 3), ("b".to_string(), 5, 4)]);
}
