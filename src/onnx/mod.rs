//! ONNX: hand-written protobuf messages (`proto`), the exporter (`export`), a structural
//! check of exported files (`check`) and, with the `onnx-runtime` feature, tract (`run`).

pub mod check;
#[cfg(feature = "engine")]
pub mod export;
pub mod proto;
#[cfg(feature = "onnx-runtime")]
pub mod run;
