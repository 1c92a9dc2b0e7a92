//! The latent map's 2-D coordinates, each projection computed once. PCA takes
//! milliseconds and is computed on the spot; t-SNE takes seconds, so it runs on its own
//! thread and the server keeps answering (the sliders stay live) while the page asks again.

use crate::latent::{self, pca::Pca, tsne::TsneOptions};
use indicatif::ProgressBar;
use ndarray::{Array2, Axis};
use std::thread::JoinHandle;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projection {
    Pca,
    Tsne,
}

enum Background {
    Idle,
    Running(JoinHandle<Vec<[f32; 2]>>),
    Done(Vec<[f32; 2]>),
}

pub struct Projections {
    pca: Option<Vec<[f32; 2]>>,
    tsne: Background,
}

impl Default for Projections {
    fn default() -> Self {
        Projections {
            pca: None,
            tsne: Background::Idle,
        }
    }
}

impl Projections {
    /// The coordinates of the rows of `z()` by `projection`, or `None` while t-SNE is
    /// still running (the first call starts it; `bar` follows it on the terminal).
    pub fn get(
        &mut self,
        projection: Projection,
        z: impl FnOnce() -> Array2<f64>,
        bar: &ProgressBar,
    ) -> Option<Vec<[f32; 2]>> {
        match projection {
            Projection::Pca => Some(
                self.pca
                    .get_or_insert_with(|| {
                        let z = z();
                        points(&Pca::fit(&z, 2).project(&z))
                    })
                    .clone(),
            ),
            Projection::Tsne => self.tsne(z, bar),
        }
    }

    fn tsne(
        &mut self,
        z: impl FnOnce() -> Array2<f64>,
        bar: &ProgressBar,
    ) -> Option<Vec<[f32; 2]>> {
        match std::mem::replace(&mut self.tsne, Background::Idle) {
            Background::Idle => {
                let (z, bar) = (z(), bar.clone());
                self.tsne = Background::Running(std::thread::spawn(move || {
                    points(&latent::map::tsne_coordinates(
                        &z,
                        &TsneOptions::default(),
                        &bar,
                    ))
                }));
                None
            }
            Background::Running(handle) if handle.is_finished() => {
                // t-SNE does not panic on finite input; if it did, the next call retries.
                let xy = handle.join().ok()?;
                self.tsne = Background::Done(xy.clone());
                Some(xy)
            }
            Background::Running(handle) => {
                self.tsne = Background::Running(handle);
                None
            }
            Background::Done(xy) => {
                self.tsne = Background::Done(xy.clone());
                Some(xy)
            }
        }
    }
}

/// The rows of `xy` as points; a 1-d latent has one principal component, so the second
/// coordinate may be missing (then 0).
fn points(xy: &Array2<f64>) -> Vec<[f32; 2]> {
    xy.axis_iter(Axis(0))
        .map(|r| [r[0] as f32, r.get(1).copied().unwrap_or(0.0) as f32])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsne_answers_later_and_pca_at_once() {
        let z = Array2::from_shape_fn((40, 5), |(i, d)| ((i * 7 + d * 3) % 11) as f64);
        let bar = ProgressBar::hidden();
        let mut p = Projections::default();
        let pca = p.get(Projection::Pca, || z.clone(), &bar).unwrap();
        assert_eq!(pca.len(), 40);
        assert!(
            p.get(Projection::Tsne, || z.clone(), &bar).is_none(),
            "t-SNE starts"
        );
        let start = std::time::Instant::now();
        let tsne = loop {
            if let Some(xy) = p.get(Projection::Tsne, || unreachable!(), &bar) {
                break xy;
            }
            assert!(start.elapsed().as_secs() < 120, "t-SNE never finished");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(tsne.len(), 40);
        assert!(tsne.iter().flatten().all(|v| v.is_finite()));
        assert_eq!(p.get(Projection::Tsne, || unreachable!(), &bar), Some(tsne));
        assert_eq!(p.get(Projection::Pca, || unreachable!(), &bar), Some(pca));
    }
}
