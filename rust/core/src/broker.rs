//! The blocking facade the JNI layer (and a CLI) call: parse, cache, single-flight, fetch.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::cache::{CacheStatus, Expiring, RefreshPolicy, SingleFlightCache};
use crate::clock::{
    epoch_seconds, rfc3339_utc, Clock, Jitter, Sleeper, SplitMixJitter, SystemClock, TokioSleeper,
};
use crate::config::ConfigCache;
use crate::error::{truncate, BrokerError};
use crate::request::{
    parse_request_with, process_env, CacheKey, CredentialRequest, EnvLookup, Governance,
    RequestPairs, VaultAuth, VaultEndpoint, REQUEST_KEYS,
};
use crate::retry::{remaining, Retrier, RetryPolicy};
use crate::secret::SecretString;
use crate::ttl::{MAX_TTL_SECONDS, MIN_TTL_SECONDS};
use crate::vault::{
    is_tls_trust_failure, login_jwt, CallError, LoginAnswer, StsAnswer, VaultConnection,
};

pub const DEADLINE_ENV: &str = "WITHAWSROLE_DEADLINE_SECONDS";
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_CONCURRENT_VAULT_CALLS: usize = 8;

/// Temporary AWS credentials as Vault issued them (shared by every cache hit).
#[derive(Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: SecretString,
    pub arn: String,
    pub session_name: String,
    pub lease_duration: Duration,
    pub expires_at: SystemTime,
}

impl Expiring for Credentials {
    fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
    fn lease_duration(&self) -> Duration {
        self.lease_duration
    }
}

/// One answer to one request.
#[derive(Debug, Clone)]
pub struct IssuedCredentials {
    pub credentials: Arc<Credentials>,
    pub cache: CacheStatus,
    pub region: Option<String>,
    /// The log must not show the account id (the step masks it in the block's output too).
    pub hide_account_id: bool,
}

/// The 12-digit account id in an ARN (`arn:aws:sts::123456789012:assumed-role/...`).
pub fn account_id_of(arn: &str) -> Option<&str> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

impl IssuedCredentials {
    /// The result keys of the JNI contract, secrets borrowed rather than copied.
    pub fn pairs(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        let c = &*self.credentials;
        let mut out = vec![
            ("access_key_id", Cow::Borrowed(c.access_key_id.as_str())),
            (
                "secret_access_key",
                Cow::Borrowed(c.secret_access_key.expose()),
            ),
            ("session_token", Cow::Borrowed(c.session_token.expose())),
            ("expiration", Cow::Owned(rfc3339_utc(c.expires_at))),
            (
                "expires_at_epoch_seconds",
                Cow::Owned(epoch_seconds(c.expires_at).to_string()),
            ),
            ("arn", Cow::Borrowed(c.arn.as_str())),
            ("session_name", Cow::Borrowed(c.session_name.as_str())),
            (
                "lease_duration_seconds",
                Cow::Owned(c.lease_duration.as_secs().to_string()),
            ),
            ("cache", Cow::Borrowed(self.cache.as_str())),
            (
                "account_id_hidden",
                Cow::Borrowed(if self.hide_account_id {
                    "true"
                } else {
                    "false"
                }),
            ),
        ];
        if let Some(r) = &self.region {
            out.push(("region", Cow::Borrowed(r.as_str())));
        }
        if let Some(account) = account_id_of(&c.arn) {
            out.push(("account_id", Cow::Borrowed(account)));
        }
        out
    }
}

/// Counters since the broker started (or since the last reset in tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP calls to `<mount>/sts/<role>`, including retries.
    pub vault_calls: u64,
    pub vault_logins: u64,
    /// Answers from the cache, including callers that joined another caller's load.
    pub cache_hits: u64,
    /// Loads run (one per single-flight group), whether they succeeded or not.
    pub cache_misses: u64,
    pub retries: u64,
}

impl Stats {
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("vault_calls", self.vault_calls.to_string()),
            ("vault_logins", self.vault_logins.to_string()),
            ("cache_hits", self.cache_hits.to_string()),
            ("cache_misses", self.cache_misses.to_string()),
            ("retries", self.retries.to_string()),
        ]
    }
}

#[derive(Default)]
struct Counters {
    vault_calls: AtomicU64,
    vault_logins: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    retries: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Everything injectable about a broker.
#[derive(Clone)]
pub struct BrokerOptions {
    /// The controller's settings (read once, when the broker is built; see
    /// [`CredentialBroker::apply_overrides`] for system properties).
    pub env: Arc<EnvLookup>,
    /// Whether the purposes config is an authorization boundary (the JNI library) or not (CLI).
    pub governance: Governance,
    pub clock: Arc<dyn Clock>,
    pub sleeper: Arc<dyn Sleeper>,
    pub jitter: Arc<dyn Jitter>,
    /// Overall time for one fetch, retries included.
    pub deadline: Duration,
    pub max_concurrent_vault_calls: usize,
    pub refresh: RefreshPolicy,
    pub retry: RetryPolicy,
    pub worker_threads: usize,
}

impl BrokerOptions {
    /// Real clock, real sleep, and `env` for fallbacks; the deadline from
    /// `WITHAWSROLE_DEADLINE_SECONDS` (read once, here).
    pub fn with_env(env: Arc<EnvLookup>) -> Result<Self, BrokerError> {
        let deadline = parse_deadline(env(DEADLINE_ENV))?.unwrap_or(DEFAULT_DEADLINE);
        Ok(BrokerOptions {
            env,
            governance: Governance::Ungoverned,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
            jitter: Arc::new(SplitMixJitter::from_entropy()),
            deadline,
            max_concurrent_vault_calls: DEFAULT_MAX_CONCURRENT_VAULT_CALLS,
            refresh: RefreshPolicy::default(),
            retry: RetryPolicy::default(),
            worker_threads: 2,
        })
    }

    /// As [`with_env`](Self::with_env) with the process environment.
    pub fn from_process_env() -> Result<Self, BrokerError> {
        Self::with_env(Arc::new(process_env))
    }
}

/// `WITHAWSROLE_DEADLINE_SECONDS`: 1..=3600 whole seconds.
fn parse_deadline(value: Option<String>) -> Result<Option<Duration>, BrokerError> {
    let Some(s) = value.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    match s.trim().parse::<u64>() {
        Ok(n) if (1..=3600).contains(&n) => Ok(Some(Duration::from_secs(n))),
        _ => Err(BrokerError::invalid(
            "WITHAWSROLE_DEADLINE_SECONDS",
            &s,
            "use a whole number of seconds from 1 to 3600 (default 60)",
        )),
    }
}

/// Every variable of the controller's settings, in the order docs/security.md lists them: those
/// behind request keys, the child-token role and the deadline. The bridge reads a system property
/// `withawsrole.<VARIABLE>` for each and passes those set (see `apply_overrides`).
pub fn setting_variables() -> Vec<&'static str> {
    REQUEST_KEYS
        .iter()
        .filter_map(|(_, var)| *var)
        .chain([crate::child_token::TOKEN_ROLE_ENV, DEADLINE_ENV])
        .collect()
}

