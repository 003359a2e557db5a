//! The blocking facade the JNI layer (and a CLI) call: parse, cache, single-flight, fetch.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;

use crate::cache::{CacheStatus, Expiring, RefreshPolicy, SingleFlightCache};
use crate::clock::{
    epoch_seconds, rfc3339_utc, Clock, Jitter, Sleeper, SplitMixJitter, SystemClock, TokioSleeper,
};
use crate::error::{truncate, BrokerError};
use crate::request::{
    parse_request, process_env, CacheKey, CredentialRequest, EnvLookup, VaultAuth, VaultEndpoint,
    REQUEST_KEYS,
};
use crate::retry::{remaining, Retrier, RetryPolicy};
use crate::secret::SecretString;
use crate::ttl::MIN_TTL_SECONDS;
use crate::vault::{CallError, LoginAnswer, StsAnswer, VaultConnection};

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
        ];
        if let Some(r) = &self.region {
            out.push(("region", Cow::Borrowed(r.as_str())));
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
    /// Fallbacks for missing `vault_*` request keys (read once, when the broker is built).
    pub env: Arc<EnvLookup>,
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
        let deadline = match env(DEADLINE_ENV) {
            None => DEFAULT_DEADLINE,
            Some(s) => match s.trim().parse::<u64>() {
                Ok(n) if (1..=3600).contains(&n) => Duration::from_secs(n),
                _ => {
                    return Err(BrokerError::invalid(
                        "WITHAWSROLE_DEADLINE_SECONDS",
                        &s,
                        "use a whole number of seconds from 1 to 3600 (default 60)",
                    ))
                }
            },
        };
        Ok(BrokerOptions {
            env,
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

/// A Vault login token with its lifetime.
struct LoginToken {
    token: SecretString,
    expires_at: SystemTime,
    lease: Duration,
}

impl Expiring for LoginToken {
    fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
    fn lease_duration(&self) -> Duration {
        self.lease
    }
}

struct Inner {
    options: BrokerOptions,
    /// The fallback variables of REQUEST_KEYS, read once: a JVM's environment never changes,
    /// and reading it on every cache hit would cost more than the hit itself.
    env_snapshot: HashMap<&'static str, String>,
    credentials: SingleFlightCache<CacheKey, Credentials>,
    logins: SingleFlightCache<String, LoginToken>,
    connections: Mutex<HashMap<VaultEndpoint, Arc<VaultConnection>>>,
    permits: Semaphore,
    counters: Counters,
}

/// Owns one small tokio runtime; every method blocks the calling (JVM) thread.
pub struct CredentialBroker {
    runtime: tokio::runtime::Runtime,
    inner: Arc<Inner>,
}

impl CredentialBroker {
    /// A broker for the process environment (what the JNI library uses).
    pub fn from_process_env() -> Result<Self, BrokerError> {
        Self::new(BrokerOptions::from_process_env()?)
    }

    pub fn new(options: BrokerOptions) -> Result<Self, BrokerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.worker_threads.max(1))
            .thread_name("withawsrole-worker")
            .enable_all()
            .build()
            .map_err(|e| BrokerError::Internal(format!("cannot start the tokio runtime: {e}")))?;
        let env_snapshot = REQUEST_KEYS
            .iter()
            .filter_map(|(_, var)| *var)
            .filter_map(|var| (options.env)(var).map(|value| (var, value)))
            .collect();
        let inner = Inner {
            env_snapshot,
            credentials: SingleFlightCache::new(options.refresh),
            logins: SingleFlightCache::new(options.refresh),
            connections: Mutex::new(HashMap::new()),
            permits: Semaphore::new(options.max_concurrent_vault_calls.max(1)),
            counters: Counters::default(),
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
        let env = |var: &str| self.inner.env_snapshot.get(var).cloned();
        let request = parse_request(pairs, &env)?;
        let key = request.cache_key();
        let now = self.inner.options.clock.now();
        if let Some(credentials) = self.inner.credentials.get_fresh(&key, now) {
            bump(&self.inner.counters.cache_hits);
            return Ok(IssuedCredentials {
                credentials,
                cache: CacheStatus::Hit,
                region: request.region,
            });
        }
        self.runtime
            .block_on(self.inner.clone().credentials_slow(request, key))
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
    async fn credentials_slow(
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
            budget: self.options.deadline,
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
        let deadline = self.options.clock.now() + self.options.deadline;
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
                other => return other,
            }
        }
    }

    async fn sts_once(
        &self,
        request: &CredentialRequest,
        connection: &VaultConnection,
        token: &SecretString,
        deadline: SystemTime,
    ) -> Result<Credentials, BrokerError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| BrokerError::Internal("the Vault call limiter was closed".into()))?;
        let left = remaining(&*self.options.clock, deadline)
            .ok_or_else(|| timeout_error(&request.vault.addr, self.options.deadline))?;
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
            };
            return Ok((Arc::new(given), false));
        }
        let clock = self.options.clock.clone();
        let (token, status) = self
            .logins
            .get_or_load(
                &login_key(request),
                || clock.now(),
                &*self.options.jitter,
                || async {
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

    async fn login_once(
        &self,
        request: &CredentialRequest,
        connection: &VaultConnection,
        deadline: SystemTime,
    ) -> Result<LoginToken, BrokerError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| BrokerError::Internal("the Vault call limiter was closed".into()))?;
        let left = remaining(&*self.options.clock, deadline)
            .ok_or_else(|| timeout_error(&request.vault.addr, self.options.deadline))?;
        bump(&self.counters.vault_logins);
        let started = self.options.clock.now();
        let answer: LoginAnswer =
            match tokio::time::timeout(left, connection.login(&request.auth)).await {
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
    // lease_duration (unusual fronts), assume the requested ttl, else the STS minimum.
    let lease = Duration::from_secs(
        answer
            .lease_duration
            .unwrap_or_else(|| u64::from(request.ttl_seconds.unwrap_or(MIN_TTL_SECONDS))),
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
    lower.contains("maxsessionduration")
        || lower.contains("durationseconds")
        || lower.contains("max_sts_ttl")
        || lower.contains("maximum sts ttl")
        || (lower.contains("ttl") && lower.contains("exceeds"))
}

fn unavailable_hint(status: u16) -> &'static str {
    match status {
        429 => "Vault is rate-limiting (or a standby answered); retried with backoff, try again later",
        503 => "Vault is sealed or in maintenance; ask your Vault admin, then try again",
        412 => "a Vault standby is behind; try again",
        _ => "Vault or AWS failed on its side; try again later, and tell your Vault admin if it persists",
    }
}

/// Maps a failed `<mount>/sts/<role>` call to what the user should do.
fn sts_error(e: CallError, request: &CredentialRequest, secrets: &[&SecretString]) -> BrokerError {
    let path = request.sts_path();
    match e {
        CallError::Transport(cause) => BrokerError::Unreachable {
            addr: request.vault.addr.clone(),
            cause,
        },
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
        CallError::Transport(cause) => BrokerError::Unreachable {
            addr: request.vault.addr.clone(),
            cause,
        },
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
            "ttl of 7200 exceeds max_sts_ttl of 3600",
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
                "region"
            ]
        );
        let map: HashMap<_, _> = issued.pairs().into_iter().collect();
        assert_eq!(map["expiration"], "2024-12-31T23:59:59Z");
        assert_eq!(map["expires_at_epoch_seconds"], "1735689599");
        assert_eq!(map["cache"], "miss");
        assert!(!format!("{issued:?}").contains("\"sk\""));
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
        let broker =
            CredentialBroker::new(BrokerOptions::with_env(Arc::new(|_: &str| None)).unwrap())
                .unwrap();
        let e = broker
            .credentials(&[
                ("purpose".into(), "p".into()),
                ("vault_addr".into(), "http://127.0.0.1:1".into()),
            ])
            .unwrap_err();
        assert!(
            matches!(e, BrokerError::MissingVaultCredentials { .. }),
            "{e}"
        );
        assert_eq!(broker.stats(), Stats::default());
    }

    #[test]
    fn an_unreachable_vault_is_unavailable_after_retries() {
        let mut o = BrokerOptions::with_env(Arc::new(|k: &str| {
            (k == DEADLINE_ENV).then(|| "2".to_owned())
        }))
        .unwrap();
        o.retry.base = Duration::from_millis(10);
        let broker = CredentialBroker::new(o).unwrap();
        let e = broker
            .credentials(&[
                ("purpose".into(), "p".into()),
                ("vault_addr".into(), "http://127.0.0.1:9".into()),
                ("vault_token".into(), "t".into()),
            ])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.to_string().contains("127.0.0.1:9"), "{e}");
        assert!(broker.stats().retries >= 1);
    }
}
