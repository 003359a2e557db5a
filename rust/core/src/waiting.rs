//! Waiting for credentials in slices, so that a caller can stop waiting without stopping the fetch.
//!
//! A Jenkins build that is aborted, or whose `timeout` fires, cannot be interrupted while library
//! code blocks in a native call: Jenkins delivers the interruption on the pipeline's own (CPS VM)
//! thread, at the next step. So the step asks with [`CredentialBroker::credentials_within`]: the
//! answer when it is there within a short wait, else `None`, and the step waits in a pipeline step
//! before it asks again; an abort ends that step, and the step stops asking.
//!
//! The fetch itself runs as a task of the broker's runtime, detached from every caller: other
//! callers of the same request (parallel branches) keep waiting on it, and it ends as every fetch
//! does, with credentials in the cache or an error that leaves no entry, at the latest at the
//! deadline. A caller that asks again joins the fetch still under way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::broker::{CredentialBroker, IssuedCredentials};
use crate::cache::CacheStatus;
use crate::error::BrokerError;
use crate::request::CacheKey;

type Outcome = Option<Result<IssuedCredentials, BrokerError>>;

/// Fetches under way for callers that wait in slices, by request.
#[derive(Default)]
pub(crate) struct PendingFetches {
    fetches: Mutex<HashMap<CacheKey, Pending>>,
}

/// One fetch under way: its answer, and whether a caller has taken it as its cache miss (the
/// others, parallel branches that joined it, report a hit, as they would joining a load).
#[derive(Clone)]
struct Pending {
    outcome: watch::Receiver<Outcome>,
    miss_taken: Arc<AtomicBool>,
}

impl CredentialBroker {
    /// Credentials for `pairs` (as [`credentials`](Self::credentials)) if they are there within
    /// `wait`, else `Ok(None)` while the fetch goes on: ask again to keep waiting. The wait goes
    /// through the broker's injected sleeper.
    pub fn credentials_within(
        &self,
        pairs: &[(String, String)],
        wait: Duration,
    ) -> Result<Option<IssuedCredentials>, BrokerError> {
        let parsed = self.parsed(pairs)?;
        if let Some(hit) = self.cached(&parsed) {
            return Ok(Some(hit));
        }
        let Pending {
            mut outcome,
            miss_taken,
        } = self.pending_fetch(parsed.request.clone(), parsed.key.clone());
        let sleeper = self.inner.options.sleeper.clone();
        let answer = self.runtime.block_on(async move {
            tokio::select! {
                // A fetch that has ended wins over a wait that ends at once (a manual clock's).
                biased;
                ready = outcome.wait_for(Option::is_some) => match ready {
                    Ok(ready) => ready.clone().map(|result| result.map(Some)).unwrap_or(Ok(None)),
                    Err(_) => Err(BrokerError::Internal(
                        "a credentials fetch ended without an answer".into(),
                    )),
                },
                () = sleeper.sleep(wait) => Ok(None),
            }
        })?;
        Ok(answer.map(|mut issued| {
            // The fetch is shared by every request with this cache key, but the region and the
            // account id's visibility are this caller's own (parallel branches deploying to
            // several regions join one fetch).
            issued.region = parsed.request.region.clone();
            issued.hide_account_id = parsed.request.hide_account_id;
            if miss_taken.swap(true, Ordering::Relaxed) {
                issued.cache = CacheStatus::Hit;
                self.count_hit();
            }
            issued
        }))
    }

    /// The fetch under way for `key`, or a new one started for `request`. The task forgets its
    /// entry when it ends; callers holding its receiver still read the answer.
    fn pending_fetch(&self, request: crate::request::CredentialRequest, key: CacheKey) -> Pending {
        let mut fetches = self
            .inner
            .pending
            .fetches
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(pending) = fetches.get(&key) {
            return pending.clone();
        }
        let (sender, outcome) = watch::channel(None);
        let pending = Pending {
            outcome,
            miss_taken: Arc::new(AtomicBool::new(false)),
        };
        fetches.insert(key.clone(), pending.clone());
        let inner = self.inner.clone();
        self.runtime.spawn(async move {
            let result = inner.clone().credentials_slow(request, key.clone()).await;
            let _ = sender.send(Some(result));
            let mut fetches = inner
                .pending
                .fetches
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if fetches
                .get(&key)
                .is_some_and(|p| p.outcome.same_channel(&sender.subscribe()))
            {
                fetches.remove(&key);
            }
        });
        pending
    }

    /// How many fetches callers stopped waiting for are still under way (tests, diagnostics).
    pub fn pending_fetches(&self) -> usize {
        self.inner
            .pending
            .fetches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}
