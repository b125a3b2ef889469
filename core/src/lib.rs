//! SKELETON (see api.rs)
pub mod api;
pub use api::*;
