//! Attribute vectors on generated faces, where the attributes are known: Δ computed on the
//! train split points the right way on held-out images (a linear probe on z separates the
//! classes), and decoding z + nΔ moves a face along Δ as n grows.
#![cfg(feature = "engine")]

mod common;

use std::sync::atomic::AtomicBool;
use vae_cpu::checkpoint::Checkpoint;
use vae_cpu::data::{Dataset, Split};
use vae_cpu::latent::{self, attribute::AttributeVector};
use vae_cpu::train::{TrainOptions, Trainer};

#[test]
fn attribute_vectors_separate_held_out_faces_and_morphs_follow_them() {
    let dir = tempfile::tempdir().unwrap();
    let cache = common::faces_cache(dir.path(), 1500, 32);
    let data = Dataset::open(&cache).unwrap();
    let out = dir.path().join("run");
    let opts = TrainOptions {
        out: out.clone(),
        val_limit: None,
        quiet: true,
        world: vae_cpu::collective::single(),
    };
    Trainer::new(&common::faces32_config(10, 32), &data, opts)
        .unwrap()
        .run(&AtomicBool::new(false))
        .unwrap();
    let mut model = Checkpoint::load(&out.join("checkpoints/best.safetensors"))
        .unwrap()
        .build_model()
        .unwrap();
    let bar = indicatif::ProgressBar::hidden();
    let (train, val) = (data.indices(Split::Train), data.indices(Split::Val));
    let (mu_train, _) = latent::encode_images(&mut model, &data, &train, 64, &bar);
    let (mu_val, _) = latent::encode_images(&mut model, &data, &val, 64, &bar);
    // The attributes that change many pixels; a mouth's curve or rosy cheeks are a few
    // pixels at 32x32 and a briefly trained model does not encode them reliably.
    for attr in ["Wearing_Hat", "Male", "Blond_Hair", "Pale_Skin"] {
        let column = data.attribute_index(attr).unwrap();
        let labels = |idx: &[usize]| {
            idx.iter()
                .map(|&i| data.attribute(i, column))
                .collect::<Vec<i8>>()
        };
        let v = AttributeVector::compute(attr, &mu_train, &labels(&train)).unwrap();
        let held_out = v.probe_accuracy(&mu_val, &labels(&val));
        assert!(
            held_out > 0.8,
            "{attr}: the probe gets {held_out} of val right"
        );
        // Morphing: re-encode the decoded z - 2Δ and z + 2Δ of each val face; the second
        // lies further along Δ.
        let mut further = 0;
        for i in 0..val.len().min(40) {
            let path = v.morph(&latent::row(&mu_val, i), &[-2.0, 2.0]);
            let decoded = latent::decode(&mut model, &path);
            let back = latent::encode_means(&mut model, &decoded);
            let (lo, hi) = (
                v.projection(&latent::row(&back, 0)),
                v.projection(&latent::row(&back, 1)),
            );
            further += usize::from(hi > lo);
        }
        assert!(
            further >= 36,
            "{attr}: only {further} of 40 morphs moved along Δ"
        );
    }
}
