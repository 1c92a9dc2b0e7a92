//! Pictures: image grids with labels (`grid`), line charts such as loss curves (`plot`) and
//! the bitmap font both use (`font`).

pub mod font;
pub mod grid;
pub mod plot;

pub use grid::{grid, labeled_rows, reconstruction_grid, save_png, to_images, upscale};
