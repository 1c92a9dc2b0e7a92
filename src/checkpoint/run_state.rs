//! Where a training run stands, as each checkpoint records it: a typed record stored as
//! TOML under the metadata key `run_state`. Checkpoints of the first format kept the same
//! facts as space-separated `extra.*` strings; [`RunState::from_metadata`] reads both.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Running sums over the batches of the current epoch (kept in checkpoints, so an
/// interrupted epoch's averages come out the same after a resume).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochSums {
    pub loss: f64,
    pub recon: f64,
    pub kl: f64,
    pub images: usize,
    pub seconds: f64,
    /// Of `seconds`, the time spent building batches from the cache.
    pub data_seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Batches of the current epoch already trained.
    pub batch: usize,
    pub sums: EpochSums,
    /// The best epoch score so far (infinite before the first epoch ends).
    pub best_loss: f64,
    /// The epoch (1-based) that reached `best_loss`; `None` in checkpoints written before
    /// early stopping existed (the metrics history tells then).
    pub best_epoch: Option<usize>,
    /// Threads the run trained with (results differ in the last digits with another count).
    pub threads: Option<usize>,
    /// The run's id (`run.toml`); `None` in checkpoints written before runs had ids.
    pub run_id: Option<String>,
    pub seed: u64,
    /// How the random streams are keyed, for a reader of the file.
    pub rng: String,
}

/// The metadata key of the record.
pub const KEY: &str = "run_state";

impl RunState {
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a run state always serializes")
    }

    /// The record in a checkpoint's metadata, of today's format or the first one.
    pub fn from_metadata(meta: &HashMap<String, String>) -> Result<RunState, String> {
        match meta.get(KEY) {
            Some(text) => toml::from_str(text).map_err(|e| format!("bad {KEY}: {e}")),
            None => Self::from_first_format(meta),
        }
    }

    /// The first format: `extra.batch`, `extra.epoch_sums` ("loss recon kl images seconds
    /// [data_seconds]"), `extra.best_loss`, and, when they existed, `extra.best_epoch`,
    /// `extra.threads`, `extra.run_id`.
    fn from_first_format(meta: &HashMap<String, String>) -> Result<RunState, String> {
        let extra = |key: &str| meta.get(&format!("extra.{key}"));
        let bad = |key: &str| format!("bad or missing {key} in checkpoint metadata");
        Ok(RunState {
            batch: parsed(meta, "batch").ok_or_else(|| bad("batch"))?,
            sums: extra("epoch_sums")
                .and_then(|s| decode_sums(s))
                .ok_or_else(|| bad("epoch_sums"))?,
            best_loss: parsed(meta, "best_loss").unwrap_or(f64::INFINITY),
            best_epoch: parsed(meta, "best_epoch"),
            threads: parsed(meta, "threads"),
            run_id: extra("run_id").cloned(),
            seed: parsed(meta, "seed").unwrap_or_default(),
            rng: extra("rng").cloned().unwrap_or_default(),
        })
    }
}

/// The first format's entry `extra.{key}`, parsed.
fn parsed<T: std::str::FromStr>(meta: &HashMap<String, String>, key: &str) -> Option<T> {
    meta.get(&format!("extra.{key}"))?.parse().ok()
}

fn decode_sums(s: &str) -> Option<EpochSums> {
    let v: Vec<&str> = s.split_whitespace().collect();
    Some(EpochSums {
        loss: v.first()?.parse().ok()?,
        recon: v.get(1)?.parse().ok()?,
        kl: v.get(2)?.parse().ok()?,
        images: v.get(3)?.parse().ok()?,
        seconds: v.get(4)?.parse().ok()?,
        // Absent in checkpoints written before it was measured.
        data_seconds: v.get(5).and_then(|d| d.parse().ok()).unwrap_or(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RunState {
        RunState {
            batch: 7,
            sums: EpochSums {
                loss: 1.5,
                recon: 0.25,
                kl: 1e-7,
                images: 224,
                seconds: 3.0,
                data_seconds: 0.125,
            },
            best_loss: f64::INFINITY,
            best_epoch: None,
            threads: Some(2),
            run_id: Some("abc".into()),
            seed: u64::MAX >> 1,
            rng: "ChaCha8".into(),
        }
    }

    #[test]
    fn the_record_round_trips_infinity_and_absent_fields_included() {
        let meta = HashMap::from([(KEY.to_string(), state().to_toml())]);
        assert_eq!(RunState::from_metadata(&meta).unwrap(), state());
    }

    #[test]
    fn the_first_format_reads_into_the_same_record() {
        let meta: HashMap<String, String> = [
            ("extra.batch", "7"),
            ("extra.epoch_sums", "1.5 0.25 0.0000001 224 3 0.125"),
            ("extra.best_loss", "inf"),
            ("extra.threads", "2"),
            ("extra.run_id", "abc"),
            ("extra.seed", "9223372036854775807"),
            ("extra.rng", "ChaCha8"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(RunState::from_metadata(&meta).unwrap(), state());
        let mut broken = meta.clone();
        broken.insert("extra.epoch_sums".into(), "1.5 x".into());
        let e = RunState::from_metadata(&broken).unwrap_err();
        assert!(e.contains("epoch_sums"), "{e}");
    }
}
