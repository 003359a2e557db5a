//! The one error type of the core. Every message says what to do next; none carries a secret.

use thiserror::Error;

/// How the JNI layer (and a CLI) groups errors; each maps to one Java exception class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad input or configuration; nothing was sent, or Vault said 400.
    InvalidRequest,
    /// Vault said 403, or refused the login.
    PermissionDenied,
    /// Network, 429/5xx, sealed Vault, deadline passed: worth trying again later.
    Unavailable,
    /// A bug, or an answer this code does not understand.
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BrokerError {
    // ---- InvalidRequest -------------------------------------------------------------------
    #[error("no purpose given: call it as withAwsRole('<purpose>') {{ ... }}, e.g. withAwsRole('ecr-push')")]
    MissingPurpose,

    #[error("unknown request key `{key}`: valid keys are {valid}")]
    UnknownKey { key: String, valid: String },

    #[error("request key `{key}` is given twice: pass it once")]
    DuplicateKey { key: String },

    #[error("the request has an odd number of strings ({count}): it must alternate key, value")]
    OddPairs { count: usize },

    #[error("invalid {key} {value:?}: {hint}")]
    InvalidValue {
        key: &'static str,
        value: String,
        hint: String,
    },

    #[error(
        "no Vault address: set VAULT_ADDR in the Jenkins controller's environment (or start it \
         with -Dwithawsrole.VAULT_ADDR=...)"
    )]
    MissingVaultAddr,

    /// A request tried to set what only the controller's own settings may (docs/security.md).
    #[error(
        "request key `{key}` is a setting of the Jenkins controller, not of a pipeline: set \
         {variable} in the controller's environment or as -Dwithawsrole.{variable}; a request \
         cannot carry it"
    )]
    ControllerSetting { key: String, variable: &'static str },

    /// The purposes config does not let a pipeline choose this (role ARN, ttl, mount, ...).
    #[error("purpose `{purpose}` does not let a pipeline {what}: {fix} in {config}")]
    ChoiceNotAllowed {
        purpose: String,
        what: String,
        fix: String,
        config: String,
    },

    #[error(
        "no Vault credentials: set VAULT_TOKEN (or VAULT_TOKEN_FILE), or VAULT_ROLE_ID and \
         VAULT_SECRET_ID (or VAULT_SECRET_ID_FILE) for AppRole, or VAULT_JWT/VAULT_JWT_FILE with \
         VAULT_JWT_ROLE, or VAULT_K8S_ROLE in the Jenkins controller's environment, or give the \
         block a credential of its own (vaultCredentialsId){detail}"
    )]
    MissingVaultCredentials { detail: String },

    /// `location` is empty or like `, line 3, key `purposes.deploy.ttl``.
    #[error(
        "invalid purposes config {name}{location}: {reason}; fix the config (the library's \
         purposes.toml, or the controller's WITHAWSROLE_CONFIG file)"
    )]
    Config {
        name: String,
        location: String,
        reason: String,
    },

    #[error(
        "cannot verify the TLS certificate of Vault at {addr}: {cause}; set the controller's \
         VAULT_CACERT to the PEM file of the CA that signed Vault's certificate ({cacert}); \
         VAULT_SKIP_VERIFY=true turns verification off, for tests only"
    )]
    TlsUntrusted {
        addr: String,
        cause: String,
        /// What VAULT_CACERT is now, for the message: a path or "VAULT_CACERT is not set".
        cacert: String,
    },

    #[error("cannot read {what} {path}: {reason}; check that the Jenkins controller can read it")]
    LocalFile {
        what: &'static str,
        path: String,
        reason: String,
    },

    #[error("Vault rejected the request to {path} ({status}): {message}; {hint}")]
    VaultRejected {
        path: String,
        status: u16,
        message: String,
        hint: String,
    },

    #[error(
        "the requested lifetime is too long for {path}: {message}; lower ttl (e.g. ttl: '1h'), \
         or ask your AWS admin to raise the IAM role's MaxSessionDuration (up to 12h); note \
         that role chaining (Vault's own credentials being a role) caps sessions at 1h"
    )]
    DurationTooLong { path: String, message: String },

    // ---- PermissionDenied -----------------------------------------------------------------
    #[error(
        "purpose `{purpose}` is not in the purposes config {config}: add a reviewed \
         [purposes.{purpose}] table there to let pipelines use it (docs/security.md)"
    )]
    PurposeNotListed { purpose: String, config: String },

    #[error(
        "this controller logs in to Vault as each build, with the build's own id token (the \
         credential named by WITHAWSROLE_JOB_ID_TOKEN), and the request carries none: call the \
         step from a Pipeline build of a job that can use that credential"
    )]
    BuildLoginMissing,

    #[error(
        "job `{job}` may not use purpose `{purpose}`: {config} allows it for jobs {allowed}; \
         ask the config's owners to add this job, or use a purpose meant for it"
    )]
    JobNotAllowed {
        purpose: String,
        job: String,
        allowed: String,
        config: String,
    },

    #[error(
        "purpose `{purpose}` is limited to some jobs in {config}, and the request does not say \
         which job is asking; the step passes the running build's job name"
    )]
    UnknownJob { purpose: String, config: String },

    #[error(
        "Vault denied `update` on {path}: ask your Vault admin to add it to the policy of the \
         token/AppRole used by Jenkins"
    )]
    Forbidden { path: String },

    #[error(
        "Vault no longer accepts the Vault token (VAULT_TOKEN, or the job's credential; expired or revoked): \
         withAwsRole cannot renew or replace a static token; give the Jenkins controller a new \
         VAULT_TOKEN (e.g. a periodic token kept alive by Vault Agent), or use AppRole, JWT or \
         Kubernetes login, which log in again by themselves"
    )]
    TokenRejected { addr: String },

    #[error("Vault refused the {method} login at {path}: {message}; {hint}")]
    LoginDenied {
        method: &'static str,
        path: String,
        message: String,
        hint: &'static str,
    },

    // ---- Unavailable ----------------------------------------------------------------------
    #[error(
        "cannot reach Vault at {addr}: {cause}; check VAULT_ADDR, the network and TLS settings \
         (VAULT_CACERT)"
    )]
    Unreachable { addr: String, cause: String },

    #[error("Vault answered {status} on {path}: {message}; {hint}")]
    VaultUnavailable {
        status: u16,
        path: String,
        message: String,
        hint: String,
    },

    #[error(
        "gave up after {seconds} s and {attempts} attempt(s); last cause: {last_cause}. Try again \
         later, or raise WITHAWSROLE_DEADLINE_SECONDS if Vault is merely slow"
    )]
    DeadlineExceeded {
        seconds: u64,
        attempts: u32,
        last_cause: String,
    },

    // ---- Internal -------------------------------------------------------------------------
    #[error(
        "unexpected answer from Vault on {path}: {detail}; this is a bug or an incompatible \
         Vault: please report it"
    )]
    UnexpectedResponse { path: String, detail: String },

    #[error("internal error: {0}; please report it")]
    Internal(String),
}

