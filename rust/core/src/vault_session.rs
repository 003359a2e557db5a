//! A Vault session: every call to Vault (STS, child tokens, revocations) goes through
//! [`VaultSession::call`], which logs in (a single-flight, cached login token, renewed while
//! Vault allows), takes a place among the bounded concurrent calls, retries what is transient
//! within the deadline, logs in again once when a cached login token was refused, and maps
//! Vault's answer through the one error table (`vault_error`). Every wait goes through the
//! injected clock and sleeper.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::cache::{CacheStatus, Expiring, RefreshPolicy, SingleFlightCache};
use crate::clock::{Clock, Jitter, Sleeper};
use crate::error::BrokerError;
use crate::request::{VaultAuth, VaultEndpoint, VaultLogin};
use crate::retry::{remaining, Retrier, RetryPolicy};
use crate::secret::SecretString;
use crate::vault::{login_jwt, CallError, VaultConnection};
use crate::vault_error::{timeout_error, vault_error, VaultCall};

/// How long a `lookup-self` that explains a refused static token may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A Vault login token with its lifetime.
pub(crate) struct LoginToken {
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

/// Counters of the calls a session made (since it started).
#[derive(Default)]
pub(crate) struct SessionCounters {
    /// HTTP calls to `<mount>/sts/<role>`, including retries.
    pub(crate) sts_calls: AtomicU64,
    pub(crate) logins: AtomicU64,
    pub(crate) retries: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The injected time, sleep and randomness a session waits and retries with.
#[derive(Clone)]
pub(crate) struct Timing {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sleeper: Arc<dyn Sleeper>,
    pub(crate) jitter: Arc<dyn Jitter>,
    pub(crate) retry: RetryPolicy,
}

pub(crate) struct VaultSession {
    timing: Timing,
    logins: SingleFlightCache<String, LoginToken>,
    connections: Mutex<HashMap<VaultEndpoint, Arc<VaultConnection>>>,
    permits: Semaphore,
    pub(crate) counters: SessionCounters,
}

/// One call's login, time limit and kind, as its attempts share them.
struct CallPlan<'a> {
    login: &'a VaultLogin,
    connection: Arc<VaultConnection>,
    deadline: SystemTime,
    budget: Duration,
    kind: VaultCall<'a>,
}

impl VaultSession {
    pub(crate) fn new(timing: Timing, refresh: RefreshPolicy, max_concurrent_calls: usize) -> Self {
        VaultSession {
            timing,
            logins: SingleFlightCache::new(refresh),
            connections: Mutex::new(HashMap::new()),
            permits: Semaphore::new(max_concurrent_calls.max(1)),
            counters: SessionCounters::default(),
        }
    }

    /// Forgets the cached login tokens.
    pub(crate) fn clear_logins(&self) {
        self.logins.clear();
    }

