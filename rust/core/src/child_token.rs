//! Per-block Vault tokens for `withAwsRole(refresh: true)` (docs/refresh.md).
//!
//! The controller creates, with its own Vault login, a token that holds one per-purpose policy
//! (`withawsrole-sts-<purpose>`, which the Vault admin writes to allow `update` on one
//! `<mount>/sts/<role>`) and lives no longer than the block; the agent's `awsrole
//! credential-process` uses it whenever an AWS SDK wants fresh credentials; the controller revokes
//! it when the block ends.
//!
//! - create: `POST auth/token/create` (the child must hold a subset of the parent's policies), or
//!   `POST auth/token/create/<token_role>` (the token role's `allowed_policies` decide instead, and
//!   an `orphan` role keeps the child alive when the controller's own login token expires);
//! - revoke: `POST auth/token/revoke-self` with the child token itself, so Jenkins needs no right
//!   to revoke other tokens (`revoke-accessor` would let it revoke any token it learns of).
//!
//! ```no_run
//! use withawsrole_core::CredentialBroker;
//! let broker = CredentialBroker::from_process_env()?;
//! let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
//!     p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
//! };
//! let child = broker.create_child_token(&pairs(&[("purpose", "deploy"), ("token_ttl", "2h")]))?;
//! // ... the block runs with VAULT_TOKEN = child.token on the agent ...
//! broker.revoke_child_token(&pairs(&[("token", child.token.expose())]))?;
//! # Ok::<(), withawsrole_core::BrokerError>(())
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::broker::{account_id_of, CredentialBroker};
use crate::clock::{epoch_seconds, rfc3339_utc};
use crate::config::ConfigCache;
use crate::error::{truncate, BrokerError};
use crate::request::{parse_request_with, CredentialRequest, Governance, REQUEST_KEYS};
use crate::secret::SecretString;
use crate::vault::CallError;

/// Request keys of `create_child_token` beyond [`REQUEST_KEYS`], with their environment fallback
/// (`token_role` only from the controller's WITHAWSROLE_TOKEN_ROLE: a pair is refused).
pub const CHILD_TOKEN_KEYS: &[(&str, Option<&str>)] = &[
    ("token_ttl", None),
    ("token_policy", None),
    ("token_role", Some(TOKEN_ROLE_ENV)),
];

/// The controller's token role to create child tokens against (unset: `auth/token/create`).
pub const TOKEN_ROLE_ENV: &str = "WITHAWSROLE_TOKEN_ROLE";

/// The request key of `revoke_child_token` that carries the child token.
pub const TOKEN_KEY: &str = "token";

/// A purpose's policy is this prefix and the purpose, unless `token_policy` names another.
pub const POLICY_PREFIX: &str = "withawsrole-sts-";

pub const DEFAULT_TOKEN_TTL_SECONDS: u64 = 3600;
pub const MIN_TOKEN_TTL_SECONDS: u64 = 60;
pub const MAX_TOKEN_TTL_SECONDS: u64 = 7 * 86_400;

pub const REVOKE_SELF_PATH: &str = "auth/token/revoke-self";

const TTL_HINT: &str = "use seconds or d/h/m/s units, e.g. 3600, 90m, 2h, 1d; from 1m to 7d \
                        (the block's timeout plus a little)";

/// A validated request for a child token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildTokenRequest {
    /// The controller's login and the purpose's STS path, as for credentials.
    pub request: CredentialRequest,
    pub ttl_seconds: u64,
    pub policy: String,
    pub token_role: Option<String>,
    pub display_name: String,
    /// Token metadata Vault shows in lookups and audit logs (never a secret).
    pub meta: BTreeMap<String, String>,
}

impl ChildTokenRequest {
    /// `auth/token/create`, or `auth/token/create/<token_role>`.
    pub fn create_path(&self) -> String {
        match &self.token_role {
            Some(role) => format!("auth/token/create/{role}"),
            None => "auth/token/create".to_owned(),
        }
    }

    /// The JSON body of the create call.
    fn body(&self) -> Result<Vec<u8>, BrokerError> {
        let ttl = format!("{}s", self.ttl_seconds);
        serde_json::to_vec(&CreateBody {
            policies: [self.policy.as_str()],
            ttl: &ttl,
            explicit_max_ttl: &ttl,
            renewable: false,
            num_uses: 0,
            display_name: &self.display_name,
            meta: &self.meta,
            no_default_policy: false,
            token_type: "service",
        })
        .map_err(|e| BrokerError::Internal(format!("cannot encode the token request: {e}")))
    }
}