/// Each setting variable with the Java system property that overrides it on a controller:
/// `-Dwithawsrole.VAULT_ADDR=...` (the bridge reads them; a pipeline cannot set either).
pub fn setting_properties() -> Vec<(&'static str, String)> {
    setting_variables()
        .into_iter()
        .map(|var| (var, format!("withawsrole.{var}")))
        .collect()
}

/// The controller's settings as this broker uses them: the process environment, overlaid by
/// the system properties the bridge passed. Read once per change, never on a cache hit.
struct Settings {
    values: HashMap<&'static str, String>,
    deadline: Duration,
    /// The overrides this snapshot was made with, to tell a change from a repeat.
    overrides: Vec<(String, String)>,
    /// The library's purposes config (name, text), given once by the bridge: a request without
    /// `config_text` is parsed with it, so cache hits do not carry the text across JNI.
    library_config: Option<Arc<(String, String)>>,
}

/// The setting variables the process environment (`env`) has.
fn environment_values(env: &EnvLookup) -> HashMap<&'static str, String> {
    setting_variables()
        .into_iter()
        .filter_map(|var| env(var).map(|value| (var, value)))
        .collect()
}

/// A Vault login token with its lifetime.
struct LoginToken {
    token: SecretString,
    expires_at: SystemTime,
    lease: Duration,
    /// Vault said `auth/token/renew-self` may extend it.
    renewable: bool,
    /// The lease of the login that made it (renewals keep it), to spot Vault's max TTL.
    full_lease: Duration,
}

impl Expiring for LoginToken {
    fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
    fn lease_duration(&self) -> Duration {
        self.lease
    }
}

pub(crate) struct Inner {
    pub(crate) options: BrokerOptions,
    /// The controller's settings, read once per change: a JVM's environment never changes, and
    /// reading it on every cache hit would cost more than the hit itself.
    settings: RwLock<Arc<Settings>>,
    /// Parsed purposes configs (config_text / config_file), so a cache hit parses no TOML.
    configs: ConfigCache,
    /// Requests as parsed, by their exact pairs: Jenkins sends the same pairs again and again
    /// (parallel branches, every block of a build), and parsing with validation costs more than
    /// the rest of a cache hit. The pairs (secrets among them) are wiped when dropped.
    parsed: RwLock<HashMap<RequestPairs, Arc<Parsed>>>,
    credentials: SingleFlightCache<CacheKey, Credentials>,
    logins: SingleFlightCache<String, LoginToken>,
    connections: Mutex<HashMap<VaultEndpoint, Arc<VaultConnection>>>,
    permits: Semaphore,
    counters: Counters,
    /// Fetches of callers that wait in slices (crate::waiting).
    pub(crate) pending: crate::waiting::PendingFetches,
}

/// A request as parsed once: its validated form and its cache key.
pub(crate) struct Parsed {
    pub(crate) request: CredentialRequest,
    pub(crate) key: CacheKey,
}

/// Distinct requests remembered as parsed (each build has its own session name); beyond this the
/// memo starts over.
const MAX_PARSED: usize = 1024;

/// Owns one small tokio runtime; every method blocks the calling (JVM) thread.
pub struct CredentialBroker {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) inner: Arc<Inner>,
}

impl CredentialBroker {
    /// A broker for the process environment, ungoverned (the awsrole CLI's).
    pub fn from_process_env() -> Result<Self, BrokerError> {
        Self::new(BrokerOptions::from_process_env()?)
    }

    /// The Jenkins controller's broker (the JNI library's): the process environment, and the
    /// purposes config as the authorization boundary between pipelines and the controller's
    /// Vault identity.
    pub fn for_jenkins_controller() -> Result<Self, BrokerError> {
        let mut options = BrokerOptions::from_process_env()?;
        options.governance = Governance::Governed;
        Self::new(options)
    }

