//! Model configs: the shipped files validate and build the documented architectures; bad
//! configs are refused with the layer that causes the problem.
#![cfg(feature = "engine")]

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use vae_cpu::config::{Config, LayerSpec};
use vae_cpu::model::Vae;
use vae_cpu::nn::{named_shapes, parameter_count, Mode, Module, Slot};
use vae_cpu::{Tape, Tensor, Var};

fn load(name: &str) -> Config {
    Config::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(name),
    )
    .unwrap()
}

#[test]
fn celeba32_is_the_wolfram_architecture() {
    let config = load("celeba32.toml");
    let shapes = config.plan().unwrap();
    assert_eq!(shapes.features, 512);
    // 32 -> 16 -> 8 -> 4 -> 2 spatially, 128 channels.
    let convs: Vec<&Vec<usize>> = shapes
        .encoder
        .iter()
        .step_by(3)
        .take(4)
        .map(|l| &l.output)
        .collect();
    assert_eq!(
        convs,
        [
            &vec![128, 16, 16],
            &vec![128, 8, 8],
            &vec![128, 4, 4],
            &vec![128, 2, 2]
        ]
    );
    assert_eq!(shapes.decoder_output(), [3, 32, 32]);
    assert_eq!(
        (
            config.exp.recon_weight,
            config.exp.kld_weight,
            config.trainer.batch_size
        ),
        (2000.0, 1.0, 500)
    );

    let mut vae = Vae::new(&config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let conv = |cin: usize, cout: usize, k: usize| cin * cout * k * k + cout;
    let bn_prelu = |c: usize| 2 * c + c;
    let encoder = conv(3, 128, 4) + 3 * conv(128, 128, 4) + 4 * bn_prelu(128);
    let heads = 2 * (512 * 200 + 200);
    let decoder = (200 * 512 + 512)
        + bn_prelu(512)
        + 4 * (conv(128, 128, 4) + bn_prelu(128))
        + conv(128, 3, 3);
    assert_eq!(parameter_count(&mut vae), encoder + heads + decoder);
    let names = named_shapes(&mut vae);
    assert!(names
        .iter()
        .any(|(n, s, learned)| n == "encoder.1.running_var" && s == &vec![128] && !learned));
    assert!(names
        .iter()
        .any(|(n, s, _)| n == "decoder.16.weight" && s == &vec![128, 3, 3, 3]));
}

#[test]
fn celeba64_builds_and_runs() {
    let config = load("celeba64.toml");
    let shapes = config.plan().unwrap();
    assert_eq!(shapes.features, 512 * 2 * 2);
    assert_eq!(config.model.latent, 128);
    let mut vae = Vae::new(&config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let x = Tensor::from_elem(ndarray::IxDyn(&[2, 3, 64, 64]), 0.5);
    let (mu, logvar) = vae.encode(&Tape::no_grad(), &Var::constant(x), Mode::Eval);
    assert_eq!((mu.shape(), logvar.shape()), (&[2, 128][..], &[2, 128][..]));
}

#[test]
fn celeba32_forward_loss_and_gradients() {
    let config = load("celeba32.toml");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut vae = Vae::new(&config, &mut rng).unwrap();
    let x = Tensor::from_shape_fn(ndarray::IxDyn(&[4, 3, 32, 32]), |d| {
        ((d[1] + d[2] * 3 + d[3]) % 17) as f32 / 17.0
    });
    let tape = Tape::new();
    let out = vae.forward(&tape, &Var::constant(x.clone()), Mode::Train, &mut rng);
    assert_eq!(out.recon.shape(), &[4, 3, 32, 32]);
    assert!(out.recon.value().iter().all(|&v| (0.0..=1.0).contains(&v)));
    let loss = vae.loss(&out, &x);
    assert!(loss.kl >= 0.0 && loss.recon > 0.0);
    assert!((loss.total.item() - (2000.0 * loss.recon + loss.kl)).abs() < 1e-2 * loss.total.item());
    let grads = tape.backward(&loss.total);
    let mut missing = vec![];
    vae.visit("", &mut |name, slot| {
        if let Slot::Param(p) = slot {
            if grads.param(p).is_none() {
                missing.push(name.to_string());
            }
        }
    });
    assert!(
        missing.is_empty(),
        "parameters without a gradient: {missing:?}"
    );
}

fn refuse(text: &str) -> String {
    Config::parse(text).unwrap_err().to_string()
}

const HEAD: &str = "[model]\nname = \"t\"\nheight = 8\nwidth = 8\nlatent = 4\n";

#[test]
fn bad_configs_are_refused_with_the_layer_at_fault() {
    // A kernel larger than what reaches it.
    let e = refuse(&format!(
        "{HEAD}[[model.encoder]]\nrepeat = 5\nlayers = [{{ type = \"conv2d\", filters = 4, kernel = 4, stride = 2 }}]\n\
         [[model.decoder]]\nlayers = [{{ type = \"linear\", units = 192 }}, {{ type = \"reshape\", shape = [3, 8, 8] }}]\n"
    ));
    assert!(
        e.contains("model.encoder block 1 layer 1 (repeat 2) (conv2d)")
            && e.contains("does not fit"),
        "{e}"
    );
    // Encoder not flattened.
    let e = refuse(&format!(
        "{HEAD}[[model.encoder]]\nlayers = [{{ type = \"conv2d\", filters = 4, kernel = 3, padding = 1 }}]\n\
         [[model.decoder]]\nlayers = [{{ type = \"linear\", units = 192 }}, {{ type = \"reshape\", shape = [3, 8, 8] }}]\n"
    ));
    assert!(e.contains("flatten"), "{e}");
    // Decoder ending at the wrong size.
    let e = refuse(&format!(
        "{HEAD}[[model.encoder]]\nlayers = [{{ type = \"flatten\" }}]\n\
         [[model.decoder]]\nlayers = [{{ type = \"linear\", units = 48 }}, {{ type = \"reshape\", shape = [3, 4, 4] }}]\n"
    ));
    assert!(
        e.contains("produces [3, 4, 4] but the images are [3, 8, 8]"),
        "{e}"
    );
    // A typo in a key is an error with its line, not silently ignored.
    let e = refuse(&format!("{HEAD}[[model.encoder]]\nlayers = [{{ type = \"flatten\", filterz = 3 }}]\n[[model.decoder]]\nlayers = []\n"));
    assert!(e.contains("filterz") || e.contains("unknown field"), "{e}");
    let e = refuse(&format!("{HEAD}[[model.encoder]]\nlayers = [{{ type = \"conv3d\" }}]\n[[model.decoder]]\nlayers = []\n"));
    assert!(e.contains("conv3d"), "{e}");
    // Missing file: the message names it.
    let e = Config::load(Path::new("/no/such/model.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/no/such/model.toml"), "{e}");
}

#[test]
fn config_round_trips_through_toml() {
    let config = load("celeba32.toml");
    assert_eq!(Config::parse(&config.to_toml()).unwrap(), config);
}

/// 64 wide by 48 high, InstanceNorm and ReLU after 8 convolutions (4x4 stride 2 and 3x3
/// stride 1 alternating, 32 -> 256 channels), latent 64, [-1, 1] pixels with a Tanh output.
#[test]
fn celeba64x48_instance_norm_builds_trains_and_ends_in_tanh() {
    let config = load("celeba64x48-in.toml");
    let shapes = config.plan().unwrap();
    assert_eq!(shapes.input, vec![3, 48, 64]);
    assert_eq!(shapes.features, 256 * 3 * 4);
    assert_eq!(config.model.latent, 64);
    assert_eq!(
        config.data.pixel_range,
        vae_cpu::config::PixelRange::Symmetric
    );
    assert_eq!(config.exp.lr, 1e-3);
    let convs: Vec<_> = vae_cpu::config::Block::expand(&config.model.encoder)
        .filter_map(|l| match l {
            LayerSpec::Conv2d(c) => Some((c.filters, c.kernel, c.stride)),
            _ => None,
        })
        .collect();
    let want: Vec<_> = [32, 32, 64, 64, 128, 128, 256, 256]
        .iter()
        .enumerate()
        .map(|(i, &f)| if i % 2 == 0 { (f, 4, 2) } else { (f, 3, 1) })
        .collect();
    assert_eq!(convs, want);
    let norms = vae_cpu::config::Block::expand(&config.model.encoder)
        .filter(|l| matches!(l, LayerSpec::InstanceNorm(_)))
        .count();
    assert_eq!(norms, 8);

    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut vae = Vae::new(&config, &mut rng).unwrap();
    let x = Tensor::from_shape_fn(ndarray::IxDyn(&[2, 3, 48, 64]), |d| {
        ((d[1] + d[2] * 5 + d[3]) % 23) as f32 / 11.5 - 1.0
    });
    let tape = Tape::new();
    let out = vae.forward(&tape, &Var::constant(x.clone()), Mode::Train, &mut rng);
    assert_eq!(out.recon.shape(), &[2, 3, 48, 64]);
    assert!(out.recon.value().iter().all(|&v| (-1.0..=1.0).contains(&v)));
    assert!(out.recon.value().iter().any(|&v| v < 0.0));
    let loss = vae.loss(&out, &x);
    let grads = tape.backward(&loss.total);
    let mut without = 0;
    vae.visit("", &mut |_, slot| {
        if let Slot::Param(p) = slot {
            without += grads.param(p).is_none() as usize;
        }
    });
    assert_eq!(without, 0);
}

/// docs/config.md has a row for every key of every section (its defaults serialized).
#[test]
fn the_config_reference_lists_every_key() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.md")).unwrap();
    let mut config = load("celeba32-cond.toml");
    config.exp.feature_net = Some("vgg.onnx".into());
    config.exp.feature_layers = vec!["relu1_1".into()];
    config.trainer.patience = Some(2);
    let table: toml::Table = toml::from_str(&config.to_toml()).unwrap();
    for (section, values) in &table {
        let doc_section = &doc[doc.find(&format!("## `[{section}]`")).unwrap()..];
        for key in values.as_table().unwrap().keys() {
            assert!(
                doc_section.contains(&format!("| `{key}`"))
                    || doc_section.contains(&format!(", `{key}`")),
                "docs/config.md's [{section}] lacks `{key}`"
            );
        }
    }
}