impl BrokerError {
    pub fn kind(&self) -> ErrorKind {
        use BrokerError::*;
        match self {
            MissingPurpose
            | UnknownKey { .. }
            | DuplicateKey { .. }
            | OddPairs { .. }
            | InvalidValue { .. }
            | MissingVaultAddr
            | ControllerSetting { .. }
            | ChoiceNotAllowed { .. }
            | MissingVaultCredentials { .. }
            | Config { .. }
            | TlsUntrusted { .. }
            | LocalFile { .. }
            | VaultRejected { .. }
            | DurationTooLong { .. } => ErrorKind::InvalidRequest,
            Forbidden { .. }
            | TokenRejected { .. }
            | LoginDenied { .. }
            | PurposeNotListed { .. }
            | BuildLoginMissing
            | JobNotAllowed { .. }
            | UnknownJob { .. } => ErrorKind::PermissionDenied,
            Unreachable { .. } | VaultUnavailable { .. } | DeadlineExceeded { .. } => {
                ErrorKind::Unavailable
            }
            UnexpectedResponse { .. } | Internal(_) => ErrorKind::Internal,
        }
    }

    /// Worth another attempt with backoff (the retry loop also checks the deadline).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            BrokerError::Unreachable { .. } | BrokerError::VaultUnavailable { .. }
        )
    }

    pub(crate) fn invalid(key: &'static str, value: &str, hint: impl Into<String>) -> Self {
        BrokerError::InvalidValue {
            key,
            value: truncate(value, 200),
            hint: hint.into(),
        }
    }
}

