//! The classifier run's `metrics.csv`: one row per completed epoch, rewritten atomically;
//! a resume reads it back and drops rows newer than its checkpoint.

use crate::train::metrics;
use crate::Result;
use std::path::Path;

pub const HEADER: &str = "epoch,step,train_loss,train_accuracy,val_loss,val_accuracy,val_balanced_accuracy,lr,images_per_s,seconds";

/// One epoch's figures; accuracies are means over the attributes. NaN: no validation split.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierEpoch {
    pub epoch: usize,
    pub step: u64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub val_balanced_accuracy: f64,
    pub lr: f64,
    pub images_per_s: f64,
    pub seconds: f64,
}

impl ClassifierEpoch {
    /// What early stopping and best.safetensors rank epochs by: the validation loss, or
    /// the training loss without a validation split.
    pub fn score(&self) -> f64 {
        if self.val_loss.is_nan() {
            self.train_loss
        } else {
            self.val_loss
        }
    }

    fn values(&self) -> [f64; 10] {
        [
            self.epoch as f64,
            self.step as f64,
            self.train_loss,
            self.train_accuracy,
            self.val_loss,
            self.val_accuracy,
            self.val_balanced_accuracy,
            self.lr,
            self.images_per_s,
            self.seconds,
        ]
    }

    fn from_values(v: [f64; 10]) -> ClassifierEpoch {
        ClassifierEpoch {
            epoch: v[0] as usize,
            step: v[1] as u64,
            train_loss: v[2],
            train_accuracy: v[3],
            val_loss: v[4],
            val_accuracy: v[5],
            val_balanced_accuracy: v[6],
            lr: v[7],
            images_per_s: v[8],
            seconds: v[9],
        }
    }
}

pub fn write(path: &Path, rows: &[ClassifierEpoch]) -> Result<()> {
    let line = |row: &ClassifierEpoch| row.values().map(metrics::csv_cell).join(",");
    metrics::write_rows(path, HEADER, rows.iter().map(line))
}

/// The rows of a file `write` made; a missing file has none.
pub fn read(path: &Path) -> Result<Vec<ClassifierEpoch>> {
    metrics::read_rows(path, |line| {
        let cells: Option<Vec<f64>> = line.split(',').map(metrics::parse_cell).collect();
        Some(ClassifierEpoch::from_values(cells?.try_into().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_survive_a_write_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let row = ClassifierEpoch {
            epoch: 2,
            step: 40,
            train_loss: 0.25,
            train_accuracy: 0.9,
            val_loss: f64::NAN,
            val_accuracy: f64::NAN,
            val_balanced_accuracy: f64::NAN,
            lr: 1e-3,
            images_per_s: 812.5,
            seconds: 3.5,
        };
        write(&path, std::slice::from_ref(&row)).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(
            back[0].values().map(f64::to_bits),
            row.values().map(f64::to_bits)
        );
        std::fs::write(&path, format!("{HEADER}\n1,2,3\n")).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("line 2"));
    }
}