    /// Runs `op` with a connection to `login`'s Vault and the token it logs in with, within
    /// `budget`: transient failures are retried, a 403 on a cached login token is answered by
    /// one fresh login, and a 403 on a static token is explained (refused token, or policy).
    /// `op` sees the raw [`CallError`]; what it returns is mapped as a `kind` call.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        login: &VaultLogin,
        budget: Duration,
        kind: VaultCall<'_>,
        op: F,
    ) -> Result<T, BrokerError>
    where
        F: Fn(Arc<VaultConnection>, SecretString) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let plan = CallPlan {
            login,
            connection: self.connection(&login.endpoint)?,
            deadline: self.timing.clock.now() + budget,
            budget,
            kind,
        };
        let mut relogged = false;
        loop {
            let (token, from_cache) = self.token(&plan).await?;
            let result = self
                .retrier(&plan)
                .run(
                    || self.attempt(&plan, &token.token, &op),
                    || bump(&self.counters.retries),
                )
                .await;
            match result {
                // A cached login token may have been revoked or expired early: log in once more.
                // (A token fresh from its login is trusted: then the 403 is the policy's answer.)
                Err(BrokerError::Forbidden { .. }) if from_cache && !relogged => {
                    tracing::info!("Vault said 403 with a cached login token; logging in again");
                    self.logins.invalidate(&login.login_key());
                    relogged = true;
                }
                // A static token has nothing to log in again with. Vault says 403 both for a
                // policy denial and for a dead token: ask which, so the message says what to do.
                Err(e @ BrokerError::Forbidden { .. }) if !from_cache => {
                    return Err(self.explain_static_403(&plan, e).await);
                }
                other => return other,
            }
        }
    }

    /// One attempt: a place among the concurrent calls, then `op` within the time left.
    async fn attempt<T, F, Fut>(
        &self,
        plan: &CallPlan<'_>,
        token: &SecretString,
        op: &F,
    ) -> Result<T, BrokerError>
    where
        F: Fn(Arc<VaultConnection>, SecretString) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let (_permit, left) = self.slot(plan).await?;
        if let VaultCall::Sts(_) = plan.kind {
            bump(&self.counters.sts_calls);
        }
        match self
            .within(left, op(plan.connection.clone(), token.clone()))
            .await
        {
            Some(Ok(answer)) => Ok(answer),
            Some(Err(e)) => Err(vault_error(e, &plan.login.endpoint, plan.kind, &[token])),
            None => Err(timeout_error(&plan.login.endpoint.addr, left)),
        }
    }

    /// `call`'s answer if it comes within `limit` on the injected sleeper, else None.
    async fn within<T>(&self, limit: Duration, call: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            // An answer that is there wins, and starts no wait at all (a manual clock's sleep
            // moves the clock when it starts).
            biased;
            answer = call => Some(answer),
            () = async { self.timing.sleeper.sleep(limit).await } => None,
        }
    }

    fn retrier(&self, plan: &CallPlan<'_>) -> Retrier<'_> {
        Retrier {
            policy: self.timing.retry,
            clock: &*self.timing.clock,
            sleeper: &*self.timing.sleeper,
            jitter: &*self.timing.jitter,
            deadline: plan.deadline,
            budget: plan.budget,
        }
    }

    async fn explain_static_403(&self, plan: &CallPlan<'_>, forbidden: BrokerError) -> BrokerError {
        let VaultAuth::Token(token) = &plan.login.auth else {
            return forbidden;
        };
        match self
            .within(LOOKUP_TIMEOUT, plan.connection.lookup_self(token))
            .await
        {
            Some(Err(CallError::Status {
                status: 401 | 403, ..
            })) => BrokerError::TokenRejected {
                addr: plan.login.endpoint.addr.clone(),
            },
            _ => forbidden,
        }
    }

    /// A place among the bounded concurrent Vault calls, and the time left before the deadline
    /// to use it: every call to Vault (login, renewal, STS, child tokens) waits here first.
    async fn slot(
        &self,
        plan: &CallPlan<'_>,
    ) -> Result<(SemaphorePermit<'_>, Duration), BrokerError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| BrokerError::Internal("the Vault call limiter was closed".into()))?;
        let left = remaining(&*self.timing.clock, plan.deadline)
            .ok_or_else(|| timeout_error(&plan.login.endpoint.addr, plan.budget))?;
        Ok((permit, left))
    }

    /// The Vault token for a call: the given one, or a cached (single-flight) login; and
    /// whether it came from the login cache (only such a token may be stale).
    async fn token(&self, plan: &CallPlan<'_>) -> Result<(Arc<LoginToken>, bool), BrokerError> {
        if let VaultAuth::Token(t) = &plan.login.auth {
            let given = LoginToken {
                token: t.clone(),
                expires_at: SystemTime::UNIX_EPOCH,
                lease: Duration::ZERO,
                renewable: false,
                full_lease: Duration::ZERO,
            };
            return Ok((Arc::new(given), false));
        }
        let key = plan.login.login_key();
        // The token being replaced, if its refresh time has come: renewing it spares a login
        // (an AppRole secret_id may have few uses; a build's JWT may be gone).
        let previous = self.logins.get_stale(&key);
        let (token, status) = self
            .logins
            .get_or_load(&key, &*self.timing.clock, &*self.timing.jitter, || async {
                if let Some(renewed) = self.renew(plan, previous).await {
                    return Ok(renewed);
                }
                self.retrier(plan)
                    .run(|| self.login_once(plan), || bump(&self.counters.retries))
                    .await
            })
            .await?;
        Ok((token, status == CacheStatus::Hit))
    }

    /// `renew-self` for a renewable login token that has not expired yet, through the call
    /// slot; `None` means log in instead (not renewable, refused, or Vault's max TTL leaves too
    /// little to be worth it).
    async fn renew(
        &self,
        plan: &CallPlan<'_>,
        previous: Option<Arc<LoginToken>>,
    ) -> Option<LoginToken> {
        let previous = previous?;
        let now = self.timing.clock.now();
        if !previous.renewable || now >= previous.expires_at {
            return None;
        }
        let (_permit, left) = self.slot(plan).await.ok()?;
        let answer = match self
            .within(left, plan.connection.renew_self(&previous.token))
            .await?
        {
            Ok(a) => a,
            Err(e) => {
                let e = vault_error(
                    e,
                    &plan.login.endpoint,
                    VaultCall::Login(&plan.login.auth),
                    &[],
                );
                tracing::info!("renewing the Vault login token failed ({e}); logging in again");
                return None;
            }
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

    async fn login_once(&self, plan: &CallPlan<'_>) -> Result<LoginToken, BrokerError> {
        let (_permit, left) = self.slot(plan).await?;
        let auth = &plan.login.auth;
        // A missing or empty JWT file is the caller's to fix, found before anything is sent.
        let jwt = login_jwt(auth)?;
        bump(&self.counters.logins);
        let started = self.timing.clock.now();
        let endpoint = &plan.login.endpoint;
        let answer = match self
            .within(left, plan.connection.login(auth, jwt.as_ref()))
            .await
        {
            Some(Ok(a)) => a,
            Some(Err(e)) => return Err(vault_error(e, endpoint, VaultCall::Login(auth), &[])),
            None => return Err(timeout_error(&endpoint.addr, left)),
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

/// Near its max TTL Vault renews a token for ever less time; below half of what the login gave,
/// a fresh login is worth more than a string of ever shorter renewals.
fn renewal_worth_keeping(full_lease: Duration, renewed: Duration) -> bool {
    !renewed.is_zero() && renewed * 2 >= full_lease
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{FixedJitter, ManualClock};
    use crate::error::ErrorKind;
    use crate::request::parse_request;

    fn session(clock: &ManualClock) -> VaultSession {
        let timing = Timing {
            clock: Arc::new(clock.clone()),
            sleeper: Arc::new(clock.clone()),
            jitter: Arc::new(FixedJitter(1.0)),
            retry: RetryPolicy::default(),
        };
        VaultSession::new(timing, RefreshPolicy::default(), 2)
    }

    fn token_login() -> VaultLogin {
        let env = |k: &str| match k {
            // Nothing listens here; the tests' calls never reach the network anyway.
            "VAULT_ADDR" => Some("http://127.0.0.1:9".to_owned()),
            "VAULT_TOKEN" => Some("hvs.TOKEN".to_owned()),
            _ => None,
        };
        parse_request(&[("purpose".into(), "p".into())], &env)
            .unwrap()
            .login
    }

    /// A manual clock, a session on it, and a token login.
    fn session_with_token() -> (ManualClock, VaultSession, VaultLogin) {
        let clock = ManualClock::at_epoch_seconds(1000);
        let session = session(&clock);
        (clock, session, token_login())
    }

    const STORE: VaultCall<'static> = VaultCall::TokenStore {
        path: "auth/token/create",
        policy: None,
        token_role: None,
    };

    #[test]
    fn renewals_near_the_max_ttl_give_way_to_a_login() {
        let s = Duration::from_secs;
        assert!(renewal_worth_keeping(s(3600), s(3600)));
        assert!(renewal_worth_keeping(s(3600), s(1800)));
        assert!(!renewal_worth_keeping(s(3600), s(1799)));
        assert!(!renewal_worth_keeping(s(3600), Duration::ZERO));
    }

    #[tokio::test]
    async fn a_vault_that_never_answers_times_out_on_the_injected_clock() {
        let (clock, session, login) = session_with_token();
        let out: Result<(), _> = session
            .call(&login, Duration::from_secs(10), STORE, |_, _| {
                std::future::pending()
            })
            .await;
        let e = out.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.to_string().contains("no answer within 10 s"), "{e}");
        // The first attempt waited the whole budget (on the manual clock: no real time passed).
        assert_eq!(clock.sleeps()[0], Duration::from_secs(10));
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_counted() {
        let (clock, session, login) = session_with_token();
        let calls = AtomicU64::new(0);
        let out = session
            .call(&login, Duration::from_secs(60), STORE, |_, token| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    assert_eq!(token.expose(), "hvs.TOKEN");
                    match n {
                        0 => Err(CallError::Status {
                            status: 503,
                            errors: vec!["sealed".into()],
                        }),
                        _ => Ok(n),
                    }
                }
            })
            .await;
        assert_eq!(out.unwrap(), 1);
        assert_eq!(session.counters.retries.load(Ordering::SeqCst), 1);
        // Not an STS call: the stats' vault_calls count STS calls only.
        assert_eq!(session.counters.sts_calls.load(Ordering::SeqCst), 0);
        assert_eq!(clock.sleeps(), vec![Duration::from_millis(200)]);
    }

    #[tokio::test]
    async fn errors_go_through_the_one_table_with_the_token_blanked() {
        let (_, session, login) = session_with_token();
        let out: Result<(), _> = session
            .call(&login, Duration::from_secs(60), STORE, |_, _| async {
                Err(CallError::Status {
                    status: 400,
                    errors: vec!["bad token hvs.TOKEN".into()],
                })
            })
            .await;
        let e = out.unwrap_err();
        assert!(matches!(e, BrokerError::VaultRejected { .. }), "{e:?}");
        assert!(!e.to_string().contains("hvs.TOKEN"), "{e}");
    }
}