#[derive(Serialize)]
struct CreateBody<'a> {
    /// Only the purpose's policy (and `default`, for lookup-self and revoke-self).
    policies: [&'a str; 1],
    ttl: &'a str,
    /// With `renewable: false`, the agent cannot extend the token's life by renew-self.
    explicit_max_ttl: &'a str,
    renewable: bool,
    /// Any number of credential calls within the TTL.
    num_uses: u32,
    display_name: &'a str,
    meta: &'a BTreeMap<String, String>,
    no_default_policy: bool,
    /// Batch tokens cannot be revoked: ask for a service token.
    #[serde(rename = "type")]
    token_type: &'static str,
}

/// A child token as Vault created it. `Debug` is safe: the token is a [`SecretString`].
#[derive(Debug)]
pub struct ChildToken {
    pub token: SecretString,
    pub accessor: String,
    pub policies: Vec<String>,
    pub lease_duration: Duration,
    pub expires_at: SystemTime,
    pub orphan: bool,
    /// The credential request as resolved on the controller (config file included): what the
    /// agent's CLI must ask for with this token.
    pub request: CredentialRequest,
}

impl ChildToken {
    /// The result keys of `Broker_createChildToken` (docs/architecture.md).
    pub fn pairs(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        let r = &self.request;
        let mut out = vec![
            ("token", Cow::Borrowed(self.token.expose())),
            ("accessor", Cow::Borrowed(self.accessor.as_str())),
            ("expiration", Cow::Owned(rfc3339_utc(self.expires_at))),
            (
                "expires_at_epoch_seconds",
                Cow::Owned(epoch_seconds(self.expires_at).to_string()),
            ),
            (
                "token_ttl_seconds",
                Cow::Owned(self.lease_duration.as_secs().to_string()),
            ),
            ("policies", Cow::Owned(self.policies.join(","))),
            (
                "orphan",
                Cow::Borrowed(if self.orphan { "true" } else { "false" }),
            ),
            ("purpose", Cow::Borrowed(r.purpose.as_str())),
            ("mount", Cow::Borrowed(r.mount.as_str())),
            ("vault_role", Cow::Borrowed(r.vault_role.as_str())),
            ("sts_path", Cow::Owned(r.sts_path())),
            ("session_name", Cow::Borrowed(r.session_name.as_str())),
            ("vault_addr", Cow::Borrowed(r.vault.addr.as_str())),
        ];
        if let Some(ns) = &r.vault.namespace {
            out.push(("vault_namespace", Cow::Borrowed(ns.as_str())));
        }
        if let Some(ca) = &r.vault.cacert {
            out.push(("vault_cacert", Cow::Borrowed(ca.as_str())));
        }
        if r.vault.skip_verify {
            out.push(("vault_skip_verify", Cow::Borrowed("true")));
        }
        if let Some(arn) = &r.role_arn {
            out.push(("role_arn", Cow::Borrowed(arn.as_str())));
        }
        if let Some(ttl) = r.ttl_seconds {
            out.push(("ttl", Cow::Owned(ttl.to_string())));
        }
        if let Some(region) = &r.region {
            out.push(("region", Cow::Borrowed(region.as_str())));
        }
        if let Some(account) = r.role_arn.as_deref().and_then(account_id_of) {
            out.push(("account_id", Cow::Borrowed(account)));
        }
        out.push((
            "account_id_hidden",
            Cow::Borrowed(if r.hide_account_id { "true" } else { "false" }),
        ));
        out
    }
}

/// What a revocation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    /// Vault no longer knew the token (expired, or revoked before): nothing left to do.
    AlreadyGone,
}

impl Revocation {
    pub fn as_str(self) -> &'static str {
        match self {
            Revocation::Revoked => "revoked",
            Revocation::AlreadyGone => "already_gone",
        }
    }

    /// The result keys of `Broker_revokeChildToken`.
    pub fn pairs(self) -> Vec<(&'static str, Cow<'static, str>)> {
        vec![("revocation", Cow::Borrowed(self.as_str()))]
    }
}

