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
//! The broker's facade (`create_child_token`, `create_child_token_within`, `revoke_child_token`)
//! calls [`create`] and [`revoke`] here, through its Vault session.
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

use serde::Serialize;

use crate::clock::{epoch_seconds, rfc3339_utc};
use crate::credentials::account_id_of;
use crate::error::{truncate, BrokerError};
use crate::fields::check_segment;
use crate::request::{
    check_known_keys, check_token, controller_value, endpoint_from, parse_request_with,
    refuse_controller_key, single_value, CredentialRequest, Parsing, VaultAuth, VaultLogin,
};
use crate::secret::SecretString;
pub use crate::settings::TOKEN_ROLE_ENV;
use crate::vault::CallError;
pub use crate::vault::REVOKE_SELF_PATH;
use crate::vault_error::VaultCall;
use crate::vault_session::VaultSession;

/// Request keys of `create_child_token` beyond [`REQUEST_KEYS`](crate::REQUEST_KEYS), with their
/// environment fallback (`token_role` only from the controller's WITHAWSROLE_TOKEN_ROLE: a pair
/// is refused).
pub const CHILD_TOKEN_KEYS: &[(&str, Option<&str>)] = &[
    ("token_ttl", None),
    ("token_policy", None),
    ("token_role", Some(TOKEN_ROLE_ENV)),
];

/// The request key of `revoke_child_token` that carries the child token.
pub const TOKEN_KEY: &str = "token";

/// A purpose's policy is this prefix and the purpose, unless `token_policy` names another.
pub const POLICY_PREFIX: &str = "withawsrole-sts-";

pub const DEFAULT_TOKEN_TTL_SECONDS: u64 = 3600;
pub const MIN_TOKEN_TTL_SECONDS: u64 = 60;
pub const MAX_TOKEN_TTL_SECONDS: u64 = 7 * 86_400;

const TTL_HINT: &str = "use seconds or d/h/m/s units, e.g. 3600, 90m, 2h, 1d; from 1m to 7d \
                        (a refresh: true block's `timeout` is its token's token_ttl)";

/// Every key a child-token call knows beyond the credential request's.
const OWN_KEYS: [&str; 4] = ["token_ttl", "token_policy", "token_role", TOKEN_KEY];

/// A validated request for a child token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildTokenRequest {
    /// The controller's login and the purpose's STS target, as for credentials: the login
    /// creates the token, the target is what the agent's CLI asks for with it.
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
        let (t, vault) = (&self.request.target, &self.request.login.endpoint);
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
            ("orphan", Cow::Borrowed(yes_no(self.orphan))),
            ("purpose", Cow::Borrowed(t.purpose.as_str())),
            ("mount", Cow::Borrowed(t.mount.as_str())),
            ("vault_role", Cow::Borrowed(t.vault_role.as_str())),
            ("sts_path", Cow::Owned(t.sts_path())),
            ("session_name", Cow::Borrowed(t.session_name.as_str())),
            ("vault_addr", Cow::Borrowed(vault.addr.as_str())),
        ];
        let optional = [
            (
                "vault_namespace",
                vault.namespace.as_deref().map(Cow::Borrowed),
            ),
            ("vault_cacert", vault.cacert.as_deref().map(Cow::Borrowed)),
            (
                "vault_skip_verify",
                vault.skip_verify.then_some(Cow::Borrowed("true")),
            ),
            ("role_arn", t.role_arn.as_deref().map(Cow::Borrowed)),
            ("ttl", t.ttl_seconds.map(|ttl| Cow::Owned(ttl.to_string()))),
            ("region", t.region.as_deref().map(Cow::Borrowed)),
            (
                "account_id",
                t.role_arn
                    .as_deref()
                    .and_then(account_id_of)
                    .map(Cow::Borrowed),
            ),
        ];
        out.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        out.push((
            "account_id_hidden",
            Cow::Borrowed(yes_no(t.hide_account_id)),
        ));
        out
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
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

