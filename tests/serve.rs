//! `vae-cpu serve` through its HTTP layer: every endpoint answers what the library computes
//! directly, bad requests get clear errors (never a crash), nothing outside the page's
//! endpoints is reachable, queued slider requests are coalesced, and the server stops on
//! its flag (Ctrl-C in the binary).
#![cfg(feature = "engine")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use vae_cpu::checkpoint::Checkpoint;
use vae_cpu::data::prepare::CELEBA_CROP_FRACTION;
use vae_cpu::data::{loader::batch_tensor, Dataset, Split};
use vae_cpu::latent::{self, attribute::AttributeVector};
use vae_cpu::serve::{data_uri::png_uri, Explorer, ExplorerOptions, Server};
use vae_cpu::viz;

/// A server on a free port answering for the small trained model and its faces.
struct Running {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Binds now; starts answering when `go` receives (requests queue until then).
    fn start(ckpt: &Path, cache: &Path, go: mpsc::Receiver<()>) -> Running {
        let server = Server::bind("127.0.0.1", 0).unwrap();
        let addr = server.address();
        let stop = Arc::new(AtomicBool::new(false));
        let (ckpt, cache, flag) = (ckpt.to_path_buf(), cache.to_path_buf(), stop.clone());
        let thread = std::thread::spawn(move || {
            let model = Checkpoint::load_model(&ckpt).unwrap();
            let data = Dataset::open(&cache).unwrap();
            let opts = ExplorerOptions {
                limit: 30,
                map_points: 20,
            };
            let bar = indicatif::ProgressBar::hidden();
            let mut explorer = Explorer::new(model, Some(data), vec![], &opts, &bar).unwrap();
            go.recv().unwrap();
            server.run(&mut explorer, &flag, &bar).unwrap();
        });
        Running {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
    }
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap().to_string()
    }
}

/// Writes one HTTP/1.1 request (Host `host`, the connection closed after it).
fn send(addr: SocketAddr, method: &str, path: &str, host: &str, body: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    s
}

fn receive(mut s: TcpStream) -> Answer {
    let mut raw = vec![];
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        body: raw[split + 4..].to_vec(),
    }
}

