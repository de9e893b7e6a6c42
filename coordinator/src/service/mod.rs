//! The `lottery.v1.Coordinator` gRPC service: request checks, then the store. The only place
//! of the coordinator library that maps to `pb::*` messages and gRPC `Status` codes (with
//! [`wire`] for the domain types of the operator and results RPCs).
//!
//! Every handler is async and never blocks: store calls go through [`Store::run`] (tokio's
//! blocking pool) and report validation, which decodes masks and recomputes the ticket graph,
//! runs on the blocking pool too, outside the database lock.

pub mod wire;

use std::time::Duration;

use proto::v1 as pb;
use proto::v1::coordinator_server::Coordinator;
use tonic::{Request, Response, Status};

use proto::convert::{blob_to_wire, masks_from_blob, masks_to_blob};
use shared::metrics::LevelMetrics;

use crate::clock::now_ms;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::store::levels::{self, ReportContext};
use crate::store::queries::{self, StatusWindows};
use crate::store::{control, leases, sweeps, Store, StoreError};
use crate::submit;
use crate::validate::{self, Expectation};

/// The service: a store and the lease settings.
#[derive(Debug, Clone)]
pub struct CoordinatorService {
    store: Store,
    config: ServerConfig,
}

impl CoordinatorService {
    pub fn new(store: Store, config: ServerConfig) -> Self {
        CoordinatorService { store, config }
    }

    fn lease_ms(&self) -> i64 {
        duration_ms(self.config.lease)
    }

    /// How long an idle worker should wait before asking again.
    fn retry_after(&self, sweeps_active: bool) -> Duration {
        let cap = if sweeps_active {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(5)
        };
        self.config
            .heartbeat_interval
            .min(cap)
            .max(Duration::from_millis(50))
    }

    /// The windows of status reports of this configuration.
    pub fn windows(config: &ServerConfig) -> StatusWindows {
        StatusWindows {
            throughput_ms: duration_ms(config.throughput_window),
            alive_ms: 2 * duration_ms(config.lease).max(duration_ms(Duration::from_secs(5))),
        }
    }
}

/// The longest worker arithmetic accepted (`shared::cpu::arithmetic`'s names are ~20 bytes).
pub const MAX_ARITHMETIC_BYTES: usize = 64;

/// The longest worker name or hostname accepted.
pub const MAX_NAME_BYTES: usize = 256;
/// The longest failure message kept; longer ones are cut (at a character boundary).
pub const MAX_ERROR_BYTES: usize = 4096;

/// `text` cut to at most `max` bytes at a character boundary, marked when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes cut)", &text[..end], text.len() - end)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Runs blocking CPU work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Store(StoreError::Join(e.to_string())))
}

/// The outcome of checking a report against its context.
enum Checked {
    New(Box<validate::ValidLevel>),
    Duplicate,
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Status {
        ApiError::from(error).into()
    }
}

/// Stored masks decoded (a blob that does not decode is corrupt data, not a refusal).
fn stored_masks(blob: &[u8]) -> Result<Vec<shared::graph::LayerMask>, ApiError> {
    masks_from_blob(blob).map_err(|e| ApiError::Store(StoreError::Corrupt(e.to_string())))
}

fn check_report(
    ctx: &ReportContext,
    request: &pb::ReportLevelRequest,
) -> Result<Checked, ApiError> {
    let level = request.level;
    let refuse = |e: validate::ReportError| {
        ApiError::InvalidArgument(format!(
            "report of level {level} of task {} refused: {e}",
            ctx.lease.task_id
        ))
    };
    if let Some(existing) = &ctx.existing {
        let masks = validate::decode_masks(&ctx.spec.shape, &request.masks).map_err(refuse)?;
        let metrics = request
            .metrics
            .as_ref()
            .ok_or(validate::ReportError::MissingMetrics)
            .map_err(refuse)?;
        let metrics = LevelMetrics::try_from(metrics)
            .map_err(|e| validate::ReportError::Metrics(format!("metrics: {e}")))
            .map_err(refuse)?;
        let stored = stored_masks(&existing.masks_blob)?;
        return if validate::same_level(
            &existing.metrics_json,
            existing.seconds,
            &stored,
            &metrics,
            &masks,
        ) {
            Ok(Checked::Duplicate)
        } else {
            Err(ApiError::AlreadyExists(format!(
                "level {level} of task {} is already stored with different content",
                ctx.lease.task_id
            )))
        };
    }
    let previous = match &ctx.previous {
        Some(p) => Some((stored_masks(&p.masks_blob)?, p.status)),
        None => None,
    };
    let expectation = Expectation {
        spec: &ctx.spec,
        stored: ctx.stored,
        previous: previous.as_ref().map(|(m, s)| (m.as_slice(), *s)),
    };
    validate::validate_report(expectation, level, request.metrics.as_ref(), &request.masks)
        .map(|valid| Checked::New(Box::new(valid)))
        .map_err(refuse)
}

