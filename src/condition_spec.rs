//! The condition of a conditional VAE as a user writes it: `"Smiling=1,Male=-1"` sets those
//! attributes, every other one stays 0 (unspecified). Shared by the engine's latent tools
//! and the edge build's `generate` (whose condition names come from the ONNX file).

use crate::{Error, Result};

/// The condition vector (one value per name in `names`) that `spec` describes: `NAME=VALUE`
/// pairs separated by commas, names as in `names` (any case), values +1 (has it), -1 (has
/// not), 0 (unspecified) or anything between.
pub fn parse(names: &[String], spec: &str) -> Result<Vec<f32>> {
    let mut values = vec![0.0; names.len()];
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |why: String| Error::Invalid(format!("--cond \"{pair}\": {why}"));
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| bad("write NAME=VALUE, e.g. Smiling=1".into()))?;
        let column = names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                bad(format!(
                    "the model is not conditioned on \"{}\"; it is on: {}",
                    name.trim(),
                    names.join(", ")
                ))
            })?;
        values[column] = value
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|v| (-1.0..=1.0).contains(v))
            .ok_or_else(|| bad("the value must be a number from -1 to 1".into()))?;
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_values_land_in_their_columns_and_the_rest_stay_zero() {
        let names = ["Smiling", "Male", "Young"].map(String::from);
        assert_eq!(
            parse(&names, "male=-1, Smiling=0.5").unwrap(),
            [0.5, -1.0, 0.0]
        );
        let e = parse(&names, "Bald=1").unwrap_err().to_string();
        assert!(
            e.contains("Bald") && e.contains("Smiling, Male, Young"),
            "{e}"
        );
        assert!(parse(&names, "Smiling").is_err());
        assert!(parse(&names, "Smiling=1.5").is_err());
    }
}
