//! The coordinator's domain types and the `lottery.v1` messages of the operator and results
//! RPCs, both ways: the service answers with these, clients (the CLI, embedded runs) read the
//! answers back with them. The science types (metrics, masks, statuses) convert in
//! `proto::convert`; everything else that names a `pb::` type in this crate is the RPC
//! plumbing of the service itself.

use analysis::data::{Failure, SweepProgress, WorkerView};
use analysis::stats::PointStats;
use analysis::{Progress, SweepData, TaskResult, TicketData};
use proto::convert::{blob_to_wire, masks_from_blob, masks_from_wire, ConvertError};
use proto::v1 as pb;
use shared::metrics::LevelMetrics;
use shared::spec::TaskSpec;
use shared::state::TaskState;

use crate::store::queries::{StatusReport, SweepStatus, TaskFailure, WorkerStatus, WorkerTask};
use crate::store::results::StoredTicket;

/// A status report as the `Status` RPC sends it.
pub fn status_to_wire(s: StatusReport) -> pb::StatusResponse {
    pb::StatusResponse {
        sweeps: s
            .sweeps
            .into_iter()
            .map(|s| pb::SweepStatus {
                name: s.name,
                pending: s.pending,
                leased: s.leased,
                done: s.done,
                failed: s.failed,
                total: s.total,
                levels_done: s.levels_done,
                levels_planned: s.levels_planned,
                tasks_per_hour: s.tasks_per_hour,
                levels_per_minute: s.levels_per_minute,
                eta_seconds: s.eta_seconds,
                work_done: s.work_done,
                state: s.state,
                priority: s.priority,
                failures: s
                    .failures
                    .into_iter()
                    .map(|f| pb::TaskFailure {
                        task_id: f.task_id,
                        attempts: f.attempts,
                        error: f.error,
                    })
                    .collect(),
                created_unix_ms: s.created_ms,
            })
            .collect(),
        workers: s
            .workers
            .into_iter()
            .map(|w| pb::WorkerStatus {
                worker_id: w.worker_id,
                name: w.name,
                hostname: w.hostname,
                parallel: w.parallel,
                last_seen_unix_ms: w.last_seen_ms,
                tasks: w
                    .tasks
                    .into_iter()
                    .map(|t| pb::WorkerTask {
                        task_id: t.task_id,
                        sweep: t.sweep,
                        level: t.level,
                        deadline_unix_ms: t.deadline_ms,
                    })
                    .collect(),
                consecutive_failures: w.consecutive_failures,
                arithmetic: w.arithmetic,
                idle_reason: w.idle_reason,
            })
            .collect(),
        window_seconds: s.window_seconds,
        now_unix_ms: s.now_ms,
    }
}

/// A status report from the `Status` RPC's answer.
pub fn status_from_wire(s: pb::StatusResponse) -> StatusReport {
    StatusReport {
        sweeps: s
            .sweeps
            .into_iter()
            .map(|s| SweepStatus {
                name: s.name,
                pending: s.pending,
                leased: s.leased,
                done: s.done,
                failed: s.failed,
                total: s.total,
                levels_done: s.levels_done,
                levels_planned: s.levels_planned,
                tasks_per_hour: s.tasks_per_hour,
                levels_per_minute: s.levels_per_minute,
                eta_seconds: s.eta_seconds,
                work_done: s.work_done,
                state: s.state,
                priority: s.priority,
                failures: s
                    .failures
                    .into_iter()
                    .map(|f| TaskFailure {
                        task_id: f.task_id,
                        attempts: f.attempts,
                        error: f.error,
                    })
                    .collect(),
                created_ms: s.created_unix_ms,
            })
            .collect(),
        workers: s
            .workers
            .into_iter()
            .map(|w| WorkerStatus {
                worker_id: w.worker_id,
                name: w.name,
                hostname: w.hostname,
                parallel: w.parallel,
                last_seen_ms: w.last_seen_unix_ms,
                tasks: w
                    .tasks
                    .into_iter()
                    .map(|t| WorkerTask {
                        task_id: t.task_id,
                        sweep: t.sweep,
                        level: t.level,
                        deadline_ms: t.deadline_unix_ms,
                    })
                    .collect(),
                consecutive_failures: w.consecutive_failures,
                arithmetic: w.arithmetic,
                idle_reason: w.idle_reason,
            })
            .collect(),
        window_seconds: s.window_seconds,
        now_ms: s.now_unix_ms,
    }
}

/// What the live page shows of a status report: the sweep's throughput and failures (when
/// the report covers it) and the workers.
pub fn progress(s: &StatusReport, sweep: &str) -> Progress {
    Progress {
        sweep: s
            .sweeps
            .iter()
            .find(|x| x.name == sweep)
            .map(|x| SweepProgress {
                tasks_per_hour: x.tasks_per_hour,
                levels_per_minute: x.levels_per_minute,
                eta_seconds: x.eta_seconds,
                work_done: x.work_done,
                failures: x
                    .failures
                    .iter()
                    .map(|f| Failure {
                        task_id: f.task_id.clone(),
                        attempts: f.attempts,
                        error: f.error.clone(),
                    })
                    .collect(),
            }),
        workers: s
            .workers
            .iter()
            .map(|w| WorkerView {
                name: w.name.clone(),
                hostname: w.hostname.clone(),
                seconds_since_seen: (s.now_ms - w.last_seen_ms).max(0) as f64 / 1000.0,
                tasks: w
                    .tasks
                    .iter()
                    .map(|t| (t.task_id.clone(), t.level))
                    .collect(),
            })
            .collect(),
    }
}

