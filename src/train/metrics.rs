//! `metrics.csv`: one row per completed epoch. Rewritten atomically each time, so a row
//! never appears half-written; on resume, rows after the checkpoint are dropped.

use crate::{Error, Result};
use std::path::Path;

pub const HEADER: &str =
    "epoch,step,train_loss,train_recon,train_kl,val_loss,val_recon,val_kl,lr,images_per_s,seconds";

#[derive(Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub step: u64,
    pub train_loss: f64,
    pub train_recon: f64,
    pub train_kl: f64,
    /// NaN when there is no validation split.
    pub val_loss: f64,
    pub val_recon: f64,
    pub val_kl: f64,
    pub lr: f64,
    pub images_per_s: f64,
    pub seconds: f64,
}

impl EpochMetrics {
    /// What training ranks epochs by: the validation loss, or the training loss where
    /// there was no validation split.
    pub fn score(&self) -> f64 {
        if self.val_loss.is_nan() {
            self.train_loss
        } else {
            self.val_loss
        }
    }

    fn to_csv(&self) -> String {
        let f = csv_cell;
        format!(
            "{},{},{},{},{},{},{},{},{},{:.1},{:.2}",
            self.epoch,
            self.step,
            f(self.train_loss),
            f(self.train_recon),
            f(self.train_kl),
            f(self.val_loss),
            f(self.val_recon),
            f(self.val_kl),
            f(self.lr),
            self.images_per_s,
            self.seconds
        )
    }

    fn from_csv(line: &str) -> Option<EpochMetrics> {
        let v: Vec<&str> = line.split(',').collect();
        if v.len() != 11 {
            return None;
        }
        let f = |i: usize| parse_cell(v[i]);
        Some(EpochMetrics {
            epoch: v[0].parse().ok()?,
            step: v[1].parse().ok()?,
            train_loss: f(2)?,
            train_recon: f(3)?,
            train_kl: f(4)?,
            val_loss: f(5)?,
            val_recon: f(6)?,
            val_kl: f(7)?,
            lr: f(8)?,
            images_per_s: f(9)?,
            seconds: f(10)?,
        })
    }
}

/// Reads every row; a missing file is an empty history, a malformed line an error.
/// The first epoch with the lowest [`EpochMetrics::score`] (`None` for no rows).
pub fn best(rows: &[EpochMetrics]) -> Option<&EpochMetrics> {
    rows.iter()
        .fold(None, |best: Option<&EpochMetrics>, m| match best {
            Some(b) if b.score() <= m.score() => Some(b),
            _ if m.score() < f64::INFINITY => Some(m),
            other => other,
        })
}

pub fn read(path: &Path) -> Result<Vec<EpochMetrics>> {
    read_rows(path, EpochMetrics::from_csv)
}

/// Writes `rows` (with the header) atomically.
pub fn write(path: &Path, rows: &[EpochMetrics]) -> Result<()> {
    write_rows(path, HEADER, rows.iter().map(EpochMetrics::to_csv))
}

/// One number of a metrics row: empty for NaN (no value, e.g. no validation split).
pub fn csv_cell(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        format!("{v}")
    }
}

/// The inverse of [`csv_cell`]; `None` for a cell that is not a number.
pub fn parse_cell(cell: &str) -> Option<f64> {
    if cell.is_empty() {
        Some(f64::NAN)
    } else {
        cell.parse().ok()
    }
}

/// The rows of a CSV file under one header line, each read by `parse`; a missing file has
/// none, blank lines are skipped, a line `parse` refuses is an error naming file and line.
pub fn read_rows<T>(path: &Path, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            parse(l.trim_end()).ok_or_else(|| Error::File {
                path: path.to_path_buf(),
                message: format!("line {}: not a metrics row: \"{l}\"", i + 1),
            })
        })
        .collect()
}

/// Writes `header` and `rows` (one line each) atomically.
pub fn write_rows(path: &Path, header: &str, rows: impl Iterator<Item = String>) -> Result<()> {
    let mut text = format!("{header}\n");
    for row in rows {
        text += &row;
        text.push('\n');
    }
    crate::atomic_file::write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_including_missing_validation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        assert!(read(&path).unwrap().is_empty());
        let row = |epoch| EpochMetrics {
            epoch,
            step: 10 * epoch as u64,
            train_loss: 1.5,
            train_recon: 0.25,
            train_kl: 3.0,
            val_loss: if epoch == 1 { f64::NAN } else { 2.0 },
            val_recon: f64::NAN,
            val_kl: 4.0,
            lr: 1e-3,
            images_per_s: 95.5,
            seconds: 12.25,
        };
        write(&path, &[row(1), row(2)]).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back[0].val_loss.is_nan() && back[1].val_loss == 2.0);
        assert_eq!(back[1].step, 20);
        assert!(std::fs::read_to_string(&path).unwrap().starts_with(HEADER));
        std::fs::write(&path, format!("{HEADER}\n1,2,3\n")).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(
            err.contains("metrics.csv") && err.contains("line 2"),
            "{err}"
        );
    }
}