/// Creates the child token `child` asks for through `session` (logging in as a credential
/// request would), within `budget`; `now` is when it was asked for.
pub(crate) async fn create(
    session: &VaultSession,
    child: &ChildTokenRequest,
    budget: Duration,
    now: SystemTime,
) -> Result<ChildToken, BrokerError> {
    let path = child.create_path();
    let body = child.body()?;
    tracing::info!(
        "creating a child token for {} at {path} (policy {}, ttl {} s)",
        child.request.sts_path(),
        child.policy,
        child.ttl_seconds
    );
    let kind = VaultCall::TokenStore {
        path: &path,
        policy: Some(&child.policy),
        token_role: child.token_role.as_deref(),
    };
    let login = &child.request.login;
    let created = session
        .call(login, budget, kind, |connection, token| {
            let (path, body) = (path.clone(), body.clone());
            async move { connection.create_token(&token, &path, body).await }
        })
        .await?;
    if created.lease_duration == 0 {
        // A token that never expires must not reach an agent.
        let own = VaultLogin {
            endpoint: login.endpoint.clone(),
            auth: VaultAuth::Token(created.token),
        };
        let _ = revoke(session, &own, budget).await;
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
        expires_at: now + lease_duration,
        orphan: created.orphan,
        request: child.request.clone(),
    })
}

/// Revokes the token `login` logs in with, with itself (`auth/token/revoke-self`). A token Vault
/// no longer knows is [`Revocation::AlreadyGone`], not an error.
pub(crate) async fn revoke(
    session: &VaultSession,
    login: &VaultLogin,
    budget: Duration,
) -> Result<Revocation, BrokerError> {
    let kind = VaultCall::TokenStore {
        path: REVOKE_SELF_PATH,
        policy: None,
        token_role: None,
    };
    session
        .call(login, budget, kind, |connection, token| async move {
            match connection.revoke_self(&token).await {
                Ok(()) => Ok(Revocation::Revoked),
                // Vault answers 403 for a token it does not know (expired or revoked).
                Err(CallError::Status { status: 403, .. }) => Ok(Revocation::AlreadyGone),
                Err(e) => Err(e),
            }
        })
        .await
}

