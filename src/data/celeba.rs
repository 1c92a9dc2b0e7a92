//! Parsers for CelebA's annotation files. Both tolerate CRLF line endings and runs of
//! spaces; a malformed line is an error naming the file and the 1-based line number.
//!
//! `list_attr_celeba.txt`: a count line, a header line with the 40 attribute names, then
//! `000001.jpg -1  1  1 ...` (one value per attribute, each -1 or 1).
//! `list_eval_partition.txt`: `000001.jpg 0` lines (0 = train, 1 = val, 2 = test).

use crate::{Error, Result};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub fn parse(s: &str) -> Option<Split> {
        match s {
            "train" => Some(Split::Train),
            "val" | "valid" | "validation" => Some(Split::Val),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

/// The attribute table: `names[j]` is the j-th attribute, `rows[i] = (file, values)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Attributes {
    pub names: Vec<String>,
    pub rows: Vec<(String, Vec<i8>)>,
}

impl Attributes {
    /// The column of an attribute; an unknown name is an error listing the valid ones.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        attribute_column(&self.names, name)
    }
}

/// The position of `name` in `names` (case-insensitive); an unknown name is an error
/// listing the valid ones.
pub fn attribute_column(names: &[String], name: &str) -> Result<usize> {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            Error::Config(format!(
                "unknown attribute \"{name}\"; the attributes are: {}",
                names.join(", ")
            ))
        })
}

fn line_error(path: &Path, line: usize, message: String) -> Error {
    Error::File {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    }
}

fn read(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| Error::File {
        path: path.to_path_buf(),
        message: format!("not UTF-8 text: {e}"),
    })
}

pub fn load_attributes(path: &Path) -> Result<Attributes> {
    parse_attributes(&read(path)?, path)
}

pub fn load_partition(path: &Path) -> Result<Vec<(String, Split)>> {
    parse_partition(&read(path)?, path)
}

/// Parses the text of `list_attr_celeba.txt`; `path` is only used in messages.
pub fn parse_attributes(text: &str, path: &Path) -> Result<Attributes> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let (_, count_line) = lines
        .next()
        .ok_or_else(|| line_error(path, 1, "the file is empty".into()))?;
    let count: usize = count_line.trim().parse().map_err(|_| {
        line_error(
            path,
            1,
            format!(
                "expected the number of images, found \"{}\"",
                count_line.trim()
            ),
        )
    })?;
    let (_, header) = lines
        .next()
        .ok_or_else(|| line_error(path, 2, "missing the header line of attribute names".into()))?;
    let names: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    if names.is_empty() {
        return Err(line_error(
            path,
            2,
            "the header line names no attributes".into(),
        ));
    }
    // The count is outside data: it must not decide an allocation.
    let mut rows = Vec::with_capacity(count.min(1 << 20));
    for (n, line) in lines {
        let mut fields = line.split_whitespace();
        let Some(file) = fields.next() else { continue };
        let values = fields
            .map(|v| match v {
                "1" => Ok(1i8),
                "-1" => Ok(-1i8),
                other => Err(line_error(
                    path,
                    n,
                    format!("attribute value \"{other}\" is not 1 or -1"),
                )),
            })
            .collect::<Result<Vec<i8>>>()?;
        if values.len() != names.len() {
            return Err(line_error(
                path,
                n,
                format!(
                    "{file} has {} values, the header names {} attributes",
                    values.len(),
                    names.len()
                ),
            ));
        }
        rows.push((file.to_string(), values));
    }
    if rows.len() != count {
        return Err(Error::File {
            path: path.to_path_buf(),
            message: format!(
                "the first line announces {count} images but {} rows follow (truncated download?)",
                rows.len()
            ),
        });
    }
    Ok(Attributes { names, rows })
}

/// Parses the text of `list_eval_partition.txt`; `path` is only used in messages.
pub fn parse_partition(text: &str, path: &Path) -> Result<Vec<(String, Split)>> {
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [] => {}
            [file, s] => {
                let split = match *s {
                    "0" => Split::Train,
                    "1" => Split::Val,
                    "2" => Split::Test,
                    other => {
                        return Err(line_error(
                            path,
                            i + 1,
                            format!("partition \"{other}\" is not 0, 1 or 2"),
                        ))
                    }
                };
                out.push((file.to_string(), split));
            }
            _ => {
                return Err(line_error(
                    path,
                    i + 1,
                    format!("expected \"<file> <0|1|2>\", found \"{}\"", line.trim_end()),
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p() -> &'static Path {
        Path::new("list_attr_celeba.txt")
    }

    #[test]
    fn parses_the_official_layout_with_crlf() {
        let text = "2\r\nSmiling Male \r\n000001.jpg  1 -1\r\n000002.jpg -1  1\r\n";
        let a = parse_attributes(text, p()).unwrap();
        assert_eq!(a.names, vec!["Smiling", "Male"]);
        assert_eq!(
            a.rows,
            vec![
                ("000001.jpg".into(), vec![1, -1]),
                ("000002.jpg".into(), vec![-1, 1])
            ]
        );
        assert_eq!(a.index_of("male").unwrap(), 1);
        let e = a.index_of("Smilling").unwrap_err().to_string();
        assert!(e.contains("Smilling") && e.contains("Smiling, Male"), "{e}");
        let parts = parse_partition(
            "000001.jpg 0\r\n000002.jpg 2\r\n",
            Path::new("list_eval_partition.txt"),
        )
        .unwrap();
        assert_eq!(
            parts,
            vec![
                ("000001.jpg".into(), Split::Train),
                ("000002.jpg".into(), Split::Test)
            ]
        );
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        let cases = [
            (
                "2\r\nSmiling Male\r\n000001.jpg 1 -1\r\n000002.jpg 1 0\r\n",
                "line 4",
                "not 1 or -1",
            ),
            (
                "2\r\nSmiling Male\r\n000001.jpg 1\r\n000002.jpg 1 1\r\n",
                "line 3",
                "has 1 values",
            ),
            ("two\r\nSmiling\r\n", "line 1", "number of images"),
            (
                "3\r\nSmiling\r\n000001.jpg 1\r\n",
                "announces 3 images",
                "truncated",
            ),
            ("", "line 1", "empty"),
        ];
        for (text, a, b) in cases {
            let e = parse_attributes(text, p()).unwrap_err().to_string();
            assert!(
                e.contains("list_attr_celeba.txt") && e.contains(a) && e.contains(b),
                "{e}"
            );
        }
        let e = parse_partition(
            "000001.jpg 0\n000002.jpg 5\n",
            Path::new("list_eval_partition.txt"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("list_eval_partition.txt") && e.contains("line 2"),
            "{e}"
        );
        let e = parse_partition("000001.jpg 0 extra\n", Path::new("part.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    proptest! {
        /// Arbitrary text never panics the parsers.
        #[test]
        fn arbitrary_text_never_panics(text in "(\\PC|\r|\n){0,200}") {
            let _ = parse_attributes(&text, p());
            let _ = parse_partition(&text, p());
        }
    }
}