impl CredentialBroker {
    /// Creates a child token for one purpose (pairs: [`REQUEST_KEYS`] and [`CHILD_TOKEN_KEYS`]),
    /// logging in as a credential request would. Blocks until answered.
    pub fn create_child_token(
        &self,
        pairs: &[(String, String)],
    ) -> Result<ChildToken, BrokerError> {
        let env = |var: &str| self.setting(var);
        let with_config = self.with_library_config(pairs);
        let pairs = with_config.as_deref().unwrap_or(pairs);
        let child = parse_child_token_request(pairs, &env, self.configs(), self.governance())?;
        let path = child.create_path();
        let body = child.body()?;
        tracing::info!(
            "creating a child token for {} at {path} (policy {}, ttl {} s)",
            child.request.sts_path(),
            child.policy,
            child.ttl_seconds
        );
        let started = self.now();
        let created = self.vault_call(&child.request, |connection, token| {
            let (path, body) = (path.clone(), body.clone());
            let child = &child;
            async move {
                let mut raw = connection
                    .post_json(&token, &path, body)
                    .await
                    .map_err(|e| create_error(e, child))?;
                let parsed = parse_created(&raw, &path);
                raw.zeroize();
                parsed
            }
        })?;
        if created.lease_duration == 0 {
            // A token that never expires must not reach an agent.
            let mut revoke = endpoint_pairs(&child.request);
            revoke.push((TOKEN_KEY.to_owned(), created.token.expose().to_owned()));
            let _ = self.revoke_child_token(&revoke);
            for (_, v) in revoke.iter_mut() {
                v.zeroize();
            }
            return Err(BrokerError::UnexpectedResponse {
                path,
                detail: "Vault created a token without a TTL (revoked it again); check the token \
                         role's and the token auth mount's TTL settings"
                    .into(),
            });
        }
        let lease_duration = Duration::from_secs(created.lease_duration);
        Ok(ChildToken {
            token: created.token,
            accessor: created.accessor,
            policies: created.policies,
            lease_duration,
            // Counted from before the call: errs on the early side.
            expires_at: started + lease_duration,
            orphan: created.orphan,
            request: child.request,
        })
    }

    /// Revokes a child token with itself (`auth/token/revoke-self`). Pairs: `token` and the Vault
    /// endpoint keys (`vault_addr`, `vault_namespace`, ...; others are accepted and ignored, so
    /// the request that created the token can be passed again). A token Vault no longer knows is
    /// [`Revocation::AlreadyGone`], not an error.
    pub fn revoke_child_token(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Revocation, BrokerError> {
        let request = parse_revoke_request(pairs, &|var: &str| self.setting(var))?;
        let addr = request.vault.addr.clone();
        self.vault_call(&request, |connection, token| {
            let addr = addr.clone();
            async move {
                match connection
                    .post_json(&token, REVOKE_SELF_PATH, b"{}".to_vec())
                    .await
                {
                    Ok(_) => Ok(Revocation::Revoked),
                    // Vault answers 403 for a token it does not know (expired or revoked).
                    Err(CallError::Status { status: 403, .. }) => Ok(Revocation::AlreadyGone),
                    Err(e) => Err(call_error(e, &addr, REVOKE_SELF_PATH, None)),
                }
            }
        })
    }
}

/// The Vault endpoint of a request as pairs (for a revocation of a token made for it).
fn endpoint_pairs(request: &CredentialRequest) -> Vec<(String, String)> {
    let v = &request.vault;
    let mut out = vec![
        ("vault_addr".to_owned(), v.addr.clone()),
        ("vault_skip_verify".to_owned(), v.skip_verify.to_string()),
    ];
    if let Some(ns) = &v.namespace {
        out.push(("vault_namespace".to_owned(), ns.clone()));
    }
    if let Some(ca) = &v.cacert {
        out.push(("vault_cacert".to_owned(), ca.clone()));
    }
    out
}

fn all_keys() -> impl Iterator<Item = &'static str> {
    REQUEST_KEYS
        .iter()
        .chain(CHILD_TOKEN_KEYS.iter())
        .map(|(k, _)| *k)
        .chain(std::iter::once(TOKEN_KEY))
}

/// Rejects keys that neither a credential request nor a child-token request knows, listing all.
fn check_keys(pairs: &[(String, String)]) -> Result<(), BrokerError> {
    for (k, _) in pairs {
        if !all_keys().any(|known| known == k) {
            return Err(BrokerError::UnknownKey {
                key: truncate(k, 64),
                valid: all_keys().collect::<Vec<_>>().join(", "),
            });
        }
    }
    Ok(())
}

