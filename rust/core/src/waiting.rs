//! Waiting for a Vault call in slices, so that a caller can stop waiting without stopping the call.
//!
//! A Jenkins build that is aborted, or whose `timeout` fires, cannot be interrupted while library
//! code blocks in a native call: Jenkins delivers the interruption on the pipeline's own (CPS VM)
//! thread, at the next step. So the step asks for credentials (the broker's
//! `credentials_within`) and for a `refresh: true` block's child token
//! (`create_child_token_within`) with a short wait: the answer when it is there, else "not yet", and the step waits in a
//! pipeline step before it asks again; an abort ends that step, and the step stops asking.
//!
//! Each call runs as a task of the broker's runtime, detached from every caller, and ends as
//! every Vault call does, at the latest at the deadline. A credentials fetch is shared by its
//! callers (parallel branches) and forgotten here when it ends (its answer is in the cache); a
//! child token has one owner and waits here until taken, or is revoked when its owner gives up.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::clock::Sleeper;
use crate::error::BrokerError;

type Outcome<T> = Option<Result<T, BrokerError>>;

/// When a finished call leaves [`PendingCalls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forget {
    /// As soon as it ends: later callers find the answer elsewhere (the credential cache).
    WhenDone,
    /// Only when its owner takes (or abandons) it.
    WhenTaken,
}

/// Calls under way for callers that wait in slices, by key.
pub(crate) struct PendingCalls<K, T> {
    calls: Arc<Mutex<HashMap<K, Pending<T>>>>,
}

impl<K, T> Default for PendingCalls<K, T> {
    fn default() -> Self {
        PendingCalls {
            calls: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// One call under way: its answer, when it started, and whether a caller has taken the answer
/// first (the others, parallel branches that joined a fetch, report a cache hit).
#[derive(Clone)]
pub(crate) struct Pending<T> {
    outcome: watch::Receiver<Outcome<T>>,
    first_taken: Arc<AtomicBool>,
    pub(crate) started: SystemTime,
}

impl<K, T> PendingCalls<K, T>
where
    K: Eq + Hash + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
{
    /// The call under way for `key`, or `start()` spawned on `runtime` as a new one.
    pub(crate) fn join_or_start<F, Fut>(
        &self,
        key: K,
        now: SystemTime,
        runtime: &Handle,
        forget: Forget,
        start: F,
    ) -> Pending<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, BrokerError>> + Send + 'static,
    {
        let mut calls = self.lock();
        if let Some(pending) = calls.get(&key) {
            return pending.clone();
        }
        let (sender, outcome) = watch::channel(None);
        let pending = Pending {
            outcome,
            first_taken: Arc::new(AtomicBool::new(false)),
            started: now,
        };
        calls.insert(key.clone(), pending.clone());
        let call = start();
        let calls = self.calls.clone();
        runtime.spawn(async move {
            let result = call.await;
            let _ = sender.send(Some(result));
            if forget == Forget::WhenDone {
                let mut calls = calls.lock().unwrap_or_else(|p| p.into_inner());
                // Only this call's entry: a new call for the key may have started since.
                if calls
                    .get(&key)
                    .is_some_and(|p| p.outcome.same_channel(&sender.subscribe()))
                {
                    calls.remove(&key);
                }
            }
        });
        pending
    }

    /// The call under way for `key`, if any.
    pub(crate) fn get(&self, key: &K) -> Option<Pending<T>> {
        self.lock().get(key).cloned()
    }

    /// Forgets the call for `key`; whoever holds it still reads its answer.
    pub(crate) fn remove(&self, key: &K) -> Option<Pending<T>> {
        self.lock().remove(key)
    }

    /// Forgets the calls that `stale` picks, and returns them.
    pub(crate) fn remove_where(&self, stale: impl Fn(&K, &Pending<T>) -> bool) -> Vec<Pending<T>> {
        let mut calls = self.lock();
        let keys: Vec<K> = calls
            .iter()
            .filter(|(k, p)| stale(k, p))
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter().filter_map(|k| calls.remove(k)).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Pending<T>>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T: Clone> Pending<T> {
    /// The answer if it is there within `wait` (on the injected sleeper), else `Ok(None)`.
    pub(crate) async fn within(
        &mut self,
        sleeper: &dyn Sleeper,
        wait: Duration,
    ) -> Result<Option<T>, BrokerError> {
        tokio::select! {
            // A call that has ended wins, and starts no wait at all (a manual clock's sleep
            // moves the clock when it starts).
            biased;
            answer = self.answer() => answer.map(Some),
            () = async { sleeper.sleep(wait).await } => Ok(None),
        }
    }

    /// The answer, however long it takes (the call ends at its deadline).
    pub(crate) async fn answer(&mut self) -> Result<T, BrokerError> {
        match self.outcome.wait_for(Option::is_some).await {
            Ok(ready) => ready
                .clone()
                .unwrap_or_else(|| Err(BrokerError::Internal("a Vault call ended twice".into()))),
            Err(_) => Err(BrokerError::Internal(
                "a Vault call ended without an answer".into(),
            )),
        }
    }

    /// Whether the call has an answer yet.
    pub(crate) fn is_done(&self) -> bool {
        self.outcome.borrow().is_some()
    }

    /// True for the first caller that asks: the one whose answer is the call's own.
    pub(crate) fn first_to_take(&self) -> bool {
        !self.first_taken.swap(true, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_slow_call_answers_later_callers_and_is_forgotten_when_done() {
        let rt = runtime();
        let clock = ManualClock::at_epoch_seconds(1000);
        let calls: PendingCalls<&str, u32> = PendingCalls::default();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let mut first = calls.join_or_start(
            "k",
            clock.now(),
            rt.handle(),
            Forget::WhenDone,
            || async move {
                let _ = wait.await;
                Ok(7)
            },
        );
        // The manual clock's sleep ends at once: "not yet", without any real wait.
        assert_eq!(
            rt.block_on(first.within(&clock, Duration::from_secs(1))),
            Ok(None)
        );
        let mut joined =
            calls.join_or_start("k", clock.now(), rt.handle(), Forget::WhenDone, || async {
                unreachable!("a second call for the same key")
            });
        go.send(()).unwrap();
        assert_eq!(rt.block_on(joined.answer()), Ok(7));
        assert_eq!(
            rt.block_on(first.within(&clock, Duration::ZERO)),
            Ok(Some(7))
        );
        assert!(first.first_to_take());
        assert!(!joined.first_to_take());
        // The task forgets its entry right after it answers.
        for _ in 0..2000 {
            if calls.len() == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(calls.len(), 0);
    }

    #[test]
    fn an_owned_call_waits_to_be_taken() {
        let rt = runtime();
        let clock = ManualClock::at_epoch_seconds(1000);
        let calls: PendingCalls<&str, u32> = PendingCalls::default();
        let mut p =
            calls.join_or_start("t", clock.now(), rt.handle(), Forget::WhenTaken, || async {
                Ok(1)
            });
        assert_eq!(rt.block_on(p.answer()), Ok(1));
        assert!(p.is_done());
        assert!(calls.get(&"t").is_some());
        assert_eq!(calls.remove_where(|_, p| p.is_done()).len(), 1);
        assert!(calls.get(&"t").is_none());
    }
}
