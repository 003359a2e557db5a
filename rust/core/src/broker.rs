//! The blocking facade the JNI layer (and a CLI) call: parse (remembered), cache, single-flight,
//! waiting in slices, and child tokens; every Vault call goes through one [`VaultSession`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::cache::{CacheStatus, RefreshPolicy, SingleFlightCache};
use crate::clock::{Clock, Jitter, Sleeper, SplitMixJitter, SystemClock, TokioSleeper};
use crate::config::ConfigCache;
use crate::error::BrokerError;
use crate::request::{
    controller_value, parse_request_with, process_env, CacheKey, CredentialRequest, EnvLookup,
    Governance, Parsing, RequestPairs,
};
use crate::retry::RetryPolicy;
use crate::settings::Settings;
use crate::sources::{self, LoginSource};
use crate::vault_error::VaultCall;
use crate::vault_session::{bump, Timing, VaultSession};
use crate::waiting::{Forget, PendingCalls};

pub use crate::credentials::{account_id_of, Credentials, IssuedCredentials, Stats};
pub use crate::settings::{setting_properties, setting_variables, DEADLINE_ENV, DEFAULT_DEADLINE};

mod child_tokens;

pub use child_tokens::ChildTokenWait;

pub const DEFAULT_MAX_CONCURRENT_VAULT_CALLS: usize = 8;

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
        let deadline = sources::deadline(env(DEADLINE_ENV).as_deref(), DEFAULT_DEADLINE)?;
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
    session: VaultSession,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// Fetches of callers that wait in slices (crate::waiting).
    pending: PendingCalls<CacheKey, IssuedCredentials>,
    /// Child tokens being created for callers that wait in slices, by ticket.
    children: child_tokens::PendingChildren,
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
        let timing = Timing {
            clock: options.clock.clone(),
            sleeper: options.sleeper.clone(),
            jitter: options.jitter.clone(),
            retry: options.retry,
        };
        let inner = Inner {
            settings: RwLock::new(Arc::new(Settings::from_env(
                &*options.env,
                options.deadline,
            ))),
            configs: ConfigCache::new(),
            parsed: RwLock::new(HashMap::new()),
            credentials: SingleFlightCache::new(options.refresh),
            session: VaultSession::new(timing, options.refresh, options.max_concurrent_vault_calls),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            pending: PendingCalls::default(),
            children: Default::default(),
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

    /// Credentials for `pairs` (as [`credentials`](Self::credentials)) if they are there within
    /// `wait`, else `Ok(None)` while the fetch goes on: ask again to keep waiting (it joins the
    /// same fetch, which other callers of the request share). The wait goes through the
    /// broker's injected sleeper (crate::waiting).
    pub fn credentials_within(
        &self,
        pairs: &[(String, String)],
        wait: Duration,
    ) -> Result<Option<IssuedCredentials>, BrokerError> {
        let parsed = self.parsed(pairs)?;
        if let Some(hit) = self.cached(&parsed) {
            return Ok(Some(hit));
        }
        let inner = self.inner.clone();
        let (request, key) = (parsed.request.clone(), parsed.key.clone());
        let mut pending = self.inner.pending.join_or_start(
            parsed.key.clone(),
            self.inner.options.clock.now(),
            self.runtime.handle(),
            Forget::WhenDone,
            || inner.credentials_slow(request, key),
        );
        let sleeper = self.inner.options.sleeper.clone();
        let answer = self
            .runtime
            .block_on(async move { pending.within(&*sleeper, wait).await.map(|a| (a, pending)) })?;
        Ok(match answer {
            (None, _) => None,
            (Some(mut issued), pending) => {
                // The fetch is shared by every request with this cache key, but the region and
                // the account id's visibility are this caller's own (parallel branches deploying
                // to several regions join one fetch).
                issued.region = parsed.request.target.region.clone();
                issued.hide_account_id = parsed.request.target.hide_account_id;
                if !pending.first_to_take() {
                    issued.cache = CacheStatus::Hit;
                    bump(&self.inner.cache_hits);
                }
                Some(issued)
            }
        })
    }

    /// How many fetches callers stopped waiting for are still under way (tests, diagnostics).
    pub fn pending_fetches(&self) -> usize {
        self.inner.pending.len()
    }

    /// The cache's fresh answer to a parsed request, without any async machinery.
    fn cached(&self, parsed: &Parsed) -> Option<IssuedCredentials> {
        let now = self.inner.options.clock.now();
        let credentials = self.inner.credentials.get_fresh(&parsed.key, now)?;
        bump(&self.inner.cache_hits);
        Some(IssuedCredentials {
            credentials,
            cache: CacheStatus::Hit,
            region: parsed.request.target.region.clone(),
            hide_account_id: parsed.request.target.hide_account_id,
        })
    }

    /// `parse` (a request's parser) of `pairs` against this broker's settings, parsed configs
    /// and governance, with the library's purposes config where they bring none.
    pub(crate) fn parse_as<T>(
        &self,
        pairs: &[(String, String)],
        parse: impl FnOnce(&[(String, String)], &Parsing<'_>) -> Result<T, BrokerError>,
    ) -> Result<T, BrokerError> {
        let settings = self.inner.settings();
        let env = |var: &str| settings.get(var);
        let library = settings.library_config.as_deref();
        let with_config = sources::with_library_config(pairs, library).map(RequestPairs::from);
        let with = Parsing {
            env: &env,
            configs: &self.inner.configs,
            governance: self.inner.options.governance,
        };
        parse(with_config.as_deref().unwrap_or(pairs), &with)
    }

    /// The library's reviewed purposes config, for every request that brings none (the bridge
    /// passes the copy packed into its jar, once). A new text forgets parsed requests.
    pub fn set_library_config(&self, name: &str, text: &str) {
        let changed = self
            .inner
            .change_settings(|current| Ok(current.with_library_config(name, text)));
        debug_assert!(changed.is_ok(), "setting the library config cannot fail");
    }

    /// Overlays the controller's environment with `overrides` (variable, value; an empty value
    /// unsets), as the bridge passes the `-Dwithawsrole.<VARIABLE>` system properties. The same
    /// overrides again change nothing; new ones replace the old and forget parsed requests.
    /// Only the bridge calls this, with what it read from the JVM's own properties.
    pub fn apply_overrides(&self, overrides: &[(String, String)]) -> Result<(), BrokerError> {
        let options = &self.inner.options;
        self.inner.change_settings(|current| {
            current.overridden(&*options.env, options.deadline, overrides)
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
        let request = self.parse_as(pairs, parse_request_with)?;
        let parsed = Arc::new(Parsed {
            key: request.cache_key(),
            request,
        });
        // A controller's WITHAWSROLE_CONFIG file may change under us (its own cache checks the
        // file's size and mtime): such requests are parsed every time.
        let env_file = settings
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
        let request = self.parse_as(pairs, parse_request_with)?;
        let credentials = self.runtime.block_on(self.inner.fetch(&request))?;
        Ok(IssuedCredentials {
            credentials: Arc::new(credentials),
            cache: CacheStatus::Miss,
            hide_account_id: request.target.hide_account_id,
            region: request.target.region,
        })
    }

    pub fn stats(&self) -> Stats {
        let (inner, session) = (&self.inner, &self.inner.session.counters);
        Stats {
            vault_calls: session.sts_calls.load(Ordering::Relaxed),
            vault_logins: session.logins.load(Ordering::Relaxed),
            cache_hits: inner.cache_hits.load(Ordering::Relaxed),
            cache_misses: inner.cache_misses.load(Ordering::Relaxed),
            retries: session.retries.load(Ordering::Relaxed),
        }
    }

    /// Forgets cached credentials and login tokens.
    pub fn clear_cache(&self) {
        self.inner.credentials.clear();
        self.inner.session.clear_logins();
    }

    /// One of the controller's settings ([`setting_variables`]), as this broker sees them now.
    pub(crate) fn setting(&self, var: &str) -> Option<String> {
        self.inner.settings().get(var)
    }

    /// How a block logs in (sources::login_source), given the Jenkins credential it names for a
    /// login of its own (`vaultCredentialsId`, None or blank: none): pairs `source` = `own` with
    /// that `credentials_id`; `build` with the controller's `credentials_id` (its setting
    /// `WITHAWSROLE_JOB_ID_TOKEN`, a Jenkins "OpenID Connect id token" credential) and `jwt_role`
    /// (`WITHAWSROLE_JOB_JWT_ROLE`, the Vault JWT role whose bound claims decide); or
    /// `controller` when the core logs in with the controller's own settings.
    pub fn block_login(
        &self,
        own_credentials_id: Option<&str>,
    ) -> Result<Vec<(&'static str, String)>, BrokerError> {
        let own = own_credentials_id
            .map(str::trim)
            .filter(|id| !id.is_empty());
        let setting = |key: &str| controller_value(&|var: &str| self.setting(var), key);
        let per_build = setting("job_id_token");
        let governed = self.inner.options.governance == Governance::Governed;
        match sources::login_source(own.is_some(), per_build.is_some(), governed) {
            LoginSource::Own => Ok(vec![
                ("source", "own".to_owned()),
                ("credentials_id", own.unwrap_or_default().to_owned()),
            ]),
            LoginSource::Build => {
                let role = setting("job_jwt_role").ok_or_else(|| {
                    BrokerError::invalid(
                        "WITHAWSROLE_JOB_JWT_ROLE",
                        "",
                        "WITHAWSROLE_JOB_ID_TOKEN needs the Vault JWT role that accepts the builds' id \
                         tokens: set WITHAWSROLE_JOB_JWT_ROLE on the controller too",
                    )
                })?;
                crate::fields::check_segment("vault_jwt_role", &role)?;
                Ok(vec![
                    ("source", "build".to_owned()),
                    ("credentials_id", per_build.unwrap_or_default()),
                    ("jwt_role", role),
                ])
            }
            LoginSource::Controller => Ok(vec![("source", "controller".to_owned())]),
        }
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

    /// Overall time for one Vault call, retries included.
    fn deadline(&self) -> Duration {
        self.settings().deadline
    }

    async fn credentials_slow(
        self: Arc<Self>,
        request: CredentialRequest,
        key: CacheKey,
    ) -> Result<IssuedCredentials, BrokerError> {
        let (credentials, cache) = self
            .credentials
            .get_or_load(&key, &*self.options.clock, &*self.options.jitter, || {
                self.fetch(&request)
            })
            .await?;
        if cache == CacheStatus::Hit {
            bump(&self.cache_hits);
        }
        Ok(IssuedCredentials {
            credentials,
            cache,
            hide_account_id: request.target.hide_account_id,
            region: request.target.region,
        })
    }

    /// One cache miss: `<mount>/sts/<role>` through the Vault session.
    async fn fetch(&self, request: &CredentialRequest) -> Result<Credentials, BrokerError> {
        bump(&self.cache_misses);
        let (target, login) = (&request.target, &request.login);
        tracing::info!(
            "cache miss: asking Vault {} for {} as {} (session {})",
            login.endpoint.addr,
            target.sts_path(),
            login.auth.identity(),
            target.session_name
        );
        let clock = &self.options.clock;
        self.session
            .call(
                login,
                self.deadline(),
                VaultCall::Sts(target),
                |connection, token| async move {
                    let started = clock.now();
                    let answer = connection
                        .sts(
                            &token,
                            &target.mount,
                            &target.vault_role,
                            target.role_arn.as_deref(),
                            target.ttl_seconds,
                            &target.session_name,
                        )
                        .await?;
                    Ok(Credentials::from_answer(answer, target, started))
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::testing::{assert_refused, pairs};

    fn env_of(vars: &[(&str, &str)]) -> Arc<EnvLookup> {
        Arc::new(crate::testing::env_of(vars))
    }

    fn broker_of(vars: &[(&str, &str)]) -> CredentialBroker {
        CredentialBroker::new(BrokerOptions::with_env(env_of(vars)).unwrap()).unwrap()
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
        assert_eq!(a.request.target.ttl_seconds, Some(3600));

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
            broker.parsed(&plain).unwrap().request.target.ttl_seconds,
            Some(3600)
        );
        std::fs::write(&path, "[purposes.deploy]\nttl = \"30m\"\n").unwrap();
        assert_eq!(
            broker.parsed(&plain).unwrap().request.target.ttl_seconds,
            Some(1800)
        );
        // ... and wins over the config_text remembered before.
        assert_eq!(
            broker.parsed(&text).unwrap().request.target.ttl_seconds,
            Some(1800)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn apply_overrides_changes_the_address_and_an_empty_value_unsets() {
        let broker = broker_of(&[("VAULT_ADDR", "http://env:8200"), ("VAULT_TOKEN", "t")]);
        let request = pairs(&[("purpose", "p")]);
        let addr = |b: &CredentialBroker| {
            b.parsed(&request)
                .map(|p| p.request.login.endpoint.addr.clone())
        };
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
        assert_eq!(
            parsed.request.login.endpoint.namespace.as_deref(),
            Some("team-a")
        );
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
        assert_eq!(r.request.login.endpoint.addr, "http://env:8200");
        assert_eq!(
            r.request.login.endpoint.namespace.as_deref(),
            Some("team-b")
        );

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
            let set = overrides(&[("VAULT_ADDR", "http://x:1"), (name, "v")]);
            let e = broker.apply_overrides(&set).unwrap_err();
            let named = ["VAULT_ADDR", "WITHAWSROLE_CONFIG"];
            assert_refused(&e, ErrorKind::InvalidRequest, &named);
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
        assert!(setting_variables().contains(&crate::settings::TOKEN_ROLE_ENV));
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
    fn a_callers_own_deadline_stays_when_an_unrelated_property_is_applied() {
        // Bug: the environment's deadline used to replace the caller's own once any property
        // (here VAULT_ADDR) was applied; only the deadline's own property replaces it.
        let mut options = BrokerOptions::with_env(env_of(&[(DEADLINE_ENV, "5")])).unwrap();
        options.deadline = Duration::from_secs(3);
        let broker = CredentialBroker::new(options).unwrap();
        assert_eq!(broker.inner.deadline(), Duration::from_secs(3));
        broker
            .apply_overrides(&overrides(&[("VAULT_ADDR", "http://p:8200")]))
            .unwrap();
        assert_eq!(broker.inner.deadline(), Duration::from_secs(3));
        broker
            .apply_overrides(&overrides(&[(DEADLINE_ENV, "7")]))
            .unwrap();
        assert_eq!(broker.inner.deadline(), Duration::from_secs(7));
    }

    #[test]
    fn a_block_logs_in_as_itself_else_as_its_build_else_as_the_controller() {
        let governed = |vars: &[(&str, &str)]| {
            let mut options = BrokerOptions::with_env(env_of(vars)).unwrap();
            options.governance = Governance::Governed;
            CredentialBroker::new(options).unwrap()
        };
        let as_each_build = [
            ("WITHAWSROLE_JOB_ID_TOKEN", "build-id-token"),
            ("WITHAWSROLE_JOB_JWT_ROLE", "jenkins-builds"),
        ];
        let broker = governed(&as_each_build);
        let login = |id: Option<&str>| -> Vec<(String, String)> {
            let answer = broker.block_login(id).unwrap();
            answer.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
        };
        assert_eq!(
            login(Some("team-a-approle")),
            pairs(&[("source", "own"), ("credentials_id", "team-a-approle")])
        );
        let build = pairs(&[
            ("source", "build"),
            ("credentials_id", "build-id-token"),
            ("jwt_role", "jenkins-builds"),
        ]);
        assert_eq!(login(None), build);
        assert_eq!(login(Some("  ")), build, "a blank ID names no credential");
        // A property may turn logging in as each build off (an empty value unsets).
        broker
            .apply_overrides(&overrides(&[("WITHAWSROLE_JOB_ID_TOKEN", "")]))
            .unwrap();
        assert_eq!(login(None), pairs(&[("source", "controller")]));
        // Ungoverned (the CLI), the environment is the caller's own: never a build's login.
        let cli = broker_of(&as_each_build);
        assert_eq!(
            cli.block_login(None).unwrap(),
            [("source", "controller".to_owned())]
        );
        // Logging in as each build needs the JWT role too; a login of the block's own does not.
        let no_role = governed(&[("WITHAWSROLE_JOB_ID_TOKEN", "build-id-token")]);
        let e = no_role.block_login(None).unwrap_err();
        assert!(e.to_string().contains("WITHAWSROLE_JOB_JWT_ROLE"), "{e}");
        assert!(no_role.block_login(Some("own")).is_ok());
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