/// The value of one of the keys this module adds (trimmed; empty counts as absent).
fn own_value(
    pairs: &[(String, String)],
    key: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, BrokerError> {
    let mut found = pairs.iter().filter(|(k, _)| k == key);
    let given = found.next().map(|(_, v)| v.trim().to_owned());
    if found.next().is_some() {
        return Err(BrokerError::DuplicateKey {
            key: key.to_owned(),
        });
    }
    let from_env = || {
        CHILD_TOKEN_KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, var)| *var)
            .and_then(env)
            .map(|v| v.trim().to_owned())
    };
    Ok(given
        .filter(|v| !v.is_empty())
        .or_else(from_env)
        .filter(|v| !v.is_empty()))
}

fn is_own_key(key: &str) -> bool {
    key == TOKEN_KEY || CHILD_TOKEN_KEYS.iter().any(|(k, _)| *k == key)
}

/// Parses a child-token request; nothing here touches the network.
pub fn parse_child_token_request(
    pairs: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
    configs: &ConfigCache,
    governance: Governance,
) -> Result<ChildTokenRequest, BrokerError> {
    check_keys(pairs)?;
    if pairs.iter().any(|(k, _)| k == "token_role") {
        // Which token role child tokens come from is the Vault admin's and controller's choice.
        return Err(BrokerError::ControllerSetting {
            key: "token_role".to_owned(),
            variable: TOKEN_ROLE_ENV,
        });
    }
    if pairs.iter().any(|(k, _)| k == TOKEN_KEY) {
        return Err(BrokerError::invalid(
            "token",
            "(given)",
            "a child token is created with Jenkins' own Vault login; pass `token` only to revoke one",
        ));
    }
    let base: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !is_own_key(k))
        .cloned()
        .collect();
    let request = parse_request_with(&base, env, configs, governance)?;

    let ttl_seconds = match own_value(pairs, "token_ttl", env)? {
        Some(raw) => parse_token_ttl(&raw)?,
        None => DEFAULT_TOKEN_TTL_SECONDS,
    };
    let policy = match own_value(pairs, "token_policy", env)? {
        Some(p) => check_name(
            "token_policy",
            &p,
            "a Vault policy name such as withawsrole-sts-deploy",
        )?,
        None => format!("{POLICY_PREFIX}{}", request.purpose),
    };
    let token_role = match own_value(pairs, "token_role", env)? {
        Some(r) => Some(check_name(
            "token_role",
            &r,
            "a token role name such as withawsrole (auth/token/roles/<name>)",
        )?),
        None => None,
    };

    let mut meta = BTreeMap::new();
    meta.insert("purpose".to_owned(), request.purpose.clone());
    meta.insert("sts_path".to_owned(), request.sts_path());
    meta.insert("session_name".to_owned(), request.session_name.clone());
    for key in ["job", "build"] {
        if let Some((_, v)) = pairs.iter().find(|(k, v)| k == key && !v.trim().is_empty()) {
            meta.insert(key.to_owned(), truncate(v.trim(), 200));
        }
    }
    Ok(ChildTokenRequest {
        display_name: format!("withawsrole-{}", request.purpose),
        request,
        ttl_seconds,
        policy,
        token_role,
        meta,
    })
}

/// Parses a revocation: the Vault endpoint keys with the child token as the only login.
pub fn parse_revoke_request(
    pairs: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CredentialRequest, BrokerError> {
    check_keys(pairs)?;
    let token = match own_value(pairs, TOKEN_KEY, env)? {
        Some(t) => t,
        None => {
            return Err(BrokerError::invalid(
                "token",
                "",
                "pass the child token that createChildToken returned",
            ))
        }
    };
    // Only Vault's endpoint (the controller's) and the child token matter: no purpose, no
    // purposes config, so a broken config file never keeps a child token alive.
    for (k, _) in pairs {
        crate::request::refuse_controller_key(k)?;
    }
    crate::request::check_token(
        "token",
        &token,
        "a Vault token is visible ASCII without spaces",
    )?;
    Ok(CredentialRequest {
        purpose: "revoke-self".to_owned(),
        vault: crate::request::endpoint_from(&|key| crate::request::controller_value(env, key))?,
        auth: crate::request::VaultAuth::Token(SecretString::new(token)),
        mount: crate::request::DEFAULT_MOUNT.to_owned(),
        vault_role: "revoke-self".to_owned(),
        role_arn: None,
        ttl_seconds: None,
        session_name: String::new(),
        region: None,
        hide_account_id: false,
    })
}

/// `3600`, `90m`, `2h`, `1h30m`, `1d`: units in the order d, h, m, s, each at most once.
pub fn parse_token_ttl(raw: &str) -> Result<u64, BrokerError> {
    let bad = || BrokerError::invalid("token_ttl", raw, TTL_HINT);
    let total = crate::ttl::duration_seconds(raw.trim(), true).ok_or_else(bad)?;
    if (MIN_TOKEN_TTL_SECONDS..=MAX_TOKEN_TTL_SECONDS).contains(&total) {
        Ok(total)
    } else {
        Err(bad())
    }
}

/// A Vault policy or token role name: letters, digits, `_`, `-`, `.`, at most 128 characters.
fn check_name(key: &'static str, value: &str, what: &str) -> Result<String, BrokerError> {
    let ok = (1..=128).contains(&value.len())
        && value != "."
        && value != ".."
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(BrokerError::invalid(
            key,
            value,
            format!("expected {what} (letters, digits, '_', '-', '.')"),
        ))
    }
}

