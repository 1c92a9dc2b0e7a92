//! The conditional VAE on generated faces (whose Smiling attribute really curves the mouth):
//! `sample --cond` changes the output in the direction the attribute changes the data, and
//! the shipped models/celeba32-cond.toml takes all 40 CelebA attributes.
#![cfg(feature = "engine")]

mod common;

use common::{assert_clear_error, faces32_config, faces_cache, run_ok, vae_cpu};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use vae_cpu::checkpoint::Checkpoint;
use vae_cpu::config::Config;
use vae_cpu::data::loader::{batch_conditions, batch_tensor};
use vae_cpu::data::synthetic::ATTRIBUTE_NAMES;
use vae_cpu::data::{Dataset, Split};
use vae_cpu::latent;
use vae_cpu::nn::Mode;
use vae_cpu::train::{TrainOptions, Trainer};

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (x * x) as f64).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b)).max(1e-12)
}

/// The mean image of the training images with `attr` = `value`, flattened.
fn mean_image(ds: &Dataset, attr: usize, value: i8) -> Vec<f32> {
    let idx: Vec<usize> = ds
        .indices(Split::Train)
        .into_iter()
        .filter(|&i| ds.attribute(i, attr) == value)
        .collect();
    let x = batch_tensor(ds, &idx, &[], vae_cpu::config::PixelRange::Unit);
    let per = x.len() / idx.len();
    let mut mean = vec![0.0f32; per];
    for row in x.as_slice().unwrap().chunks(per) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / idx.len() as f32;
        }
    }
    mean
}

