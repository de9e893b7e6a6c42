//! Running a coordinator: the gRPC server (coordinator + health services), the background
//! expiry of overdue leases, and graceful shutdown.
//!
//! [`serve`] runs until its shutdown future resolves; [`RunningServer::start`] runs it in the
//! background on a listener bound by the caller (tests bind `127.0.0.1:0`), which is how
//! tests and `coordinator run` embed a coordinator in-process.
//!
//! With [`ServerConfig::token`] every call of the coordinator service needs the bearer token
//! ([`crate::auth::RequireToken`]); with [`ServerConfig::tls`] the server speaks TLS only
//! (rustls). The health service is open either way.

use std::future::Future;
use std::net::SocketAddr;

use proto::v1::coordinator_server::CoordinatorServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::auth::RequireToken;
use crate::clock::now_ms;
use crate::config::ServerConfig;
use crate::service::CoordinatorService;
use crate::store::{leases, Store, StoreError};

/// Why a coordinator could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the listener's address: {0}")]
    Address(std::io::Error),
    #[error("grpc transport failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("server task failed: {0}")]
    Join(String),
    #[error("tls certificate or key unusable: {0}")]
    Tls(tonic::transport::Error),
}

/// The transport of `config`: TLS when it has a certificate (checked here, so a bad
/// certificate or key is an error at start).
fn server_builder(config: &ServerConfig) -> Result<Server, ServeError> {
    let builder = Server::builder();
    match &config.tls {
        None => Ok(builder),
        Some(tls) => builder
            .tls_config(
                ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem)),
            )
            .map_err(ServeError::Tls),
    }
}

/// Opens the store of `config` (blocking work, on the blocking pool).
pub async fn open_store(config: &ServerConfig) -> Result<Store, ServeError> {
    let path = config.db_path.clone();
    tokio::task::spawn_blocking(move || Store::open(&path))
        .await
        .map_err(|e| ServeError::Join(e.to_string()))?
        .map_err(ServeError::from)
}

/// Serves the coordinator on `listener` until `shutdown` resolves, then stops accepting,
/// finishes in-flight requests and the expiry loop, and closes the database.
pub async fn serve(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store = open_store(&config).await?;
    serve_store(store, config, listener, shutdown).await
}

/// [`serve`] with an already opened store.
pub async fn serve_store(
    store: Store,
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener.local_addr().map_err(ServeError::Address)?;
    let mut builder = server_builder(&config)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    // Workers could not heartbeat while this coordinator was down: give their open leases
    // one lease duration to reconnect before the expiry loop judges them.
    let grace_until = now_ms().saturating_add(config.lease.as_millis() as i64);
    let extended = store
        .run(move |c| leases::extend_open(c, grace_until))
        .await?;
    if extended > 0 {
        tracing::info!(leases = extended, "open leases extended after a restart");
    }
    let expiry = tokio::spawn(expiry_loop(store.clone(), config.clone(), stop_rx));

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<CoordinatorServer<CoordinatorService>>()
        .await;
    let service = CoordinatorServer::new(CoordinatorService::new(store.clone(), config.clone()))
        .max_decoding_message_size(proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(proto::MAX_MESSAGE_BYTES);
    let service = RequireToken::new(service, config.token.clone());
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));

    tracing::info!(%addr, db = %config.db_path.display(), lease_seconds = config.lease.as_secs_f64(), max_attempts = config.max_attempts, tls = config.tls.is_some(), token = config.token.is_some(), "coordinator serving");
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down");
        health
            .set_not_serving::<CoordinatorServer<CoordinatorService>>()
            .await;
    };
    let served = builder
        .add_service(health_service)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, signal)
        .await;

    // Stop the expiry loop whatever happened to the server.
    let _ = stop_tx.send(true);
    expiry.await.map_err(|e| ServeError::Join(e.to_string()))?;
    served?;
    drop(store);
    tracing::info!("coordinator stopped");
    Ok(())
}

/// Expires overdue leases every `expiry_interval` until told to stop.
async fn expiry_loop(store: Store, config: ServerConfig, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(config.expiry_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let max_attempts = config.max_attempts;
        match store
            .run(move |c| leases::expire(c, now_ms(), max_attempts))
            .await
        {
            Ok(expired) => {
                for e in expired {
                    tracing::warn!(lease_id = e.lease_id, task_id = %e.task_id, worker_id = e.worker_id, task_state = e.task_state.as_str(), "lease expired");
                }
            }
            Err(error) => tracing::error!(%error, "expiring leases failed"),
        }
    }
}

/// A coordinator running in the background of the current tokio runtime.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl RunningServer {
    /// Opens the database (errors surface here) and serves on `listener` in the background.
    pub async fn start(
        config: ServerConfig,
        listener: TcpListener,
    ) -> Result<RunningServer, ServeError> {
        let addr = listener.local_addr().map_err(ServeError::Address)?;
        server_builder(&config)?;
        let tls = config.tls.is_some();
        let store = open_store(&config).await?;
        let (stop, mut stopped) = watch::channel(false);
        let shutdown = async move {
            let _ = stopped.wait_for(|&s| s).await;
        };
        let task = tokio::spawn(serve_store(store, config, listener, shutdown));
        Ok(RunningServer {
            addr,
            tls,
            stop,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL clients connect to, e.g. `http://127.0.0.1:50051` (`https://` with TLS: the
    /// certificate must then name the listener's IP address).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Shuts down gracefully and waits until the database is closed.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|e| ServeError::Join(e.to_string()))?
    }
}
