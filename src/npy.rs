//! NumPy `.npy` files of little-endian f32 in C order (format 1.0): how `generate` saves
//! the decoder's raw output, so two machines' outputs can be compared number by number
//! (and read with `numpy.load`).
//!
//! Layout: the magic `\x93NUMPY`, version bytes, a u16 little-endian header length, an
//! ASCII dict `{'descr': '<f4', 'fortran_order': False, 'shape': (..), }` padded with
//! spaces to a multiple of 64 bytes and ended by `\n`, then the values.

use crate::Result;
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// An f32 array: its shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// The file's bytes.
pub fn to_bytes(array: &Array) -> Vec<u8> {
    let dims: Vec<String> = array.shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + 4 * array.values.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[1, 0]);
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in &array.values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

/// Parses the bytes of an `.npy` file of f32; the message says what is wrong.
pub fn parse(bytes: &[u8]) -> std::result::Result<Array, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (no \\x93NUMPY magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    let header = bytes
        .get(start..start.saturating_add(header_len))
        .ok_or("the file ends inside its header")?;
    let header = std::str::from_utf8(header).map_err(|_| "the header is not text")?;
    let compact: String = header.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.contains("'descr':'<f4'") {
        return Err("only little-endian f32 ('<f4') arrays are supported".into());
    }
    if !compact.contains("'fortran_order':False") {
        return Err("only C-order arrays are supported".into());
    }
    let shape = parse_shape(&compact)?;
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or("the shape's size overflows")?;
    let data = &bytes[start + header_len..];
    if Some(data.len()) != count.checked_mul(4) {
        return Err(format!(
            "the shape {shape:?} needs {count} values but the file holds {} bytes of data",
            data.len()
        ));
    }
    let values = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Array { shape, values })
}

/// The tuple after `'shape':` in a header without whitespace.
fn parse_shape(compact: &str) -> std::result::Result<Vec<usize>, String> {
    let after = compact
        .split_once("'shape':(")
        .map(|(_, rest)| rest)
        .ok_or("the header has no shape")?;
    let inside = after.split_once(')').ok_or("the shape is not closed")?.0;
    inside
        .split(',')
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.parse()
                .map_err(|_| format!("bad dimension {d:?} in the shape"))
        })
        .collect()
}

/// The largest |a - b| over paired values; a NaN on either side counts as infinite, so a
/// broken output never passes a tolerance.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(
            0.0f32,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        )
}

/// Writes `array` to `path` atomically.
pub fn write(path: &Path, array: &Array) -> Result<()> {
    crate::atomic_file::write(path, &to_bytes(array))
}

/// Reads an `.npy` file written by [`write()`] (or by numpy, for f32 C-order arrays).
pub fn read(path: &Path) -> Result<Array> {
    crate::error::parse_file(path, parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arrays_round_trip(shape in prop::collection::vec(0usize..5, 0..5), seed in any::<u32>()) {
            let n: usize = shape.iter().product();
            let values = (0..n).map(|i| (i as f32 - seed as f32).sin()).collect();
            let array = Array { shape, values };
            let bytes = to_bytes(&array);
            prop_assert_eq!(bytes.len() % 4, 0);
            prop_assert_eq!((10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize) % 64, 0);
            prop_assert_eq!(parse(&bytes).unwrap(), array);
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = parse(&with_magic);
        }
    }

    #[test]
    fn numpy_header_forms_parse() {
        // As numpy writes them: a 1-d shape has a trailing comma, a scalar an empty tuple.
        for (shape_text, shape) in [("(3,)", vec![3]), ("()", vec![]), ("(2, 1)", vec![2, 1])] {
            let n: usize = shape.iter().product();
            let header =
                format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}\n");
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&[1, 0]);
            bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
            bytes.extend_from_slice(header.as_bytes());
            bytes.extend(std::iter::repeat_n(0u8, 4 * n));
            assert_eq!(parse(&bytes).unwrap().shape, shape);
        }
    }

    #[test]
    fn differences_count_nan_as_infinite() {
        assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.5, 1.0]), 1.0);
        assert_eq!(max_abs_diff(&[f32::NAN, 2.0], &[1.0, 2.0]), f32::INFINITY);
        assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.0, f32::NAN]), f32::INFINITY);
    }

    #[test]
    fn wrong_contents_are_named() {
        let good = to_bytes(&Array {
            shape: vec![2],
            values: vec![1.0, 2.0],
        });
        assert!(parse(&good[..good.len() - 1])
            .unwrap_err()
            .contains("needs 2 values"));
        let mut f8 = good.clone();
        let at = f8.windows(3).position(|w| w == b"<f4").unwrap();
        f8[at + 2] = b'8';
        assert!(parse(&f8).unwrap_err().contains("'<f4'"));
        assert!(parse(b"PK\x03\x04 a zip")
            .unwrap_err()
            .contains("not a .npy"));
    }
}
