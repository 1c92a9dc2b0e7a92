//! Not part of the API: fixtures for the tests, the fuzz targets and the scripts. They live
//! in the library so that integration tests and `fuzz/` can reach them; nothing else uses
//! them.

pub mod fuzz_checks;
pub mod onnx_forms;
pub mod tiny_vgg;
