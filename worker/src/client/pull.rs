//! Joining a coordinator and pulling work: connect, register, then lease while a slot is free,
//! run every lease as its own task ([`super::lease::run_lease`]), and wait when there is
//! nothing to do. The loop ends on shutdown, on `--exit-when-idle` once no work is left, or on
//! an error no retry can fix; it then waits for the running leases to end.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tonic::Code;
use tracing::{info, warn};

use proto::auth::{is_auth_error, AuthClient, ClientOptions};
use proto::v1::{LeaseTaskRequest, RegisterWorkerRequest};

use super::backoff::{sleep_or_stop, Backoff};
use super::cores::Cores;
use super::lease::{run_lease, TaskContext, TaskEnd};
use super::rpc::{status_text, transient, unauthenticated, Fatal};
use super::{hostname, Config, Summary};
use crate::shutdown::Shutdown;

/// Connects to the coordinator, retrying while it is unreachable (not when its certificate
/// does not verify).
async fn connect(url: &str, auth: &ClientOptions, shutdown: &Shutdown) -> Result<AuthClient> {
    let endpoint = auth
        .endpoint(url)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .tcp_keepalive(Some(Duration::from_secs(30)))
        // A coordinator gone silent (half-open connection) is noticed by unanswered pings.
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    let mut backoff = Backoff::new();
    loop {
        match endpoint.connect().await {
            Ok(channel) => return Ok(auth.client(channel)),
            Err(e) => {
                let error = proto::errors::chain(&e);
                if error.contains("invalid peer certificate") {
                    bail!(
                        "the coordinator's TLS certificate does not verify ({error}): check --tls-ca \
                         and that the certificate names the host in {url}"
                    );
                }
                warn!(coordinator = url, %error, "coordinator unreachable, retrying");
                if backoff.wait(shutdown.token()).await {
                    bail!("stopped before the coordinator could be reached");
                }
            }
        }
    }
}

/// Registers this worker: its id and the heartbeat interval the coordinator asks for.
async fn register(
    client: &mut AuthClient,
    config: &Config,
    shutdown: &Shutdown,
) -> Result<(u64, Duration)> {
    let mut backoff = Backoff::new();
    loop {
        let request = RegisterWorkerRequest {
            name: config.name.clone(),
            hostname: hostname(),
            api_version: proto::API_VERSION,
            parallel: config.parallel as u32,
            engine: crate::engine::ENGINE_VERSION,
            arithmetic: shared::cpu::arithmetic().to_string(),
        };
        match client.register_worker(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                let heartbeat = Duration::from_millis(reply.heartbeat_interval_ms.max(100));
                info!(worker_id = reply.worker_id, name = %config.name, parallel = config.parallel, "registered");
                return Ok((reply.worker_id, heartbeat));
            }
            Err(status) if is_auth_error(&status) => bail!("{}", unauthenticated(&status)),
            Err(status) if transient(&status) => {
                warn!(error = %status_text(&status), "cannot register yet, retrying");
                if backoff.wait(shutdown.token()).await {
                    bail!("stopped before registering");
                }
            }
            Err(status) => bail!("the coordinator refused this worker: {}", status.message()),
        }
    }
}

