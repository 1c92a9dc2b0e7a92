//! Reverse-mode automatic differentiation on an append-only tape.

mod param;
mod profile;
mod tape;
mod var;

pub use param::Param;
pub use profile::{Profile, UNLABELED};
pub use tape::{BackwardFn, Gradients, Tape};
pub use var::Var;
