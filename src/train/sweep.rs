//! Hyperparameter sweeps: `--set exp.kld_weight=1e-3,1e-4 --set model.latent=32,64` makes
//! the grid of every combination, each a config of its own, and the sweep's table of
//! validation metrics reads back what the runs wrote.

use super::metrics::EpochMetrics;
use super::{RunDir, TrainOptions, Trainer};
use crate::config::{Config, Overrides};
use crate::data::Dataset;
use crate::{Error, Result};

/// One `--set KEY=V1,V2,...`: a dotted key into the config file and the values it takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: Vec<String>,
    pub values: Vec<toml::Value>,
}

impl Axis {
    /// Parses `exp.kld_weight=1e-3,1e-4`. Each value is read as TOML (numbers, booleans,
    /// quoted strings); a bare word is a string.
    pub fn parse(spec: &str) -> Result<Axis> {
        let bad = |why: &str| Error::Invalid(format!("--set \"{spec}\": {why}"));
        let (key, values) = spec
            .split_once('=')
            .ok_or_else(|| bad("write KEY=VALUE,VALUE,..., e.g. exp.kld_weight=1e-3,1e-4"))?;
        let key: Vec<String> = key
            .trim()
            .split('.')
            .map(|k| k.trim().to_string())
            .collect();
        if key.len() < 2 || key.iter().any(String::is_empty) {
            return Err(bad("the key must be SECTION.NAME, e.g. model.latent"));
        }
        let values: Vec<toml::Value> = values
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| {
                toml::from_str::<toml::Table>(&format!("v = {v}"))
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .unwrap_or_else(|| toml::Value::String(v.to_string()))
            })
            .collect();
        if values.is_empty() {
            return Err(bad("no values"));
        }
        Ok(Axis { key, values })
    }
}

/// One run of the grid: its folder name, its settings and its config.
#[derive(Clone, Debug)]
pub struct GridPoint {
    pub name: String,
    pub settings: Vec<(String, String)>,
    pub config: Config,
}

impl GridPoint {
    /// `KEY=VALUE KEY=VALUE`, for messages.
    pub fn describe(&self) -> String {
        let pairs: Vec<String> = self
            .settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join(" ")
    }

    /// The run of this point in `opts.out`: new when the folder holds no checkpoint, else
    /// resumed (a finished run then ends at once). A folder holding a run of another
    /// config is refused, naming the keys that differ.
    pub fn trainer<'a>(&self, data: &'a Dataset, opts: TrainOptions) -> Result<Trainer<'a>> {
        let run = RunDir::new(&opts.out);
        if run.list_checkpoints().is_empty() {
            return Trainer::new(&self.config, data, opts);
        }
        let saved = Config::load(&run.config())?;
        let differ = saved.run_differences(&self.config);
        if !differ.is_empty() {
            return Err(Error::File {
                path: run.root,
                message: format!(
                    "this folder holds a run with another config than {} (it differs in {}); move it away or use another --out",
                    self.describe(),
                    differ.join(", ")
                ),
            });
        }
        let t = &self.config.trainer;
        Trainer::resume(
            data,
            opts,
            &Overrides::resumable(Some(t.epochs), t.patience),
        )
    }
}

/// Every combination of the axes' values (the last axis varies fastest), applied to the
/// config file's text; each config is validated, and an error names the combination.
pub fn grid(config_text: &str, axes: &[Axis]) -> Result<Vec<GridPoint>> {
    let base: toml::Table = toml::from_str(config_text)
        .map_err(|e| Error::Config(e.to_string().trim_end().to_string()))?;
    let total = axes
        .iter()
        .try_fold(1usize, |a, x| a.checked_mul(x.values.len()));
    if total.is_none_or(|t| t > 10_000) {
        return Err(Error::Invalid("the grid has more than 10000 runs".into()));
    }
    let mut points = vec![];
    for k in 0..total.unwrap_or(0) {
        let mut table = base.clone();
        let mut settings = vec![];
        let mut rest = k;
        let mut picks = vec![0; axes.len()];
        for (a, axis) in axes.iter().enumerate().rev() {
            picks[a] = rest % axis.values.len();
            rest /= axis.values.len();
        }
        for (axis, &p) in axes.iter().zip(&picks) {
            let value = &axis.values[p];
            set(&mut table, &axis.key, value.clone())?;
            let shown = match value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            settings.push((axis.key.join("."), shown));
        }
        let described = settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let config = Config::parse(&toml::to_string(&table).expect("a table serializes"))
            .map_err(|e| Error::Invalid(format!("the sweep run {described}: {e}")))?;
        let name = settings
            .iter()
            .map(|(k, v)| format!("{}={v}", k.rsplit('.').next().unwrap_or(k)))
            .collect::<Vec<_>>()
            .join("_");
        let name = if name.is_empty() { "base".into() } else { name };
        let name = super::run_dir::folder_name(&name);
        points.push(GridPoint {
            name,
            settings,
            config,
        });
    }
    Ok(points)
}