/// Parses a child-token request; nothing here touches the network.
pub fn parse_child_token_request(
    pairs: &[(String, String)],
    with: &Parsing<'_>,
) -> Result<ChildTokenRequest, BrokerError> {
    let env = with.env;
    check_known_keys(pairs, &OWN_KEYS)?;
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
        .filter(|(k, _)| !OWN_KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    let request = parse_request_with(&base, with)?;

    let ttl_seconds = match single_value(pairs, "token_ttl")? {
        Some(raw) => parse_token_ttl(&raw)?,
        None => DEFAULT_TOKEN_TTL_SECONDS,
    };
    let policy = match single_value(pairs, "token_policy")? {
        Some(p) => checked_name("token_policy", p)?,
        None => format!("{POLICY_PREFIX}{}", request.target.purpose),
    };
    let token_role = match env(TOKEN_ROLE_ENV).map(|r| r.trim().to_owned()) {
        Some(r) if !r.is_empty() => Some(checked_name("token_role", r)?),
        _ => None,
    };
    Ok(ChildTokenRequest {
        display_name: format!("withawsrole-{}", request.target.purpose),
        meta: meta_of(&request, pairs),
        request,
        ttl_seconds,
        policy,
        token_role,
    })
}

/// A Vault policy or token role name: one path segment.
fn checked_name(key: &'static str, value: String) -> Result<String, BrokerError> {
    check_segment(key, &value)?;
    Ok(value)
}

/// What Vault shows about the token in lookups and audit logs.
fn meta_of(request: &CredentialRequest, pairs: &[(String, String)]) -> BTreeMap<String, String> {
    let t = &request.target;
    let mut meta = BTreeMap::new();
    meta.insert("purpose".to_owned(), t.purpose.clone());
    meta.insert("sts_path".to_owned(), t.sts_path());
    meta.insert("session_name".to_owned(), t.session_name.clone());
    for key in ["job", "build"] {
        if let Some((_, v)) = pairs.iter().find(|(k, v)| k == key && !v.trim().is_empty()) {
            meta.insert(key.to_owned(), truncate(v.trim(), 200));
        }
    }
    meta
}

/// Parses a revocation: the controller's Vault, and the child token as the only login.
pub fn parse_revoke_request(
    pairs: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<VaultLogin, BrokerError> {
    check_known_keys(pairs, &OWN_KEYS)?;
    let Some(token) = single_value(pairs, TOKEN_KEY)? else {
        return Err(BrokerError::invalid(
            "token",
            "",
            "pass the child token that createChildToken returned",
        ));
    };
    // Only Vault's endpoint (the controller's) and the child token matter: no purpose, no
    // purposes config, so a broken config file never keeps a child token alive.
    for (k, _) in pairs {
        refuse_controller_key(k)?;
    }
    check_token(
        "token",
        &token,
        "a Vault token is visible ASCII without spaces",
    )?;
    Ok(VaultLogin {
        endpoint: endpoint_from(&|key| controller_value(env, key))?,
        auth: VaultAuth::Token(SecretString::new(token)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::request::parse_request;
    use crate::request::Governance;
    use crate::testing::{assert_all_refused, assert_err, assert_holds, env_of, pairs, parsing};

    fn parse_child(
        p: &[(&str, &str)],
        env: &dyn Fn(&str) -> Option<String>,
        governance: Governance,
    ) -> Result<ChildTokenRequest, BrokerError> {
        parsing(env, governance, |with| {
            parse_child_token_request(&pairs(p), with)
        })
    }

    /// An ungoverned child-token request with the controller's usual settings.
    fn child(p: &[(&str, &str)]) -> Result<ChildTokenRequest, BrokerError> {
        parse_child(p, &base_env(), Governance::Ungoverned)
    }

    fn base_env() -> impl Fn(&str) -> Option<String> {
        env_of(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_ROLE_ID", "rid"),
            ("VAULT_SECRET_ID", "SECRET-ID"),
        ])
    }

    #[test]
    fn defaults_give_the_purpose_policy_and_one_hour() {
        let c = child(&[("purpose", "deploy"), ("job", "app/main"), ("build", "7")]).unwrap();
        assert_eq!(c.policy, "withawsrole-sts-deploy");
        assert_eq!(c.ttl_seconds, 3600);
        assert_eq!(c.token_role, None);
        assert_eq!(c.create_path(), "auth/token/create");
        assert_eq!(c.display_name, "withawsrole-deploy");
        let meta: Vec<(&str, &String)> = c.meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_holds(
            &meta,
            &[
                ("sts_path", "aws/sts/deploy"),
                ("job", "app/main"),
                ("build", "7"),
                ("session_name", "jenkins-app-main-7"),
            ],
        );
    }

    #[test]
    fn the_create_body_asks_for_one_policy_a_fixed_life_and_a_revocable_token() {
        let c = child(&[("purpose", "deploy"), ("token_ttl", "2h")]).unwrap();
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
        let c = parse_child(&[("purpose", "p")], &env, Governance::Ungoverned).unwrap();
        assert_eq!(c.create_path(), "auth/token/create/withawsrole");
        // The token role is the controller's choice: a request naming one is refused.
        let e = parse_child(
            &[("purpose", "p"), ("token_role", "other")],
            &env,
            Governance::Ungoverned,
        )
        .unwrap_err();
        assert_eq!(
            e,
            BrokerError::ControllerSetting {
                key: "token_role".into(),
                variable: TOKEN_ROLE_ENV
            }
        );
        assert!(e.to_string().contains("WITHAWSROLE_TOKEN_ROLE"), "{e}");
        // Even blank: a request has no say in it.
        assert_err!(
            parse_child(
                &[("purpose", "p"), ("token_role", "")],
                &env,
                Governance::Ungoverned
            ),
            BrokerError::ControllerSetting { .. }
        );
        let bad = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_TOKEN", "t"),
            (TOKEN_ROLE_ENV, "a/b"),
        ]);
        let e = parse_child(&[("purpose", "p")], &bad, Governance::Ungoverned).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn token_ttl_accepts_units_within_a_minute_and_a_week() {
        for (raw, seconds) in [
            ("3600", 3600),
            ("90m", 5400),
            ("1h30m", 5400),
            ("1d", 86_400),
            (" 60 ", 60),
        ] {
            assert_eq!(parse_token_ttl(raw).unwrap(), seconds, "{raw}");
        }
        let bad = [
            "59",
            "30s",
            "8d",
            "1m1h",
            "h",
            "1x",
            "",
            "-5",
            "99999999999999999999",
        ];
        assert_all_refused(parse_token_ttl, &bad, "from 1m to 7d");
    }

    #[test]
    fn unknown_keys_list_the_child_token_keys_too() {
        let e = child(&[("purpose", "p"), ("tokn_ttl", "1h")]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("`tokn_ttl`") && msg.contains("token_ttl") && msg.contains("vault_addr"),
            "{msg}"
        );
    }

    #[test]
    fn a_token_is_not_an_input_of_create() {
        let e = child(&[("purpose", "p"), ("token", "s.x")]).unwrap_err();
        assert!(!e.to_string().contains("s.x"), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn policy_names_are_checked() {
        let c = child(&[("purpose", "p"), ("token_policy", "team-a.sts_p")]).unwrap();
        assert_eq!(c.policy, "team-a.sts_p");
        for bad in ["a b", "../root", "root,default"] {
            let e = child(&[("purpose", "p"), ("token_policy", bad)]).unwrap_err();
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
        assert_eq!(r.endpoint.addr, "http://127.0.0.1:8200");
        let r = parse_revoke_request(&pairs(&[("token", "s.child")]), &base_env()).unwrap();
        assert_eq!(r.endpoint.addr, "http://127.0.0.1:8200");
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
        assert_eq!(r.endpoint.addr, "https://vault.internal:8200");
        assert_eq!(r.endpoint.namespace.as_deref(), Some("team-a"));
    }

    #[test]
    fn a_governed_child_token_needs_a_listed_purpose_and_an_admitted_job() {
        let config = "[purposes.deploy]\njobs = [\"team-a/**\"]\n";
        let child = |purpose: &str, job: &str| {
            let request = [("purpose", purpose), ("job", job), ("config_text", config)];
            parse_child(&request, &base_env(), Governance::Governed)
        };
        let c = child("deploy", "team-a/app/main").unwrap();
        assert_eq!(c.policy, "withawsrole-sts-deploy");
        assert_err!(
            child("admin", "team-a/app/main"),
            BrokerError::PurposeNotListed { .. }
        );
        assert_err!(
            child("deploy", "team-b/app"),
            BrokerError::JobNotAllowed { .. }
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
        assert_holds(
            &t.pairs(),
            &[
                ("token", "s.CHILD"),
                ("expiration", "2024-12-31T23:59:59Z"),
                ("token_ttl_seconds", "600"),
                ("policies", "default,withawsrole-sts-deploy"),
                ("sts_path", "aws/sts/deploy"),
                ("role_arn", "arn:aws:iam::123456789012:role/deploy"),
                ("ttl", "900"),
                ("region", "eu-west-1"),
                ("vault_namespace", "team-a"),
                ("vault_addr", "http://127.0.0.1:8200"),
            ],
        );
        assert!(!format!("{t:?}").contains("s.CHILD"));
    }
}
