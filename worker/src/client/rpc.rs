//! The calls that end a level or a lease (`ReportLevel`, `CompleteTask`, `FailTask`,
//! `ReturnLease`) with their retry policy, the classification of a [`tonic::Status`]
//! ([`transient`], [`lease_gone`]), and [`Fatal`], the refusal that stops the worker.
//!
//! Retry policy: a transient error (the coordinator down, restarting, overloaded) is retried
//! with [`Backoff`]; once the worker is stopping, a report or completion gets
//! [`TRIES_WHILE_STOPPING`] tries and a failure one, and a lease is given back with three
//! quick tries of five seconds each.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tonic::{Code, Status};
use tracing::{debug, error, info, warn};

use proto::auth::{is_auth_error, AuthClient};
use proto::convert::masks_to_wire;
use proto::v1::{CompleteTaskRequest, FailTaskRequest, ReportLevelRequest, ReturnLeaseRequest};

use super::backoff::Backoff;
use crate::imp::LevelOutcome;
use crate::shutdown::Shutdown;

/// A status's message with the causes of its transport error, if any.
pub(super) fn status_text(status: &Status) -> String {
    let mut text = status.message().to_string();
    if let Some(cause) = std::error::Error::source(status) {
        let causes = proto::errors::chain(cause);
        if !text.contains(&causes) {
            text.push_str(": ");
            text.push_str(&causes);
        }
    }
    text
}

/// A refusal no retry can fix (credentials): the first one is kept and stops the worker.
#[derive(Clone)]
pub(super) struct Fatal {
    message: Arc<OnceLock<String>>,
    shutdown: Shutdown,
}

impl Fatal {
    /// Nothing refused yet; a refusal begins `shutdown`.
    pub(super) fn new(shutdown: Shutdown) -> Fatal {
        Fatal {
            message: Arc::new(OnceLock::new()),
            shutdown,
        }
    }

    /// The first refusal's message, if any.
    pub(super) fn message(&self) -> Option<&str> {
        self.message.get().map(String::as_str)
    }

    fn raise(&self, message: String) {
        if self.message.set(message.clone()).is_ok() {
            error!(error = %message, "stopping the worker");
        }
        self.shutdown.begin();
    }

    /// Raises the error of an UNAUTHENTICATED answer; true when `status` was one.
    pub(super) fn check(&self, status: &Status) -> bool {
        if is_auth_error(status) {
            self.raise(unauthenticated(status));
            true
        } else {
            false
        }
    }
}

/// The message of a worker whose token was refused.
pub(super) fn unauthenticated(status: &Status) -> String {
    format!(
        "the coordinator refused this worker's credentials (UNAUTHENTICATED: {}); give it the \
         coordinator's token with --token-file, {} or {}",
        status.message(),
        proto::auth::TOKEN_FILE_ENV,
        proto::auth::TOKEN_ENV
    )
}

/// The most bytes of an error message sent with `FailTask` (the coordinator keeps 4 KiB and
/// refuses requests over 256 KiB).
pub(super) const MAX_ERROR_BYTES: usize = 16 * 1024;

/// `text` cut to at most `max` bytes, at a character boundary.
pub(super) fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Errors that go away by themselves: the coordinator is down, restarting or overloaded.
pub(super) fn transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Cancelled
    )
}

/// Errors that mean the lease no longer belongs to this worker.
pub(super) fn lease_gone(status: &Status) -> bool {
    matches!(status.code(), Code::FailedPrecondition | Code::NotFound)
}

/// Why a level was not delivered.
#[derive(Debug)]
pub(super) enum ReportError {
    /// The lease expired, was reassigned or is unknown: someone else owns the task now.
    LeaseLost(String),
    /// The coordinator refused the report (invalid, or not authenticated).
    Refused(Status),
    /// The worker is shutting down.
    Stopped,
}

/// Attempts at a delivery while shutting down, so a shutdown stays short.
pub(super) const TRIES_WHILE_STOPPING: u32 = 3;

/// Delivers one level, retrying while the coordinator is unreachable (a few times only once
/// the worker is shutting down).
pub(super) async fn report(
    client: &mut AuthClient,
    worker_id: u64,
    lease_id: u64,
    outcome: &LevelOutcome,
    shutdown: &Shutdown,
) -> Result<(), ReportError> {
    let request = ReportLevelRequest {
        worker_id,
        lease_id,
        level: outcome.metrics.level as u32,
        metrics: Some(proto::v1::LevelMetrics::from(&outcome.metrics)),
        masks: masks_to_wire(&outcome.masks),
    };
    let mut backoff = Backoff::new();
    loop {
        match client.report_level(request.clone()).await {
            Ok(_) => return Ok(()),
            Err(status) if transient(&status) => {
                warn!(level = outcome.metrics.level, error = %status_text(&status), "report not delivered, retrying");
                // A finished level is worth waiting for even while shutting down, for a while.
                if backoff.attempts() >= TRIES_WHILE_STOPPING && shutdown.is_stopping() {
                    return Err(ReportError::Stopped);
                }
                backoff.pause(shutdown.token()).await;
            }
            Err(status) if lease_gone(&status) => {
                return Err(ReportError::LeaseLost(status.message().to_string()))
            }
            Err(status) => return Err(ReportError::Refused(status)),
        }
    }
}