/// Sets `key` (dotted path of tables) in `table`, creating missing tables on the way.
fn set(table: &mut toml::Table, key: &[String], value: toml::Value) -> Result<()> {
    let (last, path) = key.split_last().expect("keys have two parts or more");
    let mut at = table;
    for part in path {
        at = at
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "--set {}: \"{part}\" is not a section of the config",
                    key.join(".")
                ))
            })?;
    }
    at.insert(last.clone(), value);
    Ok(())
}

/// One row of the sweep's table: a run's best epoch by validation loss (by training loss
/// without validation images), and its last epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub epochs: usize,
    pub best: EpochMetrics,
    pub last_val_loss: f64,
}

impl Summary {
    pub fn of(rows: &[EpochMetrics]) -> Option<Summary> {
        let best = super::metrics::best(rows)?;
        Some(Summary {
            epochs: rows.len(),
            best: best.clone(),
            last_val_loss: rows.last()?.val_loss,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[model]
name = "m"
height = 8
width = 8
latent = 4
encoder = [{ layers = [{ type = "flatten" }] }]
decoder = [{ layers = [{ type = "linear", units = 192 }, { type = "reshape", shape = [3, 8, 8] }, { type = "sigmoid" }] }]
"#;

    #[test]
    fn the_grid_is_every_combination_last_axis_fastest() {
        let axes = [
            Axis::parse("exp.kld_weight=1e-3, 1e-4").unwrap(),
            Axis::parse("model.latent=2,8,16").unwrap(),
        ];
        let points = grid(BASE, &axes).unwrap();
        let got: Vec<(f32, usize)> = points
            .iter()
            .map(|p| (p.config.exp.kld_weight, p.config.model.latent))
            .collect();
        assert_eq!(
            got,
            [
                (1e-3, 2),
                (1e-3, 8),
                (1e-3, 16),
                (1e-4, 2),
                (1e-4, 8),
                (1e-4, 16)
            ]
        );
        assert_eq!(points[1].name, "kld_weight=0.001_latent=8");
        assert_eq!(
            points[0].settings[1],
            ("model.latent".to_string(), "2".to_string())
        );
        // Other values stay as the file has them.
        assert!(points.iter().all(|p| p.config.model.name == "m"));
    }

    #[test]
    fn strings_and_mistakes() {
        let p = grid(BASE, &[Axis::parse("exp.recon_loss=l1,\"mse\"").unwrap()]).unwrap();
        assert_eq!(p[0].config.exp.recon_loss, crate::config::ReconLoss::L1);
        assert_eq!(p[1].name, "recon_loss=mse");
        let e = grid(BASE, &[Axis::parse("exp.kld_wieght=1").unwrap()]).unwrap_err();
        assert!(e.to_string().contains("kld_wieght"), "{e}");
        let e = grid(BASE, &[Axis::parse("model.latent=0").unwrap()]).unwrap_err();
        assert!(e.to_string().contains("model.latent=0"), "{e}");
        let e = grid(BASE, &[Axis::parse("model.name.x=1").unwrap()]).unwrap_err();
        assert!(e.to_string().contains("not a section"), "{e}");
        assert!(Axis::parse("latent=1").is_err());
        assert!(Axis::parse("exp.lr").is_err());
        assert!(Axis::parse("exp.lr=").is_err());
    }
}