#[tonic::async_trait]
impl Coordinator for CoordinatorService {
    async fn register_worker(
        &self,
        request: Request<pb::RegisterWorkerRequest>,
    ) -> Result<Response<pb::RegisterWorkerResponse>, Status> {
        let r = request.into_inner();
        if r.api_version != proto::API_VERSION {
            return Err(Status::failed_precondition(format!(
                "worker speaks API version {}, this coordinator speaks version {}: upgrade the \
                 older of the two",
                r.api_version,
                proto::API_VERSION
            )));
        }
        for (field, value) in [("name", &r.name), ("hostname", &r.hostname)] {
            if value.len() > MAX_NAME_BYTES {
                return Err(Status::invalid_argument(format!(
                    "worker {field} is {} bytes long, more than the limit of {MAX_NAME_BYTES}",
                    value.len()
                )));
            }
        }
        if r.arithmetic.len() > MAX_ARITHMETIC_BYTES
            || !r.arithmetic.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Status::invalid_argument(format!(
                "worker arithmetic {:?} is not a name of at most {MAX_ARITHMETIC_BYTES} printable characters",
                r.arithmetic.chars().take(80).collect::<String>()
            )));
        }
        let (name, hostname, parallel) = (r.name.clone(), r.hostname.clone(), r.parallel);
        let arithmetic = r.arithmetic.clone();
        // Workers from before engine versions ran engine 1.
        let engine = r.engine.max(1);
        let worker_id = self
            .store
            .write(move |c| {
                let worker = leases::NewWorker {
                    name: &name,
                    hostname: &hostname,
                    api_version: r.api_version,
                    parallel,
                    engine,
                    arithmetic: &arithmetic,
                };
                leases::register(c, &worker, now_ms())
            })
            .await?;
        tracing::info!(worker_id, name = %r.name, hostname = %r.hostname, parallel = r.parallel.max(1), engine, arithmetic = %r.arithmetic, "worker registered");
        Ok(Response::new(pb::RegisterWorkerResponse {
            worker_id,
            heartbeat_interval_ms: self.config.heartbeat_interval.as_millis() as u64,
            lease_seconds: self.config.lease.as_secs().max(1),
            api_version: proto::API_VERSION,
        }))
    }

    async fn lease_task(
        &self,
        request: Request<pb::LeaseTaskRequest>,
    ) -> Result<Response<pb::LeaseTaskResponse>, Status> {
        let pb::LeaseTaskRequest {
            worker_id,
            request_id,
        } = request.into_inner();
        let lease_ms = self.lease_ms();
        let answer = self
            .store
            .write(move |c| leases::lease(c, worker_id, request_id, now_ms(), lease_ms))
            .await?;
        let response = match answer {
            leases::LeaseAnswer::Idle {
                sweeps_active,
                reason,
            } => pb::LeaseTaskResponse {
                lease: None,
                sweeps_active,
                retry_after_ms: self.retry_after(sweeps_active).as_millis() as u64,
                idle_reason: reason.unwrap_or_default(),
            },
            leases::LeaseAnswer::Granted(g) => {
                let previous_masks = match &g.previous_masks {
                    Some(blob) => blob_to_wire(blob)
                        .map_err(|e| ApiError::Store(StoreError::Corrupt(e.to_string())))?,
                    None => Vec::new(),
                };
                if g.replayed {
                    tracing::info!(worker_id, request_id, lease_id = g.lease_id, task_id = %g.task_id, "lease request repeated: the same lease again");
                } else {
                    tracing::info!(worker_id, lease_id = g.lease_id, task_id = %g.task_id, sweep = %g.sweep, resume_level = g.resume_level, "task leased");
                }
                pb::LeaseTaskResponse {
                    lease: Some(pb::Lease {
                        lease_id: g.lease_id,
                        task_id: g.task_id,
                        sweep: g.sweep,
                        spec_json: g.spec_json,
                        deadline_unix_ms: g.deadline_ms,
                        resume_level: g.resume_level,
                        previous_masks,
                    }),
                    sweeps_active: true,
                    retry_after_ms: 0,
                    idle_reason: String::new(),
                }
            }
        };
        Ok(Response::new(response))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let r = request.into_inner();
        let lease_ms = self.lease_ms();
        let deadline = self
            .store
            .write(move |c| leases::heartbeat(c, r.worker_id, r.lease_id, r.level, now_ms(), lease_ms))
            .await
            .inspect_err(|e| tracing::warn!(worker_id = r.worker_id, lease_id = r.lease_id, error = %e, "heartbeat refused"))?;
        tracing::debug!(
            worker_id = r.worker_id,
            lease_id = r.lease_id,
            level = r.level,
            "heartbeat"
        );
        Ok(Response::new(pb::HeartbeatResponse {
            deadline_unix_ms: deadline,
        }))
    }

    async fn report_level(
        &self,
        request: Request<pb::ReportLevelRequest>,
    ) -> Result<Response<pb::ReportLevelResponse>, Status> {
        let r = request.into_inner();
        let (worker_id, lease_id, level) = (r.worker_id, r.lease_id, r.level);
        let result = async {
            let ctx = self
                .store
                .run(move |c| levels::context(c, worker_id, lease_id, level))
                .await?;
            let task_id = ctx.lease.task_id.clone();
            // Validation and encoding the masks for storage: CPU work, off the async threads.
            let checked = blocking(move || {
                check_report(&ctx, &r).map(|checked| match checked {
                    Checked::New(valid) => {
                        let blob = masks_to_blob(&valid.masks);
                        Some((valid.metrics, blob))
                    }
                    Checked::Duplicate => None,
                })
            })
            .await??;
            match checked {
                None => {
                    tracing::info!(worker_id, lease_id, task_id = %task_id, level, "level re-reported with identical content");
                    Ok(false)
                }
                Some((metrics, blob)) => {
                    let active = metrics.active_weights;
                    let status = metrics.status.as_str();
                    self.store
                        .write(move |c| levels::insert(c, worker_id, lease_id, &metrics, &blob, now_ms()))
                        .await?;
                    tracing::info!(worker_id, lease_id, task_id = %task_id, level, active_weights = active, status, "level stored");
                    Ok(true)
                }
            }
        }
        .await
        .inspect_err(|e: &ApiError| tracing::warn!(worker_id, lease_id, level, error = %e, "report refused"))?;
        Ok(Response::new(pb::ReportLevelResponse { stored: result }))
    }

    async fn complete_task(
        &self,
        request: Request<pb::CompleteTaskRequest>,
    ) -> Result<Response<pb::CompleteTaskResponse>, Status> {
        let r = request.into_inner();
        self.store
            .write(move |c| leases::complete(c, r.worker_id, r.lease_id, now_ms()))
            .await
            .inspect_err(|e| tracing::warn!(worker_id = r.worker_id, lease_id = r.lease_id, error = %e, "completion refused"))?;
        tracing::info!(
            worker_id = r.worker_id,
            lease_id = r.lease_id,
            "task completed"
        );
        Ok(Response::new(pb::CompleteTaskResponse {}))
    }

    async fn fail_task(
        &self,
        request: Request<pb::FailTaskRequest>,
    ) -> Result<Response<pb::FailTaskResponse>, Status> {
        let r = request.into_inner();
        let max_attempts = self.config.max_attempts;
        let error = if r.error.is_empty() {
            "the worker gave no reason".to_string()
        } else {
            truncate(&r.error, MAX_ERROR_BYTES)
        };
        let task_failed = self
            .store
            .write(move |c| {
                leases::fail(c, r.worker_id, r.lease_id, &error, now_ms(), max_attempts)
            })
            .await?;
        tracing::warn!(worker_id = r.worker_id, lease_id = r.lease_id, error = %truncate(&r.error, MAX_ERROR_BYTES), task_failed, "task failed");
        Ok(Response::new(pb::FailTaskResponse { task_failed }))
    }

    async fn return_lease(
        &self,
        request: Request<pb::ReturnLeaseRequest>,
    ) -> Result<Response<pb::ReturnLeaseResponse>, Status> {
        let r = request.into_inner();
        let returned = self
            .store
            .write(move |c| leases::return_lease(c, r.worker_id, r.lease_id, now_ms()))
            .await
            .inspect_err(|e| tracing::warn!(worker_id = r.worker_id, lease_id = r.lease_id, error = %e, "lease return refused"))?;
        tracing::info!(
            worker_id = r.worker_id,
            lease_id = r.lease_id,
            levels_stored = returned.levels_stored,
            task_done = returned.task_done,
            "lease returned"
        );
        Ok(Response::new(pb::ReturnLeaseResponse {
            levels_stored: returned.levels_stored,
            task_done: returned.task_done,
        }))
    }

    async fn submit_sweep(
        &self,
        request: Request<pb::SubmitSweepRequest>,
    ) -> Result<Response<pb::SubmitSweepResponse>, Status> {
        let r = request.into_inner();
        let priority = r.priority;
        let expanded = blocking(move || submit::expand(&r.yaml, &r.source, &r.name)).await??;
        let submitted = self
            .store
            .write(move |c| {
                let submitted = sweeps::submit(c, &expanded, now_ms())?;
                if let Some(p) = priority {
                    control::set_priority(c, &submitted.sweep, p)?;
                }
                Ok::<_, StoreError>(submitted)
            })
            .await?;
        tracing::info!(sweep = %submitted.sweep, added = submitted.added, existing = submitted.existing, total = submitted.total, "sweep submitted");
        Ok(Response::new(pb::SubmitSweepResponse {
            sweep: submitted.sweep,
            added: submitted.added,
            existing: submitted.existing,
            total: submitted.total,
        }))
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let sweep = request.into_inner().sweep;
        let windows = Self::windows(&self.config);
        let status = self
            .store
            .run(move |c| queries::status(c, sweep.as_deref(), now_ms(), windows))
            .await?;
        Ok(Response::new(wire::status_to_wire(status)))
    }

    async fn results(
        &self,
        request: Request<pb::ResultsRequest>,
    ) -> Result<Response<pb::ResultsResponse>, Status> {
        let sweep = request.into_inner().sweep;
        let name = sweep.clone();
        let data = self
            .store
            .run(move |c| crate::store::results::sweep_data(c, &name))
            .await?;
        let points = blocking(move || analysis::stats::grid_points(&data.tasks)).await?;
        Ok(Response::new(pb::ResultsResponse {
            sweep,
            rows: points.iter().map(wire::point_to_wire).collect(),
        }))
    }

    async fn list_sweeps(
        &self,
        _request: Request<pb::ListSweepsRequest>,
    ) -> Result<Response<pb::ListSweepsResponse>, Status> {
        let list = self.store.run(|c| sweeps::list(c)).await?;
        Ok(Response::new(pb::ListSweepsResponse {
            sweeps: list
                .into_iter()
                .map(|s| pb::SweepSummary {
                    name: s.name,
                    created_unix_ms: s.created_ms,
                    total: s.total,
                    done: s.done,
                    failed: s.failed,
                })
                .collect(),
        }))
    }

    async fn task_levels(
        &self,
        request: Request<pb::TaskLevelsRequest>,
    ) -> Result<Response<pb::TaskLevelsResponse>, Status> {
        let sweep = request.into_inner().sweep;
        let data = self
            .store
            .run(move |c| crate::sweep_data::load(c, &sweep))
            .await?;
        Ok(Response::new(wire::sweep_data_to_wire(&data)))
    }

    async fn retry_tasks(
        &self,
        request: Request<pb::RetryTasksRequest>,
    ) -> Result<Response<pb::RetryTasksResponse>, Status> {
        let r = request.into_inner();
        let sweep = r.sweep.clone();
        let task_ids = self
            .store
            .write(move |c| sweeps::retry_failed(c, &r.sweep, r.task_id.as_deref()))
            .await?;
        tracing::info!(sweep = %sweep, retried = task_ids.len(), "failed tasks made pending again");
        Ok(Response::new(pb::RetryTasksResponse { task_ids }))
    }

    async fn control_sweep(
        &self,
        request: Request<pb::ControlSweepRequest>,
    ) -> Result<Response<pb::ControlSweepResponse>, Status> {
        let r = request.into_inner();
        let to = match r.action.as_str() {
            "" => None,
            "pause" => Some(control::SweepState::Paused),
            "resume" => Some(control::SweepState::Active),
            "cancel" => Some(control::SweepState::Cancelled),
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown action {:?}: pause, resume or cancel",
                    other.chars().take(40).collect::<String>()
                )))
            }
        };
        let sweep = r.sweep.clone();
        let done = self
            .store
            .write(move |c| {
                let mut done = match to {
                    Some(to) => control::set_state(c, &r.sweep, to, now_ms())?,
                    None => {
                        let (state, priority) = control::state(c, &r.sweep)?;
                        control::Control {
                            state,
                            priority,
                            leases_returned: 0,
                        }
                    }
                };
                if let Some(p) = r.priority {
                    done.priority = control::set_priority(c, &r.sweep, p)?.priority;
                }
                Ok::<_, StoreError>(done)
            })
            .await?;
        tracing::info!(sweep = %sweep, state = done.state.as_str(), priority = done.priority, leases_returned = done.leases_returned, "sweep controlled");
        Ok(Response::new(pb::ControlSweepResponse {
            state: done.state.as_str().to_string(),
            priority: done.priority,
            leases_returned: done.leases_returned,
        }))
    }

    async fn ticket_masks(
        &self,
        request: Request<pb::TicketMasksRequest>,
    ) -> Result<Response<pb::TicketMasksResponse>, Status> {
        let r = request.into_inner();
        let stored = self
            .store
            .run(move |c| crate::store::results::ticket(c, &r.sweep, &r.task_id, r.level))
            .await?;
        let answer = wire::ticket_to_wire(&stored)
            .map_err(|e| ApiError::Store(StoreError::Corrupt(e.to_string())))?;
        Ok(Response::new(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn long_errors_are_cut_at_a_character_boundary() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate("ééééé", 3);
        assert_eq!(cut, "é... (8 bytes cut)");
    }
}