    pub fn new(options: BrokerOptions) -> Result<Self, BrokerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.worker_threads.max(1))
            // Blocking threads serve DNS look-ups; bound them so a burst of cold fetches to a
            // Vault named by host name cannot grow the controller's thread count.
            .max_blocking_threads(4)
            .thread_name("withawsrole-worker")
            .enable_all()
            .build()
            .map_err(|e| BrokerError::Internal(format!("cannot start the tokio runtime: {e}")))?;
        let settings = Settings {
            values: environment_values(&*options.env),
            deadline: options.deadline,
            overrides: Vec::new(),
            library_config: None,
        };
        let inner = Inner {
            settings: RwLock::new(Arc::new(settings)),
            configs: ConfigCache::new(),
            parsed: RwLock::new(HashMap::new()),
            credentials: SingleFlightCache::new(options.refresh),
            logins: SingleFlightCache::new(options.refresh),
            connections: Mutex::new(HashMap::new()),
            permits: Semaphore::new(options.max_concurrent_vault_calls.max(1)),
            counters: Counters::default(),
            pending: Default::default(),
            options,
        };
        Ok(CredentialBroker {
            runtime,
            inner: Arc::new(inner),
        })
    }

    /// Credentials for one request (pairs as in docs/architecture.md). Blocks until answered.
    pub fn credentials(
        &self,
        pairs: &[(String, String)],
    ) -> Result<IssuedCredentials, BrokerError> {
        let parsed = self.parsed(pairs)?;
        if let Some(hit) = self.cached(&parsed) {
            return Ok(hit);
        }
        self.runtime.block_on(
            self.inner
                .clone()
                .credentials_slow(parsed.request.clone(), parsed.key.clone()),
        )
    }

    /// Counts an answer a caller got from another caller's fetch.
    pub(crate) fn count_hit(&self) {
        bump(&self.inner.counters.cache_hits);
    }

    /// The cache's fresh answer to a parsed request, without any async machinery.
    pub(crate) fn cached(&self, parsed: &Parsed) -> Option<IssuedCredentials> {
        let now = self.inner.options.clock.now();
        let credentials = self.inner.credentials.get_fresh(&parsed.key, now)?;
        bump(&self.inner.counters.cache_hits);
        Some(IssuedCredentials {
            credentials,
            cache: CacheStatus::Hit,
            region: parsed.request.region.clone(),
            hide_account_id: parsed.request.hide_account_id,
        })
    }

    fn parse(&self, pairs: &[(String, String)]) -> Result<CredentialRequest, BrokerError> {
        let settings = self.inner.settings();
        let env = |var: &str| settings.values.get(var).cloned();
        let with_config = self.with_library_config(pairs);
        let pairs = with_config.as_deref().unwrap_or(pairs);
        parse_request_with(
            pairs,
            &env,
            &self.inner.configs,
            self.inner.options.governance,
        )
    }

    /// `pairs` plus the library's purposes config when the request brings none and the bridge
    /// gave one; None when nothing is to be added. Only on a parse (a memo miss), never a hit.
    pub(crate) fn with_library_config(&self, pairs: &[(String, String)]) -> Option<RequestPairs> {
        let config = self.inner.settings().library_config.clone()?;
        if pairs.iter().any(|(k, _)| k == "config_text") {
            return None;
        }
        let mut all = pairs.to_vec();
        all.push(("config_text".to_owned(), config.1.clone()));
        all.push(("config_name".to_owned(), config.0.clone()));
        Some(RequestPairs::from(all))
    }

    /// The library's reviewed purposes config, for every request that brings none (the bridge
    /// passes the copy packed into its jar, once). A new text forgets parsed requests.
    pub fn set_library_config(&self, name: &str, text: &str) {
        let changed = self.inner.change_settings(|current| {
            if current
                .library_config
                .as_deref()
                .is_some_and(|(n, t)| n == name && t == text)
            {
                return Ok(None);
            }
            Ok(Some(Settings {
                values: current.values.clone(),
                deadline: current.deadline,
                overrides: current.overrides.clone(),
                library_config: Some(Arc::new((name.to_owned(), text.to_owned()))),
            }))
        });
        debug_assert!(changed.is_ok(), "setting the library config cannot fail");
    }

    /// Overlays the controller's environment with `overrides` (variable, value; an empty value
    /// unsets), as the bridge passes the `-Dwithawsrole.<VARIABLE>` system properties. The same
    /// overrides again change nothing; new ones replace the old and forget parsed requests.
    /// Only the bridge calls this, with what it read from the JVM's own properties.
    pub fn apply_overrides(&self, overrides: &[(String, String)]) -> Result<(), BrokerError> {
        let options = &self.inner.options;
        self.inner.change_settings(|current| {
            if current.overrides == overrides {
                return Ok(None);
            }
            let known = setting_variables();
            let mut values = environment_values(&*options.env);
            for (name, value) in overrides {
                let Some(var) = known.iter().find(|v| **v == name.as_str()) else {
                    return Err(BrokerError::invalid(
                        "controller setting",
                        name,
                        format!("known settings are {}", known.join(", ")),
                    ));
                };
                if value.trim().is_empty() {
                    values.remove(var);
                } else {
                    values.insert(var, value.clone());
                }
            }
            // Without the variable: the default, or the deadline the broker was built with when
            // its environment did not set one (a caller's own choice in BrokerOptions).
            let built_with = match (options.env)(DEADLINE_ENV) {
                Some(_) => DEFAULT_DEADLINE,
                None => options.deadline,
            };
            let deadline = parse_deadline(values.get(DEADLINE_ENV).cloned())?.unwrap_or(built_with);
            Ok(Some(Settings {
                values,
                deadline,
                overrides: overrides.to_vec(),
                library_config: current.library_config.clone(),
            }))
        })
    }

    /// [`parse`](Self::parse), remembered by the exact pairs unless the request reads a config
    /// file (which may change under us; its own cache checks the file's size and mtime).
    pub(crate) fn parsed(&self, pairs: &[(String, String)]) -> Result<Arc<Parsed>, BrokerError> {
        let memo = &self.inner.parsed;
        if let Some(p) = memo.read().unwrap_or_else(|p| p.into_inner()).get(pairs) {
            return Ok(p.clone());
        }
        let settings = self.inner.settings();
        let request = self.parse(pairs)?;
        let parsed = Arc::new(Parsed {
            key: request.cache_key(),
            request,
        });
        // A controller's WITHAWSROLE_CONFIG file may change under us (its own cache checks the
        // file's size and mtime): such requests are parsed every time.
        let env_file = settings
            .values
            .get("WITHAWSROLE_CONFIG")
            .is_some_and(|v| !v.trim().is_empty());
        if !env_file {
            let mut memo = memo.write().unwrap_or_else(|p| p.into_inner());
            // Settings that changed while this request was parsed must not be remembered
            // under it: apply_overrides cleared the memo for them.
            if !Arc::ptr_eq(&settings, &self.inner.settings()) {
                return Ok(parsed);
            }
            if memo.len() >= MAX_PARSED {
                memo.clear();
            }
            memo.insert(RequestPairs::from(pairs.to_vec()), parsed.clone());
        }
        Ok(parsed)
    }

    /// Always asks Vault, bypassing the credential cache and single-flight (the login token is
    /// still reused): the naive baseline of `examples/bench.rs`, and a diagnostic.
    pub fn fetch_uncached(
        &self,
        pairs: &[(String, String)],
    ) -> Result<IssuedCredentials, BrokerError> {
        let request = self.parse(pairs)?;
        let credentials = self.runtime.block_on(self.inner.fetch(&request))?;
        Ok(IssuedCredentials {
            credentials: Arc::new(credentials),
            cache: CacheStatus::Miss,
            hide_account_id: request.hide_account_id,
            region: request.region,
        })
    }

    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            vault_calls: c.vault_calls.load(Ordering::Relaxed),
            vault_logins: c.vault_logins.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            cache_misses: c.cache_misses.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
        }
    }

    /// Forgets cached credentials and login tokens.
    pub fn clear_cache(&self) {
        self.inner.credentials.clear();
        self.inner.logins.clear();
    }
}

impl Inner {
    fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the settings with what `change` makes of the current ones (None: nothing to
    /// change), under one write lock so that concurrent changes cannot lose each other; a change
    /// forgets parsed requests (parsed() never remembers one parsed with replaced settings).
    fn change_settings(
        &self,
        change: impl FnOnce(&Settings) -> Result<Option<Settings>, BrokerError>,
    ) -> Result<(), BrokerError> {
        let mut settings = self.settings.write().unwrap_or_else(|p| p.into_inner());
        let Some(next) = change(&settings)? else {
            return Ok(());
        };
        *settings = Arc::new(next);
        drop(settings);
        self.parsed
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(())
    }

    /// Overall time for one fetch, retries included.
    fn deadline(&self) -> Duration {
        self.settings().deadline
    }

    pub(crate) async fn credentials_slow(
        self: Arc<Self>,
        request: CredentialRequest,
        key: CacheKey,
    ) -> Result<IssuedCredentials, BrokerError> {
        let clock = self.options.clock.clone();
        let (credentials, cache) = self
            .credentials
            .get_or_load(
                &key,
                || clock.now(),
                &*self.options.jitter,
                || self.fetch(&request),
            )
            .await?;
        if cache == CacheStatus::Hit {
            bump(&self.counters.cache_hits);
        }
        Ok(IssuedCredentials {
            credentials,
            cache,
            hide_account_id: request.hide_account_id,
            region: request.region,
        })
    }

    fn retrier(&self, deadline: SystemTime) -> Retrier<'_> {
        Retrier {
            policy: self.options.retry,
            clock: &*self.options.clock,
            sleeper: &*self.options.sleeper,
            jitter: &*self.options.jitter,
            deadline,
            budget: self.deadline(),
        }
    }

