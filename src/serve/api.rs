//! The page's endpoints, without the HTTP transport: a method, a path and a body in, a
//! status, a content type and bytes out. Only these paths exist; nothing reads a file
//! named by the client. Request bodies are JSON objects whose unknown fields are refused;
//! images come back as PNG data URIs.
//!
//! | endpoint | request | reply |
//! |---|---|---|
//! | `GET /`, `/app.js`, `/style.css` | | the page, shipped inside the binary |
//! | `GET /api/info` | | model, latent size, conditions, attributes, top dimensions, faces |
//! | `POST /api/samples` | `{n, seed, temperature, cond?}` | `{z, images}` |
//! | `POST /api/decode` | `{z: [[..]], cond?}` | `{images}` |
//! | `POST /api/faces` | `{indices}` | `{images}` (data images) |
//! | `POST /api/encode` | `{index}` | `{z, image, recon}` |
//! | `POST /api/upload` | the JPEG or PNG bytes | `{z, image, recon}` |
//! | `POST /api/vector` | `{attribute}` | `{attribute, delta, positives, negatives}` |
//! | `POST /api/interpolate` | `{a, b, steps, spherical, cond?}` | `{images}` |
//! | `POST /api/map` | `{projection: "pca" or "tsne", color?}` | `{ready, points, indices, labels}` (`ready: false` while t-SNE runs: ask again) |
//!
//! Errors are `{error}` with status 400 (bad request), 404, 405 or 413.

use super::data_uri::png_uri;
use super::explorer::{Explorer, Face, Projection};
use crate::Error;
use image::RgbImage;
use indicatif::ProgressBar;
use serde::Deserialize;
use serde_json::{json, Value};

const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/style.css");

pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    fn json(value: Value) -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            body: value.to_string().into_bytes(),
        }
    }

    /// `{error: message}` with `status`.
    pub fn error(status: u16, message: &str) -> Reply {
        Reply {
            status,
            ..Reply::json(json!({ "error": message }))
        }
    }

    fn text(content_type: &'static str, text: &str) -> Reply {
        Reply {
            status: 200,
            content_type,
            body: text.as_bytes().to_vec(),
        }
    }
}

/// Answers one request. `bar` follows long work (t-SNE) on the terminal.
pub fn handle(
    explorer: &mut Explorer,
    method: &str,
    path: &str,
    body: &[u8],
    bar: &ProgressBar,
) -> Reply {
    let get = method == "GET" || method == "HEAD";
    let post = method == "POST";
    let result = match path {
        "/" | "/index.html" if get => return Reply::text("text/html; charset=utf-8", PAGE),
        "/app.js" if get => return Reply::text("text/javascript; charset=utf-8", SCRIPT),
        "/style.css" if get => return Reply::text("text/css; charset=utf-8", STYLE),
        "/api/info" if get => Ok(info(explorer)),
        "/api/samples" if post => parse(body).and_then(|r| samples(explorer, r)),
        "/api/decode" if post => parse(body)
            .and_then(|r: DecodeRequest| Ok(images(&explorer.decode(&r.z, r.cond.as_deref())?))),
        "/api/faces" if post => {
            parse(body).and_then(|r: FacesRequest| Ok(images(&explorer.thumbnails(&r.indices)?)))
        }
        "/api/encode" if post => {
            parse(body).and_then(|r: EncodeRequest| Ok(face(explorer.face(r.index)?)))
        }
        "/api/upload" if post => explorer.upload(body).map(face),
        "/api/vector" if post => parse(body).and_then(|r| vector(explorer, r)),
        "/api/interpolate" if post => parse(body).and_then(|r| interpolate(explorer, r)),
        "/api/map" if post => parse(body).and_then(|r| map(explorer, r, bar)),
        "/" | "/index.html" | "/app.js" | "/style.css" | "/api/info" => {
            return Reply::error(405, &format!("{path} answers GET only"))
        }
        p if p.starts_with("/api/") && ENDPOINTS.contains(&p) => {
            return Reply::error(405, &format!("{path} answers POST only"))
        }
        _ => return Reply::error(404, &format!("no such page: {path}")),
    };
    match result {
        Ok(value) => Reply::json(value),
        Err(e) => Reply::error(400, &e.to_string()),
    }
}

/// The POST endpoints.
const ENDPOINTS: [&str; 8] = [
    "/api/samples",
    "/api/decode",
    "/api/faces",
    "/api/encode",
    "/api/upload",
    "/api/vector",
    "/api/interpolate",
    "/api/map",
];

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> crate::Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::Invalid(format!("bad request body: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SamplesRequest {
    n: usize,
    seed: u64,
    temperature: f32,
    cond: Option<Vec<f32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecodeRequest {
    z: Vec<Vec<f32>>,
    cond: Option<Vec<f32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FacesRequest {
    indices: Vec<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EncodeRequest {
    index: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorRequest {
    attribute: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InterpolateRequest {
    a: Vec<f32>,
    b: Vec<f32>,
    steps: usize,
    spherical: bool,
    cond: Option<Vec<f32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapRequest {
    projection: String,
    color: Option<String>,
}

fn images(images: &[RgbImage]) -> Value {
    json!({ "images": images.iter().map(png_uri).collect::<Vec<_>>() })
}

fn info(e: &Explorer) -> Value {
    let m = &e.model().config.model;
    let dims: Vec<Value> = e
        .top_dims()
        .iter()
        .map(|&(dim, kl)| json!({ "dim": dim, "kl": kl }))
        .collect();
    json!({
        "model": m.name,
        "latent": m.latent,
        "width": m.width,
        "height": m.height,
        "conditions": m.conditions,
        "attributes": e.attributes(),
        "dims": dims,
        "faces": e.picker(),
        "map": e.has_map(),
        "max_rows": super::explorer::MAX_ROWS,
    })
}

fn samples(e: &mut Explorer, r: SamplesRequest) -> crate::Result<Value> {
    let (z, imgs) = e.samples(r.n, r.seed, r.temperature, r.cond.as_deref())?;
    let rows: Vec<Vec<f32>> = (0..z.shape()[0])
        .map(|i| crate::latent::row(&z, i))
        .collect();
    let mut value = images(&imgs);
    value["z"] = json!(rows);
    Ok(value)
}

fn face(f: Face) -> Value {
    json!({ "z": f.z, "image": png_uri(&f.image), "recon": png_uri(&f.recon) })
}

fn vector(e: &mut Explorer, r: VectorRequest) -> crate::Result<Value> {
    let v = e.vector(&r.attribute)?;
    Ok(json!({
        "attribute": v.attribute,
        "delta": v.delta,
        "positives": v.positives,
        "negatives": v.negatives,
    }))
}

fn interpolate(e: &mut Explorer, r: InterpolateRequest) -> crate::Result<Value> {
    let imgs = e.interpolate(&r.a, &r.b, r.steps, r.spherical, r.cond.as_deref())?;
    Ok(images(&imgs))
}

fn map(e: &mut Explorer, r: MapRequest, bar: &ProgressBar) -> crate::Result<Value> {
    let projection = match r.projection.as_str() {
        "pca" => Projection::Pca,
        "tsne" => Projection::Tsne,
        other => {
            return Err(Error::Invalid(format!(
                "projection must be pca or tsne, not \"{other}\""
            )))
        }
    };
    Ok(match e.map(projection, r.color.as_deref(), bar)? {
        None => json!({ "ready": false }),
        Some(points) => json!({
            "ready": true,
            "points": points.xy,
            "indices": points.indices,
            "labels": points.labels,
        }),
    })
}
