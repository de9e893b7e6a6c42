//! Running one lease to its end ([`run_lease`]), in named steps:
//!
//! 1. [`prepare`]: the task's settings and the resume point (the stored mask of the level
//!    before) from the lease; a lease that does not parse fails the task;
//! 2. [`train`]: trains level by level on the shared pool, sending every finished level over
//!    a channel, until done or the lease's token is cancelled (between epochs);
//! 3. [`LeaseRun::heartbeat`]: keeps the lease alive meanwhile; a lost lease cancels it;
//! 4. [`LeaseRun::deliver`]: reports each level as it comes ([`Delivery`] is how far that
//!    got); a refused report fails the task at once;
//! 5. [`ending`] decides from the delivery, the token and how training ended what the
//!    coordinator is told ([`Ending`]), and [`LeaseRun::end`] tells it: complete, fail, give
//!    the lease back, or nothing (abandoned).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};
use tracing::{debug, error, info, warn};

use proto::auth::AuthClient;
use proto::convert::masks_from_wire;
use proto::v1::{HeartbeatRequest, Lease};
use shared::spec::TaskSpec;

use super::cores::Member;
use super::rpc::{complete, fail, give_back, report, status_text, transient, Fatal, ReportError};
use crate::imp::{run_task_on, ImpError, LevelOutcome, Resume};
use crate::shutdown::{LeaseToken, Shutdown};

/// What a lease's task needs from the pull loop.
pub(super) struct TaskContext {
    pub(super) client: AuthClient,
    pub(super) worker_id: u64,
    pub(super) heartbeat: Duration,
    /// The task's hold on the worker's training threads (released when training ends).
    pub(super) cores: Member,
    pub(super) shutdown: Shutdown,
    pub(super) fatal: Fatal,
}

/// How one lease ended, with the levels reported under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TaskEnd {
    Completed {
        levels: usize,
    },
    Failed {
        levels: usize,
    },
    Abandoned {
        levels: usize,
    },
    /// Given back with `ReturnLease` while shutting down.
    Returned {
        levels: usize,
    },
}

/// How far delivering the levels got, once training stopped sending them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Every level trained was reported.
    Reported,
    /// The coordinator said the lease is gone: the later levels were dropped.
    LeaseLost,
    /// A level could not be delivered (shutting down, or the credentials were refused): the
    /// later levels were dropped and the lease is to be given back.
    Undelivered,
}

/// The coordinator refused the report of `level`: the task fails.
#[derive(Debug)]
struct Refused {
    level: usize,
    message: String,
}

/// How training ended, its levels aside.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Trained {
    /// Every level trained (or the trajectory stopped early by its own rule).
    Finished,
    /// Stopped between epochs by the lease's token.
    Cancelled,
    /// The task cannot be trained (invalid settings or resume point, divergence).
    Failed(String),
    /// The training thread panicked.
    Panicked(String),
}

impl From<Result<Result<(), ImpError>, JoinError>> for Trained {
    fn from(result: Result<Result<(), ImpError>, JoinError>) -> Trained {
        match result {
            Ok(Ok(())) => Trained::Finished,
            Ok(Err(ImpError::Cancelled)) => Trained::Cancelled,
            Ok(Err(e)) => Trained::Failed(e.to_string()),
            Err(join) => Trained::Panicked(format!("training panicked: {join}")),
        }
    }
}

/// What the coordinator is told once training has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// Nothing: the lease is gone (or training stopped without a shutdown), and whoever gets
    /// the task next resumes at the first level not stored.
    Abandon,
    /// `ReturnLease`: shutting down, the task is pending again at once.
    GiveBack,
    /// `CompleteTask`: every level was delivered.
    Complete,
    /// `FailTask` with `message` (logged as an error first when training `panicked`).
    Fail { message: String, panicked: bool },
}

/// The ending of a lease whose levels got as far as `delivery`, whose lease was `lost` (by a
/// heartbeat or a report), in a worker `stopping` or not, once training `trained`.
fn ending(delivery: Delivery, lost: bool, stopping: bool, trained: Trained) -> Ending {
    if delivery == Delivery::LeaseLost || lost {
        return Ending::Abandon;
    }
    if delivery == Delivery::Undelivered || (stopping && trained == Trained::Cancelled) {
        return Ending::GiveBack;
    }
    match trained {
        Trained::Finished => Ending::Complete,
        Trained::Cancelled => Ending::Abandon,
        Trained::Failed(message) => Ending::Fail {
            message,
            panicked: false,
        },
        Trained::Panicked(message) => Ending::Fail {
            message,
            panicked: true,
        },
    }
}

