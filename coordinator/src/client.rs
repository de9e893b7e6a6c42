//! Connecting to a coordinator as a client (the CLI, tests, embedded runs).
//!
//! [`connect`] is the plain form (no token, no TLS); [`connect_with`] takes
//! [`ClientOptions`]: the shared token, sent on every call, and the CA certificate that an
//! `https://` coordinator is verified against.

pub use proto::auth::{AuthClient as Client, ClientOptions, Token};
use proto::v1::coordinator_client::CoordinatorClient;
use tonic::transport::{Channel, Endpoint};

/// Why a coordinator could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid coordinator url {url:?}: {source}")]
    Url {
        url: String,
        source: tonic::transport::Error,
    },
    #[error(
        "cannot reach the coordinator at {url}: {}",
        proto::errors::chain(source)
    )]
    Connect {
        url: String,
        source: tonic::transport::Error,
    },
    #[error(transparent)]
    Settings(#[from] proto::auth::AuthError),
}

/// Connects to the coordinator at `url` (e.g. `http://127.0.0.1:50051`), with the message
/// size limits of the API.
pub async fn connect(url: &str) -> Result<CoordinatorClient<Channel>, ConnectError> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|source| ConnectError::Url {
            url: url.to_string(),
            source,
        })?
        .tcp_nodelay(true);
    let channel = endpoint
        .connect()
        .await
        .map_err(|source| ConnectError::Connect {
            url: url.to_string(),
            source,
        })?;
    Ok(CoordinatorClient::new(channel)
        .max_decoding_message_size(proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(proto::MAX_MESSAGE_BYTES))
}

/// Connects to the coordinator at `url` with a token and, for `https://` urls, TLS verified
/// against `options.tls_ca_pem`; with the API's message size limits.
pub async fn connect_with(url: &str, options: &ClientOptions) -> Result<Client, ConnectError> {
    let endpoint = options.endpoint(url)?.tcp_nodelay(true);
    let channel = endpoint
        .connect()
        .await
        .map_err(|source| ConnectError::Connect {
            url: url.to_string(),
            source,
        })?;
    Ok(options.client(channel))
}
