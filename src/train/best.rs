//! The best epoch so far, and early stopping: training ends once `trainer.patience` whole
//! epochs in a row have not improved on it.

use super::run_dir::Position;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Best {
    /// The best epoch's score (validation loss, or training loss without a validation
    /// split); infinite before the first epoch ends.
    pub score: f64,
    /// The epoch (1-based) that reached it; 0 before the first epoch ends.
    pub epoch: usize,
}

impl Default for Best {
    fn default() -> Self {
        Best {
            score: f64::INFINITY,
            epoch: 0,
        }
    }
}

impl Best {
    /// Records epoch `epoch`'s score; true when it is a new best.
    pub fn record(&mut self, score: f64, epoch: usize) -> bool {
        let improved = score < self.score;
        if improved {
            *self = Best { score, epoch };
        }
        improved
    }

    /// Whether `patience` whole epochs have passed since the best one (checked between
    /// epochs, so a resumed run that had stopped early stops again at once).
    pub fn patience_exhausted(&self, patience: Option<usize>, pos: Position) -> bool {
        let Some(patience) = patience else {
            return false;
        };
        pos.batch == 0 && self.epoch > 0 && pos.epoch - self.epoch >= patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patience_counts_whole_epochs_since_the_best() {
        let mut best = Best::default();
        assert!(best.record(2.0, 1));
        assert!(!best.record(2.0, 2), "equal is no improvement");
        let at = |epoch, batch| Position { epoch, batch };
        assert!(!best.patience_exhausted(Some(2), at(2, 0)));
        assert!(best.patience_exhausted(Some(2), at(3, 0)));
        assert!(!best.patience_exhausted(Some(2), at(3, 1)), "mid-epoch");
        assert!(!best.patience_exhausted(None, at(30, 0)));
    }
}
