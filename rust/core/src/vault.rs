//! Talking to Vault: one connection per Vault endpoint, login, and `POST <mount>/sts/<role>`.
//! Errors come back as [`CallError`]; `broker` turns them into user-facing [`BrokerError`]s.

use std::time::Duration;

use rustify::endpoint::Endpoint;
use serde::Deserialize;
use vaultrs::api::aws::requests::GenerateCredentialsStsRequest;
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use zeroize::Zeroize;

use crate::error::{truncate, BrokerError};
use crate::request::{JwtSource, VaultAuth, VaultEndpoint};
use crate::secret::SecretString;

/// A transport-level request timeout; the broker's deadline usually bounds a call sooner.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong with one HTTP call, before any interpretation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Vault answered with an error status; `errors` is its `{"errors": [...]}` list
    /// (or the start of the body when it was not JSON).
    Status { status: u16, errors: Vec<String> },
    /// No answer: connection refused, TLS failure, reset, timeout.
    Transport(String),
    /// An answer we cannot read.
    Decode(String),
}

/// What `POST <mount>/sts/<role>` gave.
#[derive(Debug)]
pub struct StsAnswer {
    pub access_key: String,
    pub secret_key: SecretString,
    pub session_token: SecretString,
    pub arn: String,
    /// Seconds; `None` when Vault did not say.
    pub lease_duration: Option<u64>,
}

/// A Vault token obtained by logging in.
#[derive(Debug)]
pub struct LoginAnswer {
    pub token: SecretString,
    /// Seconds; 0 means the token does not expire.
    pub lease_duration: u64,
}

// The envelope of a Vault response, read by hand: vaultrs' `EndpointResult` insists on fields
// (lease_id, request_id, renewable) that some Vault fronts omit, and its typed aws response has
// neither `lease_duration` (outside `data`) nor `session_token` (Vault >= 1.16).
#[derive(Deserialize)]
struct StsEnvelope {
    #[serde(default)]
    lease_duration: Option<u64>,
    data: Option<StsData>,
}

#[derive(Deserialize)]
struct StsData {
    access_key: Option<String>,
    secret_key: Option<String>,
    session_token: Option<String>,
    security_token: Option<String>,
    arn: Option<String>,
}

/// A client for one Vault endpoint (address, namespace, TLS settings), shared by all requests.
pub struct VaultConnection {
    client: VaultClient,
    namespace: Option<String>,
}

impl VaultConnection {
    pub fn connect(endpoint: &VaultEndpoint) -> Result<Self, BrokerError> {
        // Every setting is explicit: vaultrs would otherwise fill gaps from the process env.
        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(&endpoint.addr)
            .token("")
            .verify(!endpoint.skip_verify)
            .ca_certs(endpoint.cacert.iter().cloned().collect())
            .identity(None)
            .timeout(Some(HTTP_TIMEOUT))
            .namespace(endpoint.namespace.clone());
        let settings = settings
            .build()
            .map_err(|e| BrokerError::invalid("vault_addr", &endpoint.addr, e.to_string()))?;
        let client = VaultClient::new(settings).map_err(|e| match e {
            ClientError::FileReadError { source, path } => BrokerError::LocalFile {
                what: "the Vault CA certificate (VAULT_CACERT)",
                path,
                reason: source.to_string(),
            },
            ClientError::ParseCertificateError { path, .. } => BrokerError::LocalFile {
                what: "the Vault CA certificate (VAULT_CACERT)",
                path,
                reason: "not a PEM certificate bundle".into(),
            },
            other => BrokerError::Internal(format!("cannot build the Vault client: {other}")),
        })?;
        Ok(VaultConnection {
            client,
            namespace: endpoint.namespace.clone(),
        })
    }

    /// `POST <mount>/sts/<role>` with `role_arn`, `role_session_name`, `ttl`.
    ///
    /// vaultrs' `aws::roles::credentials_sts` returns only `data` and drops the envelope's
    /// `lease_duration`, which is the one reliable expiry we get. So we build vaultrs' own
    /// endpoint struct, run it through rustify's `Endpoint::exec` with vaultrs' middleware
    /// (API version, token and namespace headers), and read the raw body ourselves.
    pub async fn sts(
        &self,
        token: &SecretString,
        mount: &str,
        role: &str,
        role_arn: Option<&str>,
        ttl_seconds: Option<u32>,
        session_name: &str,
    ) -> Result<StsAnswer, CallError> {
        let endpoint = GenerateCredentialsStsRequest {
            mount: mount.to_owned(),
            name: role.to_owned(),
            role_arn: role_arn.map(str::to_owned),
            role_session_name: Some(session_name.to_owned()),
            ttl: ttl_seconds.map(|s| format!("{s}s")),
        };
        let mut middleware = EndpointMiddleware {
            token: token.expose().to_owned(),
            version: "v1".to_owned(),
            wrap: None,
            namespace: self.namespace.clone(),
        };
        let result = endpoint
            .with_middleware(&middleware)
            .exec(&self.client.http)
            .await;
        middleware.token.zeroize();
        let mut body = result.map_err(from_rustify)?.response.into_body();
        let parsed = parse_sts(&body);
        body.zeroize();
        parsed
    }

