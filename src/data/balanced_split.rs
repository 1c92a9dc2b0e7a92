//! `prepare --split balanced --balance-on A,B,...`: a stratified train / val / test split.
//! Images are grouped by their values of the chosen attributes (up to 2^k groups); within
//! each group, in the order of a hash of the file name, each image goes to the split
//! furthest below its share (80%, 10%, 10%) of the images dealt so far, so every split's
//! count stays within one image of its share of the group. Each split then holds every
//! combination of the attributes in the proportions of the whole data, and the split of an
//! image depends only on the files present, not on the order they were read in.

use super::celeba::Split;
use super::folder::Fnv;
use crate::{Error, Result};
use std::collections::BTreeMap;

/// How `prepare` assigns splits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SplitRule {
    /// `list_eval_partition.txt` where it lists an image, else a hash of the name (80/10/10).
    #[default]
    Official,
    /// Stratified on these attributes (names as in `list_attr_celeba.txt`).
    Balanced(Vec<String>),
}

impl SplitRule {
    /// A short description for the cache's `source` field and the fingerprint.
    pub fn describe(&self) -> String {
        match self {
            SplitRule::Official => "official split".into(),
            SplitRule::Balanced(names) => format!("split balanced on {}", names.join(",")),
        }
    }
}

/// The balanced split of images `names` whose attribute rows (`values`, `attributes.len()`
/// per image, row-major) are given; `on` names the attributes to balance.
pub fn balanced_split(
    names: &[String],
    attributes: &[String],
    values: &[i8],
    on: &[String],
) -> Result<Vec<Split>> {
    if on.is_empty() {
        return Err(Error::Invalid(
            "--split balanced needs --balance-on with at least one attribute".into(),
        ));
    }
    let columns = on
        .iter()
        .map(|name| {
            attributes.iter().position(|a| a == name).ok_or_else(|| {
                Error::Invalid(format!(
                    "--balance-on: no attribute \"{name}\" (the data has: {})",
                    attributes.join(", ")
                ))
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    let width = attributes.len();
    let mut groups: BTreeMap<Vec<i8>, Vec<(u64, usize)>> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let key = columns.iter().map(|&j| values[i * width + j]).collect();
        let mut hash = Fnv::default();
        hash.add(name.as_bytes());
        groups.entry(key).or_default().push((hash.0, i));
    }
    let mut splits = vec![Split::Train; names.len()];
    for members in groups.values_mut() {
        members.sort_unstable();
        let mut dealt = [0usize; 3];
        for (rank, &(_, i)) in members.iter().enumerate() {
            let behind = |k: usize| SHARES[k].1 * (rank + 1) as f64 - dealt[k] as f64;
            // The first of the largest deficits (ties go to train, then val).
            let k = (0..3).fold(0, |best, k| if behind(k) > behind(best) { k } else { best });
            dealt[k] += 1;
            splits[i] = SHARES[k].0;
        }
    }
    Ok(splits)
}

/// Each split and its share of every group.
const SHARES: [(Split, f64); 3] = [(Split::Train, 0.8), (Split::Val, 0.1), (Split::Test, 0.1)];

#[cfg(test)]
mod tests {
    use super::*;

    fn count(splits: &[Split], of: &[usize], which: Split) -> usize {
        of.iter().filter(|&&i| splits[i] == which).count()
    }

    #[test]
    fn every_combination_is_split_80_10_10_within_one_image() {
        let attributes: Vec<String> = ["Smiling", "Male", "Bald"].map(String::from).to_vec();
        // 1000 images; Smiling and Male vary, about 1 in 7 is smiling and male.
        let names: Vec<String> = (0..1000).map(|i| format!("{i:06}.jpg")).collect();
        let values: Vec<i8> = (0..1000)
            .flat_map(|i| {
                let v = |b: bool| if b { 1 } else { -1 };
                [v(i % 7 == 0), v(i % 3 == 0), -1]
            })
            .collect();
        let on = vec!["Smiling".to_string(), "Male".to_string()];
        let splits = balanced_split(&names, &attributes, &values, &on).unwrap();
        for (smiling, male) in [(true, true), (true, false), (false, true), (false, false)] {
            let group: Vec<usize> = (0..1000)
                .filter(|&i| (i % 7 == 0) == smiling && (i % 3 == 0) == male)
                .collect();
            let m = group.len();
            for (split, share) in [(Split::Train, 0.8), (Split::Val, 0.1), (Split::Test, 0.1)] {
                let got = count(&splits, &group, split) as f64;
                assert!(
                    (got - share * m as f64).abs() <= 1.0,
                    "{smiling} {male} {split:?}: {got} of {m}"
                );
            }
        }
        // The same files in another order get the same splits.
        let mut order: Vec<usize> = (0..1000).rev().collect();
        order.rotate_left(17);
        let names2: Vec<String> = order.iter().map(|&i| names[i].clone()).collect();
        let values2: Vec<i8> = order
            .iter()
            .flat_map(|&i| values[i * 3..i * 3 + 3].to_vec())
            .collect();
        let splits2 = balanced_split(&names2, &attributes, &values2, &on).unwrap();
        for (k, &i) in order.iter().enumerate() {
            assert_eq!(splits2[k], splits[i]);
        }
    }

    #[test]
    fn unknown_or_missing_attributes_are_refused() {
        let attributes = vec!["Smiling".to_string()];
        let names = vec!["a.jpg".to_string()];
        let err = balanced_split(&names, &attributes, &[1], &["Wings".into()]).unwrap_err();
        assert!(err.to_string().contains("no attribute \"Wings\""), "{err}");
        let err = balanced_split(&names, &attributes, &[1], &[]).unwrap_err();
        assert!(err.to_string().contains("--balance-on"), "{err}");
    }
}
