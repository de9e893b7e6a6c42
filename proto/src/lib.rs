//! The coordinator/worker gRPC API and the wire encoding of masks.
//!
//! - [`v1`]: the messages and the tonic client and server of `lottery/v1/coordinator.proto`,
//!   generated at build time with protox (no system `protoc` needed). The API is versioned by
//!   package: a breaking change goes to `lottery.v2` and bumps [`API_VERSION`].
//! - [`mask`]: [`encode_layer`] / [`decode_layer`], the compact encoding of one layer's kept
//!   weights as either a Roaring bitmap or delta-varint packed indices, whichever is smaller.
//!
//! - [`auth`]: the shared bearer token, the client-side interceptor that sends it, and the
//!   TLS settings of clients ([`auth::ClientOptions`]).
//! - [`convert`]: conversions between these messages and the science crate's types
//!   (`shared` knows nothing of gRPC; this crate depends on it, not the other way round).
//! - [`errors`]: an error's text with its causes, for transport errors that would otherwise
//!   read "transport error" alone.
//! - `flags` (feature `cli`): the command-line flags of the token and the CA, declared once for
//!   the coordinator's commands, `coordinator serve` and the worker.

pub mod auth;
pub mod convert;
pub mod errors;
#[cfg(feature = "cli")]
pub mod flags;
pub mod mask;

/// The generated API of package `lottery.v1`.
pub mod v1 {
    #![allow(clippy::all)]
    tonic::include_proto!("lottery.v1");
}

/// The API version this crate speaks; workers send it when they register.
pub const API_VERSION: u32 = 1;

/// The largest message the coordinator and workers accept or send: dense masks of the widest
/// networks (about 1.7 M weights per level) fit comfortably.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

pub use mask::{decode_layer, encode_layer, MaskDecodeError};