/// Completes a task whose every level was delivered; the error's message when it could not.
pub(super) async fn complete(
    client: &mut AuthClient,
    worker_id: u64,
    lease_id: u64,
    shutdown: &Shutdown,
    fatal: &Fatal,
) -> Result<(), String> {
    let mut backoff = Backoff::new();
    loop {
        match client
            .complete_task(CompleteTaskRequest {
                worker_id,
                lease_id,
            })
            .await
        {
            Ok(_) => return Ok(()),
            Err(status) if transient(&status) => {
                if backoff.attempts() >= TRIES_WHILE_STOPPING && shutdown.is_stopping() {
                    return Err("stopped before the task could be completed".into());
                }
                backoff.pause(shutdown.token()).await;
            }
            Err(status) => {
                fatal.check(&status);
                return Err(status.message().to_string());
            }
        }
    }
}

/// Fails a task with `message`, retrying while the coordinator is unreachable and the worker
/// is not stopping.
pub(super) async fn fail(
    client: &mut AuthClient,
    worker_id: u64,
    lease_id: u64,
    message: &str,
    shutdown: &Shutdown,
    fatal: &Fatal,
) {
    warn!(lease = lease_id, error = %message, "failing the task");
    let mut backoff = Backoff::new();
    loop {
        let request = FailTaskRequest {
            worker_id,
            lease_id,
            error: clip(message, MAX_ERROR_BYTES).to_string(),
        };
        match client.fail_task(request).await {
            Err(status) if fatal.check(&status) => return,
            Err(status) if transient(&status) => {
                if backoff.wait(shutdown.token()).await {
                    return;
                }
            }
            _ => return,
        }
    }
}

/// Gives a lease back (shutting down): a few quick tries, each with a short deadline, since
/// the worker is about to exit. True when the coordinator took it.
pub(super) async fn give_back(
    client: &mut AuthClient,
    worker_id: u64,
    lease_id: u64,
    task_id: &str,
    fatal: &Fatal,
) -> bool {
    const TRIES: u32 = 3;
    for attempt in 1..=TRIES {
        let mut request = tonic::Request::new(ReturnLeaseRequest {
            worker_id,
            lease_id,
        });
        request.set_timeout(Duration::from_secs(5));
        match client.return_lease(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                info!(task = %task_id, lease = lease_id, levels_stored = reply.levels_stored, task_done = reply.task_done, "lease returned");
                return true;
            }
            Err(status) if fatal.check(&status) => return false,
            Err(status) if status.code() == Code::Unimplemented => {
                warn!(task = %task_id, "the coordinator cannot take leases back (an older version): the lease will expire");
                return false;
            }
            Err(status) if transient(&status) && attempt < TRIES => {
                debug!(task = %task_id, error = %status_text(&status), "lease not returned yet, retrying");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            Err(status) => {
                warn!(task = %task_id, lease = lease_id, error = %status.message(), "could not return the lease: it will expire");
                return false;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every gRPC code, for the classifications.
    const ALL: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    #[test]
    fn transient_is_exactly_the_codes_that_go_away_by_themselves() {
        let transient_codes = [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Unknown,
            Code::ResourceExhausted,
            Code::Aborted,
            Code::Cancelled,
        ];
        for code in ALL {
            assert_eq!(
                transient(&Status::new(code, "x")),
                transient_codes.contains(&code),
                "{code:?}"
            );
        }
    }

    #[test]
    fn long_errors_are_clipped_at_a_character_boundary() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("ééé", 3), "é");
        let long = "e".repeat(1_000_000);
        assert_eq!(clip(&long, MAX_ERROR_BYTES).len(), MAX_ERROR_BYTES);
    }

    #[test]
    fn lease_gone_is_exactly_failed_precondition_and_not_found() {
        for code in ALL {
            assert_eq!(
                lease_gone(&Status::new(code, "x")),
                matches!(code, Code::FailedPrecondition | Code::NotFound),
                "{code:?}"
            );
        }
    }

    #[test]
    fn no_code_is_both_transient_and_a_lost_lease() {
        for code in ALL {
            let status = Status::new(code, "x");
            assert!(!(transient(&status) && lease_gone(&status)), "{code:?}");
        }
    }

    #[test]
    fn refused_credentials_are_fatal_and_stop_the_worker_once() {
        let shutdown = Shutdown::new();
        let fatal = Fatal::new(shutdown.clone());
        for code in ALL.into_iter().filter(|&c| c != Code::Unauthenticated) {
            assert!(!fatal.check(&Status::new(code, "x")), "{code:?}");
        }
        assert!(!shutdown.is_stopping());
        assert_eq!(fatal.message(), None);

        assert!(fatal.check(&Status::unauthenticated("bad token")));
        assert!(shutdown.is_stopping());
        let first = fatal.message().expect("the refusal is kept").to_string();
        assert!(first.contains("UNAUTHENTICATED: bad token"), "{first}");
        assert!(first.contains("--token-file"), "{first}");

        // The first refusal is the one kept.
        assert!(fatal.clone().check(&Status::unauthenticated("other")));
        assert_eq!(fatal.message(), Some(first.as_str()));
    }
}
