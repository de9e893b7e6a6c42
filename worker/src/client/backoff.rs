//! Waiting between tries: [`Backoff`] (exponential, capped, with a per-process jitter) and
//! [`sleep_or_stop`], a sleep that a shutdown cuts short.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The longest delay before the jitter.
const CAP: Duration = Duration::from_secs(10);

/// The longest pause a try waits for once the worker is stopping.
const STOPPING_PAUSE: Duration = Duration::from_millis(500);

/// Exponential backoff from 400 ms (the first delay) doubling to 10 s, plus a jitter under
/// 200 ms from the process id and attempt, so that workers restarted together spread out.
#[derive(Debug)]
pub(super) struct Backoff {
    attempts: u32,
}

impl Backoff {
    pub(super) fn new() -> Self {
        Backoff { attempts: 0 }
    }

    /// Starts again from the shortest delay (after a success).
    pub(super) fn reset(&mut self) {
        self.attempts = 0;
    }

    /// Delays taken so far.
    pub(super) fn attempts(&self) -> u32 {
        self.attempts
    }

    pub(super) fn next_delay(&mut self) -> Duration {
        self.attempts += 1;
        delay(self.attempts, std::process::id())
    }

    /// Sleeps the next delay before another try, cut short when `stop` is cancelled, and at
    /// most half a second a try once it is: a shutdown gets a few quick tries.
    pub(super) async fn pause(&mut self, stop: &CancellationToken) {
        let delay = self.next_delay();
        if stop.is_cancelled() {
            tokio::time::sleep(delay.min(STOPPING_PAUSE)).await;
        } else {
            sleep_or_stop(delay, stop).await;
        }
    }

    /// Sleeps the next delay; true if `stop` was cancelled before or meanwhile.
    pub(super) async fn wait(&mut self, stop: &CancellationToken) -> bool {
        let delay = self.next_delay();
        sleep_or_stop(delay, stop).await
    }
}

/// The delay of try `attempt` (from 1) of process `pid`: 200 ms doubled `attempt` times (at
/// most 6), capped at 10 s, plus the jitter.
fn delay(attempt: u32, pid: u32) -> Duration {
    let base = 200u64.saturating_mul(1 << attempt.min(6));
    Duration::from_millis(base.min(CAP.as_millis() as u64) + jitter_ms(attempt, pid))
}

/// Under 200 ms, fixed for a process and attempt.
fn jitter_ms(attempt: u32, pid: u32) -> u64 {
    (u64::from(pid) * 7919 + u64::from(attempt) * 104_729) % 200
}

/// Sleeps `delay`; true if `stop` was cancelled before or meanwhile.
pub(super) async fn sleep_or_stop(delay: Duration, stop: &CancellationToken) -> bool {
    if stop.is_cancelled() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = stop.cancelled() => return true,
    }
    stop.is_cancelled()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// Bounds a test's wait, so that a sleep that is not cut short fails instead of hanging.
    const GUARD: Duration = Duration::from_secs(10);

    #[test]
    fn delays_double_from_400_ms_to_the_10_s_cap() {
        let expected_ms = [400, 800, 1_600, 3_200, 6_400, 10_000, 10_000, 10_000];
        for pid in [1, 4_242, u32::MAX] {
            for (i, want) in expected_ms.iter().enumerate() {
                let attempt = i as u32 + 1;
                let got = delay(attempt, pid).as_millis() as u64;
                assert!(
                    (*want..want + 200).contains(&got),
                    "attempt {attempt} of pid {pid}: {got} ms, want {want} ms plus under 200"
                );
            }
            // Far past the cap the shift saturates at 6 and the delay stays capped.
            assert!(delay(1_000, pid) < CAP + Duration::from_millis(200));
        }
    }

    #[test]
    fn the_jitter_depends_on_the_process() {
        let jitters: Vec<u64> = (1..=4).map(|pid| jitter_ms(1, pid)).collect();
        assert!(jitters.iter().all(|&j| j < 200));
        assert!(jitters.windows(2).any(|w| w[0] != w[1]), "{jitters:?}");
    }

    #[test]
    fn the_backoff_counts_attempts_and_reset_starts_over() {
        let mut backoff = Backoff::new();
        let first = backoff.next_delay();
        let second = backoff.next_delay();
        let third = backoff.next_delay();
        assert_eq!(backoff.attempts(), 3);
        assert!(
            first < second && second < third,
            "{first:?} {second:?} {third:?}"
        );
        assert_eq!(first, delay(1, std::process::id()));
        backoff.reset();
        assert_eq!(backoff.attempts(), 0);
        assert_eq!(backoff.next_delay(), first);
    }

    #[tokio::test]
    async fn the_sleep_ends_early_when_cancelled_meanwhile() {
        let stop = CancellationToken::new();
        {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                stop.cancel();
            });
        }
        let started = Instant::now();
        let stopped = tokio::time::timeout(GUARD, sleep_or_stop(Duration::from_secs(3_600), &stop))
            .await
            .expect("the sleep is cut short");
        assert!(stopped);
        assert!(started.elapsed() < GUARD);
    }

    #[tokio::test]
    async fn the_sleep_returns_at_once_when_already_cancelled() {
        let stop = CancellationToken::new();
        stop.cancel();
        let stopped = tokio::time::timeout(GUARD, sleep_or_stop(Duration::from_secs(3_600), &stop))
            .await
            .expect("no sleep at all");
        assert!(stopped);
    }

    #[tokio::test]
    async fn the_sleep_runs_its_course_when_not_cancelled() {
        let stop = CancellationToken::new();
        let started = Instant::now();
        assert!(!sleep_or_stop(Duration::from_millis(30), &stop).await);
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert!(!stop.is_cancelled());
    }

    #[tokio::test]
    async fn wait_reports_a_cancel_and_pause_is_cut_short_by_one() {
        let stop = CancellationToken::new();
        stop.cancel();
        let mut backoff = Backoff::new();
        assert!(tokio::time::timeout(GUARD, backoff.wait(&stop))
            .await
            .unwrap());
        assert_eq!(backoff.attempts(), 1);

        // Not stopping at first: the 400 ms pause ends when the stop comes.
        let stop = CancellationToken::new();
        {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                stop.cancel();
            });
        }
        let mut backoff = Backoff::new();
        let started = Instant::now();
        backoff.pause(&stop).await;
        assert!(started.elapsed() < Duration::from_millis(400));
    }

    #[tokio::test]
    async fn while_stopping_a_pause_is_at_most_half_a_second() {
        let stop = CancellationToken::new();
        stop.cancel();
        let mut backoff = Backoff::new();
        // Attempt 6 would wait 10 s; stopping caps it at 500 ms (and does not skip it).
        for _ in 0..5 {
            backoff.next_delay();
        }
        let started = Instant::now();
        backoff.pause(&stop).await;
        let took = started.elapsed();
        assert!(took >= STOPPING_PAUSE, "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}