    /// One cache miss: log in if needed, call STS through Vault, retry what is transient.
    async fn fetch(&self, request: &CredentialRequest) -> Result<Credentials, BrokerError> {
        bump(&self.counters.cache_misses);
        let path = request.sts_path();
        tracing::info!(
            "cache miss: asking Vault {} for {path} as {} (session {})",
            request.vault.addr,
            request.auth.identity(),
            request.session_name
        );
        let deadline = self.options.clock.now() + self.deadline();
        let connection = self.connection(&request.vault)?;
        let mut relogged = false;
        loop {
            let (token, from_cache) = self.token(request, &connection, deadline).await?;
            let result = self
                .retrier(deadline)
                .run(
                    || self.sts_once(request, &connection, &token.token, deadline),
                    || bump(&self.counters.retries),
                )
                .await;
            match result {
                // A cached login token may have been revoked or expired early: log in once more.
                // (A token fresh from its login is trusted: then the 403 is the policy's answer.)
                Err(BrokerError::Forbidden { .. }) if from_cache && !relogged => {
                    tracing::info!("Vault said 403 with a cached login token; logging in again");
                    self.logins.invalidate(&login_key(request));
                    relogged = true;
                }
                // A static token has nothing to log in again with. Vault says 403 both for a
                // policy denial and for a dead token: ask which, so the message says what to do.
                Err(e @ BrokerError::Forbidden { .. }) if !from_cache => {
                    return Err(self.explain_static_403(request, &connection, e).await);
                }
                other => return other,
            }
        }
    }

    async fn explain_static_403(
        &self,
        request: &CredentialRequest,
        connection: &VaultConnection,
        forbidden: BrokerError,
    ) -> BrokerError {
        let VaultAuth::Token(token) = &request.auth else {
            return forbidden;
        };
        let lookup = tokio::time::timeout(Duration::from_secs(10), connection.lookup_self(token));
        match lookup.await {
            Ok(Err(CallError::Status {
                status: 401 | 403, ..
            })) => BrokerError::TokenRejected {
                addr: request.vault.addr.clone(),
            },
            _ => forbidden,
        }
    }

    /// A place among the bounded concurrent Vault calls, and the time left before `deadline` to
    /// use it: every call to Vault (login, STS, child tokens) waits here first.
    async fn vault_slot(
        &self,
        request: &CredentialRequest,
        deadline: SystemTime,
    ) -> Result<(SemaphorePermit<'_>, Duration), BrokerError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| BrokerError::Internal("the Vault call limiter was closed".into()))?;
        let left = remaining(&*self.options.clock, deadline)
            .ok_or_else(|| timeout_error(&request.vault.addr, self.deadline()))?;
        Ok((permit, left))
    }

    async fn sts_once(
        &self,
        request: &CredentialRequest,
        connection: &VaultConnection,
        token: &SecretString,
        deadline: SystemTime,
    ) -> Result<Credentials, BrokerError> {
        let (_permit, left) = self.vault_slot(request, deadline).await?;
        bump(&self.counters.vault_calls);
        let started = self.options.clock.now();
        let call = connection.sts(
            token,
            &request.mount,
            &request.vault_role,
            request.role_arn.as_deref(),
            request.ttl_seconds,
            &request.session_name,
        );
        let answer = match tokio::time::timeout(left, call).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(sts_error(e, request, &[token])),
            Err(_) => return Err(timeout_error(&request.vault.addr, left)),
        };
        Ok(credentials_from(answer, request, started))
    }

    /// The Vault token for a request: the given one, or a cached (single-flight) login; and
    /// whether it came from the login cache (only such a token may be stale).
    async fn token(
        &self,
        request: &CredentialRequest,
        connection: &VaultConnection,
        deadline: SystemTime,
    ) -> Result<(Arc<LoginToken>, bool), BrokerError> {
        if let VaultAuth::Token(t) = &request.auth {
            let given = LoginToken {
                token: t.clone(),
                expires_at: SystemTime::UNIX_EPOCH,
                lease: Duration::ZERO,
                renewable: false,
                full_lease: Duration::ZERO,
            };
            return Ok((Arc::new(given), false));
        }
        let clock = self.options.clock.clone();
        let key = login_key(request);
        // The token being replaced, if its refresh time has come: renewing it spares a login
        // (an AppRole secret_id may have few uses; a build's JWT may be gone).
        let previous = self.logins.get_stale(&key);
        let (token, status) = self
            .logins
            .get_or_load(
                &key,
                || clock.now(),
                &*self.options.jitter,
                || async {
                    if let Some(renewed) = self.renew(request, connection, previous, deadline).await
                    {
                        return Ok(renewed);
                    }
                    self.retrier(deadline)
                        .run(
                            || self.login_once(request, connection, deadline),
                            || bump(&self.counters.retries),
                        )
                        .await
                },
            )
            .await?;
        Ok((token, status == CacheStatus::Hit))
    }

    /// `renew-self` for a renewable login token that has not expired yet; `None` means log in
    /// instead (not renewable, refused, or Vault's max TTL leaves too little to be worth it).
    async fn renew(
        &self,
        request: &CredentialRequest,
        connection: &VaultConnection,
        previous: Option<Arc<LoginToken>>,
        deadline: SystemTime,
    ) -> Option<LoginToken> {
        let previous = previous?;
        let now = self.options.clock.now();
        if !previous.renewable || now >= previous.expires_at {
            return None;
        }
        let left = remaining(&*self.options.clock, deadline)?;
        let _permit = self.permits.acquire().await.ok()?;
        let answer = match tokio::time::timeout(left, connection.renew_self(&previous.token)).await
        {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                let e = login_error(e, request);
                tracing::info!("renewing the Vault login token failed ({e}); logging in again");
                return None;
            }
            Err(_) => return None,
        };
        let lease = Duration::from_secs(answer.lease_duration);
        if !renewal_worth_keeping(previous.full_lease, lease) {
            tracing::info!("the Vault login token is near its max TTL; logging in again");
            return None;
        }
        tracing::info!(
            "renewed the Vault login token for {} s",
            answer.lease_duration
        );
        Some(LoginToken {
            token: answer.token,
            expires_at: now + lease,
            lease,
            renewable: answer.renewable,
            full_lease: previous.full_lease,
        })
    }

    async fn login_once(
        &self,
        request: &CredentialRequest,
        connection: &VaultConnection,
        deadline: SystemTime,
    ) -> Result<LoginToken, BrokerError> {
        let (_permit, left) = self.vault_slot(request, deadline).await?;
        // A missing or empty JWT file is the caller's to fix, found before anything is sent.
        let jwt = login_jwt(&request.auth)?;
        bump(&self.counters.vault_logins);
        let started = self.options.clock.now();
        let answer: LoginAnswer =
            match tokio::time::timeout(left, connection.login(&request.auth, jwt.as_ref())).await {
                Ok(Ok(a)) => a,
                Ok(Err(e)) => return Err(login_error(e, request)),
                Err(_) => return Err(timeout_error(&request.vault.addr, left)),
            };
        // A token without a TTL never expires; re-check it daily anyway.
        let lease = match answer.lease_duration {
            0 => Duration::from_secs(86_400),
            n => Duration::from_secs(n),
        };
        Ok(LoginToken {
            token: answer.token,
            expires_at: started + lease,
            lease,
            renewable: answer.renewable,
            full_lease: lease,
        })
    }

    fn connection(&self, endpoint: &VaultEndpoint) -> Result<Arc<VaultConnection>, BrokerError> {
        let mut map = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(endpoint) {
            return Ok(c.clone());
        }
        let c = Arc::new(VaultConnection::connect(endpoint)?);
        map.insert(endpoint.clone(), c.clone());
        Ok(c)
    }
}

// ---- Vault calls for sibling modules (child_token) -------------------------------------------