#[test]
fn the_condition_moves_samples_the_way_the_attribute_moves_faces() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = faces_cache(d, 1500, 32);
    let ds = Dataset::open(&cache).unwrap();
    let mut config = faces32_config(10, 32);
    config.model.name = "faces32-cond".into();
    config.model.conditions = ATTRIBUTE_NAMES.iter().map(|s| s.to_string()).collect();
    config.plan().unwrap();
    let opts = TrainOptions {
        out: d.join("run"),
        val_limit: None,
        quiet: true,
        world: vae_cpu::collective::single(),
    };
    vae_cpu::threads::thread_pool(2).unwrap().install(|| {
        Trainer::new(&config, &ds, opts)
            .unwrap()
            .run(&AtomicBool::new(false))
            .unwrap()
    });
    let best = "run/checkpoints/best.safetensors";
    // 64 prior samples, each under the attributes of a training face, decoded once as
    // smiling and once as not. (The generated faces open the mouth to smile, so their
    // Mouth_Slightly_Open always equals Smiling: both are set.)
    let mut model = Checkpoint::load(&d.join(best))
        .unwrap()
        .build_model()
        .unwrap();
    let z = latent::prior_samples(64, config.model.latent, 3, 1.0);
    let train = ds.indices(Split::Train);
    let columns = ds.condition_columns(&config).unwrap();
    let mut cond = batch_conditions(&ds, &train[..64], &columns).unwrap();
    let mean_decoded = |model: &mut vae_cpu::model::Vae, cond: &vae_cpu::Tensor| {
        let tape = vae_cpu::Tape::no_grad();
        let x = model.decode_with(
            &tape,
            &vae_cpu::Var::constant(z.clone()),
            Some(cond),
            Mode::Eval,
        );
        x.value()
            .mean_axis(ndarray::Axis(0))
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<f32>>()
    };
    let set = |cond: &mut vae_cpu::Tensor, v: f32| {
        for name in ["Smiling", "Mouth_Slightly_Open"] {
            let j = config
                .model
                .conditions
                .iter()
                .position(|c| c == name)
                .unwrap();
            cond.index_axis_mut(ndarray::Axis(1), j).fill(v);
        }
    };
    set(&mut cond, 1.0);
    let smiling = mean_decoded(&mut model, &cond);
    set(&mut cond, -1.0);
    let generated: Vec<f32> = smiling
        .iter()
        .zip(mean_decoded(&mut model, &cond))
        .map(|(a, b)| a - b)
        .collect();
    let direction = |attr: &str| -> Vec<f32> {
        let column = ds.attribute_index(attr).unwrap();
        mean_image(&ds, column, 1)
            .iter()
            .zip(mean_image(&ds, column, -1))
            .map(|(a, b)| a - b)
            .collect()
    };
    let agreement = cosine(&generated, &direction("Smiling"));
    assert!(agreement > 0.5, "cosine {agreement}");
    // Smiling does not move the picture the way another attribute does.
    assert!(cosine(&generated, &direction("Eyeglasses")) < agreement / 2.0);
    // The command line draws the same thing.
    run_ok(
        &[
            "sample",
            "--checkpoint",
            best,
            "--cond",
            "Smiling=1, Male=-1",
            "--n",
            "4",
            "--out",
            "smiling.png",
        ],
        d,
    );
    assert!(d.join("smiling.png").is_file());

    // The morph by condition, scored: the classifier sees more hats as Wearing_Hat goes up
    // (Smiling is no example: the generated faces' Mouth_Slightly_Open always equals it,
    // and the model may read the smile from either condition).
    let clf = common::trained_faces_classifier(d, &cache);
    let out = run_ok(
        &[
            "morph",
            "--checkpoint",
            best,
            "--attr",
            "Wearing_Hat",
            "--by-condition",
            "--range",
            "-1:1:3",
            "--data",
            "faces.vaecache",
            "--classifier",
            clf.to_str().unwrap(),
            "--score-faces",
            "60",
            "--out",
            "cond-morph.png",
        ],
        d,
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("P(Wearing_Hat)"))
        .unwrap();
    let p: Vec<f64> = line["P(Wearing_Hat)".len()..]
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(p[0] < p[1] && p[1] < p[2] && p[2] > 0.5, "{out}");
    let o = vae_cpu(
        &[
            "morph",
            "--checkpoint",
            best,
            "--attr",
            "Grinning",
            "--by-condition",
            "--data",
            "faces.vaecache",
        ],
        d,
    );
    assert_clear_error(&o, &["not conditioned on Grinning"]);
    // Mistakes in --cond, and --cond on a model without conditions.
    let o = vae_cpu(&["sample", "--checkpoint", best, "--cond", "Smiling=2"], d);
    assert_clear_error(&o, &["Smiling=2", "from -1 to 1"]);
    let o = vae_cpu(&["sample", "--checkpoint", best, "--cond", "Grinning=1"], d);
    assert_clear_error(&o, &["Grinning", "Smiling"]);
    // The decoder exports with a second input "cond"; tract decodes under --cond.
    run_ok(&["export-onnx", "d.onnx", "--checkpoint", best], d);
    let generate = |cond: &str, out: &str| {
        let args = ["generate", "--onnx", "d.onnx", "--n", "4", "--cond", cond];
        vae_cpu(
            &[
                &args[..],
                &["--out", out, "--save-values", &format!("{out}.npy")],
            ]
            .concat(),
            d,
        )
    };
    assert!(generate("Smiling=1, Male=-1", "smiling-onnx.png")
        .status
        .success());
    assert!(generate("Smiling=-1", "serious-onnx.png").status.success());
    let values = |f: &str| vae_cpu::npy::read(&d.join(f)).unwrap().values;
    assert_ne!(
        values("smiling-onnx.png.npy"),
        values("serious-onnx.png.npy")
    );
    assert_clear_error(&generate("Grinning=1", "x.png"), &["Grinning", "Smiling"]);
    let o = vae_cpu(
        &[
            "export-onnx",
            "e.onnx",
            "--checkpoint",
            best,
            "--part",
            "encoder",
        ],
        d,
    );
    assert_clear_error(&o, &["conditional", "decoder does"]);
}

#[test]
fn celeba32_cond_takes_the_40_attributes_and_needs_them_in_the_data() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/celeba32-cond.toml");
    let config = Config::load(&path).unwrap();
    assert_eq!(
        config.model.conditions,
        ATTRIBUTE_NAMES.map(String::from).to_vec()
    );
    let shapes = config.plan().unwrap();
    assert_eq!(shapes.features, 512 + 40);
    // The decoder's first linear layer takes z and the condition.
    let mut vae = vae_cpu::model::Vae::new(
        &config,
        &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0),
    )
    .unwrap();
    assert_eq!(vae.decoder[0].kind(), "linear");
    let mut first_weight = vec![];
    vae_cpu::nn::Module::visit(vae.decoder[0].as_mut(), "", &mut |name, slot| {
        if let (Some("weight"), vae_cpu::nn::Slot::Param(p)) = (Some(name), slot) {
            first_weight = p.value().shape().to_vec();
        }
    });
    assert_eq!(first_weight, [512, 240]);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cond = common::small_config(1, 8);
    cond.model.conditions = vec!["Smiling".into(), "Sparkly".into()];
    std::fs::write(d.join("cond.toml"), cond.to_toml()).unwrap();
    faces_cache(d, 20, 16);
    let o = vae_cpu(
        &[
            "train",
            "--config",
            "cond.toml",
            "--data",
            "faces.vaecache",
            "--out",
            "run",
        ],
        d,
    );
    assert_clear_error(&o, &["faces.vaecache", "Sparkly"]);
}