    /// Logs in with AppRole, JWT or Kubernetes (not called for plain tokens).
    pub async fn login(&self, auth: &VaultAuth) -> Result<LoginAnswer, CallError> {
        let info = match auth {
            VaultAuth::Token(t) => {
                return Ok(LoginAnswer {
                    token: t.clone(),
                    lease_duration: 0,
                })
            }
            VaultAuth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                vaultrs::auth::approle::login(&self.client, mount, role_id, secret_id.expose())
                    .await
            }
            VaultAuth::Jwt { mount, role, jwt } => {
                let jwt = read_jwt(jwt)?;
                vaultrs::auth::oidc::login(&self.client, mount, jwt.expose(), Some(role.clone()))
                    .await
            }
            VaultAuth::Kubernetes { mount, role, jwt } => {
                let jwt = read_jwt(jwt)?;
                vaultrs::auth::kubernetes::login(&self.client, mount, role, jwt.expose()).await
            }
        };
        let mut info = info.map_err(from_vaultrs)?;
        let answer = LoginAnswer {
            token: SecretString::new(std::mem::take(&mut info.client_token)),
            lease_duration: info.lease_duration,
        };
        Ok(answer)
    }
}

fn read_jwt(source: &JwtSource) -> Result<SecretString, CallError> {
    match source {
        JwtSource::Inline(j) => Ok(j.clone()),
        JwtSource::File(path) => std::fs::read_to_string(path)
            .map(|s| SecretString::new(s.trim().to_owned()))
            .map_err(|e| {
                CallError::Decode(format!("cannot read the JWT file {}: {e}", path.display()))
            }),
    }
}

fn parse_sts(body: &[u8]) -> Result<StsAnswer, CallError> {
    let envelope: StsEnvelope = serde_json::from_slice(body)
        // serde's message can quote input; keep only its position, never the body.
        .map_err(|e| {
            CallError::Decode(format!(
                "the response is not the expected JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
    let data = envelope
        .data
        .ok_or_else(|| CallError::Decode("the response has no `data`".into()))?;
    let missing = |f: &str| CallError::Decode(format!("the response has no `data.{f}`"));
    let token = data
        .session_token
        .filter(|t| !t.is_empty())
        .or(data.security_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| missing("session_token` or `data.security_token"))?;
    Ok(StsAnswer {
        access_key: data.access_key.ok_or_else(|| missing("access_key"))?,
        secret_key: SecretString::new(data.secret_key.ok_or_else(|| missing("secret_key"))?),
        session_token: SecretString::new(token),
        arn: data.arn.unwrap_or_default(),
        lease_duration: envelope.lease_duration.filter(|d| *d > 0),
    })
}

fn from_vaultrs(e: ClientError) -> CallError {
    match e {
        ClientError::APIError { code, errors } => CallError::Status {
            status: code,
            errors,
        },
        ClientError::RestClientError { source } => from_rustify(source),
        // Display only: the Debug/source of parse errors can hold the response body (a token).
        other => CallError::Decode(other.to_string()),
    }
}

fn from_rustify(e: rustify::errors::ClientError) -> CallError {
    use rustify::errors::ClientError as R;
    match e {
        R::ServerResponseError { code, content } => CallError::Status {
            status: code,
            errors: parse_errors(content.as_deref().unwrap_or("")),
        },
        R::RequestError { source, .. } | R::ResponseError { source } => {
            CallError::Transport(error_chain(source.as_ref()))
        }
        other => CallError::Decode(other.to_string()),
    }
}

/// Vault's `{"errors": ["..."]}`, or the start of a non-JSON body (a proxy's HTML page).
fn parse_errors(body: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<String>,
    }
    match serde_json::from_str::<Errors>(body) {
        Ok(e) => e.errors,
        Err(_) if body.trim().is_empty() => Vec::new(),
        Err(_) => vec![truncate(body.trim(), 200)],
    }
}

/// "error sending request: client error (Connect): tcp connect error: Connection refused".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    truncate(&parts.join(": "), 400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_answer_prefers_session_token_and_keeps_lease_duration() {
        let a = parse_sts(
            br#"{"lease_id":"aws/sts/x/1","lease_duration":3599,"renewable":false,
                 "data":{"access_key":"ASIA1","secret_key":"sk","session_token":"st","security_token":"old","arn":"arn:aws:sts::123456789012:assumed-role/r/s"}}"#,
        )
        .unwrap();
        assert_eq!(a.access_key, "ASIA1");
        assert_eq!(a.session_token.expose(), "st");
        assert_eq!(a.lease_duration, Some(3599));
        assert_eq!(a.arn, "arn:aws:sts::123456789012:assumed-role/r/s");
    }

    #[test]
    fn sts_answer_falls_back_to_security_token_of_older_vaults() {
        let a = parse_sts(br#"{"data":{"access_key":"A","secret_key":"s","security_token":"old","session_token":null}}"#).unwrap();
        assert_eq!(a.session_token.expose(), "old");
        assert_eq!(a.lease_duration, None);
    }

    #[test]
    fn malformed_sts_answers_never_echo_the_body() {
        let e = parse_sts(br#"{"data":{"access_key":"A","secret_key":"SECRETKEY"}}"#).unwrap_err();
        assert!(!format!("{e:?}").contains("SECRETKEY"));
        let e = parse_sts(br#"{"data": "SECRETKEY"#).unwrap_err();
        assert!(!format!("{e:?}").contains("SECRETKEY"), "{e:?}");
    }

    #[test]
    fn vault_error_bodies_are_read() {
        assert_eq!(
            parse_errors(r#"{"errors":["permission denied"]}"#),
            vec!["permission denied"]
        );
        assert_eq!(
            parse_errors("<html>bad gateway</html>"),
            vec!["<html>bad gateway</html>"]
        );
        assert!(parse_errors("").is_empty());
    }
}
