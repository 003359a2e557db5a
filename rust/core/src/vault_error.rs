//! The one table from a failed Vault call (STS, login, token store) to what the user should do.

use crate::error::{truncate, BrokerError};
use crate::request::{StsTarget, VaultAuth, VaultEndpoint};
use crate::secret::SecretString;
use crate::vault::{is_tls_trust_failure, CallError};

/// Which kind of Vault call failed: each says its path and its own remedies.
#[derive(Debug, Clone, Copy)]
pub(crate) enum VaultCall<'a> {
    /// `POST <mount>/sts/<role>`.
    Sts(&'a StsTarget),
    /// `auth/<mount>/login` (AppRole, JWT, Kubernetes).
    Login(&'a VaultAuth),
    /// `auth/token/...`: create a child token (`policy` and `token_role` known) or revoke one.
    TokenStore {
        path: &'a str,
        policy: Option<&'a str>,
        token_role: Option<&'a str>,
    },
}

impl VaultCall<'_> {
    pub(crate) fn path(&self) -> String {
        match self {
            VaultCall::Sts(target) => target.sts_path(),
            VaultCall::Login(auth) => format!("auth/{}/login", auth_mount(auth)),
            VaultCall::TokenStore { path, .. } => (*path).to_owned(),
        }
    }
}

fn auth_mount(auth: &VaultAuth) -> &str {
    match auth {
        VaultAuth::AppRole { mount, .. }
        | VaultAuth::Jwt { mount, .. }
        | VaultAuth::Kubernetes { mount, .. } => mount,
        VaultAuth::Token(_) => "token",
    }
}

/// Maps a failed call; `secrets` (the token it was sent with) are blanked out of Vault's words.
pub(crate) fn vault_error(
    e: CallError,
    endpoint: &VaultEndpoint,
    call: VaultCall<'_>,
    secrets: &[&SecretString],
) -> BrokerError {
    let path = call.path();
    let (status, errors) = match e {
        CallError::Transport(cause) => return transport_error(endpoint, cause),
        CallError::Decode(detail) => return BrokerError::UnexpectedResponse { path, detail },
        CallError::Status { status, errors } => (status, errors),
    };
    let mut secrets = secrets.to_vec();
    if let VaultCall::Login(VaultAuth::AppRole { secret_id, .. }) = call {
        secrets.push(secret_id);
    }
    let message = vault_message(&errors, &secrets);
    if let VaultCall::Sts(_) = call {
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
    }
    match (status, call) {
        (412 | 429 | 500..=599, _) => BrokerError::VaultUnavailable {
            status,
            path,
            message,
            hint: unavailable_hint(status).into(),
        },
        // A refused login is a permission problem, not a bad request.
        (_, VaultCall::Login(auth)) => BrokerError::LoginDenied {
            method: auth.method(),
            path,
            message,
            hint: login_hint(auth),
        },
        (403, _) => BrokerError::Forbidden { path },
        (_, call) => BrokerError::VaultRejected {
            hint: rejected_hint(call, status, &message),
            path,
            status,
            message,
        },
    }
}

/// No answer: an untrusted certificate is a configuration problem (not retried), anything else
/// is the network's.
pub(crate) fn transport_error(endpoint: &VaultEndpoint, cause: String) -> BrokerError {
    if is_tls_trust_failure(&cause) {
        return BrokerError::TlsUntrusted {
            addr: endpoint.addr.clone(),
            cause,
            cacert: match &endpoint.cacert {
                Some(path) => format!("now VAULT_CACERT={path}"),
                None => "VAULT_CACERT is not set".to_owned(),
            },
        };
    }
    BrokerError::Unreachable {
        addr: endpoint.addr.clone(),
        cause,
    }
}

/// Vault gave no answer within `waited`.
pub(crate) fn timeout_error(addr: &str, waited: std::time::Duration) -> BrokerError {
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

fn login_hint(auth: &VaultAuth) -> &'static str {
    match auth {
        VaultAuth::AppRole { .. } => "check VAULT_ROLE_ID and VAULT_SECRET_ID on the Jenkins controller (a secret_id can expire or run out of uses)",
        VaultAuth::Jwt { .. } => "check VAULT_JWT_ROLE and that the JWT is current and matches the role's bound claims",
        VaultAuth::Kubernetes { .. } => "check VAULT_K8S_ROLE and that the service account is bound to it",
        VaultAuth::Token(_) => "check VAULT_TOKEN",
    }
}

