//! kennel's layer and image store: overlay-native layers addressed by the sha256 of their
//! uncompressed tar (`STATE/layers/sha256-<hex>`), images mapping `NAME:TAG` to layers and
//! an OCI config (`STATE/images/`), and the ways in and out of it.
//!
//! - [`unpack`](unpack::unpack): a layer tar -> an overlay-native directory (whiteouts,
//!   opaque directories, path safety); [`pack`](pack::pack): the way back.
//! - [`Store`]: layers and images on disk, written atomically; [`inventory`]: `ls`, `gc`.
//! - [`import`]: OCI image layouts (directory or tar) and docker-archive tars.
//! - [`export`]: an image as an OCI layout tar; [`commit`]: a container's writable layer
//!   as a new image.
//! - [`runtime`]: what the daemon needs at spawn (image -> layers and defaults).
//!
//! ```no_run
//! let store = kennel_image::Store::open("/var/lib/kennel".as_ref()).unwrap();
//! for img in store.images().unwrap() {
//!     println!("{}:{} {} layers", img.name, img.tag, img.layers.len());
//! }
//! ```

pub mod commit;
pub mod digest;
pub mod error;
pub mod export;
mod fsops;
pub mod import;
pub mod inventory;
pub mod pack;
pub mod runtime;
pub mod source;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use error::{ImageError, Result};
pub use store::{Image, Store};
