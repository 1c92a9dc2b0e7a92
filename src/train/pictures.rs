//! The pictures a run writes after every epoch: reconstructions of a few fixed images,
//! samples from a fixed z (so epochs compare), and the loss curves.

use super::metrics::EpochMetrics;
use super::run_dir::RunDir;
use super::seeds;
use crate::data::loader::{batch_conditions, batch_tensor};
use crate::data::Dataset;
use crate::model::Vae;
use crate::nn::Mode;
use crate::viz::plot::{line_chart, Series};
use crate::{viz, Result, Tape, Tensor, Var};

/// Images shown in the reconstruction grid, and samples in the sample grid.
const PREVIEW_IMAGES: usize = 8;
const SAMPLE_GRID: usize = 32;

pub struct Pictures {
    /// The images reconstructed every epoch (the first validation images, or training
    /// images without a validation split).
    preview: Vec<usize>,
    fixed_z: Tensor,
}

impl Pictures {
    pub fn new(val: &[usize], train: &[usize], seed: u64, latent: usize) -> Pictures {
        let from = if val.is_empty() { train } else { val };
        let z = seeds::fixed_z(seed, SAMPLE_GRID * latent);
        Pictures {
            preview: from.iter().copied().take(PREVIEW_IMAGES).collect(),
            fixed_z: Tensor::from_shape_vec(vec![SAMPLE_GRID, latent], z).expect("sizes match"),
        }
    }

    /// Writes `images/recon_eNNN.png`, `images/samples_eNNN.png` (and the latest as
    /// `reconstructions.png`, `samples.png`) after `epoch` epochs, and `loss.png`.
    pub fn write(
        &self,
        model: &mut Vae,
        data: &Dataset,
        cond_columns: &[usize],
        run: &RunDir,
        epoch: usize,
        history: &[EpochMetrics],
    ) -> Result<()> {
        let range = model.config.data.pixel_range;
        let tape = Tape::no_grad();
        let x = batch_tensor(data, &self.preview, &[], range);
        let cond = batch_conditions(data, &self.preview, cond_columns);
        let x_var = Var::constant(x.clone());
        let (mu, _) = model.encode_with(&tape, &x_var, cond.as_ref(), Mode::Eval);
        let recon = model.decode_with(&tape, &mu, cond.as_ref(), Mode::Eval);
        let grid = viz::reconstruction_grid(
            &viz::to_images(&x, range),
            &viz::to_images(recon.value(), range),
            8,
            2,
        );
        let e = epoch;
        viz::save_png(&run.images().join(format!("recon_e{e:03}.png")), &grid)?;
        viz::save_png(&run.root.join("reconstructions.png"), &grid)?;
        let samples = model.decode(&tape, &Var::constant(self.fixed_z.clone()), Mode::Eval);
        let grid = viz::grid(&viz::to_images(samples.value(), range), 8, 2);
        viz::save_png(&run.images().join(format!("samples_e{e:03}.png")), &grid)?;
        viz::save_png(&run.root.join("samples.png"), &grid)?;
        viz::save_png(&run.root.join("loss.png"), &loss_chart(history))
    }
}

/// Training and validation loss per epoch.
fn loss_chart(history: &[EpochMetrics]) -> image::RgbImage {
    let series = |name: &str, color, f: fn(&EpochMetrics) -> f64| Series {
        name: name.into(),
        points: history.iter().map(|m| (m.epoch as f64, f(m))).collect(),
        color,
    };
    line_chart(
        "loss (recon_weight * recon + kld_weight * KL)",
        "epoch",
        &[
            series("train", [30, 90, 200], |m| m.train_loss),
            series("val", [220, 80, 30], |m| m.val_loss),
        ],
        640,
        400,
    )
}
