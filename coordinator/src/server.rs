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
use std::time::Duration;

use proto::v1::coordinator_server::CoordinatorServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::admission::Admission;
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
///
/// Dead peers are found by HTTP/2 pings (every 30 s, 20 s to answer) and TCP keepalive, so a
/// half-open connection does not hold its streams forever; each connection may run 64 streams
/// at once (the coordinator's global limit is [`crate::admission`]'s).
fn server_builder(config: &ServerConfig) -> Result<Server, ServeError> {
    let builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .max_concurrent_streams(Some(64));
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
    let started_ms = now_ms();
    let grace_until = started_ms.saturating_add(config.lease.as_millis() as i64);
    let extended = store
        .write(move |c| leases::extend_open(c, started_ms, grace_until))
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
    let service = Admission::new(RequireToken::new(service, config.token.clone()));
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));

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
///
/// Deadlines are stored in wall-clock milliseconds (they survive a restart), but the loop
/// judges each tick against the monotonic clock first ([`judge_tick`]): after a gap (the
/// process stopped or starved, a VM paused, the store failing) every open lease gets one lease
/// duration of grace before anything expires, since workers could not heartbeat while this
/// coordinator could not serve; after a wall-clock jump the open deadlines move with the
/// clock, so a forward jump expires nothing early and a backward one keeps no dead lease alive.
async fn expiry_loop(store: Store, config: ServerConfig, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(config.expiry_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Clocks::now();
    let mut failed = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let now = Clocks::now();
        let lease_ms = config.lease.as_millis() as i64;
        let outcome = match judge_tick(last, now, config.expiry_interval, failed) {
            Tick::Expire => {
                let (max_attempts, watchdog) = (config.max_attempts, config.watchdog);
                let (judged, interval) = (now.mono, config.expiry_interval);
                store
                    .write(move |c| {
                        // Waiting this long for the store's connection (held by calls that
                        // were themselves waiting on a busy database) is a gap too: no
                        // heartbeat could be stored meanwhile, so grace, not expiry.
                        let waited = judged.elapsed();
                        if waited > interval {
                            let from = now_ms();
                            return leases::extend_open(c, from, from.saturating_add(lease_ms))
                                .map(|leases| Round::Graced { waited, leases });
                        }
                        leases::expire(c, now_ms(), max_attempts, watchdog).map(Round::Expired)
                    })
                    .await
                    .map(|round| match round {
                        Round::Expired(expired) => {
                            for e in expired {
                                tracing::warn!(lease_id = e.lease_id, task_id = %e.task_id, worker_id = e.worker_id, task_state = e.task_state.as_str(), reason = %e.reason, "lease expired");
                            }
                        }
                        Round::Graced { waited, leases } => {
                            tracing::warn!(waited_ms = waited.as_millis() as u64, leases, "the expiry loop waited for the store: open leases get one lease duration of grace");
                        }
                    })
            }
            Tick::Grace { gap_ms } => {
                let (from, until) = (now.wall_ms, now.wall_ms.saturating_add(lease_ms));
                store
                    .write(move |c| leases::extend_open(c, from, until))
                    .await
                    .map(|extended| {
                        tracing::warn!(gap_ms, leases = extended, "the expiry loop resumed after a gap: open leases get one lease duration of grace");
                    })
            }
            Tick::Rebase { jump_ms } => store
                .write(move |c| leases::shift_open(c, jump_ms))
                .await
                .map(|shifted| {
                    tracing::warn!(
                        jump_ms,
                        leases = shifted,
                        "the wall clock jumped: open lease deadlines moved with it"
                    );
                }),
        };
        match outcome {
            Ok(()) => {
                failed = false;
                last = now;
            }
            Err(error) => {
                failed = true;
                tracing::error!(%error, "judging leases failed");
            }
        }
    }
}

/// What an expiry round did: expired what was overdue, or (having waited too long for the
/// store) gave every open lease grace instead.
enum Round {
    Expired(Vec<leases::Expired>),
    Graced { waited: Duration, leases: usize },
}

/// The two clocks at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clocks {
    pub(crate) mono: std::time::Instant,
    pub(crate) wall_ms: i64,
}