// The answer of auth/token/create, read by hand like the STS answer (see vault.rs).
#[derive(Deserialize)]
struct CreatedEnvelope {
    auth: Option<CreatedAuth>,
}

#[derive(Deserialize)]
struct CreatedAuth {
    client_token: String,
    accessor: String,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    orphan: bool,
}

#[derive(Debug)]
struct Created {
    token: SecretString,
    accessor: String,
    policies: Vec<String>,
    lease_duration: u64,
    orphan: bool,
}

fn parse_created(body: &[u8], path: &str) -> Result<Created, BrokerError> {
    let unexpected = |detail: String| BrokerError::UnexpectedResponse {
        path: path.to_owned(),
        detail,
    };
    // serde's message can quote input; keep only its position, never the body.
    let envelope: CreatedEnvelope = serde_json::from_slice(body).map_err(|e| {
        unexpected(format!(
            "the response is not the expected JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let auth = envelope
        .auth
        .ok_or_else(|| unexpected("the response has no `auth`".into()))?;
    if auth.client_token.is_empty() {
        return Err(unexpected(
            "the response has an empty `auth.client_token`".into(),
        ));
    }
    Ok(Created {
        token: SecretString::new(auth.client_token),
        accessor: auth.accessor,
        policies: auth.policies,
        lease_duration: auth.lease_duration,
        orphan: auth.orphan,
    })
}

fn create_error(e: CallError, child: &ChildTokenRequest) -> BrokerError {
    call_error(
        e,
        &child.request.vault.addr,
        &child.create_path(),
        Some(child),
    )
}

/// Maps a failed token-store call to what the user should do.
fn call_error(
    e: CallError,
    addr: &str,
    path: &str,
    child: Option<&ChildTokenRequest>,
) -> BrokerError {
    let path = path.to_owned();
    match e {
        CallError::Transport(cause) => BrokerError::Unreachable {
            addr: addr.to_owned(),
            cause,
        },
        CallError::Decode(detail) => BrokerError::UnexpectedResponse { path, detail },
        CallError::Status { status, errors } => {
            let message = if errors.is_empty() {
                "(no error text)".to_owned()
            } else {
                truncate(errors.join("; ").trim(), 500)
            };
            match status {
                403 => BrokerError::Forbidden { path },
                412 | 429 | 500..=599 => BrokerError::VaultUnavailable {
                    status,
                    path,
                    message,
                    hint: "Vault is sealed, overloaded or failing; try again later, and tell your \
                           Vault admin if it persists"
                        .into(),
                },
                _ => BrokerError::VaultRejected {
                    hint: rejected_hint(&message, child),
                    path,
                    status,
                    message,
                },
            }
        }
    }
}

fn rejected_hint(message: &str, child: Option<&ChildTokenRequest>) -> String {
    let Some(child) = child else {
        return "check VAULT_ADDR and the token (docs/refresh.md)".into();
    };
    let policy = &child.policy;
    let lower = message.to_ascii_lowercase();
    let policy_refused = lower.contains("subset") || lower.contains("allowed");
    match &child.token_role {
        None if policy_refused => format!(
            "Jenkins' own Vault token must hold the policy `{policy}` to hand it to a child \
             token: ask your Vault admin to create it and add it to the token policies of \
             Jenkins' login (AppRole/JWT role), or to set up a token role whose \
             allowed_policies include it and set the controller's WITHAWSROLE_TOKEN_ROLE to its \
             name (docs/refresh.md)"
        ),
        Some(role) if policy_refused => format!(
            "the token role `{role}` does not allow the policy `{policy}`: ask your Vault admin \
             to add it (or withawsrole-sts-*) to the role's allowed_policies / \
             allowed_policies_glob (docs/refresh.md)"
        ),
        Some(role) if lower.contains("role") => format!(
            "check that the token role `{role}` exists (auth/token/roles/{role}) or unset the \
             controller's WITHAWSROLE_TOKEN_ROLE (docs/refresh.md)"
        ),
        _ => "check token_ttl, token_policy and the controller's WITHAWSROLE_TOKEN_ROLE (docs/refresh.md)"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::request::parse_request;
    use std::collections::HashMap;

    fn parse_child(
        pairs: &[(String, String)],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ChildTokenRequest, BrokerError> {
        parse_child_token_request(pairs, env, &ConfigCache::new(), Governance::Ungoverned)
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn base_env() -> impl Fn(&str) -> Option<String> {
        env_of(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_ROLE_ID", "rid"),
            ("VAULT_SECRET_ID", "SECRET-ID"),
        ])
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_give_the_purpose_policy_and_one_hour() {
        let c = parse_child(
            &pairs(&[("purpose", "deploy"), ("job", "app/main"), ("build", "7")]),
            &base_env(),
        )
        .unwrap();
        assert_eq!(c.policy, "withawsrole-sts-deploy");
        assert_eq!(c.ttl_seconds, 3600);
        assert_eq!(c.token_role, None);
        assert_eq!(c.create_path(), "auth/token/create");
        assert_eq!(c.display_name, "withawsrole-deploy");
        assert_eq!(c.meta["sts_path"], "aws/sts/deploy");
        assert_eq!(c.meta["job"], "app/main");
        assert_eq!(c.meta["build"], "7");
        assert_eq!(c.meta["session_name"], "jenkins-app-main-7");
    }

    #[test]
    fn the_create_body_asks_for_one_policy_a_fixed_life_and_a_revocable_token() {
        let c = parse_child(
            &pairs(&[("purpose", "deploy"), ("token_ttl", "2h")]),
            &base_env(),
        )
        .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&c.body().unwrap()).unwrap();
        assert_eq!(
            body["policies"],
            serde_json::json!(["withawsrole-sts-deploy"])
        );
        assert_eq!(body["ttl"], "7200s");
        assert_eq!(body["explicit_max_ttl"], "7200s");
        assert_eq!(body["renewable"], false);
        assert_eq!(body["num_uses"], 0);
        assert_eq!(body["no_default_policy"], false);
        assert_eq!(body["type"], "service");
        assert_eq!(body["meta"]["purpose"], "deploy");
        assert!(!body.to_string().contains("SECRET-ID"));
    }

    #[test]
    fn token_role_comes_from_the_controller_only() {
        let env = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_TOKEN", "t"),
            (TOKEN_ROLE_ENV, "withawsrole"),
        ]);
        let c = parse_child(&pairs(&[("purpose", "p")]), &env).unwrap();
        assert_eq!(c.create_path(), "auth/token/create/withawsrole");
        // The token role is the controller's choice: a request naming one is refused.
        let e =
            parse_child(&pairs(&[("purpose", "p"), ("token_role", "other")]), &env).unwrap_err();
        assert_eq!(
            e,
            BrokerError::ControllerSetting {
                key: "token_role".into(),
                variable: TOKEN_ROLE_ENV
            }
        );
        assert!(e.to_string().contains("WITHAWSROLE_TOKEN_ROLE"), "{e}");
        // Even blank: a request has no say in it.
        let e = parse_child(&pairs(&[("purpose", "p"), ("token_role", "")]), &env).unwrap_err();
        assert!(matches!(e, BrokerError::ControllerSetting { .. }), "{e}");
        let bad = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_TOKEN", "t"),
            (TOKEN_ROLE_ENV, "a/b"),
        ]);
        let e = parse_child(&pairs(&[("purpose", "p")]), &bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn token_ttl_accepts_units_within_a_minute_and_a_week() {
        assert_eq!(parse_token_ttl("3600").unwrap(), 3600);
        assert_eq!(parse_token_ttl("90m").unwrap(), 5400);
        assert_eq!(parse_token_ttl("1h30m").unwrap(), 5400);
        assert_eq!(parse_token_ttl("1d").unwrap(), 86_400);
        assert_eq!(parse_token_ttl(" 60 ").unwrap(), 60);
        for bad in [
            "59",
            "30s",
            "8d",
            "1m1h",
            "h",
            "1x",
            "",
            "-5",
            "99999999999999999999",
        ] {
            let e = parse_token_ttl(bad).unwrap_err();
            assert!(e.to_string().contains("from 1m to 7d"), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_keys_list_the_child_token_keys_too() {
        let e =
            parse_child(&pairs(&[("purpose", "p"), ("tokn_ttl", "1h")]), &base_env()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("`tokn_ttl`") && msg.contains("token_ttl") && msg.contains("vault_addr"),
            "{msg}"
        );
    }

    #[test]
    fn a_token_is_not_an_input_of_create() {
        let e =
            parse_child(&pairs(&[("purpose", "p"), ("token", "s.x")]), &base_env()).unwrap_err();
        assert!(!e.to_string().contains("s.x"), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn policy_names_are_checked() {
        let c = parse_child(
            &pairs(&[("purpose", "p"), ("token_policy", "team-a.sts_p")]),
            &base_env(),
        )
        .unwrap();
        assert_eq!(c.policy, "team-a.sts_p");
        for bad in ["a b", "../root", "root,default"] {
            let e = parse_child(
                &pairs(&[("purpose", "p"), ("token_policy", bad)]),
                &base_env(),
            )
            .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{bad}");
        }
    }

    #[test]
    fn revocation_logs_in_with_the_child_token_only() {
        let r = parse_revoke_request(
            &pairs(&[
                ("purpose", "deploy"),
                ("vault_role_id", "rid"),
                ("vault_secret_id", "sid"),
                ("vault_token", "controller"),
                ("token_ttl", "2h"),
                ("token", "s.child"),
            ]),
            &base_env(),
        )
        .unwrap();
        assert_eq!(r.auth, crate::request::VaultAuth::Token("s.child".into()));
        assert_eq!(r.vault.addr, "http://127.0.0.1:8200");
        let r = parse_revoke_request(&pairs(&[("token", "s.child")]), &base_env()).unwrap();
        assert_eq!(r.vault.addr, "http://127.0.0.1:8200");
        let e = parse_revoke_request(&pairs(&[("purpose", "p")]), &base_env()).unwrap_err();
        assert!(e.to_string().contains("createChildToken"), "{e}");
    }

    #[test]
    fn revocation_goes_to_the_controllers_vault_only() {
        // A child token sent to another address would hand that server a live token.
        for (key, value) in [
            ("vault_addr", "http://elsewhere:8200"),
            ("vault_namespace", "other"),
            ("vault_cacert", "/tmp/ca.pem"),
            ("vault_skip_verify", "true"),
        ] {
            let e =
                parse_revoke_request(&pairs(&[("token", "s.child"), (key, value)]), &base_env())
                    .unwrap_err();
            assert!(
                matches!(&e, BrokerError::ControllerSetting { key: k, .. } if k == key),
                "{key}: {e:?}"
            );
            assert!(!e.to_string().contains("s.child"), "{e}");
        }
        let env = env_of(&[
            ("VAULT_ADDR", "https://vault.internal:8200"),
            ("VAULT_NAMESPACE", "team-a"),
        ]);
        let r = parse_revoke_request(&pairs(&[("token", "s.child")]), &env).unwrap();
        assert_eq!(r.vault.addr, "https://vault.internal:8200");
        assert_eq!(r.vault.namespace.as_deref(), Some("team-a"));
    }

    #[test]
    fn a_governed_child_token_needs_a_listed_purpose_and_an_admitted_job() {
        let config = "[purposes.deploy]\njobs = [\"team-a/**\"]\n";
        let child = |purpose: &str, job: &str| {
            parse_child_token_request(
                &pairs(&[("purpose", purpose), ("job", job), ("config_text", config)]),
                &base_env(),
                &ConfigCache::new(),
                Governance::Governed,
            )
        };
        let c = child("deploy", "team-a/app/main").unwrap();
        assert_eq!(c.policy, "withawsrole-sts-deploy");
        let e = child("admin", "team-a/app/main").unwrap_err();
        assert!(matches!(e, BrokerError::PurposeNotListed { .. }), "{e:?}");
        let e = child("deploy", "team-b/app").unwrap_err();
        assert!(matches!(e, BrokerError::JobNotAllowed { .. }), "{e:?}");
    }

    #[test]
    fn created_answers_are_read_without_echoing_the_body() {
        let c = parse_created(
            br#"{"auth":{"client_token":"s.CHILD","accessor":"acc","policies":["default","withawsrole-sts-p"],"lease_duration":600,"orphan":true}}"#,
            "auth/token/create",
        )
        .unwrap();
        assert_eq!(c.token.expose(), "s.CHILD");
        assert_eq!(c.accessor, "acc");
        assert_eq!(c.lease_duration, 600);
        assert!(c.orphan);
        let e = parse_created(br#"{"auth":{"client_token":"s.CHILD"}}"#, "p").unwrap_err();
        assert!(!e.to_string().contains("s.CHILD"), "{e}");
        let e = parse_created(br#"{"auth": "s.CHILD"#, "p").unwrap_err();
        assert!(!e.to_string().contains("s.CHILD"), "{e}");
        assert_eq!(e.kind(), ErrorKind::Internal);
    }

    #[test]
    fn refusals_say_which_policy_or_role_to_fix() {
        let child = |extra: &[(&str, &str)]| {
            let mut p = vec![("purpose", "deploy")];
            p.extend_from_slice(extra);
            parse_child(&pairs(&p), &base_env()).unwrap()
        };
        let status = |s: u16, m: &str| CallError::Status {
            status: s,
            errors: vec![m.to_owned()],
        };
        let e = create_error(
            status(400, "child policies must be subset of parent"),
            &child(&[]),
        );
        let msg = e.to_string();
        assert!(
            msg.contains("`withawsrole-sts-deploy`") && msg.contains("WITHAWSROLE_TOKEN_ROLE"),
            "{msg}"
        );
        let with_role = parse_child(
            &pairs(&[("purpose", "deploy")]),
            &env_of(&[
                ("VAULT_ADDR", "http://127.0.0.1:8200"),
                ("VAULT_TOKEN", "t"),
                (TOKEN_ROLE_ENV, "withawsrole"),
            ]),
        )
        .unwrap();
        let e = create_error(
            status(400, "token policies ([\"default\" \"x\"]) must be subset of the role's allowed policies"),
            &with_role,
        );
        assert!(e.to_string().contains("allowed_policies"), "{e}");
        let e = create_error(status(400, "unknown role withawsrole"), &with_role);
        assert!(
            e.to_string().contains("auth/token/roles/withawsrole"),
            "{e}"
        );
        let e = create_error(status(403, "permission denied"), &child(&[]));
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("auth/token/create"), "{e}");
        assert_eq!(
            create_error(status(503, "sealed"), &child(&[])).kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            create_error(CallError::Transport("refused".into()), &child(&[])).kind(),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn child_token_pairs_carry_what_the_agent_needs() {
        let request = parse_request(
            &pairs(&[
                ("purpose", "deploy"),
                ("role_arn", "arn:aws:iam::123456789012:role/deploy"),
                ("ttl", "15m"),
                ("region", "eu-west-1"),
            ]),
            &env_of(&[
                ("VAULT_ADDR", "http://127.0.0.1:8200"),
                ("VAULT_NAMESPACE", "team-a"),
                ("VAULT_ROLE_ID", "rid"),
                ("VAULT_SECRET_ID", "SECRET-ID"),
            ]),
        )
        .unwrap();
        let t = ChildToken {
            token: "s.CHILD".into(),
            accessor: "acc".into(),
            policies: vec!["default".into(), "withawsrole-sts-deploy".into()],
            lease_duration: Duration::from_secs(600),
            expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_599),
            orphan: false,
            request,
        };
        let map: HashMap<_, _> = t.pairs().into_iter().collect();
        assert_eq!(map["token"], "s.CHILD");
        assert_eq!(map["expiration"], "2024-12-31T23:59:59Z");
        assert_eq!(map["token_ttl_seconds"], "600");
        assert_eq!(map["policies"], "default,withawsrole-sts-deploy");
        assert_eq!(map["sts_path"], "aws/sts/deploy");
        assert_eq!(map["role_arn"], "arn:aws:iam::123456789012:role/deploy");
        assert_eq!(map["ttl"], "900");
        assert_eq!(map["region"], "eu-west-1");
        assert_eq!(map["vault_namespace"], "team-a");
        assert_eq!(map["vault_addr"], "http://127.0.0.1:8200");
        assert!(!format!("{t:?}").contains("s.CHILD"));
    }
}