/// Leases and runs tasks, at most `config.parallel` at once, until the shutdown begins or
/// (with `exit_when_idle`) no work is left; then waits for the running leases.
pub(super) async fn pull_loop(
    config: Config,
    cores: Arc<Cores>,
    shutdown: Shutdown,
    fatal: Fatal,
) -> Result<Summary> {
    let mut client = connect(&config.coordinator, &config.auth, &shutdown).await?;
    let (mut worker_id, mut heartbeat) = register(&mut client, &config, &shutdown).await?;
    let slots = Arc::new(Semaphore::new(config.parallel.max(1)));
    let mut running: JoinSet<TaskEnd> = JoinSet::new();
    let mut summary = Summary::default();
    let mut backoff = Backoff::new();
    let mut requests = RequestIds::default();
    // Why the last lease request got nothing while tasks were pending (logged when it changes).
    let mut idle_reason = String::new();
    loop {
        while let Some(done) = running.try_join_next() {
            summary.add(done);
        }
        if shutdown.is_stopping() {
            break;
        }
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            Some(done) = running.join_next(), if !running.is_empty() => { summary.add(done); continue; }
        };
        // A slot freed by a task that stopped for the shutdown: no new lease.
        if shutdown.is_stopping() {
            break;
        }
        let request_id = requests.current();
        let reply = client
            .lease_task(LeaseTaskRequest {
                worker_id,
                request_id,
            })
            .await;
        match reply {
            Ok(reply) => {
                backoff.reset();
                requests.answered();
                let reply = reply.into_inner();
                // Work for a slot: each slot trains on its own share again. None: the idle
                // slots' threads go to the running tasks until work comes.
                cores.set_lending(reply.lease.is_none());
                if let Some(lease) = reply.lease {
                    let ctx = TaskContext {
                        client: client.clone(),
                        worker_id,
                        heartbeat,
                        cores: cores.join(),
                        shutdown: shutdown.clone(),
                        fatal: fatal.clone(),
                    };
                    running.spawn(async move {
                        let end = run_lease(ctx, lease).await;
                        drop(permit);
                        end
                    });
                    continue;
                }
                drop(permit);
                if reply.idle_reason != idle_reason {
                    if !reply.idle_reason.is_empty() {
                        warn!(reason = %reply.idle_reason, "no task for this worker");
                    }
                    idle_reason = reply.idle_reason;
                }
                if config.exit_when_idle && !reply.sweeps_active && running.is_empty() {
                    info!("no work left, exiting");
                    break;
                }
                let wait = Duration::from_millis(reply.retry_after_ms.clamp(100, 5_000));
                if sleep_or_stop(wait, shutdown.token()).await {
                    break;
                }
            }
            Err(status) if fatal.check(&status) => {
                drop(permit);
                break;
            }
            Err(status) if status.code() == Code::NotFound => {
                drop(permit);
                warn!("the coordinator forgot this worker, registering again");
                (worker_id, heartbeat) = register(&mut client, &config, &shutdown).await?;
                requests.answered();
            }
            Err(status) if transient(&status) => {
                drop(permit);
                warn!(error = %status_text(&status), "cannot lease, retrying");
                if backoff.wait(shutdown.token()).await {
                    break;
                }
            }
            // Any other refusal (a lease limit the coordinator counts differently after a
            // lost reply, a version or engine mismatch of the moment) never ends the worker:
            // its other tasks go on, and it asks again after a pause.
            Err(status) => {
                drop(permit);
                warn!(code = ?status.code(), error = %status.message(), "the coordinator refused a lease, asking again later");
                if backoff.wait(shutdown.token()).await {
                    break;
                }
            }
        }
    }
    while let Some(done) = running.join_next().await {
        summary.add(done);
    }
    Ok(summary)
}

/// Request ids of lease requests: the same id until a request is answered, so that a request
/// whose reply was lost and is sent again gets the lease granted the first time (the
/// coordinator hands it back) instead of a second one.
#[derive(Debug, Default)]
struct RequestIds {
    last: u64,
    pending: Option<u64>,
}

impl RequestIds {
    /// The id of the request to send now: the unanswered one, or a new one.
    fn current(&mut self) -> u64 {
        *self.pending.get_or_insert_with(|| {
            self.last += 1;
            self.last
        })
    }

    /// The request was answered (with a lease or with nothing to do): the next one is new.
    fn answered(&mut self) {
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_keeps_its_id_until_it_is_answered() {
        let mut ids = RequestIds::default();
        let first = ids.current();
        assert_ne!(first, 0, "0 means no id");
        assert_eq!(ids.current(), first, "a retry sends the same id");
        ids.answered();
        let second = ids.current();
        assert_ne!(second, first);
        ids.answered();
        assert_ne!(ids.current(), second);
    }
}