impl CredentialBroker {
    /// One of the controller's settings ([`setting_variables`]), as this broker sees them now.
    pub(crate) fn setting(&self, var: &str) -> Option<String> {
        self.inner.settings().values.get(var).cloned()
    }

    /// How a block logs in when the controller logs in as each build (its settings
    /// `WITHAWSROLE_JOB_ID_TOKEN`, the ID of a Jenkins "OpenID Connect id token" credential, and
    /// `WITHAWSROLE_JOB_JWT_ROLE`, the Vault JWT role whose bound claims decide): pairs
    /// `credentials_id` and `jwt_role`, or none when the controller logs in as itself.
    pub fn build_login(&self) -> Result<Vec<(&'static str, String)>, BrokerError> {
        let Some(id) = self.setting("WITHAWSROLE_JOB_ID_TOKEN") else {
            return Ok(Vec::new());
        };
        let role = self.setting("WITHAWSROLE_JOB_JWT_ROLE").ok_or_else(|| {
            BrokerError::invalid(
                "WITHAWSROLE_JOB_JWT_ROLE",
                "",
                "WITHAWSROLE_JOB_ID_TOKEN needs the Vault JWT role that accepts the builds' id \
                 tokens: set WITHAWSROLE_JOB_JWT_ROLE on the controller too",
            )
        })?;
        crate::fields::check_segment("vault_jwt_role", &role)?;
        Ok(vec![("credentials_id", id), ("jwt_role", role)])
    }

    pub(crate) fn configs(&self) -> &ConfigCache {
        &self.inner.configs
    }

    pub(crate) fn governance(&self) -> Governance {
        self.inner.options.governance
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.inner.options.clock.now()
    }

    /// Runs `call` with a connection to `request`'s Vault and the token the request logs in with
    /// (the given token, or the cached single-flight login), as a credential fetch does:
    /// transient failures are retried within the deadline, and a 403 on a cached login token is
    /// answered by one fresh login.
    pub(crate) fn vault_call<T, F, Fut>(
        &self,
        request: &CredentialRequest,
        call: F,
    ) -> Result<T, BrokerError>
    where
        F: Fn(Arc<VaultConnection>, SecretString) -> Fut,
        Fut: Future<Output = Result<T, BrokerError>>,
    {
        self.runtime.block_on(self.inner.vault_call(request, call))
    }
}

impl Inner {
    async fn vault_call<T, F, Fut>(
        &self,
        request: &CredentialRequest,
        call: F,
    ) -> Result<T, BrokerError>
    where
        F: Fn(Arc<VaultConnection>, SecretString) -> Fut,
        Fut: Future<Output = Result<T, BrokerError>>,
    {
        let deadline = self.options.clock.now() + self.deadline();
        let connection = self.connection(&request.vault)?;
        let mut relogged = false;
        loop {
            let (token, from_cache) = self.token(request, &connection, deadline).await?;
            let attempt = || async {
                let (_permit, left) = self.vault_slot(request, deadline).await?;
                match tokio::time::timeout(left, call(connection.clone(), token.token.clone()))
                    .await
                {
                    Ok(result) => result,
                    Err(_) => Err(timeout_error(&request.vault.addr, left)),
                }
            };
            let result = self
                .retrier(deadline)
                .run(attempt, || bump(&self.counters.retries))
                .await;
            match result {
                Err(BrokerError::Forbidden { .. }) if from_cache && !relogged => {
                    self.logins.invalidate(&login_key(request));
                    relogged = true;
                }
                other => return other,
            }
        }
    }
}

/// Near its max TTL Vault renews a token for ever less time; below half of what the login gave,
/// a fresh login is worth more than a string of ever shorter renewals.
fn renewal_worth_keeping(full_lease: Duration, renewed: Duration) -> bool {
    !renewed.is_zero() && renewed * 2 >= full_lease
}

fn login_key(request: &CredentialRequest) -> String {
    format!(
        "{}|{}|{}",
        request.vault.addr,
        request.vault.namespace.as_deref().unwrap_or(""),
        request.auth.login_identity()
    )
}

fn credentials_from(
    answer: StsAnswer,
    request: &CredentialRequest,
    started: SystemTime,
) -> Credentials {
    // Expiry counts from before the request was sent, so it errs on the early side. Without a
    // lease or data.ttl, only the STS minimum is sure: Vault caps the requested ttl at the
    // role's max_sts_ttl without saying so, and keys cached longer than granted would fail.
    let lease = Duration::from_secs(
        answer
            .lease_duration
            .unwrap_or(u64::from(MIN_TTL_SECONDS))
            // STS sessions last at most 12 h: more is a broken answer, and 2^64-1 s would
            // overflow the SystemTime below.
            .min(u64::from(MAX_TTL_SECONDS)),
    );
    Credentials {
        access_key_id: answer.access_key,
        secret_access_key: answer.secret_key,
        session_token: answer.session_token,
        arn: answer.arn,
        session_name: request.session_name.clone(),
        lease_duration: lease,
        expires_at: started + lease,
    }
}

fn timeout_error(addr: &str, waited: Duration) -> BrokerError {
    BrokerError::Unreachable {
        addr: addr.to_owned(),
        cause: format!("no answer within {} s", waited.as_secs_f64().ceil()),
    }
}

/// Vault's messages, joined, cut, and with any secret we hold blanked out.
fn vault_message(errors: &[String], secrets: &[&SecretString]) -> String {
    let mut msg = if errors.is_empty() {
        "(no error text)".to_owned()
    } else {
        errors.join("; ")
    };
    for s in secrets {
        if s.expose().len() >= 4 {
            msg = msg.replace(s.expose(), "<redacted>");
        }
    }
    truncate(msg.trim(), 500)
}

fn is_throttling(msg: &str) -> bool {
    [
        "Throttling",
        "Rate exceeded",
        "TooManyRequests",
        "RequestLimitExceeded",
    ]
    .iter()
    .any(|t| msg.contains(t))
}

fn is_duration_problem(msg: &str) -> bool {
    let lower = msg.to_ascii_lowercase();
    // AWS's texts: Vault itself never refuses a ttl (it cuts it to max_sts_ttl silently).
    lower.contains("maxsessionduration") || lower.contains("durationseconds")
}

fn unavailable_hint(status: u16) -> &'static str {
    match status {
        429 => "Vault is rate-limiting (or a standby answered); retried with backoff, try again later",
        503 => "Vault is sealed or in maintenance; ask your Vault admin, then try again",
        412 => "a Vault standby is behind; try again",
        _ => "Vault or AWS failed on its side; try again later, and tell your Vault admin if it persists",
    }
}

/// No answer: an untrusted certificate is a configuration problem (not retried), anything else
/// is the network's.
fn transport_error(request: &CredentialRequest, cause: String) -> BrokerError {
    if is_tls_trust_failure(&cause) {
        return BrokerError::TlsUntrusted {
            addr: request.vault.addr.clone(),
            cause,
            cacert: match &request.vault.cacert {
                Some(path) => format!("now VAULT_CACERT={path}"),
                None => "VAULT_CACERT is not set".to_owned(),
            },
        };
    }
    BrokerError::Unreachable {
        addr: request.vault.addr.clone(),
        cause,
    }
}

