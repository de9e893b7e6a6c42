//! A worker's shutdown, one [`CancellationToken`] tree: the run's root token and a child per
//! lease.
//!
//! A connected worker ([`crate::client::run`]) stops in two phases:
//!
//! 1. **Stopping** ([`Shutdown::begin`]: Ctrl-C, SIGTERM, the caller's shutdown future, or a
//!    refusal of the worker's credentials): the root token is cancelled. The pull loop leases
//!    nothing more; every lease's child token is cancelled with it, so training stops at the
//!    next epoch; the levels already finished are still delivered, with a few quick tries only
//!    ([`Shutdown::is_stopping`] bounds the retries), and the open leases are given back.
//! 2. **Giving up**: `run` waits `--shutdown-timeout` for phase 1 to finish, then drops the
//!    work still going on and returns an error (the leases not returned expire on the
//!    coordinator). That phase is a deadline on the run's future, not a token: once it is
//!    reached nothing is left to tell, training having been cancelled in phase 1.
//!
//! A lease can also end alone: [`LeaseToken::cancel`] stops its training (a report that can
//! no longer be delivered), and [`LeaseToken::lose`] does so and records that the
//! coordinator took the lease away (the task is abandoned, not given back).

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::train::Cancel;

/// The run's shutdown: cancelled once, cancelling every lease with it. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    root: CancellationToken,
}

impl Shutdown {
    /// A run that is not stopping.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts stopping: no new leases, training cancelled, quick deliveries (idempotent).
    pub fn begin(&self) {
        self.root.cancel();
    }

    /// True once [`Shutdown::begin`] was called.
    pub fn is_stopping(&self) -> bool {
        self.root.is_cancelled()
    }

    /// Resolves once the shutdown has begun (at once if it already has).
    pub fn stopping(&self) -> WaitForCancellationFuture<'_> {
        self.root.cancelled()
    }

    /// The root token, for waits that a shutdown cuts short.
    pub fn token(&self) -> &CancellationToken {
        &self.root
    }

    /// The token of a new lease: cancelled by the shutdown (even one already begun) or alone.
    pub fn lease(&self) -> LeaseToken {
        LeaseToken {
            training: self.root.child_token(),
            lost: CancellationToken::new(),
        }
    }
}

/// One lease's cancellation: a child of the run's token. Clones share it.
#[derive(Debug, Clone)]
pub struct LeaseToken {
    /// Cancelled to stop this lease's training: by the shutdown, [`LeaseToken::cancel`] or
    /// [`LeaseToken::lose`].
    training: CancellationToken,
    /// Cancelled by [`LeaseToken::lose`] only: the lease no longer belongs to this worker.
    lost: CancellationToken,
}

impl LeaseToken {
    /// Stops this lease's training (between epochs); the run and other leases go on.
    pub fn cancel(&self) {
        self.training.cancel();
    }

    /// The coordinator says the lease is gone (expired, reassigned, unknown): records it and
    /// stops training.
    pub fn lose(&self) {
        self.lost.cancel();
        self.training.cancel();
    }

    /// True once training should stop: the lease was cancelled or lost, or the run is
    /// stopping.
    pub fn is_cancelled(&self) -> bool {
        self.training.is_cancelled()
    }

    /// True once [`LeaseToken::lose`] was called.
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// What training checks between epochs.
    pub fn training(&self) -> &CancellationToken {
        &self.training
    }
}

impl Cancel for CancellationToken {
    fn is_cancelled(&self) -> bool {
        CancellationToken::is_cancelled(self)
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_new_run_is_not_stopping_and_its_leases_train() {
        let shutdown = Shutdown::new();
        let lease = shutdown.lease();
        assert!(!shutdown.is_stopping());
        assert!(!lease.is_cancelled());
        assert!(!lease.is_lost());
        assert!(!Cancel::is_cancelled(lease.training()));
    }

    #[test]
    fn beginning_cancels_every_lease_and_every_clone_sees_it() {
        let shutdown = Shutdown::new();
        let other = shutdown.clone();
        let (a, b) = (shutdown.lease(), shutdown.lease());
        other.begin();
        assert!(shutdown.is_stopping());
        assert!(shutdown.token().is_cancelled());
        assert!(a.is_cancelled() && b.is_cancelled());
        assert!(Cancel::is_cancelled(a.training()));
        // A shutdown does not mean the coordinator took the leases away.
        assert!(!a.is_lost() && !b.is_lost());
        // Idempotent.
        shutdown.begin();
        assert!(shutdown.is_stopping());
    }

    #[test]
    fn a_lease_made_while_stopping_is_cancelled_from_the_start() {
        let shutdown = Shutdown::new();
        shutdown.begin();
        assert!(shutdown.lease().is_cancelled());
    }

    #[test]
    fn cancelling_one_lease_leaves_the_run_and_the_other_leases() {
        let shutdown = Shutdown::new();
        let (a, b) = (shutdown.lease(), shutdown.lease());
        a.cancel();
        assert!(a.is_cancelled());
        assert!(!a.is_lost());
        assert!(!b.is_cancelled());
        assert!(!shutdown.is_stopping());
    }

    #[test]
    fn losing_a_lease_cancels_it_alone_and_is_recorded() {
        let shutdown = Shutdown::new();
        let (a, b) = (shutdown.lease(), shutdown.lease());
        let a_clone = a.clone();
        a.lose();
        assert!(a_clone.is_lost() && a_clone.is_cancelled());
        assert!(!b.is_cancelled() && !b.is_lost());
        assert!(!shutdown.is_stopping());
    }

    #[tokio::test]
    async fn stopping_resolves_when_another_task_begins_the_shutdown() {
        let shutdown = Shutdown::new();
        let waiter = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move { shutdown.stopping().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        shutdown.begin();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the wait ends once the shutdown begins")
            .expect("the waiter does not panic");
    }
}