/// Cuts `s` to at most `max` characters (on a char boundary), marking the cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_message_tells_what_to_ask_the_vault_admin() {
        let e = BrokerError::Forbidden {
            path: "aws/sts/ecr-push".into(),
        };
        assert_eq!(
            e.to_string(),
            "Vault denied `update` on aws/sts/ecr-push: ask your Vault admin to add it to the \
             policy of the token/AppRole used by Jenkins"
        );
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    }

    #[test]
    fn every_kind_is_reachable() {
        assert_eq!(
            BrokerError::MissingPurpose.kind(),
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            BrokerError::Unreachable {
                addr: "http://x".into(),
                cause: "refused".into()
            }
            .kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            BrokerError::Internal("x".into()).kind(),
            ErrorKind::Internal
        );
    }

    #[test]
    fn duration_error_lists_all_remedies() {
        let msg = BrokerError::DurationTooLong {
            path: "aws/sts/deploy".into(),
            message: "DurationSeconds exceeds the MaxSessionDuration".into(),
        }
        .to_string();
        for needle in ["lower ttl", "MaxSessionDuration", "role chaining", "1h"] {
            assert!(msg.contains(needle), "{needle} missing from {msg}");
        }
        // Vault cuts a ttl above max_sts_ttl silently: raising it cannot fix this error.
        assert!(!msg.contains("max_sts_ttl"), "{msg}");
    }

    #[test]
    fn only_transient_errors_are_retryable() {
        assert!(BrokerError::VaultUnavailable {
            status: 503,
            path: "p".into(),
            message: "sealed".into(),
            hint: String::new()
        }
        .is_retryable());
        assert!(!BrokerError::Forbidden { path: "p".into() }.is_retryable());
        assert!(!BrokerError::VaultRejected {
            path: "p".into(),
            status: 400,
            message: "m".into(),
            hint: String::new()
        }
        .is_retryable());
    }

    #[test]
    fn trust_boundary_refusals_say_who_decides_and_are_not_retried() {
        let controller = BrokerError::ControllerSetting {
            key: "vault_addr".into(),
            variable: "VAULT_ADDR",
        };
        assert_eq!(controller.kind(), ErrorKind::InvalidRequest);
        assert_eq!(
            controller.to_string(),
            "request key `vault_addr` is a setting of the Jenkins controller, not of a pipeline: \
             set VAULT_ADDR in the controller's environment or as -Dwithawsrole.VAULT_ADDR; a \
             request cannot carry it"
        );
        let choice = BrokerError::ChoiceNotAllowed {
            purpose: "deploy".into(),
            what: "choose the Vault mount".into(),
            fix: "leave the option out".into(),
            config: "purposes.toml".into(),
        };
        assert_eq!(choice.kind(), ErrorKind::InvalidRequest);
        assert_eq!(
            choice.to_string(),
            "purpose `deploy` does not let a pipeline choose the Vault mount: leave the option \
             out in purposes.toml"
        );
        let unlisted = BrokerError::PurposeNotListed {
            purpose: "admin".into(),
            config: "purposes.toml".into(),
        };
        let job = BrokerError::JobNotAllowed {
            purpose: "deploy".into(),
            job: "team-b/x".into(),
            allowed: "team-a/**".into(),
            config: "purposes.toml".into(),
        };
        let unknown = BrokerError::UnknownJob {
            purpose: "deploy".into(),
            config: "purposes.toml".into(),
        };
        for e in [&unlisted, &job, &unknown] {
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
            assert!(e.to_string().contains("purposes.toml"), "{e}");
        }
        assert!(unlisted.to_string().contains("[purposes.admin]"));
        assert!(job.to_string().contains("`team-b/x`") && job.to_string().contains("team-a/**"));
        for e in [&controller, &choice, &unlisted, &job, &unknown] {
            assert!(!e.is_retryable(), "{e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