/// Maps a failed `<mount>/sts/<role>` call to what the user should do.
fn sts_error(e: CallError, request: &CredentialRequest, secrets: &[&SecretString]) -> BrokerError {
    let path = request.sts_path();
    match e {
        CallError::Transport(cause) => transport_error(request, cause),
        CallError::Decode(detail) => BrokerError::UnexpectedResponse { path, detail },
        CallError::Status { status, errors } => {
            let message = vault_message(&errors, secrets);
            if is_throttling(&message) {
                return BrokerError::VaultUnavailable {
                    status,
                    path,
                    message,
                    hint: "AWS STS is throttling; retried with backoff, try again later".into(),
                };
            }
            if is_duration_problem(&message) {
                return BrokerError::DurationTooLong { path, message };
            }
            match status {
                403 => BrokerError::Forbidden { path },
                404 => BrokerError::VaultRejected {
                    path,
                    status,
                    message,
                    hint: format!(
                        "check that an AWS secrets engine is mounted at `{}` (mount) and that the Vault role `{}` exists (vault_role)",
                        request.mount, request.vault_role
                    ),
                },
                412 | 429 | 500..=599 => BrokerError::VaultUnavailable {
                    status,
                    path,
                    message,
                    hint: unavailable_hint(status).into(),
                },
                _ => BrokerError::VaultRejected {
                    path,
                    status,
                    message,
                    hint: format!(
                        "check that the Vault role `{}` exists and is an assumed_role role; pass role_arn when it lists several ARNs; check ttl",
                        request.vault_role
                    ),
                },
            }
        }
    }
}