/// The task's settings and where to resume from; the message to fail the task with when the
/// lease does not parse.
fn prepare(lease: &Lease) -> Result<(TaskSpec, Resume), String> {
    let spec = serde_json::from_str::<TaskSpec>(&lease.spec_json)
        .map_err(|e| format!("the task's settings do not parse: {e}"))?;
    let previous_masks = if lease.resume_level == 0 {
        None
    } else {
        Some(masks_from_wire(&lease.previous_masks).map_err(|e| format!("stored mask: {e}"))?)
    };
    let resume = Resume {
        level: lease.resume_level as usize,
        previous_masks,
    };
    Ok((spec, resume))
}

/// Trains `spec` from `resume` on a blocking thread, each level in the pool of the task's
/// share of the threads at its start, sending every finished level and recording in
/// `level_now` the level being trained, until done or `token` is cancelled. Training stops too
/// once the levels' receiver is dropped.
fn train(
    cores: Member,
    spec: TaskSpec,
    resume: Resume,
    token: LeaseToken,
    level_now: Arc<AtomicU32>,
) -> (
    JoinHandle<Result<(), ImpError>>,
    mpsc::UnboundedReceiver<LevelOutcome>,
) {
    let (tx, rx) = mpsc::unbounded_channel::<LevelOutcome>();
    let training = tokio::task::spawn_blocking(move || {
        let level_pool = |plan: &crate::engine::layout::Plan| cores.pool(plan);
        run_task_on(&spec, resume, token.training(), &level_pool, |outcome| {
            level_now.store(outcome.metrics.level as u32 + 1, Ordering::Relaxed);
            match tx.send(outcome) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        })
    });
    (training, rx)
}

/// One lease being run: what its steps share.
struct LeaseRun {
    client: AuthClient,
    worker_id: u64,
    lease_id: u64,
    task_id: String,
    shutdown: Shutdown,
    fatal: Fatal,
    /// This lease's training: cancelled by the shutdown or alone.
    token: LeaseToken,
    /// Levels delivered so far.
    reported: usize,
}

/// Runs one leased task to its end: trains, heartbeats, reports every level, completes.
pub(super) async fn run_lease(ctx: TaskContext, lease: Lease) -> TaskEnd {
    let lease_id = lease.lease_id;
    let task_id = lease.task_id.clone();
    info!(task = %task_id, sweep = %lease.sweep, lease = lease_id, resume_level = lease.resume_level, "leased");
    let mut run = LeaseRun {
        client: ctx.client,
        worker_id: ctx.worker_id,
        lease_id,
        task_id,
        token: ctx.shutdown.lease(),
        shutdown: ctx.shutdown,
        fatal: ctx.fatal,
        reported: 0,
    };

    let (spec, resume) = match prepare(&lease) {
        Ok(ok) => ok,
        Err(message) => {
            run.fail(&message).await;
            return TaskEnd::Failed { levels: 0 };
        }
    };
    let level_now = Arc::new(AtomicU32::new(lease.resume_level));
    let (training, mut levels) = train(
        ctx.cores,
        spec,
        resume,
        run.token.clone(),
        level_now.clone(),
    );
    let beat = run.heartbeat(ctx.heartbeat, level_now);

    let delivery = match run.deliver(&mut levels).await {
        Ok(delivery) => delivery,
        Err(Refused { level, message }) => {
            run.token.cancel();
            beat.abort();
            let _ = training.await;
            run.fail(&format!("report of level {level} refused: {message}"))
                .await;
            return TaskEnd::Failed {
                levels: run.reported,
            };
        }
    };
    let trained = Trained::from(training.await);
    let ending = ending(
        delivery,
        run.token.is_lost(),
        run.shutdown.is_stopping(),
        trained,
    );
    run.end(ending, beat).await
}

