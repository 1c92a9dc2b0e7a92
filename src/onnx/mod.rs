//! ONNX: hand-written protobuf messages (`proto`), the exporter (`export`), weights of
//! models exported elsewhere, inline or external (`import`), a structural
//! check of exported files (`check`) and, with the `onnx-runtime` feature, tract (`run`,
//! and `inception`: a user's feature network for the FID).

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
#[cfg(feature = "onnx-runtime")]
pub mod run;
#[cfg(all(feature = "engine", feature = "onnx-runtime"))]
pub mod verify;

/// The metadata key listing a conditional decoder's condition names, comma-separated (the
/// order of its `cond` input).
pub const CONDITIONS_KEY: &str = "vae-cpu.conditions";
/// The metadata key saying the output's pixel range: `unit` ([0, 1]) or `symmetric`
/// ([-1, 1], a Tanh decoder).
pub const PIXEL_RANGE_KEY: &str = "vae-cpu.pixel_range";