/// Maps a failed login; a refused login is a permission problem, not a bad request.
fn login_error(e: CallError, request: &CredentialRequest) -> BrokerError {
    let (method, mount, hint, secrets): (&'static str, &str, &'static str, Vec<&SecretString>) =
        match &request.auth {
            VaultAuth::AppRole { mount, secret_id, .. } => (
                "AppRole",
                mount,
                "check VAULT_ROLE_ID and VAULT_SECRET_ID on the Jenkins controller (a secret_id can expire or run out of uses)",
                vec![secret_id],
            ),
            VaultAuth::Jwt { mount, .. } => (
                "JWT",
                mount,
                "check VAULT_JWT_ROLE and that the JWT is current and matches the role's bound claims",
                vec![],
            ),
            VaultAuth::Kubernetes { mount, .. } => (
                "Kubernetes",
                mount,
                "check VAULT_K8S_ROLE and that the service account is bound to it",
                vec![],
            ),
            VaultAuth::Token(_) => ("token", "token", "check VAULT_TOKEN", vec![]),
        };
    let path = format!("auth/{mount}/login");
    match e {
        CallError::Transport(cause) => transport_error(request, cause),
        CallError::Decode(detail) => BrokerError::UnexpectedResponse { path, detail },
        CallError::Status { status, errors } => {
            let message = vault_message(&errors, &secrets);
            match status {
                412 | 429 | 500..=599 => BrokerError::VaultUnavailable {
                    status,
                    path,
                    message,
                    hint: unavailable_hint(status).into(),
                },
                _ => BrokerError::LoginDenied {
                    method,
                    path,
                    message,
                    hint,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::request::parse_request;

    fn request() -> CredentialRequest {
        let env = |k: &str| match k {
            "VAULT_ADDR" => Some("http://127.0.0.1:8200".to_owned()),
            "VAULT_TOKEN" => Some("hvs.TOKEN".to_owned()),
            _ => None,
        };
        parse_request(&[("purpose".into(), "ecr-push".into())], &env).unwrap()
    }

    fn status(status: u16, msg: &str) -> CallError {
        CallError::Status {
            status,
            errors: vec![msg.to_owned()],
        }
    }

    #[test]
    fn an_answer_without_a_lease_is_trusted_for_the_sts_minimum_not_the_requested_ttl() {
        let env = |k: &str| match k {
            "VAULT_ADDR" => Some("http://127.0.0.1:8200".to_owned()),
            "VAULT_TOKEN" => Some("hvs.TOKEN".to_owned()),
            _ => None,
        };
        let pairs = [
            ("purpose".into(), "ecr-push".into()),
            ("ttl".into(), "2h".into()),
        ];
        let request = parse_request(&pairs, &env).unwrap();
        assert_eq!(request.ttl_seconds, Some(7200));
        let answer = |lease_duration| StsAnswer {
            access_key: "ASIA".into(),
            secret_key: "sk".into(),
            session_token: "st".into(),
            arn: String::new(),
            lease_duration,
        };
        let started = SystemTime::now();
        // Vault may have capped 2 h to the role's max_sts_ttl without saying so.
        let c = credentials_from(answer(None), &request, started);
        assert_eq!(c.lease_duration, Duration::from_secs(900));
        assert_eq!(c.expires_at, started + Duration::from_secs(900));
        let c = credentials_from(answer(Some(3600)), &request, started);
        assert_eq!(c.lease_duration, Duration::from_secs(3600));
    }

    #[test]
    fn forbidden_sts_call_names_the_path_and_the_fix() {
        let e = sts_error(status(403, "permission denied"), &request(), &[]);
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e
            .to_string()
            .starts_with("Vault denied `update` on aws/sts/ecr-push: ask your Vault admin"));
    }

    #[test]
    fn aws_throttling_inside_a_400_is_retryable() {
        let e = sts_error(
            status(
                400,
                "Error assuming role: Throttling: Rate exceeded\n\tstatus code: 400",
            ),
            &request(),
            &[],
        );
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn duration_problems_explain_every_remedy() {
        for msg in [
            "Error assuming role: ValidationError: The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            "Error assuming role: ValidationError: 1 validation error detected: Value '50000' at 'durationSeconds' failed to satisfy constraint",
        ] {
            let e = sts_error(status(400, msg), &request(), &[]);
            assert!(matches!(e, BrokerError::DurationTooLong { .. }), "{msg}: {e:?}");
            assert!(!e.is_retryable());
        }
    }

    #[test]
    fn status_codes_map_to_kinds() {
        let kind = |s| sts_error(status(s, "x"), &request(), &[]).kind();
        assert_eq!(kind(400), ErrorKind::InvalidRequest);
        assert_eq!(kind(404), ErrorKind::InvalidRequest);
        assert_eq!(kind(429), ErrorKind::Unavailable);
        assert_eq!(kind(500), ErrorKind::Unavailable);
        assert_eq!(kind(503), ErrorKind::Unavailable);
        assert_eq!(
            sts_error(CallError::Transport("refused".into()), &request(), &[]).kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            sts_error(CallError::Decode("x".into()), &request(), &[]).kind(),
            ErrorKind::Internal
        );
    }

    #[test]
    fn secrets_echoed_by_vault_are_blanked() {
        let secret = SecretString::new("hvs.TOKEN");
        let e = sts_error(
            status(400, "bad token hvs.TOKEN given"),
            &request(),
            &[&secret],
        );
        assert!(!e.to_string().contains("hvs.TOKEN"), "{e}");
    }

    #[test]
    fn refused_logins_are_permission_denied() {
        let env = |k: &str| match k {
            "VAULT_ADDR" => Some("http://127.0.0.1:8200".to_owned()),
            "VAULT_ROLE_ID" => Some("rid".to_owned()),
            "VAULT_SECRET_ID" => Some("SECRETID".to_owned()),
            _ => None,
        };
        let r = parse_request(&[("purpose".into(), "p".into())], &env).unwrap();
        let e = login_error(status(400, "invalid secret id SECRETID"), &r);
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        let msg = e.to_string();
        assert!(
            msg.contains("auth/approle/login") && msg.contains("VAULT_SECRET_ID"),
            "{msg}"
        );
        assert!(
            !msg.contains("SECRETID given") && !msg.contains("id SECRETID"),
            "{msg}"
        );
        assert_eq!(
            login_error(status(503, "sealed"), &r).kind(),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn issued_credentials_expose_the_contract_keys() {
        let issued = IssuedCredentials {
            credentials: Arc::new(Credentials {
                access_key_id: "ASIA".into(),
                secret_access_key: "sk".into(),
                session_token: "st".into(),
                arn: "arn:aws:sts::123456789012:assumed-role/r/s".into(),
                session_name: "s".into(),
                lease_duration: Duration::from_secs(900),
                expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_599),
            }),
            cache: CacheStatus::Miss,
            region: Some("eu-west-1".into()),
            hide_account_id: true,
        };
        let keys: Vec<_> = issued.pairs().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "access_key_id",
                "secret_access_key",
                "session_token",
                "expiration",
                "expires_at_epoch_seconds",
                "arn",
                "session_name",
                "lease_duration_seconds",
                "cache",
                "account_id_hidden",
                "region",
                "account_id"
            ]
        );
        let map: HashMap<_, _> = issued.pairs().into_iter().collect();
        assert_eq!(map["account_id"], "123456789012");
        assert_eq!(map["account_id_hidden"], "true");
        assert_eq!(map["expiration"], "2024-12-31T23:59:59Z");
        assert_eq!(map["expires_at_epoch_seconds"], "1735689599");
        assert_eq!(map["cache"], "miss");
        assert!(!format!("{issued:?}").contains("\"sk\""));
    }

    fn env_of(vars: &[(&str, &str)]) -> Arc<EnvLookup> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Arc::new(move |k: &str| map.get(k).cloned())
    }

    fn broker_of(vars: &[(&str, &str)]) -> CredentialBroker {
        CredentialBroker::new(BrokerOptions::with_env(env_of(vars)).unwrap()).unwrap()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn overrides(p: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs(p)
    }

    #[test]
    fn parsed_requests_are_remembered_but_config_files_are_read_again() {
        let broker = broker_of(&[("VAULT_ADDR", "http://v:8200"), ("VAULT_TOKEN", "t")]);
        let text = pairs(&[
            ("purpose", "deploy"),
            ("config_text", "[purposes.deploy]\nttl = \"1h\"\n"),
        ]);
        let a = broker.parsed(&text).unwrap();
        assert!(Arc::ptr_eq(&a, &broker.parsed(&text).unwrap()));
        assert_eq!(a.request.ttl_seconds, Some(3600));

        let dir = std::env::temp_dir().join(format!("withawsrole-memo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("purposes.toml");
        std::fs::write(&path, "[purposes.deploy]\nttl = \"1h\"\n").unwrap();
        // The controller's file (here through an override) is read again on every parse.
        broker
            .apply_overrides(&overrides(&[(
                "WITHAWSROLE_CONFIG",
                path.to_str().unwrap(),
            )]))
            .unwrap();
        let plain = pairs(&[("purpose", "deploy")]);
        assert_eq!(
            broker.parsed(&plain).unwrap().request.ttl_seconds,
            Some(3600)
        );
        std::fs::write(&path, "[purposes.deploy]\nttl = \"30m\"\n").unwrap();
        assert_eq!(
            broker.parsed(&plain).unwrap().request.ttl_seconds,
            Some(1800)
        );
        // ... and wins over the config_text remembered before.
        assert_eq!(
            broker.parsed(&text).unwrap().request.ttl_seconds,
            Some(1800)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn apply_overrides_changes_the_address_and_an_empty_value_unsets() {
        let broker = broker_of(&[("VAULT_ADDR", "http://env:8200"), ("VAULT_TOKEN", "t")]);
        let request = pairs(&[("purpose", "p")]);
        let addr = |b: &CredentialBroker| b.parsed(&request).map(|p| p.request.vault.addr.clone());
        assert_eq!(addr(&broker).unwrap(), "http://env:8200");

        broker
            .apply_overrides(&overrides(&[
                ("VAULT_ADDR", "https://prop:8200"),
                ("VAULT_NAMESPACE", "team-a"),
            ]))
            .unwrap();
        // The parse memo was cleared: the remembered request does not keep the old address.
        assert_eq!(addr(&broker).unwrap(), "https://prop:8200");
        let parsed = broker.parsed(&request).unwrap();
        assert_eq!(parsed.request.vault.namespace.as_deref(), Some("team-a"));
        assert_eq!(
            broker.setting("VAULT_ADDR").as_deref(),
            Some("https://prop:8200")
        );

        // The same overrides again change nothing (the memo is kept).
        broker
            .apply_overrides(&overrides(&[
                ("VAULT_ADDR", "https://prop:8200"),
                ("VAULT_NAMESPACE", "team-a"),
            ]))
            .unwrap();
        assert!(Arc::ptr_eq(&parsed, &broker.parsed(&request).unwrap()));

        // New overrides replace the old ones: back to the environment where none is given.
        broker
            .apply_overrides(&overrides(&[("VAULT_NAMESPACE", "team-b")]))
            .unwrap();
        let r = broker.parsed(&request).unwrap();
        assert_eq!(r.request.vault.addr, "http://env:8200");
        assert_eq!(r.request.vault.namespace.as_deref(), Some("team-b"));

        // An empty value unsets what the environment set.
        broker
            .apply_overrides(&overrides(&[("VAULT_ADDR", "")]))
            .unwrap();
        assert_eq!(addr(&broker).unwrap_err(), BrokerError::MissingVaultAddr);
        assert_eq!(broker.setting("VAULT_ADDR"), None);
        broker
            .apply_overrides(&overrides(&[("VAULT_TOKEN", " ")]))
            .unwrap();
        assert!(matches!(
            broker.parsed(&request).err(),
            Some(BrokerError::MissingVaultCredentials { .. })
        ));

        // No overrides at all: the environment as it was.
        broker.apply_overrides(&[]).unwrap();
        assert_eq!(addr(&broker).unwrap(), "http://env:8200");
    }

    #[test]
    fn apply_overrides_rejects_unknown_variables_and_keeps_the_settings() {
        let broker = broker_of(&[("VAULT_ADDR", "http://env:8200"), ("VAULT_TOKEN", "t")]);
        for name in [
            "VAULT_ADRR",
            "vault_addr",
            "PATH",
            "",
            "WITHAWSROLE_CONFIGS",
        ] {
            let e = broker
                .apply_overrides(&overrides(&[("VAULT_ADDR", "http://x:1"), (name, "v")]))
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{name}");
            let msg = e.to_string();
            assert!(
                msg.contains("VAULT_ADDR") && msg.contains("WITHAWSROLE_CONFIG"),
                "{msg}"
            );
        }
        // A bad deadline is refused as a whole too.
        let e = broker
            .apply_overrides(&overrides(&[
                ("VAULT_ADDR", "http://x:1"),
                (DEADLINE_ENV, "forever"),
            ]))
            .unwrap_err();
        assert!(e.to_string().contains(DEADLINE_ENV), "{e}");
        // Nothing of a refused set was applied.
        assert_eq!(
            broker.setting("VAULT_ADDR").as_deref(),
            Some("http://env:8200")
        );
        // Every variable the bridge may pass is accepted.
        let all: Vec<(String, String)> = setting_variables()
            .into_iter()
            .map(|v| (v.to_owned(), String::new()))
            .collect();
        broker.apply_overrides(&all).unwrap();
        assert!(setting_variables().contains(&"VAULT_TOKEN_FILE"));
        assert!(setting_variables().contains(&crate::child_token::TOKEN_ROLE_ENV));
    }

    #[test]
    fn the_deadline_follows_the_overrides() {
        let broker = broker_of(&[(DEADLINE_ENV, "5")]);
        assert_eq!(broker.inner.deadline(), Duration::from_secs(5));
        broker
            .apply_overrides(&overrides(&[(DEADLINE_ENV, "7")]))
            .unwrap();
        assert_eq!(broker.inner.deadline(), Duration::from_secs(7));
        broker
            .apply_overrides(&overrides(&[(DEADLINE_ENV, "")]))
            .unwrap();
        assert_eq!(broker.inner.deadline(), DEFAULT_DEADLINE);
        broker.apply_overrides(&[]).unwrap();
        assert_eq!(broker.inner.deadline(), Duration::from_secs(5));
    }

    #[test]
    fn the_library_config_given_once_governs_requests_without_config_text() {
        let mut options = BrokerOptions::with_env(env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_TOKEN", "t"),
        ]))
        .unwrap();
        options.governance = Governance::Governed;
        let broker = CredentialBroker::new(options).unwrap();
        let ask = pairs(&[("purpose", "deploy"), ("job", "team-a/x"), ("build", "1")]);
        let e = broker.parsed(&ask).map(|_| ()).unwrap_err();
        assert!(matches!(e, BrokerError::PurposeNotListed { .. }), "{e:?}");
        broker.set_library_config("purposes.toml", "[purposes.deploy]\nvault_role = \"d\"\n");
        assert_eq!(broker.parsed(&ask).unwrap().request.sts_path(), "aws/sts/d");
        // A new text forgets what was parsed with the old one.
        broker.set_library_config("purposes.toml", "[purposes.other]\n");
        let e = broker.parsed(&ask).map(|_| ()).unwrap_err();
        assert!(matches!(e, BrokerError::PurposeNotListed { .. }), "{e:?}");
        // Overrides keep the library config.
        broker
            .apply_overrides(&overrides(&[(DEADLINE_ENV, "7")]))
            .unwrap();
        let other = pairs(&[("purpose", "other"), ("job", "team-a/x"), ("build", "1")]);
        assert_eq!(
            broker.parsed(&other).unwrap().request.sts_path(),
            "aws/sts/other"
        );
    }

    #[test]
    fn a_governed_broker_enforces_the_purposes_config() {
        let mut options = BrokerOptions::with_env(env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_TOKEN", "t"),
        ]))
        .unwrap();
        assert_eq!(options.governance, Governance::Ungoverned);
        options.governance = Governance::Governed;
        let broker = CredentialBroker::new(options).unwrap();
        let config = "[purposes.deploy]\njobs = [\"team-a/**\"]\n";
        let ask = |purpose: &str, job: &str| {
            broker.credentials(&pairs(&[
                ("purpose", purpose),
                ("job", job),
                ("config_text", config),
            ]))
        };
        let e = ask("admin", "team-a/x").unwrap_err();
        assert!(matches!(e, BrokerError::PurposeNotListed { .. }), "{e:?}");
        let e = ask("deploy", "team-b/x").unwrap_err();
        assert!(matches!(e, BrokerError::JobNotAllowed { .. }), "{e:?}");
        assert_eq!(broker.stats(), Stats::default(), "refused before any call");
        // An ungoverned broker (the CLI's) serves the same unlisted purpose.
        let cli = broker_of(&[("VAULT_ADDR", "http://v:8200"), ("VAULT_TOKEN", "t")]);
        let p = pairs(&[("purpose", "admin"), ("config_text", config)]);
        assert_eq!(cli.parsed(&p).unwrap().request.sts_path(), "aws/sts/admin");
    }

    #[test]
    fn renewals_near_the_max_ttl_give_way_to_a_login() {
        let s = Duration::from_secs;
        assert!(renewal_worth_keeping(s(3600), s(3600)));
        assert!(renewal_worth_keeping(s(3600), s(1800)));
        assert!(!renewal_worth_keeping(s(3600), s(1799)));
        assert!(!renewal_worth_keeping(s(3600), Duration::ZERO));
    }

    #[test]
    fn deadline_comes_from_the_env_once() {
        let o = BrokerOptions::with_env(Arc::new(|k: &str| {
            (k == DEADLINE_ENV).then(|| "5".to_owned())
        }))
        .unwrap();
        assert_eq!(o.deadline, Duration::from_secs(5));
        let o = BrokerOptions::with_env(Arc::new(|_: &str| None)).unwrap();
        assert_eq!(o.deadline, DEFAULT_DEADLINE);
        assert!(BrokerOptions::with_env(Arc::new(|_: &str| Some("soon".to_owned()))).is_err());
    }

    #[test]
    fn invalid_requests_fail_before_any_network_call() {
        let broker = broker_of(&[("VAULT_ADDR", "http://127.0.0.1:1")]);
        let e = broker.credentials(&pairs(&[("purpose", "p")])).unwrap_err();
        assert!(
            matches!(e, BrokerError::MissingVaultCredentials { .. }),
            "{e}"
        );
        // A request that names its own Vault is refused, not sent there.
        let e = broker
            .credentials(&pairs(&[
                ("purpose", "p"),
                ("vault_token", "t"),
                ("vault_addr", "http://127.0.0.1:9"),
            ]))
            .unwrap_err();
        assert!(matches!(e, BrokerError::ControllerSetting { .. }), "{e}");
        assert_eq!(broker.stats(), Stats::default());
    }

    #[test]
    fn an_unreachable_vault_is_unavailable_after_retries() {
        let mut o = BrokerOptions::with_env(env_of(&[
            (DEADLINE_ENV, "2"),
            ("VAULT_ADDR", "http://127.0.0.1:9"),
        ]))
        .unwrap();
        o.retry.base = Duration::from_millis(10);
        let broker = CredentialBroker::new(o).unwrap();
        let e = broker
            .credentials(&pairs(&[("purpose", "p"), ("vault_token", "t")]))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.to_string().contains("127.0.0.1:9"), "{e}");
        assert!(broker.stats().retries >= 1);
    }
}