impl LeaseRun {
    /// Heartbeats every `every` until aborted; an answer that the lease is gone loses the
    /// lease's token (cancelling training).
    fn heartbeat(&self, every: Duration, level_now: Arc<AtomicU32>) -> JoinHandle<()> {
        let mut client = self.client.clone();
        let token = self.token.clone();
        let fatal = self.fatal.clone();
        let task_id = self.task_id.clone();
        let (worker_id, lease_id) = (self.worker_id, self.lease_id);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let request = HeartbeatRequest {
                    worker_id,
                    lease_id,
                    level: level_now.load(Ordering::Relaxed),
                };
                match client.heartbeat(request).await {
                    Ok(_) => {}
                    Err(status) if fatal.check(&status) => return,
                    Err(status) if transient(&status) => {
                        debug!(task = %task_id, error = %status_text(&status), "heartbeat not delivered");
                    }
                    Err(status) => {
                        warn!(task = %task_id, error = %status.message(), "lease lost, abandoning the task");
                        token.lose();
                        return;
                    }
                }
            }
        })
    }

    /// Reports every level `levels` brings until training ends. Once one cannot be delivered
    /// (lease lost, shutting down) training is cancelled and the later levels are dropped; a
    /// refused report returns at once.
    async fn deliver(
        &mut self,
        levels: &mut mpsc::UnboundedReceiver<LevelOutcome>,
    ) -> Result<Delivery, Refused> {
        let task_id = &self.task_id;
        let mut delivery = Delivery::Reported;
        while let Some(outcome) = levels.recv().await {
            if delivery != Delivery::Reported {
                continue;
            }
            let level = outcome.metrics.level;
            match report(
                &mut self.client,
                self.worker_id,
                self.lease_id,
                &outcome,
                &self.shutdown,
            )
            .await
            {
                Ok(()) => {
                    self.reported += 1;
                    debug!(task = %task_id, level, status = ?outcome.metrics.status, "level reported");
                }
                Err(ReportError::LeaseLost(message)) => {
                    warn!(task = %task_id, level, error = %message, "lease lost, abandoning the task");
                    self.token.lose();
                    delivery = Delivery::LeaseLost;
                }
                Err(ReportError::Refused(status)) if self.fatal.check(&status) => {
                    self.token.cancel();
                    delivery = Delivery::Undelivered;
                }
                Err(ReportError::Refused(status)) => {
                    let message = status.message().to_string();
                    error!(task = %task_id, level, error = %message, "report refused");
                    return Err(Refused { level, message });
                }
                Err(ReportError::Stopped) => {
                    warn!(task = %task_id, level, "shutting down before this level could be delivered");
                    self.token.cancel();
                    delivery = Delivery::Undelivered;
                }
            }
        }
        Ok(delivery)
    }

    /// Tells the coordinator how the lease ended; the heartbeats go on until the lease is
    /// given back, and stop before anything else.
    async fn end(mut self, ending: Ending, beat: JoinHandle<()>) -> TaskEnd {
        let levels = self.reported;
        let task_id = self.task_id.clone();
        match ending {
            Ending::Abandon => {
                beat.abort();
                TaskEnd::Abandoned { levels }
            }
            Ending::GiveBack => {
                let returned = give_back(
                    &mut self.client,
                    self.worker_id,
                    self.lease_id,
                    &task_id,
                    &self.fatal,
                )
                .await;
                beat.abort();
                if returned {
                    TaskEnd::Returned { levels }
                } else {
                    TaskEnd::Abandoned { levels }
                }
            }
            Ending::Complete => {
                beat.abort();
                match complete(
                    &mut self.client,
                    self.worker_id,
                    self.lease_id,
                    &self.shutdown,
                    &self.fatal,
                )
                .await
                {
                    Ok(()) => {
                        info!(task = %task_id, levels, "task done");
                        TaskEnd::Completed { levels }
                    }
                    Err(message) => {
                        warn!(task = %task_id, error = %message, "could not complete the task");
                        TaskEnd::Abandoned { levels }
                    }
                }
            }
            Ending::Fail { message, panicked } => {
                beat.abort();
                if panicked {
                    error!(task = %task_id, error = %message);
                }
                self.fail(&message).await;
                TaskEnd::Failed { levels }
            }
        }
    }

    /// Fails the task with `message`.
    async fn fail(&mut self, message: &str) {
        fail(
            &mut self.client,
            self.worker_id,
            self.lease_id,
            message,
            &self.shutdown,
            &self.fatal,
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use shared::schedule::remaining_counts;
    use shared::spec::{DataSpec, PruneSpec, Scope, TrainSpec};

    use super::*;

    const ALL_TRAINED: [Trained; 4] = [
        Trained::Finished,
        Trained::Cancelled,
        Trained::Failed(String::new()),
        Trained::Panicked(String::new()),
    ];

    #[test]
    fn a_lost_lease_is_abandoned_whatever_else_happened() {
        for trained in ALL_TRAINED {
            for stopping in [false, true] {
                for delivery in [
                    Delivery::Reported,
                    Delivery::LeaseLost,
                    Delivery::Undelivered,
                ] {
                    assert_eq!(
                        ending(delivery, true, stopping, trained.clone()),
                        Ending::Abandon,
                        "{delivery:?} {stopping} {trained:?}"
                    );
                }
                // Lost while reporting, even with the token not (yet) marked.
                assert_eq!(
                    ending(Delivery::LeaseLost, false, stopping, trained.clone()),
                    Ending::Abandon
                );
            }
        }
    }

    #[test]
    fn an_undelivered_level_gives_the_lease_back() {
        for trained in ALL_TRAINED {
            for stopping in [false, true] {
                assert_eq!(
                    ending(Delivery::Undelivered, false, stopping, trained.clone()),
                    Ending::GiveBack,
                    "{stopping} {trained:?}"
                );
            }
        }
    }

    #[test]
    fn training_cancelled_by_the_shutdown_gives_the_lease_back() {
        assert_eq!(
            ending(Delivery::Reported, false, true, Trained::Cancelled),
            Ending::GiveBack
        );
        // Cancelled without a shutdown (nothing else cancels a lease that is not lost).
        assert_eq!(
            ending(Delivery::Reported, false, false, Trained::Cancelled),
            Ending::Abandon
        );
    }

    #[test]
    fn a_delivered_task_is_completed_or_failed_even_while_stopping() {
        for stopping in [false, true] {
            assert_eq!(
                ending(Delivery::Reported, false, stopping, Trained::Finished),
                Ending::Complete
            );
            assert_eq!(
                ending(
                    Delivery::Reported,
                    false,
                    stopping,
                    Trained::Failed("diverged".into())
                ),
                Ending::Fail {
                    message: "diverged".into(),
                    panicked: false
                }
            );
            assert_eq!(
                ending(
                    Delivery::Reported,
                    false,
                    stopping,
                    Trained::Panicked("training panicked: boom".into())
                ),
                Ending::Fail {
                    message: "training panicked: boom".into(),
                    panicked: true
                }
            );
        }
    }

    #[tokio::test]
    async fn training_results_are_classified() {
        assert_eq!(Trained::from(Ok(Ok(()))), Trained::Finished);
        assert_eq!(
            Trained::from(Ok(Err(ImpError::Cancelled))),
            Trained::Cancelled
        );
        assert_eq!(
            Trained::from(Ok(Err(ImpError::InvalidTask("no data".into())))),
            Trained::Failed("invalid task: no data".into())
        );
        let join = tokio::spawn(async { panic!("boom") })
            .await
            .expect_err("the task panics");
        match Trained::from(Err(join)) {
            Trained::Panicked(message) => {
                assert!(message.starts_with("training panicked: "), "{message}")
            }
            other => panic!("a panic classified as {other:?}"),
        }
    }

    fn spec() -> TaskSpec {
        let shape = vec![4, 8, 2];
        let weights = shared::schedule::weight_count(&shape);
        TaskSpec {
            data: DataSpec::protocol(),
            shape,
            extension_level: None,
            train: TrainSpec::protocol(),
            prune: PruneSpec {
                scope: Scope::Global,
                method: Default::default(),
                rate: 0.5,
                levels: 2,
                target: weights / 4,
                remaining: remaining_counts(weights, 0.5, 2, weights / 4),
                stop_at_first_degraded: false,
                stop_at_first_split: false,
            },
            seed: 7,
        }
    }

    fn lease(resume_level: u32, previous_masks: Vec<proto::v1::LayerMask>) -> Lease {
        Lease {
            lease_id: 1,
            task_id: "t".into(),
            sweep: "s".into(),
            spec_json: serde_json::to_string(&spec()).unwrap(),
            deadline_unix_ms: 0,
            resume_level,
            previous_masks,
        }
    }

    #[test]
    fn a_fresh_lease_starts_at_level_zero_without_masks() {
        let (spec, resume) = prepare(&lease(0, Vec::new())).expect("the lease parses");
        assert_eq!(spec.id(), super::tests::spec().id());
        assert_eq!(resume.level, 0);
        assert!(resume.previous_masks.is_none());
    }

    #[test]
    fn a_resumed_lease_carries_the_stored_masks() {
        let masks = vec![shared::graph::LayerMask {
            fan_in: 4,
            fan_out: 8,
            kept: vec![0, 3, 17],
        }];
        let wire = proto::convert::masks_to_wire(&masks);
        let (_, resume) = prepare(&lease(2, wire)).expect("the lease parses");
        assert_eq!(resume.level, 2);
        let previous = resume.previous_masks.expect("the stored masks");
        assert_eq!(previous.len(), 1);
        assert_eq!(previous[0].kept, vec![0, 3, 17]);
    }

    #[test]
    fn a_lease_that_does_not_parse_says_why() {
        let mut bad = lease(0, Vec::new());
        bad.spec_json = "{".into();
        let message = prepare(&bad).expect_err("bad settings");
        assert!(
            message.starts_with("the task's settings do not parse: "),
            "{message}"
        );

        let broken = proto::v1::LayerMask {
            fan_in: 4,
            fan_out: 8,
            encoding: None,
        };
        let message = prepare(&lease(1, vec![broken])).expect_err("bad mask");
        assert!(message.starts_with("stored mask: "), "{message}");
    }
}
