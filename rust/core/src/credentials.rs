//! What a credentials call answers: the keys, the contract's result pairs, and the counters.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cache::{CacheStatus, Expiring};
use crate::clock::{epoch_seconds, rfc3339_utc};
use crate::request::StsTarget;
use crate::secret::SecretString;
use crate::ttl::{MAX_TTL_SECONDS, MIN_TTL_SECONDS};
use crate::vault::StsAnswer;

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

impl Credentials {
    /// The keys of one STS answer for `target`, asked for at `started`.
    pub(crate) fn from_answer(answer: StsAnswer, target: &StsTarget, started: SystemTime) -> Self {
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
            session_name: target.session_name.clone(),
            lease_duration: lease,
            expires_at: started + lease,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::parse_request;
    use crate::testing::assert_holds;

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
        assert_eq!(request.target.ttl_seconds, Some(7200));
        let answer = |lease_duration| StsAnswer {
            access_key: "ASIA".into(),
            secret_key: "sk".into(),
            session_token: "st".into(),
            arn: String::new(),
            lease_duration,
        };
        let started = SystemTime::now();
        // Vault may have capped 2 h to the role's max_sts_ttl without saying so.
        let c = Credentials::from_answer(answer(None), &request.target, started);
        assert_eq!(c.lease_duration, Duration::from_secs(900));
        assert_eq!(c.expires_at, started + Duration::from_secs(900));
        let c = Credentials::from_answer(answer(Some(3600)), &request.target, started);
        assert_eq!(c.lease_duration, Duration::from_secs(3600));
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
        assert_holds(
            &issued.pairs(),
            &[
                ("account_id", "123456789012"),
                ("account_id_hidden", "true"),
                ("expiration", "2024-12-31T23:59:59Z"),
                ("expires_at_epoch_seconds", "1735689599"),
                ("cache", "miss"),
            ],
        );
        assert!(!format!("{issued:?}").contains("\"sk\""));
    }
}
