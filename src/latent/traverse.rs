//! Latent traversals: hold a face's latent mean and sweep one dimension at a time, the
//! dimensions ranked by how much information they carry, their average KL term
//! `KL_d = ½ E_x[μ_d² + σ_d² - 1 - ln σ_d²]` (the per-dimension part of the VAE's KL).

use crate::{Error, Result, Tensor};
use ndarray::Axis;

/// The average KL of each latent dimension over the rows of `mu` and `logvar` (`[N, latent]`).
pub fn kl_per_dimension(mu: &Tensor, logvar: &Tensor) -> Vec<f64> {
    let (n, latent) = (mu.shape()[0], mu.shape()[1]);
    let mut kl = vec![0.0f64; latent];
    for (m, lv) in mu.axis_iter(Axis(0)).zip(logvar.axis_iter(Axis(0))) {
        for d in 0..latent {
            let (m, lv) = (m[d] as f64, lv[d] as f64);
            kl[d] += 0.5 * (m * m + lv.exp() - 1.0 - lv);
        }
    }
    kl.iter().map(|k| k / n.max(1) as f64).collect()
}

/// Dimension indices, most informative (largest KL) first; ties keep index order.
pub fn rank_by_kl(kl: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..kl.len()).collect();
    order.sort_by(|&a, &b| kl[b].total_cmp(&kl[a]));
    order
}

/// The rows of a traversal of `z` along dimension `dim`: `z` with `z[dim]` set to each value.
pub fn traversal(z: &[f32], dim: usize, values: &[f32]) -> Tensor {
    Tensor::from_shape_fn(vec![values.len(), z.len()], |i| {
        if i[1] == dim {
            values[i[0]]
        } else {
            z[i[1]]
        }
    })
}

/// `"START:END:COUNT"`, e.g. `-3:3:7`: COUNT evenly spaced values from START to END.
pub fn parse_range(s: &str) -> Result<Vec<f32>> {
    let bad = || {
        Error::Invalid(format!(
            "range \"{s}\" should be START:END:COUNT with 2 <= COUNT <= 50, e.g. -3:3:7"
        ))
    };
    let parts: Vec<&str> = s.split(':').collect();
    let [start, end, count] = parts[..] else {
        return Err(bad());
    };
    let (start, end): (f32, f32) = (
        start.trim().parse().map_err(|_| bad())?,
        end.trim().parse().map_err(|_| bad())?,
    );
    let count: usize = count.trim().parse().map_err(|_| bad())?;
    if !(2..=50).contains(&count) || !start.is_finite() || !end.is_finite() {
        return Err(bad());
    }
    Ok((0..count)
        .map(|i| start + (end - start) * i as f32 / (count - 1) as f32)
        .collect())
}

/// `"A..B"` (ranks A to B-1) or a comma list `"0,3,5"`, each below `limit`.
pub fn parse_ranks(s: &str, limit: usize) -> Result<Vec<usize>> {
    let bad = |why: String| Error::Invalid(format!("--dims \"{s}\": {why}"));
    let ranks: Vec<usize> = if let Some((a, b)) = s.split_once("..") {
        let a: usize = a
            .trim()
            .parse()
            .map_err(|_| bad("expected A..B or a list".into()))?;
        let b: usize = b
            .trim()
            .parse()
            .map_err(|_| bad("expected A..B or a list".into()))?;
        (a..b).collect()
    } else {
        s.split(',')
            .map(|p| {
                p.trim()
                    .parse()
                    .map_err(|_| bad(format!("\"{p}\" is not a number")))
            })
            .collect::<Result<_>>()?
    };
    if ranks.is_empty() {
        return Err(bad("selects no dimension".into()));
    }
    if let Some(r) = ranks.iter().find(|&&r| r >= limit) {
        return Err(bad(format!(
            "{r} is out of range: the latent has {limit} dimensions"
        )));
    }
    if ranks.len() > 64 {
        return Err(bad("at most 64 dimensions at a time".into()));
    }
    Ok(ranks)
}

/// A short label for a value of a range: "-3", "1.5", "+2".
pub fn value_label(v: f32) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    let s = if s == "-0" { "0" } else { s };
    if v > 0.0 {
        format!("+{s}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_changes_only_the_chosen_dimension() {
        let z = [0.5f32, -1.0, 2.0, 0.0];
        let values = parse_range("-3:3:5").unwrap();
        let t = traversal(&z, 2, &values);
        assert_eq!(t.shape(), &[5, 4]);
        for (r, v) in values.iter().enumerate() {
            for d in 0..4 {
                let want = if d == 2 { *v } else { z[d] };
                assert_eq!(t[[r, d]], want);
            }
        }
    }

    #[test]
    fn kl_is_zero_at_the_prior_and_ranks_dimensions() {
        // Dimension 0 matches the prior (μ=0, σ=1); dimension 1 has μ=±2; dimension 2 μ=±1.
        let mu = Tensor::from_shape_vec(vec![2, 3], vec![0.0, 2.0, 1.0, 0.0, -2.0, -1.0]).unwrap();
        let logvar = Tensor::zeros(vec![2, 3]);
        let kl = kl_per_dimension(&mu, &logvar);
        assert_eq!(kl, vec![0.0, 2.0, 0.5]);
        assert_eq!(rank_by_kl(&kl), vec![1, 2, 0]);
        // A narrow posterior costs KL too: σ² = e^-2 gives ½(e^-2 - 1 + 2).
        let narrow = kl_per_dimension(
            &Tensor::zeros(vec![1, 1]),
            &Tensor::from_elem(vec![1, 1], -2.0),
        );
        assert!((narrow[0] - 0.5 * ((-2.0f64).exp() + 1.0)).abs() < 1e-6);
    }

    #[test]
    fn ranges_and_ranks_parse_or_explain() {
        assert_eq!(
            parse_range("-3:3:7").unwrap(),
            vec![-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
        );
        assert_eq!(parse_range("0:1:2").unwrap(), vec![0.0, 1.0]);
        for bad in ["", "1:2", "a:1:3", "0:1:1", "0:1:1000", "0:inf:3"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_ranks("0..4", 10).unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_ranks("5, 1", 10).unwrap(), vec![5, 1]);
        let err = parse_ranks("0..16", 6).unwrap_err().to_string();
        assert!(err.contains("6 dimensions"), "{err}");
        assert!(parse_ranks("3..3", 10).is_err());
        assert!(parse_ranks("x", 10).is_err());
        assert_eq!(value_label(-3.0), "-3");
        assert_eq!(value_label(1.5), "+1.5");
        assert_eq!(value_label(0.0), "0");
    }
}
