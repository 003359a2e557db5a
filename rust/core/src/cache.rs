//! An expiring cache with single-flight loads, after smithy-rs' `ExpiringCache`/lazy identity
//! cache: one `OnceCell` per key behind a lock, so concurrent callers for one key await a single
//! load and all get its result — or its error. Failed loads are not kept.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::OnceCell;

use crate::clock::{Clock, Jitter};
use crate::error::BrokerError;

/// Something with a lifetime: credentials, login tokens.
pub trait Expiring {
    fn expires_at(&self) -> SystemTime;
    fn lease_duration(&self) -> Duration;
}

/// When to stop handing out a value: `max(min_margin, lease * lease_fraction)` before expiry,
/// but never more than half the lease (a 10 s login token is still used for 5 s), plus up to
/// `jitter_fraction` of that margin so many caches do not refresh at one instant.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    pub min_margin: Duration,
    pub lease_fraction: f64,
    pub jitter_fraction: f64,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            min_margin: Duration::from_secs(60),
            lease_fraction: 0.10,
            jitter_fraction: 0.25,
        }
    }
}

impl RefreshPolicy {
    /// The instant after which a value is no longer handed out.
    pub fn refresh_at(&self, expires_at: SystemTime, lease: Duration, jitter: f64) -> SystemTime {
        let margin = self
            .min_margin
            .max(lease.mul_f64(self.lease_fraction))
            .min(lease / 2);
        let margin = margin + margin.mul_f64(self.jitter_fraction * jitter.clamp(0.0, 1.0));
        expires_at
            .checked_sub(margin)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// Whether a caller's answer came from the cache (or from another caller's in-flight load).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
        }
    }
}

struct Loaded<V> {
    value: Arc<V>,
    refresh_at: SystemTime,
}

type Slot<V> = Arc<OnceCell<Result<Loaded<V>, BrokerError>>>;

/// Above this many entries an insert first drops stale and failed ones (bounds memory across
/// thousands of builds, each with its own session name).
const SWEEP_ABOVE: usize = 256;

pub struct SingleFlightCache<K, V> {
    slots: RwLock<HashMap<K, Slot<V>>>,
    policy: RefreshPolicy,
}

