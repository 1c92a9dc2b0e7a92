//! `vae-cpu serve`: a trained model's latent space in the browser. [`Explorer`] does the
//! work (samples, faces, attribute and dimension sliders, interpolation, the latent map),
//! [`api`] maps the page's requests onto it, [`server`] carries them over HTTP on
//! loopback, and `page/` is the page itself (plain HTML, CSS and JavaScript, inside the
//! binary).

pub mod api;
pub mod coalesce;
pub mod data_uri;
pub mod explorer;
pub mod projections;
pub mod server;

pub use explorer::{Explorer, ExplorerOptions};
pub use server::Server;