/// What to fix when Vault refused a call as a bad request (400, 404, ...).
fn rejected_hint(call: VaultCall<'_>, status: u16, message: &str) -> String {
    match call {
        VaultCall::Sts(target) if status == 404 => format!(
            "check that an AWS secrets engine is mounted at `{}` (mount) and that the Vault role `{}` exists (vault_role)",
            target.mount, target.vault_role
        ),
        VaultCall::Sts(target) => format!(
            "check that the Vault role `{}` exists and is an assumed_role role; pass role_arn when it lists several ARNs; check ttl",
            target.vault_role
        ),
        VaultCall::TokenStore {
            policy: Some(policy),
            token_role,
            ..
        } => token_create_hint(message, policy, token_role),
        VaultCall::TokenStore { .. } => "check VAULT_ADDR and the token (docs/refresh.md)".into(),
        VaultCall::Login(auth) => login_hint(auth).into(),
    }
}

fn token_create_hint(message: &str, policy: &str, token_role: Option<&str>) -> String {
    let lower = message.to_ascii_lowercase();
    let policy_refused = lower.contains("subset") || lower.contains("allowed");
    match token_role {
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
    use crate::request::{parse_request, CredentialRequest};

    fn request(vars: &[(&str, &str)]) -> CredentialRequest {
        let env = |k: &str| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        };
        parse_request(&[("purpose".into(), "ecr-push".into())], &env).unwrap()
    }

    fn token_request() -> CredentialRequest {
        request(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "hvs.TOKEN"),
        ])
    }

    fn status(status: u16, msg: &str) -> CallError {
        CallError::Status {
            status,
            errors: vec![msg.to_owned()],
        }
    }

    fn sts_error(e: CallError, secrets: &[&SecretString]) -> BrokerError {
        let r = token_request();
        vault_error(e, &r.login.endpoint, VaultCall::Sts(&r.target), secrets)
    }

    fn create_error(e: CallError, token_role: Option<&str>) -> BrokerError {
        let r = token_request();
        let path = match token_role {
            Some(role) => format!("auth/token/create/{role}"),
            None => "auth/token/create".to_owned(),
        };
        let call = VaultCall::TokenStore {
            path: &path,
            policy: Some("withawsrole-sts-deploy"),
            token_role,
        };
        vault_error(e, &r.login.endpoint, call, &[])
    }

    #[test]
    fn forbidden_sts_call_names_the_path_and_the_fix() {
        let e = sts_error(status(403, "permission denied"), &[]);
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
            let e = sts_error(status(400, msg), &[]);
            assert!(matches!(e, BrokerError::DurationTooLong { .. }), "{msg}: {e:?}");
            assert!(!e.is_retryable());
        }
    }

    #[test]
    fn status_codes_map_to_kinds() {
        let kind = |s| sts_error(status(s, "x"), &[]).kind();
        assert_eq!(kind(400), ErrorKind::InvalidRequest);
        assert_eq!(kind(404), ErrorKind::InvalidRequest);
        assert_eq!(kind(429), ErrorKind::Unavailable);
        assert_eq!(kind(500), ErrorKind::Unavailable);
        assert_eq!(kind(503), ErrorKind::Unavailable);
        assert_eq!(
            sts_error(CallError::Transport("refused".into()), &[]).kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            sts_error(CallError::Decode("x".into()), &[]).kind(),
            ErrorKind::Internal
        );
    }

    #[test]
    fn secrets_echoed_by_vault_are_blanked() {
        let secret = SecretString::new("hvs.TOKEN");
        let e = sts_error(status(400, "bad token hvs.TOKEN given"), &[&secret]);
        assert!(!e.to_string().contains("hvs.TOKEN"), "{e}");
    }

    #[test]
    fn refused_logins_are_permission_denied() {
        let r = request(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_ROLE_ID", "rid"),
            ("VAULT_SECRET_ID", "SECRETID"),
        ]);
        let login_error =
            |e| vault_error(e, &r.login.endpoint, VaultCall::Login(&r.login.auth), &[]);
        let e = login_error(status(400, "invalid secret id SECRETID"));
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
            login_error(status(503, "sealed")).kind(),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn refused_child_tokens_say_which_policy_or_role_to_fix() {
        let e = create_error(status(400, "child policies must be subset of parent"), None);
        let msg = e.to_string();
        assert!(
            msg.contains("`withawsrole-sts-deploy`") && msg.contains("WITHAWSROLE_TOKEN_ROLE"),
            "{msg}"
        );
        let e = create_error(
            status(400, "token policies ([\"default\" \"x\"]) must be subset of the role's allowed policies"),
            Some("withawsrole"),
        );
        assert!(e.to_string().contains("allowed_policies"), "{e}");
        let e = create_error(status(400, "unknown role withawsrole"), Some("withawsrole"));
        assert!(
            e.to_string().contains("auth/token/roles/withawsrole"),
            "{e}"
        );
        let e = create_error(status(403, "permission denied"), None);
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("auth/token/create"), "{e}");
        assert_eq!(
            create_error(status(503, "sealed"), None).kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            create_error(CallError::Transport("refused".into()), None).kind(),
            ErrorKind::Unavailable
        );
    }
}