impl<K: Eq + Hash + Clone, V> SingleFlightCache<K, V>
where
    V: Expiring,
{
    pub fn new(policy: RefreshPolicy) -> Self {
        SingleFlightCache {
            slots: RwLock::new(HashMap::new()),
            policy,
        }
    }

    /// The fast path: a fresh value, without any async machinery.
    pub fn get_fresh(&self, key: &K, now: SystemTime) -> Option<Arc<V>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        match slots.get(key)?.get() {
            Some(Ok(loaded)) if now < loaded.refresh_at => Some(loaded.value.clone()),
            _ => None,
        }
    }

    /// The loaded value even when it is due for refresh (e.g. a login token to renew).
    pub fn get_stale(&self, key: &K) -> Option<Arc<V>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        match slots.get(key)?.get() {
            Some(Ok(loaded)) => Some(loaded.value.clone()),
            _ => None,
        }
    }

    /// A fresh cached value, or the result of one `load` shared by every concurrent caller.
    pub async fn get_or_load<F, Fut>(
        &self,
        key: &K,
        clock: &dyn Clock,
        jitter: &dyn Jitter,
        load: F,
    ) -> Result<(Arc<V>, CacheStatus), BrokerError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, BrokerError>>,
    {
        let slot = self.slot_for(key, clock.now());
        let mut loaded_here = false;
        let outcome = slot
            .get_or_init(|| {
                loaded_here = true;
                async {
                    let value = load().await?;
                    let refresh_at = self.policy.refresh_at(
                        value.expires_at(),
                        value.lease_duration(),
                        jitter.unit(),
                    );
                    Ok(Loaded {
                        value: Arc::new(value),
                        refresh_at,
                    })
                }
            })
            .await;
        match outcome {
            Ok(loaded) => {
                let status = if loaded_here {
                    CacheStatus::Miss
                } else {
                    CacheStatus::Hit
                };
                Ok((loaded.value.clone(), status))
            }
            Err(e) => {
                // Waiters already holding this slot share the error; later callers start afresh.
                self.remove_if_same(key, &slot);
                Err(e.clone())
            }
        }
    }

    /// The slot to wait on: the existing one if in flight or fresh, else a new empty one.
    fn slot_for(&self, key: &K, now: SystemTime) -> Slot<V> {
        let usable = |slot: &Slot<V>| match slot.get() {
            None => true,
            Some(Ok(loaded)) => now < loaded.refresh_at,
            Some(Err(_)) => false,
        };
        if let Some(slot) = self
            .slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            if usable(slot) {
                return slot.clone();
            }
        }
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get(key) {
            if usable(slot) {
                return slot.clone();
            }
        }
        if slots.len() >= SWEEP_ABOVE {
            slots.retain(|_, s| usable(s));
        }
        let slot: Slot<V> = Arc::new(OnceCell::new());
        slots.insert(key.clone(), slot.clone());
        slot
    }

    fn remove_if_same(&self, key: &K, slot: &Slot<V>) {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        if slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(key);
        }
    }

    /// Forgets one key (e.g. a login token Vault no longer accepts).
    pub fn invalidate(&self, key: &K) {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        if slots.get(key).is_some_and(|s| s.initialized()) {
            slots.remove(key);
        }
    }

    /// Forgets every finished entry; loads in flight finish for their waiters.
    pub fn clear(&self) {
        self.slots
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn len(&self) -> usize {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{BoxFuture, FixedJitter, ManualClock, Sleeper};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// What the broker caches; the n-th load's has access key `KEY<n>`.
    type Cred = crate::credentials::Credentials;

    fn id(cred: &Cred) -> &str {
        &cred.access_key_id
    }

    /// A sleeper whose sleeps last until the test opens it: a load stays in flight for exactly
    /// as long as the test needs, and no real time passes.
    #[derive(Clone)]
    struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

    impl Gate {
        fn closed() -> Self {
            Gate(Arc::new(tokio::sync::watch::channel(false).0))
        }

        fn open(&self) {
            self.0.send_replace(true);
        }
    }

    impl Sleeper for Gate {
        fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
            let mut open = self.0.subscribe();
            Box::pin(async move {
                let _ = open.wait_for(|open| *open).await;
            })
        }
    }

    /// An in-process loader that counts its calls (the real world cannot stall a load on cue).
    /// Each load takes a second on the injected sleeper: the manual clock (at once) or a gate.
    struct CountingLoader {
        calls: AtomicUsize,
        clock: ManualClock,
        sleeper: Arc<dyn Sleeper>,
        lease: Duration,
        fails: bool,
    }

    impl CountingLoader {
        fn new(clock: &ManualClock, lease_secs: u64) -> Arc<Self> {
            Self::with_sleeper(clock, lease_secs, Arc::new(clock.clone()), false)
        }

        fn with_sleeper(
            clock: &ManualClock,
            lease_secs: u64,
            sleeper: Arc<dyn Sleeper>,
            fails: bool,
        ) -> Arc<Self> {
            Arc::new(CountingLoader {
                calls: AtomicUsize::new(0),
                clock: clock.clone(),
                sleeper,
                lease: Duration::from_secs(lease_secs),
                fails,
            })
        }

        async fn load(&self) -> Result<Cred, BrokerError> {
            let id = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            self.sleeper.sleep(Duration::from_secs(1)).await;
            if self.fails {
                return Err(BrokerError::Forbidden {
                    path: "aws/sts/x".into(),
                });
            }
            Ok(Cred {
                access_key_id: format!("KEY{id}"),
                secret_access_key: "secret".into(),
                session_token: "token".into(),
                arn: String::new(),
                session_name: "jenkins-test".into(),
                lease_duration: self.lease,
                expires_at: self.clock.now() + self.lease,
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    type Answer = Result<(Arc<Cred>, CacheStatus), BrokerError>;

    fn cache() -> Arc<SingleFlightCache<String, Cred>> {
        Arc::new(SingleFlightCache::new(RefreshPolicy::default()))
    }

    /// One caller's get_or_load of `key`, at the manual clock's time, without jitter.
    async fn fetch(
        cache: &SingleFlightCache<String, Cred>,
        key: &str,
        clock: &ManualClock,
        loader: &CountingLoader,
    ) -> Answer {
        cache
            .get_or_load(&key.to_owned(), clock, &FixedJitter(0.0), || loader.load())
            .await
    }

    /// `callers` concurrent callers of one key on this (current-thread) runtime: each runs up to
    /// its wait while the one load waits at a closed gate; then the gate opens. What each got.
    async fn concurrent_callers(
        callers: usize,
        fails: bool,
    ) -> (
        Vec<Answer>,
        Arc<CountingLoader>,
        Arc<SingleFlightCache<String, Cred>>,
    ) {
        let (clock, cache, gate) = (
            ManualClock::at_epoch_seconds(1_000_000),
            cache(),
            Gate::closed(),
        );
        let loader = CountingLoader::with_sleeper(&clock, 3600, Arc::new(gate.clone()), fails);
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let (cache, loader, clock) = (cache.clone(), loader.clone(), clock.clone());
                tokio::spawn(async move { fetch(&cache, "k", &clock, &loader).await })
            })
            .collect();
        // A current-thread runtime runs every spawned caller before this task goes on.
        tokio::task::yield_now().await;
        assert_eq!(loader.calls(), 1, "callers arriving during a load join it");
        gate.open();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        (answers, loader, cache)
    }

    #[test]
    fn refresh_margin_is_at_least_60s_or_10_percent_plus_jitter() {
        let p = RefreshPolicy::default();
        let exp = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let at = |lease, j| {
            exp.duration_since(p.refresh_at(exp, Duration::from_secs(lease), j))
                .unwrap()
        };
        assert_eq!(at(900, 0.0), Duration::from_secs(90));
        assert_eq!(at(300, 0.0), Duration::from_secs(60));
        assert_eq!(at(3600, 0.0), Duration::from_secs(360));
        assert_eq!(at(3600, 1.0), Duration::from_secs(450));
        // Short leases (login tokens) keep at least half their life.
        assert_eq!(at(10, 0.0), Duration::from_secs(5));
        assert_eq!(at(100, 0.0), Duration::from_secs(50));
    }

    #[tokio::test]
    async fn parallel_branches_share_one_vault_call() {
        let (answers, loader, _) = concurrent_callers(64, false).await;
        let mut misses = 0;
        for answer in answers {
            let (cred, status) = answer.unwrap();
            assert_eq!(id(&cred), "KEY1");
            misses += usize::from(status == CacheStatus::Miss);
        }
        assert_eq!(loader.calls(), 1);
        assert_eq!(misses, 1);
    }

    #[tokio::test]
    async fn waiters_share_a_failure_and_the_failure_is_not_cached() {
        let (answers, loader, cache) = concurrent_callers(16, true).await;
        for answer in answers {
            assert!(matches!(answer.unwrap_err(), BrokerError::Forbidden { .. }));
        }
        assert_eq!(loader.calls(), 1);
        assert!(cache.is_empty(), "a failure is not cached");
        let clock = ManualClock::at_epoch_seconds(1_000_000);
        let loader = CountingLoader::new(&clock, 3600);
        let (cred, status) = fetch(&cache, "k", &clock, &loader).await.unwrap();
        assert_eq!((id(&cred), status), ("KEY1", CacheStatus::Miss));
    }

    #[tokio::test]
    async fn credentials_are_not_handed_out_inside_the_refresh_margin() {
        let clock = ManualClock::at_epoch_seconds(1_000_000);
        let cache = cache();
        let loader = CountingLoader::new(&clock, 900);
        let key = "k".to_string();

        let (c1, s1) = fetch(&cache, &key, &clock, &loader).await.unwrap();
        assert_eq!((id(&c1), s1), ("KEY1", CacheStatus::Miss));
        // The load took its second on the manual clock: it expires 900 s after that.
        clock.advance(Duration::from_secs(809)); // 91 s left: margin is 90 s
        let (c2, s2) = fetch(&cache, &key, &clock, &loader).await.unwrap();
        assert_eq!((id(&c2), s2), ("KEY1", CacheStatus::Hit));
        assert!(cache.get_fresh(&key, clock.now()).is_some());
        clock.advance(Duration::from_secs(1)); // 90 s left: inside the margin
        assert!(cache.get_fresh(&key, clock.now()).is_none());
        let (c3, s3) = fetch(&cache, &key, &clock, &loader).await.unwrap();
        assert_eq!((id(&c3), s3), ("KEY2", CacheStatus::Miss));
        assert_eq!(loader.calls(), 2);
    }

    #[tokio::test]
    async fn distinct_keys_load_separately_and_clear_forgets() {
        let clock = ManualClock::at_epoch_seconds(1_000_000);
        let cache = cache();
        let loader = CountingLoader::new(&clock, 3600);
        for k in ["a", "b", "a"] {
            fetch(&cache, k, &clock, &loader).await.unwrap();
        }
        assert_eq!(loader.calls(), 2);
        cache.clear();
        assert!(cache.get_fresh(&"a".to_string(), clock.now()).is_none());
    }

    #[tokio::test]
    async fn stale_entries_are_swept_when_the_map_grows() {
        let clock = ManualClock::at_epoch_seconds(1_000_000);
        let cache = cache();
        let loader = CountingLoader::new(&clock, 900);
        for i in 0..SWEEP_ABOVE {
            fetch(&cache, &format!("build-{i}"), &clock, &loader)
                .await
                .unwrap();
        }
        assert_eq!(cache.len(), SWEEP_ABOVE);
        clock.advance(Duration::from_secs(3600));
        fetch(&cache, "new", &clock, &loader).await.unwrap();
        assert_eq!(cache.len(), 1);
    }
}
