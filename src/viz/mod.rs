//! Pictures: image grids with labels (`grid`), line charts such as loss curves (`plot`),
//! scatter plots (`scatter`), feature-map tiles (`feature_maps`) and the bitmap font they
//! all use (`font`).

#[cfg(feature = "engine")]
pub mod feature_maps;
pub mod font;
pub mod grid;
pub mod plot;
pub mod scatter;

#[cfg(feature = "engine")]
pub use grid::to_images;
pub use grid::{
    grid, labeled_grid, labeled_rows, nchw_images, reconstruction_grid, save_png, side_by_side,
    titled, upscale,
};
