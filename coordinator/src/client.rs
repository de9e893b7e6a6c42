//! Connecting to a coordinator as a client (the CLI, tests, embedded runs).

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
    #[error("cannot reach the coordinator at {url}: {source}")]
    Connect {
        url: String,
        source: tonic::transport::Error,
    },
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