impl Clocks {
    fn now() -> Clocks {
        Clocks {
            mono: std::time::Instant::now(),
            wall_ms: now_ms(),
        }
    }
}

/// What one tick of the expiry loop does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Expire overdue leases.
    Expire,
    /// The loop did not run for `gap_ms` (or its last round failed): extend open leases.
    Grace { gap_ms: i64 },
    /// The wall clock moved `jump_ms` more than the monotonic clock: shift open deadlines.
    Rebase { jump_ms: i64 },
}

/// Judges a tick from the clocks at the last successful round and now. A gap is more than
/// twice the interval plus half a second of monotonic time; a jump is a difference of more
/// than a second between the two clocks' progress.
pub(crate) fn judge_tick(last: Clocks, now: Clocks, interval: Duration, failed: bool) -> Tick {
    let mono_ms = now.mono.saturating_duration_since(last.mono).as_millis() as i64;
    let wall_ms = now.wall_ms.saturating_sub(last.wall_ms);
    let jump_ms = wall_ms.saturating_sub(mono_ms);
    if jump_ms.abs() > 1_000 {
        return Tick::Rebase { jump_ms };
    }
    let gap_limit = 2 * interval.as_millis() as i64 + 500;
    if failed || mono_ms > gap_limit {
        return Tick::Grace { gap_ms: mono_ms };
    }
    Tick::Expire
}

#[cfg(test)]
mod tick_tests {
    use super::*;

    fn at(start: Clocks, mono_ms: u64, wall_ms: i64) -> Clocks {
        Clocks {
            mono: start.mono + Duration::from_millis(mono_ms),
            wall_ms: start.wall_ms + wall_ms,
        }
    }

    #[test]
    fn a_regular_tick_expires_and_a_gap_or_a_failed_round_gives_grace() {
        let t0 = Clocks::now();
        let second = Duration::from_secs(1);
        assert_eq!(
            judge_tick(t0, at(t0, 1_000, 1_000), second, false),
            Tick::Expire
        );
        assert_eq!(
            judge_tick(t0, at(t0, 2_400, 2_390), second, false),
            Tick::Expire
        );
        // Stopped (SIGSTOP, a paused VM) for a minute: both clocks moved on together.
        assert_eq!(
            judge_tick(t0, at(t0, 60_000, 60_000), second, false),
            Tick::Grace { gap_ms: 60_000 }
        );
        // The last round could not reach the store.
        assert_eq!(
            judge_tick(t0, at(t0, 1_000, 1_000), second, true),
            Tick::Grace { gap_ms: 1_000 }
        );
    }

    #[test]
    fn wall_clock_jumps_move_the_deadlines() {
        let t0 = Clocks::now();
        let second = Duration::from_secs(1);
        // An hour forward in one second of real time: nothing may expire early.
        assert_eq!(
            judge_tick(t0, at(t0, 1_000, 3_601_000), second, false),
            Tick::Rebase { jump_ms: 3_600_000 }
        );
        // Ten minutes back: dead workers' leases must not live ten minutes longer.
        assert_eq!(
            judge_tick(t0, at(t0, 1_000, -599_000), second, false),
            Tick::Rebase { jump_ms: -600_000 }
        );
        // NTP slewing by a few milliseconds is no jump.
        assert_eq!(
            judge_tick(t0, at(t0, 1_000, 1_050), second, false),
            Tick::Expire
        );
    }
}

/// A coordinator running in the background of the current tokio runtime.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ServeError>>,
    store: Store,
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
        let task = tokio::spawn(serve_store(store.clone(), config, listener, shutdown));
        Ok(RunningServer {
            addr,
            tls,
            stop,
            task,
            store,
        })
    }

    /// Its store (a clone sharing the connection), e.g. for its commit statistics.
    pub fn store(&self) -> &Store {
        &self.store
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
        let RunningServer {
            stop, task, store, ..
        } = self;
        let _ = stop.send(true);
        let served = task.await.map_err(|e| ServeError::Join(e.to_string()));
        // The last handle on the connection: dropping it closes the database.
        drop(store);
        served?
    }
}
