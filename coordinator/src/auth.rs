//! The server side of authentication: a service wrapper that refuses, with UNAUTHENTICATED,
//! every call without `authorization: Bearer <token>` (the token of
//! [`ServerConfig::token`](crate::ServerConfig)), compared in constant time.
//!
//! It wraps the coordinator service only, so the gRPC health service stays open for load
//! balancers and probes. A refusal is logged with the peer address and the method called,
//! never with what the client sent. (A tower wrapper rather than a tonic interceptor: an
//! interceptor does not see which method is called.)

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use proto::auth::{Token, AUTHORIZATION};
use tonic::body::Body;
use tonic::codegen::http;
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;

/// `inner`, requiring `token` on every call when there is one.
#[derive(Debug, Clone)]
pub struct RequireToken<S> {
    inner: S,
    token: Option<Token>,
}

impl<S> RequireToken<S> {
    pub fn new(inner: S, token: Option<Token>) -> Self {
        RequireToken { inner, token }
    }
}

impl<S: NamedService> NamedService for RequireToken<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for RequireToken<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if let Some(token) = &self.token {
            let header = request.headers().get(AUTHORIZATION);
            if !token.verify(header.map(|v| v.as_bytes())) {
                let peer = peer_addr(&request);
                let reason = if header.is_some() {
                    "wrong token"
                } else {
                    "no token"
                };
                tracing::warn!(
                    peer = %peer.map_or_else(|| "unknown".to_string(), |a| a.to_string()),
                    method = request.uri().path(),
                    reason,
                    "call refused: unauthenticated"
                );
                let status = Status::unauthenticated(format!(
                    "{reason}: this coordinator requires its shared token \
                     (authorization: Bearer <token>)"
                ));
                return Box::pin(std::future::ready(Ok(status.into_http())));
            }
        }
        Box::pin(self.inner.call(request))
    }
}

/// The client's address, over TCP or TLS.
fn peer_addr<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
}
