//! ONNX: hand-written protobuf messages (`proto`), the exporter (`export`), weights of
//! models exported elsewhere, inline or external (`import`), a structural
//! check of exported files (`check`) and tract: `run` (our own exports read by `tract_graph`
//! into tract-core with the `decoder-runtime` feature; any file through tract-onnx with
//! `onnx-runtime`) and `inception` (a user's feature network for the FID, `onnx-runtime`).

#[cfg(feature = "engine")]
pub mod check;
#[cfg(feature = "engine")]
pub mod export;
#[cfg(feature = "engine")]
pub mod feature_net;
#[cfg(feature = "engine")]
pub mod fold_norm;
#[cfg(feature = "engine")]
pub mod import;
#[cfg(all(feature = "engine", feature = "onnx-runtime"))]
pub mod inception;
pub mod proto;
#[cfg(feature = "decoder-runtime")]
pub mod run;
#[cfg(feature = "decoder-runtime")]
pub mod tract_graph;
#[cfg(all(feature = "engine", feature = "decoder-runtime"))]
pub mod verify;

/// The metadata key listing a conditional decoder's condition names, comma-separated (the
/// order of its `cond` input).
pub const CONDITIONS_KEY: &str = "vae-cpu.conditions";
/// The metadata key saying the output's pixel range: `unit` ([0, 1]) or `symmetric`
/// ([-1, 1], a Tanh decoder).
pub const PIXEL_RANGE_KEY: &str = "vae-cpu.pixel_range";