fn call(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Answer {
    receive(send(addr, method, path, "127.0.0.1", body))
}

fn post(addr: SocketAddr, path: &str, body: serde_json::Value) -> Answer {
    call(addr, "POST", path, body.to_string().as_bytes())
}

fn ok(a: Answer) -> serde_json::Value {
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    a.json()
}

/// The small model trained on 40 faces, its checkpoint and cache.
fn trained(dir: &Path) -> (PathBuf, PathBuf) {
    let ckpt = common::trained_small(dir, 40);
    (ckpt, dir.join("faces.vaecache"))
}

fn started(dir: &Path) -> Running {
    let (ckpt, cache) = trained(dir);
    let (go, wait) = mpsc::channel();
    let running = Running::start(&ckpt, &cache, wait);
    go.send(()).unwrap();
    running
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn every_endpoint_answers_what_the_library_computes() {
    let dir = tempfile::tempdir().unwrap();
    let server = started(dir.path());
    let addr = server.addr;
    let (ckpt, cache) = (
        dir.path().join(common::BEST),
        dir.path().join("faces.vaecache"),
    );
    let mut model = Checkpoint::load_model(&ckpt).unwrap();
    let ds = Dataset::open(&cache).unwrap();
    let range = model.config.data.pixel_range;

    let page = call(addr, "GET", "/", b"");
    assert!(String::from_utf8_lossy(&page.body).contains("vae-cpu explorer"));
    for asset in ["/app.js", "/style.css"] {
        let a = call(addr, "GET", asset, b"");
        assert!(a.status == 200 && a.body.len() > 500, "{asset}");
    }
    let info = ok(call(addr, "GET", "/api/info", b""));
    assert_eq!(info["latent"], 6);
    assert_eq!(info["dims"].as_array().unwrap().len(), 6);
    let val = ds.indices(Split::Val);
    let faces: Vec<usize> = serde_json::from_value(info["faces"].clone()).unwrap();
    assert_eq!(faces, val);
    assert!(strings(&info["attributes"]).contains(&"Smiling".to_string()));

    // Samples are the prior's, decoded.
    let s = ok(post(
        addr,
        "/api/samples",
        serde_json::json!({"n": 3, "seed": 5, "temperature": 0.7}),
    ));
    let z = latent::prior_samples(3, 6, 5, 0.7);
    let want = viz::to_images(&latent::decode(&mut model, &z), range);
    assert_eq!(
        strings(&s["images"]),
        want.iter().map(png_uri).collect::<Vec<_>>()
    );
    assert_eq!(floats(&s["z"][2]), latent::row(&z, 2));

    // Decoding a given point.
    let d = ok(post(
        addr,
        "/api/decode",
        serde_json::json!({"z": [latent::row(&z, 1)]}),
    ));
    assert_eq!(strings(&d["images"]), vec![png_uri(&want[1])]);

    // A data face: its latent mean and reconstruction.
    let e = ok(post(
        addr,
        "/api/encode",
        serde_json::json!({"index": val[0]}),
    ));
    let x = batch_tensor(&ds, &[val[0]], &[], range);
    let mu = latent::encode_means(&mut model, &x);
    assert_eq!(floats(&e["z"]), latent::row(&mu, 0));
    let recon = viz::to_images(&latent::decode(&mut model, &mu), range);
    assert_eq!(e["recon"].as_str().unwrap(), png_uri(&recon[0]));
    let f = ok(post(
        addr,
        "/api/faces",
        serde_json::json!({"indices": [val[0]]}),
    ));
    assert_eq!(
        strings(&f["images"]),
        vec![e["image"].as_str().unwrap().to_string()]
    );

    // The attribute vector over the first 30 train images.
    let v = ok(post(
        addr,
        "/api/vector",
        serde_json::json!({"attribute": "Smiling"}),
    ));
    let train: Vec<usize> = ds.indices(Split::Train).into_iter().take(30).collect();
    let bar = indicatif::ProgressBar::hidden();
    let (means, _) = latent::encode_images(&mut model, &ds, &train, 256, &bar);
    let column = ds.attribute_index("Smiling").unwrap();
    let labels = ds.attribute_of(&train, column);
    let direct = AttributeVector::compute("Smiling", &means, &labels).unwrap();
    assert_eq!(floats(&v["delta"]), direct.delta);

    // Interpolation starts and ends at the given points.
    let (a, b) = (latent::row(&z, 0), latent::row(&z, 2));
    let i = ok(post(
        addr,
        "/api/interpolate",
        serde_json::json!({"a": a, "b": b, "steps": 4, "spherical": true}),
    ));
    let frames = strings(&i["images"]);
    assert_eq!(
        (frames.len(), &frames[0], &frames[3]),
        (4, &png_uri(&want[0]), &png_uri(&want[2]))
    );

    // The map: one point per encoded image (at most map_points), labeled.
    for projection in ["pca", "tsne"] {
        let ask = serde_json::json!({"projection": projection, "color": "Smiling"});
        // t-SNE runs on its own thread: not ready at first, then ready.
        let start = std::time::Instant::now();
        let m = loop {
            let m = ok(post(addr, "/api/map", ask.clone()));
            if m["ready"] == true {
                break m;
            }
            assert_eq!(projection, "tsne", "PCA is ready at once");
            assert!(start.elapsed().as_secs() < 120, "t-SNE never finished");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert_eq!(m["points"].as_array().unwrap().len(), 20, "{projection}");
        let indices: Vec<usize> = serde_json::from_value(m["indices"].clone()).unwrap();
        assert_eq!(indices, train[..20]);
        let got: Vec<i8> = serde_json::from_value(m["labels"].clone()).unwrap();
        assert_eq!(got, labels[..20]);
    }
    server.stop();
}

#[test]
fn uploads_are_prepared_like_files_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = started(dir.path());
    let addr = server.addr;
    let face = dir.path().join("faces/img_align_celeba/000001.jpg");
    let bytes = std::fs::read(&face).unwrap();
    let u = ok(call(addr, "POST", "/api/upload", &bytes));
    let mut model = Checkpoint::load_model(&dir.path().join(common::BEST)).unwrap();
    let x = latent::load_images(&model, &[face.as_path()], CELEBA_CROP_FRACTION).unwrap();
    assert_eq!(
        floats(&u["z"]),
        latent::row(&latent::encode_means(&mut model, &x), 0)
    );

    let not_image = call(addr, "POST", "/api/upload", b"GIF89a not really");
    assert_eq!(not_image.status, 400);
    assert!(
        not_image.error().contains("the uploaded file"),
        "{}",
        not_image.error()
    );
    let truncated = call(addr, "POST", "/api/upload", &bytes[..bytes.len() / 2]);
    assert_eq!(truncated.status, 400, "{}", truncated.error());
    // A few hundred bytes whose header claims 6000 x 6000 pixels (under the upload
    // limit, far over what its bytes can hold): refused before decoding.
    let mut bomb = Vec::new();
    image::RgbImage::new(16, 16)
        .write_to(
            &mut std::io::Cursor::new(&mut bomb),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let sof = bomb.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
    bomb[sof + 5..sof + 9].copy_from_slice(&[0x17, 0x70, 0x17, 0x70]);
    let refused = call(addr, "POST", "/api/upload", &bomb);
    assert_eq!(refused.status, 400, "{}", refused.error());
    assert!(
        refused.error().contains("pixels a byte"),
        "{}",
        refused.error()
    );
    let huge = vec![0u8; vae_cpu::serve::server::MAX_UPLOAD_BYTES + 1];
    let too_large = call(addr, "POST", "/api/upload", &huge);
    assert_eq!(too_large.status, 413);
    // The server still answers.
    assert_eq!(call(addr, "GET", "/api/info", b"").status, 200);
    server.stop();
}

#[test]
fn bad_requests_get_clear_errors_and_only_the_page_is_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let server = started(dir.path());
    let addr = server.addr;
    let cases: [(&str, &str, &str, u16, &str); 11] = [
        ("GET", "/../../etc/passwd", "", 404, "no such page"),
        ("GET", "/src/serve/page/app.js", "", 404, "no such page"),
        ("GET", "/api/decode", "", 405, "POST only"),
        ("POST", "/api/info", "", 405, "GET only"),
        ("POST", "/api/decode", "{not json", 400, "bad request body"),
        (
            "POST",
            "/api/decode",
            r#"{"z": [[1]], "extra": 1}"#,
            400,
            "unknown field",
        ),
        (
            "POST",
            "/api/decode",
            r#"{"z": [[1, 2]]}"#,
            400,
            "the model's latent has 6",
        ),
        (
            "POST",
            "/api/decode",
            r#"{"z": [[1e30, 0, 0, 0, 0, 0]]}"#,
            400,
            "finite",
        ),
        (
            "POST",
            "/api/samples",
            r#"{"n": 0, "seed": 1, "temperature": 1}"#,
            400,
            "n must be",
        ),
        (
            "POST",
            "/api/encode",
            r#"{"index": 100000}"#,
            400,
            "not in the data",
        ),
        (
            "POST",
            "/api/vector",
            r#"{"attribute": "Wings"}"#,
            400,
            "Wings",
        ),
    ];
    for (method, path, body, status, needle) in cases {
        let a = call(addr, method, path, body.as_bytes());
        assert_eq!(a.status, status, "{method} {path} {body}");
        assert!(a.error().contains(needle), "{method} {path}: {}", a.error());
    }
    let rebinding = receive(send(addr, "GET", "/api/info", "evil.example:80", b""));
    assert_eq!(rebinding.status, 403);
    let big = vec![b' '; vae_cpu::serve::server::MAX_JSON_BYTES + 1];
    assert_eq!(call(addr, "POST", "/api/decode", &big).status, 413);
    assert_eq!(call(addr, "GET", "/api/info", b"").status, 200);
    server.stop();
}

#[test]
fn queued_slider_requests_are_coalesced_to_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, cache) = trained(dir.path());
    let (go, wait) = mpsc::channel();
    let server = Running::start(&ckpt, &cache, wait);
    let body = |v: f32| serde_json::json!({"z": [vec![v; 6]]}).to_string();
    // Five requests of one channel and one of another queue before the server answers.
    let mut streams = vec![];
    for k in 0..5 {
        let s = send(
            server.addr,
            "POST",
            "/api/decode?channel=edit",
            "127.0.0.1",
            body(k as f32).as_bytes(),
        );
        streams.push(s);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let other = send(
        server.addr,
        "POST",
        "/api/decode?channel=dims",
        "127.0.0.1",
        body(9.0).as_bytes(),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    go.send(()).unwrap();
    let statuses: Vec<u16> = streams.into_iter().map(|s| receive(s).status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 204).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(receive(other).status, 200);
    server.stop();
}

#[test]
fn the_binary_serves_until_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, cache) = trained(dir.path());
    let ck = ckpt.to_str().unwrap();
    std::fs::create_dir(dir.path().join("vecs")).unwrap();
    let vector = "vecs/glasses.attrvec";
    common::run_ok(
        &[
            "attribute-vector",
            "--checkpoint",
            ck,
            "--data",
            "faces.vaecache",
        ]
        .into_iter()
        .chain([
            "--attr",
            "Eyeglasses",
            "--limit",
            "12",
            "--out",
            vector,
            "--quiet",
        ])
        .collect::<Vec<_>>(),
        dir.path(),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vae-cpu"))
        .args(["serve", "--checkpoint", ck, "--data"])
        .arg(&cache)
        .args([
            "--vectors",
            "vecs",
            "--port",
            "0",
            "--quiet",
            "--threads",
            "1",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap();
    let addr: SocketAddr = url["http://".len()..]
        .trim_end_matches('/')
        .parse()
        .unwrap();
    assert!(addr.ip().is_loopback(), "{line}");
    assert_eq!(ok(call(addr, "GET", "/api/info", b""))["model"], "small16");
    // The loaded file's vector, not one computed from the data's first 2000 train images.
    let v = ok(post(
        addr,
        "/api/vector",
        serde_json::json!({"attribute": "Eyeglasses"}),
    ));
    let file = AttributeVector::load(&dir.path().join(vector)).unwrap();
    assert_eq!(floats(&v["delta"]), file.delta);
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(child.wait().unwrap().success());
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");
}

#[test]
fn serve_refuses_bad_flags_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, _) = trained(dir.path());
    let ck = ckpt.to_str().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let o = common::vae_cpu(
        &["serve", "--checkpoint", ck, "--vectors", "empty"],
        dir.path(),
    );
    common::assert_clear_error(&o, &["--vectors empty", "no .attrvec files"]);
    let o = common::vae_cpu(
        &[
            "serve",
            "--checkpoint",
            ck,
            "--host",
            "no.such.host.invalid",
        ],
        dir.path(),
    );
    common::assert_clear_error(&o, &["cannot listen on no.such.host.invalid:8080"]);
    let o = common::vae_cpu(
        &["serve", "--checkpoint", "missing.safetensors"],
        dir.path(),
    );
    common::assert_clear_error(&o, &["missing.safetensors"]);
}

#[test]
fn a_conditional_model_decodes_under_the_pages_condition_and_works_without_data() {
    use rand::SeedableRng;
    let mut config = common::small_config(1, 8);
    config.model.conditions = vec!["Smiling".into(), "Male".into()];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let model = vae_cpu::model::Vae::new(&config, &mut rng).unwrap();
    let opts = ExplorerOptions {
        limit: 10,
        map_points: 10,
    };
    let bar = indicatif::ProgressBar::hidden();
    let mut explorer = Explorer::new(model, None, vec![], &opts, &bar).unwrap();
    let mut ask = |path: &str, body: serde_json::Value| {
        let method = if body.is_null() { "GET" } else { "POST" };
        let body = if body.is_null() {
            vec![]
        } else {
            body.to_string().into_bytes()
        };
        let reply = vae_cpu::serve::api::handle(&mut explorer, method, path, &body, &bar);
        let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        (reply.status, value)
    };
    let (_, info) = ask("/api/info", serde_json::Value::Null);
    assert_eq!(strings(&info["conditions"]), ["Smiling", "Male"]);
    assert_eq!(
        (
            info["map"].as_bool(),
            info["faces"].as_array().map(Vec::len)
        ),
        (Some(false), Some(0))
    );
    assert_eq!(info["dims"].as_array().unwrap().len(), 6);
    let sample = |cond: serde_json::Value| serde_json::json!({"n": 2, "seed": 1, "temperature": 1.0, "cond": cond});
    let (_, neutral) = ask("/api/samples", sample(serde_json::Value::Null));
    let (_, zero) = ask("/api/samples", sample(serde_json::json!([0.0, 0.0])));
    let (_, smiling) = ask("/api/samples", sample(serde_json::json!([1.0, -1.0])));
    assert_eq!(neutral["images"], zero["images"]);
    assert_ne!(neutral["images"], smiling["images"]);
    let (status, bad) = ask("/api/samples", sample(serde_json::json!([1.0])));
    assert_eq!(status, 400);
    assert!(
        bad["error"].as_str().unwrap().contains("2 conditions"),
        "{bad}"
    );
    let (status, no_data) = ask("/api/vector", serde_json::json!({"attribute": "Smiling"}));
    assert_eq!(status, 400);
    assert!(
        no_data["error"]
            .as_str()
            .unwrap()
            .contains("--data or --vectors"),
        "{no_data}"
    );
}

#[test]
fn vectors_from_files_must_fit_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, _) = trained(dir.path());
    let model = Checkpoint::load_model(&ckpt).unwrap();
    let v = AttributeVector {
        attribute: "Glow".into(),
        delta: vec![0.5; 4],
        positives: 1,
        negatives: 1,
    };
    let opts = ExplorerOptions {
        limit: 10,
        map_points: 10,
    };
    let bar = indicatif::ProgressBar::hidden();
    let err = Explorer::new(model, None, vec![v], &opts, &bar)
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("\"Glow\" has 4 values, the model's latent has 6"),
        "{err}"
    );
}
