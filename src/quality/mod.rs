//! Measuring what a trained VAE is worth with an attribute classifier: the Fréchet
//! distance of feature statistics (`frechet`), the `score` report (reconstruction, samples
//! against real images, attribute frequencies, the FID with an Inception network) and the
//! morph scores of attribute vectors (`morph_score`).

pub mod frechet;
pub mod morph_score;
pub mod score;
