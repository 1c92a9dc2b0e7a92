//! Pictures: image grids with labels (`grid`), line charts such as loss curves (`plot`),
//! scatter plots (`scatter`), feature-map tiles (`feature_maps`) and the bitmap font they
//! all use (`font`).

pub mod feature_maps;
pub mod font;
pub mod grid;
pub mod plot;
pub mod scatter;

pub use grid::{
    grid, labeled_grid, labeled_rows, reconstruction_grid, save_png, side_by_side, titled,
    to_images, upscale,
};
