//! The sweep's report, rebuilt from the runs' own files after every run (so an
//! interrupted sweep's report is still true): `sweep.csv`, `sweep.md` (a table of each
//! run's best and last validation figures) and `sweep-samples.png` (the runs' sample
//! grids side by side).

use super::metrics;
use super::sweep::{GridPoint, Summary};
use crate::{viz, Result};
use std::path::Path;

/// A run's disentanglement score (`sweep --disentanglement`), in its folder.
pub const DISENTANGLEMENT_FILE: &str = "disentanglement.txt";

/// Keeps a run's disentanglement score for the table.
pub fn record_disentanglement(run: &Path, score: f64) -> Result<()> {
    let text = format!("{score}\n");
    crate::atomic_file::write(&run.join(DISENTANGLEMENT_FILE), text.as_bytes())
}

fn read_disentanglement(run: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(run.join(DISENTANGLEMENT_FILE)).ok()?;
    text.trim().parse().ok()
}

/// Writes sweep.csv, sweep.md and sweep-samples.png from the runs' files so far; returns
/// the markdown table. A `disentanglement` column appears when some run has its score.
pub fn write(out: &Path, points: &[GridPoint]) -> Result<String> {
    let keys: Vec<&str> = points[0].settings.iter().map(|(k, _)| k.as_str()).collect();
    let scores: Vec<Option<f64>> = points
        .iter()
        .map(|p| read_disentanglement(&out.join(&p.name)))
        .collect();
    let mut columns = vec![
        "epochs",
        "best_epoch",
        "val_loss",
        "val_recon",
        "val_kl",
        "last_val_loss",
    ];
    let scored = scores.iter().any(Option::is_some);
    if scored {
        columns.push("disentanglement");
    }
    let mut csv = format!("run,{},{}\n", keys.join(","), columns.join(","));
    let mut md = format!(
        "| run | {} | {} |\n|{}\n",
        keys.join(" | "),
        columns.join(" | "),
        "---|".repeat(1 + keys.len() + columns.len())
    );
    let mut pictures = vec![];
    for (p, score) in points.iter().zip(&scores) {
        let dir = out.join(&p.name);
        let rows = metrics::read(&dir.join("metrics.csv")).unwrap_or_default();
        let values: Vec<&str> = p.settings.iter().map(|(_, v)| v.as_str()).collect();
        let mut figures = match Summary::of(&rows) {
            Some(s) => vec![
                s.epochs.to_string(),
                s.best.epoch.to_string(),
                format!("{:.5}", s.best.val_loss),
                format!("{:.5}", s.best.val_recon),
                format!("{:.4}", s.best.val_kl),
                format!("{:.5}", s.last_val_loss),
            ],
            None => vec![
                "0".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
        };
        if scored {
            figures.push(score.map_or_else(String::new, |s| format!("{s:.3}")));
        }
        csv.push_str(&format!(
            "{},{},{}\n",
            p.name,
            values.join(","),
            figures.join(",")
        ));
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            p.name,
            values.join(" | "),
            figures.join(" | ")
        ));
        if let Ok(img) = image::open(dir.join("samples.png")) {
            pictures.push(viz::titled(&p.name, &img.to_rgb8()));
        }
    }
    crate::atomic_file::write(&out.join("sweep.csv"), csv.as_bytes())?;
    crate::atomic_file::write(&out.join("sweep.md"), md.as_bytes())?;
    if !pictures.is_empty() {
        viz::save_png(
            &out.join("sweep-samples.png"),
            &viz::side_by_side(&pictures),
        )?;
    }
    Ok(md)
}
