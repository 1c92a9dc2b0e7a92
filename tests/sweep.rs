//! `vae-cpu sweep` end to end on generated faces: the grid's runs, the table, the side by
//! side samples, and a second invocation that resumes instead of starting over.
#![cfg(feature = "engine")]

mod common;

use common::{assert_clear_error, faces_cache, run_ok, small_config, vae_cpu};
use vae_cpu::train::metrics;

#[test]
fn sweep_trains_the_grid_tabulates_it_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    faces_cache(d, 40, 16);
    std::fs::write(d.join("base.toml"), small_config(1, 8).to_toml()).unwrap();
    let sweep = |epochs: &str| {
        run_ok(
            &[
                "sweep",
                "--config",
                "base.toml",
                "--data",
                "faces.vaecache",
                "--set",
                "exp.kld_weight=1,0.01",
                "--set",
                "model.latent=2,5",
                "--epochs",
                epochs,
                "--out",
                "sw",
                "--quiet",
            ],
            d,
        )
    };
    let printed = sweep("1");
    let names = [
        "kld_weight=1_latent=2",
        "kld_weight=1_latent=5",
        "kld_weight=0.01_latent=2",
        "kld_weight=0.01_latent=5",
    ];
    let csv = std::fs::read_to_string(d.join("sw/sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "run,exp.kld_weight,model.latent,epochs,best_epoch,val_loss,val_recon,val_kl,last_val_loss"
    );
    for (line, name) in lines[1..].iter().zip(names) {
        assert!(line.starts_with(&format!("{name},")), "{csv}");
        let rows = metrics::read(&d.join("sw").join(name).join("metrics.csv")).unwrap();
        assert_eq!(rows.len(), 1);
        // The table holds the run's own validation loss.
        let val_loss: f64 = line.split(',').nth(5).unwrap().parse().unwrap();
        assert!((val_loss - rows[0].val_loss).abs() < 1e-4 * rows[0].val_loss.abs().max(1.0));
        let config =
            vae_cpu::config::Config::load(&d.join("sw").join(name).join("config.toml")).unwrap();
        assert_eq!(
            config.model.latent,
            name.ends_with("latent=5") as usize * 3 + 2
        );
    }
    assert!(
        printed.contains("| kld_weight=0.01_latent=5 | 0.01 | 5 | 1 | 1 |"),
        "{printed}"
    );
    let one = image::open(d.join("sw").join(names[0]).join("samples.png")).unwrap();
    let all = image::open(d.join("sw/sweep-samples.png")).unwrap();
    assert!(
        all.width() >= 4 * one.width(),
        "{} vs {}",
        all.width(),
        one.width()
    );

    // Again with more epochs: every run continues from its checkpoint.
    sweep("2");
    for name in names {
        let rows = metrics::read(&d.join("sw").join(name).join("metrics.csv")).unwrap();
        assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 2]);
    }

    // A folder of another run is not taken over; a bad key names itself.
    let o = vae_cpu(
        &[
            "sweep",
            "--config",
            "base.toml",
            "--data",
            "faces.vaecache",
            "--set",
            "exp.lr=0.5",
            "--out",
            "sw",
            "--quiet",
        ],
        d,
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    std::fs::write(d.join("other.toml"), small_config(1, 4).to_toml()).unwrap();
    let o = vae_cpu(
        &[
            "sweep",
            "--config",
            "other.toml",
            "--data",
            "faces.vaecache",
            "--set",
            "exp.lr=0.5",
            "--out",
            "sw",
            "--quiet",
        ],
        d,
    );
    assert_clear_error(&o, &["lr=0.5", "another config"]);
    let o = vae_cpu(
        &[
            "sweep",
            "--config",
            "base.toml",
            "--data",
            "faces.vaecache",
            "--set",
            "exp.kld=1,2",
        ],
        d,
    );
    assert_clear_error(&o, &["kld"]);
}

/// `--disentanglement` scores every finished run (the Higgins et al. metric on generated
/// faces) into a column of the table, and `evaluate --disentanglement` prints it.
#[test]
fn sweep_and_evaluate_report_disentanglement() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    faces_cache(d, 40, 16);
    std::fs::write(d.join("base.toml"), small_config(1, 8).to_toml()).unwrap();
    let args = ["sweep", "--config", "base.toml", "--data", "faces.vaecache"];
    let more = ["--set", "exp.kld_weight=1,4", "--out", "sw", "--quiet"];
    run_ok(
        &[&args[..], &more, &["--disentanglement", "--votes", "2"]].concat(),
        d,
    );
    let csv = std::fs::read_to_string(d.join("sw/sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].ends_with(",last_val_loss,disentanglement"),
        "{csv}"
    );
    for line in &lines[1..] {
        let score: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
        assert!((0.0..=1.0).contains(&score), "{csv}");
    }
    let ck = "sw/kld_weight=1/checkpoints/best.safetensors";
    let eval = [
        "evaluate",
        "--checkpoint",
        ck,
        "--data",
        "faces.vaecache",
        "--split",
        "val",
    ];
    let printed = run_ok(
        &[&eval[..], &["--disentanglement", "--votes", "2", "--quiet"]].concat(),
        d,
    );
    let line = printed
        .lines()
        .find(|l| l.starts_with("disentanglement:"))
        .unwrap();
    assert!(
        line.contains("chance 0.143") && line.contains("hair colour"),
        "{line}"
    );
}
