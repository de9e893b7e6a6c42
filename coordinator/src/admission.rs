//! Admission of gRPC calls: how many are served at once and how large a request may be,
//! decided before a byte of the request is decoded, so that a client (even one holding the
//! token) cannot exhaust the coordinator's memory.
//!
//! - At most [`MAX_IN_FLIGHT`] calls at once over all connections; a call beyond that is
//!   refused at once with RESOURCE_EXHAUSTED, which workers retry with backoff.
//! - A request body is cut at its method's limit ([`body_limit`]) as it streams in: a report
//!   at [`MAX_REPORT_BYTES`] (the largest legal report, a dense mask of the largest task this
//!   coordinator accepts, is a quarter of that), a sweep file at [`MAX_SUBMIT_BYTES`],
//!   everything else at [`MAX_SMALL_BYTES`].
//! - The two large kinds (reports and submissions) are decoded [`MAX_LARGE_IN_FLIGHT`] at a
//!   time; the others wait for a slot.
//!
//! Decoding can inflate a message (an empty repeated mask is 2 bytes on the wire and about 40
//! in memory), so the worst case is bounded by these limits together: about
//! `MAX_LARGE_IN_FLIGHT x 20 x MAX_REPORT_BYTES` (640 MiB) plus the decoded masks of the
//! largest task, far under the coordinator's Kubernetes limit of 2 GiB.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Semaphore;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::Status;

/// Calls served at once, over all connections.
pub const MAX_IN_FLIGHT: usize = 256;
/// Reports and sweep submissions decoded at once.
pub const MAX_LARGE_IN_FLIGHT: usize = 4;
/// The largest `ReportLevel` request.
pub const MAX_REPORT_BYTES: usize = 8 << 20;
/// The largest `SubmitSweep` request: a sweep file at its limit, and its name and source.
pub const MAX_SUBMIT_BYTES: usize = shared::sweep::MAX_SWEEP_FILE_BYTES + (64 << 10);
/// The largest request of any other method.
pub const MAX_SMALL_BYTES: usize = 256 << 10;

/// The body limit of a call to `path` (`/lottery.v1.Coordinator/Method`), and whether it is
/// one of the large kinds.
pub fn body_limit(path: &str) -> (usize, bool) {
    match path.rsplit('/').next() {
        Some("ReportLevel") => (MAX_REPORT_BYTES, true),
        Some("SubmitSweep") => (MAX_SUBMIT_BYTES, true),
        _ => (MAX_SMALL_BYTES, false),
    }
}

/// `inner`, behind the limits above.
#[derive(Debug, Clone)]
pub struct Admission<S> {
    inner: S,
    in_flight: Arc<Semaphore>,
    large: Arc<Semaphore>,
}

impl<S> Admission<S> {
    pub fn new(inner: S) -> Self {
        Admission {
            inner,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            large: Arc::new(Semaphore::new(MAX_LARGE_IN_FLIGHT)),
        }
    }
}

impl<S: NamedService> NamedService for Admission<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Admission<S>
where
    S: Service<http::Request<Capped<B>>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + Unpin + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            tracing::warn!(
                method = request.uri().path(),
                limit = MAX_IN_FLIGHT,
                "call refused: too many in flight"
            );
            let status = Status::resource_exhausted(format!(
                "the coordinator is serving its limit of {MAX_IN_FLIGHT} calls at once; retry later"
            ));
            return Box::pin(std::future::ready(Ok(status.into_http())));
        };
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        let (limit, large) = body_limit(request.uri().path());
        let request = request.map(|body| Capped {
            inner: body,
            left: limit,
            limit,
            method,
        });
        // The service was polled ready; a clone takes its place for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let slots = large.then(|| self.large.clone());
        Box::pin(async move {
            let _permit = permit;
            let _slot = match slots {
                Some(slots) => Some(
                    slots
                        .acquire_owned()
                        .await
                        .expect("the semaphore is never closed"),
                ),
                None => None,
            };
            inner.call(request).await
        })
    }
}

/// A request body that fails once more than `limit` bytes have come in.
#[derive(Debug)]
pub struct Capped<B> {
    inner: B,
    left: usize,
    limit: usize,
    method: String,
}

/// A request body over its method's limit.
#[derive(Debug, thiserror::Error)]
#[error("the {method} request is larger than its limit of {limit} bytes")]
pub struct TooLarge {
    method: String,
    limit: usize,
}

impl<B> HttpBody for Capped<B>
where
    B: HttpBody + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.remaining());
                if len > this.left {
                    let error = TooLarge {
                        method: std::mem::take(&mut this.method),
                        limit: this.limit,
                    };
                    tracing::warn!(error = %error, "request refused");
                    return Poll::Ready(Some(Err(Box::new(error))));
                }
                this.left -= len;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_and_submissions_get_their_own_limits() {
        assert_eq!(
            body_limit("/lottery.v1.Coordinator/ReportLevel"),
            (MAX_REPORT_BYTES, true)
        );
        assert_eq!(
            body_limit("/lottery.v1.Coordinator/SubmitSweep"),
            (MAX_SUBMIT_BYTES, true)
        );
        assert_eq!(
            body_limit("/lottery.v1.Coordinator/Heartbeat"),
            (MAX_SMALL_BYTES, false)
        );
        // A dense mask of the largest task accepted, as a bitmap, fits a report well.
        let bitmap = crate::submit::MAX_TASK_WEIGHTS.div_ceil(8);
        assert!(4 * bitmap <= MAX_REPORT_BYTES);
    }
}
