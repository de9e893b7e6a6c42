//! The service's refusals and failures, and how each maps to a gRPC status code.
//!
//! Every refusal (`NotFound`, `FailedPrecondition`, `InvalidArgument`, `AlreadyExists`,
//! `Aborted`) is decided before anything is written, so a refused request changes nothing.
//! The store's refusals become the refusals of the same meaning; its failures stay failures:
//! UNAVAILABLE for the transient ones (busy, locked, full, I/O: clients back off and retry),
//! INTERNAL for the rest.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Unknown worker, lease or sweep.
    #[error("{0}")]
    NotFound(String),
    /// The lease expired, ended or was reassigned; an incompatible API version; a task
    /// completed before its levels are all stored.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A malformed request or a report that fails validation.
    #[error("{0}")]
    InvalidArgument(String),
    /// A level already stored with different content.
    #[error("{0}")]
    AlreadyExists(String),
    /// Two reports of the same lease raced; the loser may retry.
    #[error("{0}")]
    Aborted(String),
    /// The store failed (not a refusal).
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(m) => ApiError::NotFound(m),
            StoreError::Conflict(m) => ApiError::FailedPrecondition(m),
            StoreError::Invalid(m) => ApiError::InvalidArgument(m),
            StoreError::AlreadyExists(m) => ApiError::AlreadyExists(m),
            StoreError::Raced(m) => ApiError::Aborted(m),
            failure => ApiError::Store(failure),
        }
    }
}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        let message = error.to_string();
        match error {
            ApiError::NotFound(_) => tonic::Status::not_found(message),
            ApiError::FailedPrecondition(_) => tonic::Status::failed_precondition(message),
            ApiError::InvalidArgument(_) => tonic::Status::invalid_argument(message),
            ApiError::AlreadyExists(_) => tonic::Status::already_exists(message),
            ApiError::Aborted(_) => tonic::Status::aborted(message),
            ApiError::Store(e) if e.is_transient() => {
                tracing::warn!(error = %message, "store temporarily unavailable");
                tonic::Status::unavailable(format!(
                    "the coordinator's database is temporarily unavailable, retry later: {message}"
                ))
            }
            ApiError::Store(_) => {
                tracing::error!(error = %message, "store failure");
                tonic::Status::internal(message)
            }
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(error: rusqlite::Error) -> Self {
        ApiError::Store(StoreError::Sqlite(error))
    }
}
