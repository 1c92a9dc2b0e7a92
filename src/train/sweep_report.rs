//! The sweep's report, rebuilt from the runs' own files after every run (so an
//! interrupted sweep's report is still true): `sweep.csv`, `sweep.md` (a table of each
//! run's best and last validation figures) and `sweep-samples.png` (the runs' sample
//! grids side by side).

use super::metrics;
use super::sweep::{GridPoint, Summary};
use crate::{viz, Result};
use std::path::Path;

/// Writes sweep.csv, sweep.md and sweep-samples.png from the runs' files so far; returns
/// the markdown table.
pub fn write(out: &Path, points: &[GridPoint]) -> Result<String> {
    let keys: Vec<&str> = points[0].settings.iter().map(|(k, _)| k.as_str()).collect();
    let columns = [
        "epochs",
        "best_epoch",
        "val_loss",
        "val_recon",
        "val_kl",
        "last_val_loss",
    ];
    let mut csv = format!("run,{},{}\n", keys.join(","), columns.join(","));
    let mut md = format!(
        "| run | {} | {} |\n|{}\n",
        keys.join(" | "),
        columns.join(" | "),
        "---|".repeat(1 + keys.len() + columns.len())
    );
    let mut pictures = vec![];
    for p in points {
        let dir = out.join(&p.name);
        let rows = metrics::read(&dir.join("metrics.csv")).unwrap_or_default();
        let values: Vec<&str> = p.settings.iter().map(|(_, v)| v.as_str()).collect();
        let figures = match Summary::of(&rows) {
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
