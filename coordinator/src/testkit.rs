//! Synthetic workers for tests, benchmarks and smoke runs: valid levels without training.
//!
//! Masks are deterministic and nested: level `l` keeps the first `prune.remaining[l]` weights
//! of a fixed pseudo-random order of all weights, so every level prunes a subset of the one
//! before. Metrics come from `shared::graph::analyze` of those masks, with made-up training
//! figures, so every report passes the coordinator's validation.

use proto::v1 as pb;
use shared::graph::{self, LayerMask};
use shared::metrics::{LevelMetrics, TrainingFigures};
use shared::spec::TaskSpec;
use tonic::Status;

use crate::client::{Client, ClientOptions};

use crate::convert;

/// The masks of `level` of `spec`'s synthetic trajectory.
pub fn synthetic_masks(spec: &TaskSpec, level: usize) -> Vec<LayerMask> {
    let keep = spec.prune.remaining.get(level).copied().unwrap_or(0);
    let layers: Vec<(usize, usize)> = spec.shape.windows(2).map(|w| (w[0], w[1])).collect();
    let mut order: Vec<(u64, usize, u32)> = Vec::with_capacity(spec.weights());
    for (layer, &(fan_in, fan_out)) in layers.iter().enumerate() {
        for index in 0..(fan_in * fan_out) as u32 {
            let key = splitmix(spec.seed ^ ((layer as u64) << 40) ^ u64::from(index));
            order.push((key, layer, index));
        }
    }
    order.sort_unstable();
    let mut kept: Vec<Vec<u32>> = vec![Vec::new(); layers.len()];
    for &(_, layer, index) in order.iter().take(keep) {
        kept[layer].push(index);
    }
    layers
        .iter()
        .zip(kept)
        .map(|(&(fan_in, fan_out), mut kept)| {
            kept.sort_unstable();
            LayerMask {
                fan_in,
                fan_out,
                kept,
            }
        })
        .collect()
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The engine version synthetic workers register with and report.
pub const TEST_ENGINE: u32 = 2;

/// The metrics of `masks` at `level`, with fixed training figures.
pub fn synthetic_metrics(spec: &TaskSpec, level: usize, masks: &[LayerMask]) -> LevelMetrics {
    let report = graph::analyze(masks, &spec.task_io());
    LevelMetrics::new(
        level,
        &report,
        TrainingFigures {
            test_accuracy: vec![0.9; spec.data.problems.len()],
            test_loss: 0.3,
            train_loss: 0.2,
            epochs: 10 + level,
            seconds: 0.01,
            engine: TEST_ENGINE,
        },
    )
}

/// A valid report of `level` of the task of `lease`.
pub fn synthetic_report(
    worker_id: u64,
    lease: &pb::Lease,
    level: u32,
) -> Result<pb::ReportLevelRequest, Status> {
    let spec = lease_spec(lease)?;
    let masks = synthetic_masks(&spec, level as usize);
    let metrics = synthetic_metrics(&spec, level as usize, &masks);
    Ok(pb::ReportLevelRequest {
        worker_id,
        lease_id: lease.lease_id,
        level,
        metrics: Some(convert::metrics_to_proto(&metrics)),
        masks: masks.iter().map(convert::mask_to_proto).collect(),
    })
}

/// The task spec a lease carries.
pub fn lease_spec(lease: &pb::Lease) -> Result<TaskSpec, Status> {
    serde_json::from_str(&lease.spec_json)
        .map_err(|e| Status::invalid_argument(format!("lease carries a bad spec: {e}")))
}

/// A fake worker speaking the API with synthetic levels.
#[derive(Debug, Clone)]
pub struct FakeWorker {
    pub client: Client,
    pub worker_id: u64,
}

impl FakeWorker {
    /// Connects and registers (parallel 1).
    pub async fn register(url: &str, name: &str) -> Result<FakeWorker, Status> {
        FakeWorker::register_with(url, name, &ClientOptions::none()).await
    }

    /// Connects with a token and/or TLS and registers (parallel 1).
    pub async fn register_with(
        url: &str,
        name: &str,
        options: &ClientOptions,
    ) -> Result<FakeWorker, Status> {
        let mut client = crate::client::connect_with(url, options)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let worker_id = client
            .register_worker(pb::RegisterWorkerRequest {
                name: name.to_string(),
                hostname: "localhost".to_string(),
                api_version: proto::API_VERSION,
                parallel: 1,
                engine: TEST_ENGINE,
            })
            .await?
            .into_inner()
            .worker_id;
        Ok(FakeWorker { client, worker_id })
    }

    /// Leases a task; `None` when there is nothing to do.
    pub async fn lease(&mut self) -> Result<Option<pb::Lease>, Status> {
        Ok(self
            .client
            .lease_task(pb::LeaseTaskRequest {
                worker_id: self.worker_id,
            })
            .await?
            .into_inner()
            .lease)
    }

    pub async fn heartbeat(&mut self, lease: &pb::Lease, level: u32) -> Result<i64, Status> {
        Ok(self
            .client
            .heartbeat(pb::HeartbeatRequest {
                worker_id: self.worker_id,
                lease_id: lease.lease_id,
                level,
            })
            .await?
            .into_inner()
            .deadline_unix_ms)
    }

    /// Reports the synthetic `level`; `Ok(true)` when newly stored.
    pub async fn report(&mut self, lease: &pb::Lease, level: u32) -> Result<bool, Status> {
        let request = synthetic_report(self.worker_id, lease, level)?;
        Ok(self.client.report_level(request).await?.into_inner().stored)
    }

    pub async fn complete(&mut self, lease: &pb::Lease) -> Result<(), Status> {
        self.client
            .complete_task(pb::CompleteTaskRequest {
                worker_id: self.worker_id,
                lease_id: lease.lease_id,
            })
            .await?;
        Ok(())
    }

    pub async fn fail(&mut self, lease: &pb::Lease, error: &str) -> Result<bool, Status> {
        Ok(self
            .client
            .fail_task(pb::FailTaskRequest {
                worker_id: self.worker_id,
                lease_id: lease.lease_id,
                error: error.to_string(),
            })
            .await?
            .into_inner()
            .task_failed)
    }

    /// Gives a lease back (as a worker shutting down does).
    pub async fn return_lease(
        &mut self,
        lease: &pb::Lease,
    ) -> Result<pb::ReturnLeaseResponse, Status> {
        Ok(self
            .client
            .return_lease(pb::ReturnLeaseRequest {
                worker_id: self.worker_id,
                lease_id: lease.lease_id,
            })
            .await?
            .into_inner())
    }

    /// Runs a lease to the end: heartbeat and report every level from `resume_level` (stopping
    /// early where the spec asks), then complete. Returns the levels reported.
    pub async fn finish(&mut self, lease: &pb::Lease) -> Result<u32, Status> {
        let spec = lease_spec(lease)?;
        let mut reported = 0;
        for level in lease.resume_level..=spec.prune.levels as u32 {
            self.heartbeat(lease, level).await?;
            self.report(lease, level).await?;
            reported += 1;
            let status = synthetic_metrics(
                &spec,
                level as usize,
                &synthetic_masks(&spec, level as usize),
            )
            .status;
            if crate::store::leases::stops_after(&spec, status) {
                break;
            }
        }
        self.complete(lease).await?;
        Ok(reported)
    }

    /// Leases and finishes tasks until none is left; returns the tasks finished.
    pub async fn drain(&mut self) -> Result<usize, Status> {
        let mut done = 0;
        while let Some(lease) = self.lease().await? {
            self.finish(&lease).await?;
            done += 1;
        }
        Ok(done)
    }
}
