//! Synthetic workers for tests, benchmarks and smoke runs: valid levels without training.
//!
//! The levels are [`shared::synthetic`]'s (nested masks, metrics from the graph analysis,
//! made-up training figures), so every report passes the coordinator's validation.

use proto::v1 as pb;
use shared::metrics::LevelMetrics;
use shared::spec::TaskSpec;
pub use shared::synthetic::{synthetic_masks, synthetic_metrics, SYNTHETIC_ENGINE as TEST_ENGINE};
use tonic::Status;

use crate::client::{Client, ClientOptions};

/// A level with only what scheduling reads: its number, the weights it kept and its training
/// seconds (no graph figures, status connected), for simulations that store levels directly.
pub fn timed_level(level: usize, remaining_weights: usize, seconds: f64) -> LevelMetrics {
    LevelMetrics {
        level,
        remaining_weights,
        active_weights: 0,
        zombie_weights: 0,
        inactive_weights: 0,
        active_neurons: 0,
        zombie_neurons: 0,
        inactive_neurons: 0,
        components: 1,
        status: shared::graph::Status::Connected,
        coverage: Vec::new(),
        test_accuracy: Vec::new(),
        test_loss: 0.5,
        train_loss: 0.5,
        epochs: 1,
        seconds,
        engine: TEST_ENGINE,
        arithmetic: shared::cpu::arithmetic().to_string(),
        kept_per_layer: Vec::new(),
    }
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
        metrics: Some(pb::LevelMetrics::from(&metrics)),
        masks: proto::convert::masks_to_wire(&masks),
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
    /// The arithmetic it registered with and reports its levels in.
    pub arithmetic: String,
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
        FakeWorker::register_as(url, name, options, shared::cpu::arithmetic()).await
    }

    /// Registers as a worker of `arithmetic` (a machine of another instruction set).
    pub async fn register_as(
        url: &str,
        name: &str,
        options: &ClientOptions,
        arithmetic: &str,
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
                arithmetic: arithmetic.to_string(),
            })
            .await?
            .into_inner()
            .worker_id;
        Ok(FakeWorker {
            client,
            worker_id,
            arithmetic: arithmetic.to_string(),
        })
    }

    /// Leases a task; `None` when there is nothing to do.
    pub async fn lease(&mut self) -> Result<Option<pb::Lease>, Status> {
        Ok(self
            .client
            .lease_task(pb::LeaseTaskRequest {
                worker_id: self.worker_id,
                request_id: 0,
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

    /// Reports the synthetic `level` (in its arithmetic); `Ok(true)` when newly stored.
    pub async fn report(&mut self, lease: &pb::Lease, level: u32) -> Result<bool, Status> {
        let mut request = synthetic_report(self.worker_id, lease, level)?;
        if let Some(m) = request.metrics.as_mut() {
            m.arithmetic = self.arithmetic.clone();
        }
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
            if spec.prune.stops_after(status) {
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
