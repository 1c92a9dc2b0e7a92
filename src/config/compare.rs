//! Which settings two configs disagree on, by dotted key (`exp.lr`, `model.encoder`): what
//! a resume or a sweep checks before it continues a run with a config it was given.

use super::Config;
use toml::Value;

/// Keys a resume may change: they do not alter what the run has trained so far.
const RESUMABLE: [&str; 2] = ["trainer.epochs", "trainer.patience"];

impl Config {
    /// The dotted keys whose values differ between the two configs, sorted. Arrays (the
    /// layer lists) are compared whole and named by their key.
    pub fn differences(&self, other: &Config) -> Vec<String> {
        let (a, b) = (as_value(self), as_value(other));
        let mut keys = vec![];
        walk("", &a, &b, &mut keys);
        keys.sort();
        keys
    }

    /// The differences that make `other` another run than `self`: all but the number of
    /// epochs and the patience.
    pub fn run_differences(&self, other: &Config) -> Vec<String> {
        self.differences(other)
            .into_iter()
            .filter(|k| !RESUMABLE.contains(&k.as_str()))
            .collect()
    }
}

fn as_value(c: &Config) -> Value {
    Value::try_from(c).expect("a validated config serializes")
}

fn walk(prefix: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let (Value::Table(ta), Value::Table(tb)) = (a, b) else {
        if a != b {
            out.push(prefix.to_string());
        }
        return;
    };
    let keys: std::collections::BTreeSet<&String> = ta.keys().chain(tb.keys()).collect();
    for key in keys {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (ta.get(key), tb.get(key)) {
            (Some(x), Some(y)) => walk(&path, x, y, out),
            _ => out.push(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_changed_key_and_ignores_the_resumable_ones() {
        let a = Config::parse(include_str!("../../models/demo32.toml")).unwrap();
        let mut b = a.clone();
        assert!(a.differences(&b).is_empty());
        b.exp.lr *= 2.0;
        b.trainer.epochs += 3;
        b.model.latent += 1;
        assert_eq!(
            a.differences(&b),
            ["exp.lr", "model.latent", "trainer.epochs"]
        );
        assert_eq!(a.run_differences(&b), ["exp.lr", "model.latent"]);
    }
}
