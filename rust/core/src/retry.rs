//! Exponential backoff with full jitter under an overall deadline.

use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::clock::{Clock, Jitter, Sleeper};
use crate::error::BrokerError;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The first backoff cap; doubles per attempt up to `max_backoff`.
    pub base: Duration,
    pub max_backoff: Duration,
    /// Attempts per call, including the first.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniformly random wait between zero and the exponential cap.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        exp.min(self.max_backoff).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// The time a call may still take; `None` once the deadline has passed.
pub(crate) fn remaining(clock: &dyn Clock, deadline: SystemTime) -> Option<Duration> {
    deadline
        .duration_since(clock.now())
        .ok()
        .filter(|d| !d.is_zero())
}

pub(crate) struct Retrier<'a> {
    pub policy: RetryPolicy,
    pub clock: &'a dyn Clock,
    pub sleeper: &'a dyn Sleeper,
    pub jitter: &'a dyn Jitter,
    pub deadline: SystemTime,
    /// The whole budget, for the error message.
    pub budget: Duration,
}

impl Retrier<'_> {
    /// Runs `attempt` until it succeeds, fails for good, or time or attempts run out.
    /// `on_retry` runs before each re-attempt (the stats counter).
    pub async fn run<T, F, Fut>(
        &self,
        mut attempt: F,
        on_retry: impl Fn(),
    ) -> Result<T, BrokerError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, BrokerError>>,
    {
        let mut n = 0u32;
        loop {
            n += 1;
            let err = match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => e,
            };
            let wait = self.policy.backoff(n, self.jitter.unit());
            let out_of_time = self.clock.now() + wait >= self.deadline;
            if out_of_time || n >= self.policy.max_attempts {
                let seconds = if out_of_time {
                    self.budget.as_secs()
                } else {
                    let left = self
                        .deadline
                        .duration_since(self.clock.now())
                        .unwrap_or_default();
                    self.budget.saturating_sub(left).as_secs_f64().ceil() as u64
                };
                return Err(BrokerError::DeadlineExceeded {
                    seconds,
                    attempts: n,
                    last_cause: err.to_string(),
                });
            }
            tracing::debug!(
                attempt = n,
                wait_ms = wait.as_millis() as u64,
                "retrying: {err}"
            );
            on_retry();
            self.sleeper.sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{FixedJitter, ManualClock};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn unavailable() -> BrokerError {
        BrokerError::VaultUnavailable {
            status: 503,
            path: "aws/sts/x".into(),
            message: "Vault is sealed".into(),
            hint: String::new(),
        }
    }

    fn retrier<'a>(
        clock: &'a ManualClock,
        jitter: &'a FixedJitter,
        budget_secs: u64,
    ) -> Retrier<'a> {
        Retrier {
            policy: RetryPolicy::default(),
            clock,
            sleeper: clock,
            jitter,
            deadline: clock.now() + Duration::from_secs(budget_secs),
            budget: Duration::from_secs(budget_secs),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_is_fully_jittered() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(200));
        assert_eq!(p.backoff(2, 1.0), Duration::from_millis(400));
        assert_eq!(p.backoff(3, 1.0), Duration::from_millis(800));
        assert_eq!(p.backoff(10, 1.0), Duration::from_secs(5));
        assert_eq!(p.backoff(40, 1.0), Duration::from_secs(5));
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(400));
        assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
    }

    #[tokio::test]
    async fn transient_failures_are_retried_without_real_sleeping() {
        let clock = ManualClock::at_epoch_seconds(1000);
        let jitter = FixedJitter(1.0);
        let calls = Cell::new(0);
        let retries = AtomicU32::new(0);
        let out = retrier(&clock, &jitter, 60)
            .run(
                || {
                    calls.set(calls.get() + 1);
                    let n = calls.get();
                    async move {
                        if n <= 2 {
                            Err(unavailable())
                        } else {
                            Ok(n)
                        }
                    }
                },
                || {
                    retries.fetch_add(1, Ordering::SeqCst);
                },
            )
            .await;
        assert_eq!(out.unwrap(), 3);
        assert_eq!(retries.load(Ordering::SeqCst), 2);
        assert_eq!(
            clock.sleeps(),
            vec![Duration::from_millis(200), Duration::from_millis(400)]
        );
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let clock = ManualClock::at_epoch_seconds(1000);
        let jitter = FixedJitter(1.0);
        let calls = Cell::new(0);
        let out: Result<(), _> = retrier(&clock, &jitter, 60)
            .run(
                || {
                    calls.set(calls.get() + 1);
                    async {
                        Err(BrokerError::Forbidden {
                            path: "aws/sts/x".into(),
                        })
                    }
                },
                || {},
            )
            .await;
        assert!(matches!(out, Err(BrokerError::Forbidden { .. })));
        assert_eq!(calls.get(), 1);
        assert!(clock.sleeps().is_empty());
    }

    #[tokio::test]
    async fn the_deadline_ends_in_an_unavailable_error_naming_the_last_cause() {
        let clock = ManualClock::at_epoch_seconds(1000);
        let jitter = FixedJitter(1.0);
        let policy = RetryPolicy {
            max_attempts: 1000,
            ..Default::default()
        };
        let r = Retrier {
            policy,
            ..retrier(&clock, &jitter, 10)
        };
        let out: Result<(), _> = r.run(|| async { Err(unavailable()) }, || {}).await;
        let e = out.unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Unavailable);
        let msg = e.to_string();
        assert!(msg.starts_with("gave up after 10 s"), "{msg}");
        assert!(msg.contains("Vault is sealed"), "{msg}");
        let slept: Duration = clock.sleeps().iter().sum();
        assert!(slept < Duration::from_secs(10), "{slept:?}");
    }

    #[tokio::test]
    async fn running_out_of_attempts_reports_the_time_really_spent() {
        let clock = ManualClock::at_epoch_seconds(1000);
        let jitter = FixedJitter(1.0);
        let r = Retrier {
            policy: RetryPolicy {
                max_attempts: 3,
                ..Default::default()
            },
            ..retrier(&clock, &jitter, 60)
        };
        let out: Result<(), _> = r.run(|| async { Err(unavailable()) }, || {}).await;
        let msg = out.unwrap_err().to_string();
        assert!(
            msg.starts_with("gave up after 1 s and 3 attempt(s)"),
            "{msg}"
        );
    }
}