/// A sweep's data set as the `TaskLevels` RPC sends it.
pub fn sweep_data_to_wire(data: &SweepData) -> pb::TaskLevelsResponse {
    pb::TaskLevelsResponse {
        sweep: data.sweep.clone(),
        yaml: data.yaml.clone(),
        tasks: data
            .tasks
            .iter()
            .zip(&data.states)
            .map(|(t, state)| pb::TaskLevelsRow {
                index: t.idx as u64,
                task_id: t.spec.id(),
                spec_json: serde_json::to_string(&t.spec).expect("task specs always serialise"),
                state: state.as_str().to_string(),
                levels: t.levels.iter().map(pb::LevelMetrics::from).collect(),
            })
            .collect(),
        state: data.state.clone(),
    }
}

/// A sweep's data set from the `TaskLevels` RPC's answer.
pub fn sweep_data_from_wire(answer: &pb::TaskLevelsResponse) -> Result<SweepData, String> {
    let mut tasks = Vec::with_capacity(answer.tasks.len());
    let mut states = Vec::with_capacity(answer.tasks.len());
    for row in &answer.tasks {
        let spec: TaskSpec = serde_json::from_str(&row.spec_json)
            .map_err(|e| format!("task {}: bad spec: {e}", row.task_id))?;
        let state = TaskState::parse(&row.state)
            .ok_or_else(|| format!("task {}: unknown state {:?}", row.task_id, row.state))?;
        let levels = row
            .levels
            .iter()
            .map(LevelMetrics::try_from)
            .collect::<Result<Vec<_>, ConvertError>>()
            .map_err(|e| format!("task {}: metrics: {e}", row.task_id))?;
        tasks.push(TaskResult {
            idx: usize::try_from(row.index).unwrap_or(usize::MAX),
            spec,
            done: state == TaskState::Done,
            levels,
        });
        states.push(state);
    }
    Ok(SweepData {
        sweep: answer.sweep.clone(),
        yaml: answer.yaml.clone(),
        tasks,
        states,
        // Coordinators before sweep states send none: active.
        state: if answer.state.is_empty() {
            "active".to_string()
        } else {
            answer.state.clone()
        },
    })
}

/// One stored level as the `TicketMasks` RPC sends it.
pub fn ticket_to_wire(t: &StoredTicket) -> Result<pb::TicketMasksResponse, ConvertError> {
    Ok(pb::TicketMasksResponse {
        spec_json: serde_json::to_string(&t.spec).expect("task specs always serialise"),
        level: t.level as u64,
        metrics: Some(pb::LevelMetrics::from(&t.metrics)),
        masks: blob_to_wire(&t.masks_blob)?,
    })
}

/// One stored level, its masks decoded.
pub fn ticket_from_store(t: StoredTicket) -> Result<TicketData, ConvertError> {
    Ok(TicketData {
        masks: masks_from_blob(&t.masks_blob)?,
        spec: t.spec,
        level: t.level,
        metrics: Some(t.metrics),
    })
}

/// One stored level from the `TicketMasks` RPC's answer.
pub fn ticket_from_wire(answer: &pb::TicketMasksResponse) -> Result<TicketData, String> {
    let spec: TaskSpec =
        serde_json::from_str(&answer.spec_json).map_err(|e| format!("bad task spec: {e}"))?;
    let metrics = answer
        .metrics
        .as_ref()
        .map(LevelMetrics::try_from)
        .transpose()
        .map_err(|e| format!("metrics: {e}"))?;
    let masks = masks_from_wire(&answer.masks).map_err(|e| format!("bad mask: {e}"))?;
    Ok(TicketData {
        spec,
        level: usize::try_from(answer.level).unwrap_or(usize::MAX),
        metrics,
        masks,
    })
}

/// A grid point as the `Results` RPC sends it: its settings, fractions and counts.
pub fn point_to_wire(p: &PointStats) -> pb::AggregateRow {
    let (spec, g) = (&p.spec, &p.stats);
    pb::AggregateRow {
        point: p.point.clone(),
        shape: spec.shape.iter().map(|&w| w as u64).collect(),
        extension_level: spec.extension_level.map(|l| l as u64),
        levels: spec.prune.levels as u64,
        rate: spec.prune.rate,
        target: spec.prune.target as u64,
        scope: spec.prune.scope.as_str().to_string(),
        seeds_total: g.tasks_total as u64,
        seeds_done: g.tasks_done as u64,
        frac_split: g.split.frac,
        frac_ever_split: g.ever_split.frac,
        frac_connected: g.connected.frac,
        frac_degraded: g.degraded.frac,
        active_at_split_median: g.active_at_split.map(|s| s.median),
        first_split_level_median: g.first_split_level.map(|s| s.median),
        test_accuracy: g.test_accuracy.clone(),
        weights: spec.weights() as u64,
        engines: g.engines.clone(),
        arithmetics: g.arithmetics.clone(),
        split: g.split.k as u64,
        ever_split: g.ever_split.k as u64,
        connected: g.connected.k as u64,
        degraded: g.degraded.k as u64,
        separated: g.separated.k as u64,
        separated_degraded: g.separated_degraded.k as u64,
        interconnected: g.interconnected.k as u64,
        degraded_unsplit: g.degraded_unsplit.k as u64,
        active_at_split_mean: g.active_at_split.map(|s| s.mean),
        active_at_split_min: g.active_at_split.map(|s| s.min),
        active_at_split_max: g.active_at_split.map(|s| s.max),
        remaining_at_split_median: g.remaining_at_split.map(|s| s.median),
        data_seed: spec.data.seed,
    }
}
