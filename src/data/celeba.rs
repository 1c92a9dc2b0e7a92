//! Parsers for CelebA's annotation files. Both accept LF, CRLF and CR-only line ends, a
//! leading byte-order mark and runs of spaces; a malformed line is an error naming the file
//! and the 1-based line number. A file listed twice is an error naming both lines, unless
//! the two rows are identical (then it is kept once and counted).
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
    /// Rows that repeated an earlier row exactly (dropped).
    pub identical_duplicates: usize,
}

/// The rows of `list_eval_partition.txt`.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    pub rows: Vec<(String, Split)>,
    /// Rows that repeated an earlier row exactly (dropped).
    pub identical_duplicates: usize,
}

/// The numbered lines of an annotation file: a byte-order mark is dropped; LF, CRLF and
/// (for files with no LF at all) CR end lines.
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let end = if text.contains('\n') { '\n' } else { '\r' };
    text.split(end)
        .filter(move |_| !text.is_empty())
        .map(|l| l.trim_end_matches('\r'))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// Remembers where each file was first listed; tells whether a row is new, an identical
/// repeat, or a conflicting repeat (an error naming both lines).
struct FirstSeen<'t, V>(std::collections::HashMap<&'t str, (usize, V)>);

impl<'t, V: PartialEq> FirstSeen<'t, V> {
    fn new() -> Self {
        FirstSeen(std::collections::HashMap::new())
    }

    /// `Ok(true)` for a new row, `Ok(false)` for an identical repeat.
    fn check(&mut self, path: &Path, line: usize, file: &'t str, value: V) -> Result<bool> {
        match self.0.get(file) {
            None => {
                self.0.insert(file, (line, value));
                Ok(true)
            }
            Some((_, first)) if *first == value => Ok(false),
            Some((first_line, _)) => Err(line_error(
                path,
                line,
                format!("{file} is listed again with other values (first on line {first_line})"),
            )),
        }
    }
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

pub fn load_partition(path: &Path) -> Result<Partition> {
    parse_partition(&read(path)?, path)
}

/// Parses the text of `list_attr_celeba.txt`; `path` is only used in messages.
pub fn parse_attributes(text: &str, path: &Path) -> Result<Attributes> {
    let mut lines = numbered_lines(text);
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
    let mut header_names = std::collections::HashSet::new();
    if let Some(twice) = names
        .iter()
        .find(|n| !header_names.insert(n.to_ascii_lowercase()))
    {
        return Err(line_error(
            path,
            2,
            format!("the attribute \"{twice}\" is named twice"),
        ));
    }
    if names.is_empty() {
        return Err(line_error(
            path,
            2,
            "the header line names no attributes".into(),
        ));
    }
    // The count is outside data: it must not decide an allocation.
    let mut rows = Vec::with_capacity(count.min(1 << 20));
    let mut seen = FirstSeen::new();
    let mut identical_duplicates = 0;
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
        if seen.check(path, n, file, values.clone())? {
            rows.push((file.to_string(), values));
        } else {
            identical_duplicates += 1;
        }
    }
    if rows.len() + identical_duplicates != count {
        return Err(Error::File {
            path: path.to_path_buf(),
            message: format!(
                "the first line announces {count} images but {} rows follow (truncated download?)",
                rows.len() + identical_duplicates
            ),
        });
    }
    Ok(Attributes {
        names,
        rows,
        identical_duplicates,
    })
}

/// Parses the text of `list_eval_partition.txt`; `path` is only used in messages.
pub fn parse_partition(text: &str, path: &Path) -> Result<Partition> {
    let mut out = vec![];
    let mut seen = FirstSeen::new();
    let mut identical_duplicates = 0;
    for (n, line) in numbered_lines(text) {
        let i = n - 1;
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
                if seen.check(path, n, file, split)? {
                    out.push((file.to_string(), split));
                } else {
                    identical_duplicates += 1;
                }
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
    Ok(Partition {
        rows: out,
        identical_duplicates,
    })
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
            parts.rows,
            vec![
                ("000001.jpg".into(), Split::Train),
                ("000002.jpg".into(), Split::Test)
            ]
        );
    }

    #[test]
    fn a_byte_order_mark_and_cr_only_line_ends_are_accepted() {
        let text = "\u{feff}2\rSmiling Male\r000001.jpg 1 -1\r000002.jpg -1 1\r";
        let a = parse_attributes(text, p()).unwrap();
        assert_eq!(a.names, ["Smiling", "Male"]);
        assert_eq!(a.rows.len(), 2);
        let parts = parse_partition("\u{feff}000001.jpg 0\r000002.jpg 1\r", p()).unwrap();
        assert_eq!(parts.rows.len(), 2);
    }

    #[test]
    fn duplicates_are_errors_naming_both_lines_unless_identical() {
        let text = "3\nSmiling Male\na.jpg 1 -1\nb.jpg 1 1\na.jpg -1 -1\n";
        let e = parse_attributes(text, p()).unwrap_err().to_string();
        assert!(e.contains("line 5") && e.contains("first on line 3"), "{e}");
        let text = "3\nSmiling Male\na.jpg 1 -1\nb.jpg 1 1\na.jpg 1 -1\n";
        let a = parse_attributes(text, p()).unwrap();
        assert_eq!((a.rows.len(), a.identical_duplicates), (2, 1));
        let e = parse_attributes("1\nSmiling smiling\na.jpg 1 1\n", p())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("named twice"), "{e}");
        let e = parse_partition("a.jpg 0\nb.jpg 1\na.jpg 2\n", p())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("first on line 1"), "{e}");
        let parts = parse_partition("a.jpg 0\na.jpg 0\n", p()).unwrap();
        assert_eq!((parts.rows.len(), parts.identical_duplicates), (1, 1));
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
