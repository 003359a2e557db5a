//! Talking to Vault: one connection per Vault endpoint, login, and `POST <mount>/sts/<role>`.
//! Errors come back as [`CallError`]; `vault_error` turns them into user-facing [`BrokerError`]s.

use std::time::Duration;

use rustify::endpoint::Endpoint;
use serde::Deserialize;
use vaultrs::api::auth::approle::requests::LoginWithApproleRequest;
use vaultrs::api::auth::kubernetes::requests::LoginWithKubernetesRequest;
use vaultrs::api::auth::oidc::requests::JWTLoginRequest;
use vaultrs::api::token::requests::{LookupTokenSelfRequest, RenewTokenSelfRequest};
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use zeroize::Zeroize;

use crate::error::{truncate, BrokerError};
use crate::request::{JwtSource, VaultAuth, VaultEndpoint};
use crate::secret::SecretString;

pub const REVOKE_SELF_PATH: &str = "auth/token/revoke-self";

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
    /// Seconds: the lease, else `data.ttl` (a role with `no_lease` answers without a lease);
    /// `None` when Vault said neither.
    pub lease_duration: Option<u64>,
}

/// A Vault token as an `auth` answer gives it: logging in, renewing, or creating a child token.
#[derive(Debug, Default)]
pub struct LoginAnswer {
    pub token: SecretString,
    /// Seconds; 0 means the token does not expire.
    pub lease_duration: u64,
    /// Whether `auth/token/renew-self` may extend it.
    pub renewable: bool,
    pub accessor: String,
    pub policies: Vec<String>,
    pub orphan: bool,
}

// Why every call runs one level below vaultrs' API functions (vaultrs' own endpoint structs
// through rustify's `Endpoint::exec` with vaultrs' middleware, see `exec`):
// - vaultrs' `api::*` wrappers log Vault's error texts at ERROR level, and a Vault (or proxy)
//   that echoes a rejected secret_id or token would put it in the log;
// - its `EndpointResult` insists on fields (lease_id, request_id, renewable) that some Vault
//   fronts omit, and its typed aws response has neither `lease_duration` (outside `data`) nor
//   `session_token` (Vault >= 1.16).
// The envelopes are read by hand instead.
#[derive(Deserialize)]
struct StsEnvelope {
    #[serde(default)]
    lease_duration: Option<u64>,
    data: Option<StsData>,
}

#[derive(Deserialize)]
struct AuthEnvelope {
    auth: Option<AuthData>,
}

#[derive(Deserialize)]
struct AuthData {
    client_token: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    accessor: String,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    orphan: bool,
}

#[derive(Deserialize)]
struct StsData {
    access_key: Option<String>,
    secret_key: Option<String>,
    session_token: Option<String>,
    security_token: Option<String>,
    arn: Option<String>,
    /// Seconds left on the keys, sent instead of a lease by roles with `no_lease`.
    #[serde(default)]
    ttl: Option<u64>,
}

/// `POST <mount>/sts/<role>` whose body holds exactly `role_arn` (when chosen),
/// `role_session_name` and `ttl` (when set). vaultrs' own request also puts the role's `name`
/// into the body, and Vault's ACL refuses a key that a policy's `allowed_parameters` does not
/// list (docs/vault-setup.md pins these three).
struct StsRequest<'a> {
    mount: &'a str,
    role: &'a str,
    role_arn: Option<&'a str>,
    session_name: &'a str,
    ttl_seconds: Option<u32>,
}

impl Endpoint for StsRequest<'_> {
    type Response = serde_json::Value;
    const REQUEST_BODY_TYPE: rustify::enums::RequestType = rustify::enums::RequestType::JSON;
    const RESPONSE_BODY_TYPE: rustify::enums::ResponseType = rustify::enums::ResponseType::JSON;

    fn path(&self) -> String {
        format!("{}/sts/{}", self.mount, self.role)
    }

    fn method(&self) -> rustify::enums::RequestMethod {
        rustify::enums::RequestMethod::POST
    }

    fn body(&self) -> Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        let mut body = serde_json::Map::new();
        if let Some(arn) = self.role_arn {
            body.insert("role_arn".into(), arn.into());
        }
        body.insert("role_session_name".into(), self.session_name.into());
        if let Some(ttl) = self.ttl_seconds {
            body.insert("ttl".into(), format!("{ttl}s").into());
        }
        Ok(Some(
            serde_json::Value::Object(body).to_string().into_bytes(),
        ))
    }
}

/// A client for one Vault endpoint (address, namespace, TLS settings), shared by all requests.
pub struct VaultConnection {
    client: VaultClient,
    namespace: Option<String>,
}

impl VaultConnection {
    pub fn connect(endpoint: &VaultEndpoint) -> Result<Self, BrokerError> {
        // reqwest takes a file without any certificate as an empty bundle, which would only
        // fail at the TLS handshake: say so before anything is sent.
        if let (Some(path), true) = (&endpoint.cacert, endpoint.addr.starts_with("https://")) {
            let pem = std::fs::read(path).map_err(|e| BrokerError::LocalFile {
                what: "the Vault CA certificate (VAULT_CACERT)",
                path: path.clone(),
                reason: e.to_string(),
            })?;
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(BrokerError::LocalFile {
                    what: "the Vault CA certificate (VAULT_CACERT)",
                    path: path.clone(),
                    reason: "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
                });
            }
        }
        if endpoint.skip_verify {
            tracing::warn!(
                "TLS verification is off for Vault at {} (vault_skip_verify=true): use it for tests only",
                endpoint.addr
            );
        }
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

    /// vaultrs' endpoint struct through rustify with vaultrs' middleware (API version, token
    /// and namespace headers): the raw body, which callers parse and wipe.
    async fn exec<E: Endpoint>(
        &self,
        endpoint: E,
        token: Option<&SecretString>,
    ) -> Result<Vec<u8>, CallError> {
        let mut middleware = EndpointMiddleware {
            token: token.map(|t| t.expose().to_owned()).unwrap_or_default(),
            version: "v1".to_owned(),
            wrap: None,
            namespace: self.namespace.clone(),
        };
        let result = endpoint
            .with_middleware(&middleware)
            .exec(&self.client.http)
            .await;
        middleware.token.zeroize();
        Ok(result.map_err(from_rustify)?.response.into_body())
    }

    /// `POST auth/token/create[/<role>]` with the JSON `body`, as `token`: the child token.
    pub async fn create_token(
        &self,
        token: &SecretString,
        path: &str,
        body: Vec<u8>,
    ) -> Result<LoginAnswer, CallError> {
        let answer = self.post_json(token, path, body).await?;
        parse_auth(answer)
    }

    /// `POST auth/token/revoke-self` as `token`.
    pub async fn revoke_self(&self, token: &SecretString) -> Result<(), CallError> {
        let mut answer = self
            .post_json(token, REVOKE_SELF_PATH, b"{}".to_vec())
            .await?;
        answer.zeroize();
        Ok(())
    }

    /// `POST <mount>/sts/<role>` with `role_arn`, `role_session_name`, `ttl`.
    ///
    /// vaultrs' `aws::roles::credentials_sts` returns only `data` and drops the envelope's
    /// `lease_duration`, which is the one reliable expiry we get.
    pub async fn sts(
        &self,
        token: &SecretString,
        mount: &str,
        role: &str,
        role_arn: Option<&str>,
        ttl_seconds: Option<u32>,
        session_name: &str,
    ) -> Result<StsAnswer, CallError> {
        let endpoint = StsRequest {
            mount,
            role,
            role_arn,
            session_name,
            ttl_seconds,
        };
        let mut body = self.exec(endpoint, Some(token)).await?;
        let parsed = parse_sts(&body);
        body.zeroize();
        parsed
    }

    /// `auth/token/renew-self` with `token`; Vault decides the new lease.
    pub async fn renew_self(&self, token: &SecretString) -> Result<LoginAnswer, CallError> {
        let body = self
            .exec(RenewTokenSelfRequest { increment: None }, Some(token))
            .await?;
        parse_auth(body)
    }

    /// `auth/token/lookup-self`: whether Vault still accepts `token` at all.
    pub async fn lookup_self(&self, token: &SecretString) -> Result<(), CallError> {
        let mut body = self.exec(LookupTokenSelfRequest {}, Some(token)).await?;
        body.zeroize();
        Ok(())
    }

    /// Logs in with AppRole, JWT or Kubernetes (not called for plain tokens). `jwt` is the
    /// JWT or service-account token of those two, read beforehand by [`login_jwt`].
    pub async fn login(
        &self,
        auth: &VaultAuth,
        jwt: Option<&SecretString>,
    ) -> Result<LoginAnswer, CallError> {
        let jwt = || {
            jwt.map(|j| j.expose().to_owned())
                .ok_or_else(|| CallError::Decode("no JWT was read before the login".into()))
        };
        let body = match auth {
            VaultAuth::Token(t) => {
                return Ok(LoginAnswer {
                    token: t.clone(),
                    ..LoginAnswer::default()
                })
            }
            VaultAuth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let endpoint = LoginWithApproleRequest {
                    mount: mount.clone(),
                    role_id: role_id.clone(),
                    secret_id: secret_id.expose().to_owned(),
                };
                self.exec(endpoint, None).await?
            }
            VaultAuth::Jwt { mount, role, .. } => {
                let endpoint = JWTLoginRequest {
                    mount: mount.clone(),
                    jwt: jwt()?,
                    role: Some(role.clone()),
                };
                self.exec(endpoint, None).await?
            }
            VaultAuth::Kubernetes { mount, role, .. } => {
                let endpoint = LoginWithKubernetesRequest {
                    mount: mount.clone(),
                    role: role.clone(),
                    jwt: jwt()?,
                };
                self.exec(endpoint, None).await?
            }
        };
        parse_auth(body)
    }
}

impl VaultConnection {
    /// `POST <path>` with a JSON `body` as `token`; the raw answer body (empty for a 204), which
    /// callers parse and wipe.
    async fn post_json(
        &self,
        token: &SecretString,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        let endpoint = RawPost {
            path: path.to_owned(),
            body,
        };
        self.exec(endpoint, Some(token)).await
    }
}

/// A POST whose path and JSON body are given as they are (no vaultrs struct for the call).
struct RawPost {
    path: String,
    body: Vec<u8>,
}

impl Endpoint for RawPost {
    type Response = ();
    const REQUEST_BODY_TYPE: rustify::enums::RequestType = rustify::enums::RequestType::JSON;
    const RESPONSE_BODY_TYPE: rustify::enums::ResponseType = rustify::enums::ResponseType::JSON;

    fn path(&self) -> String {
        self.path.clone()
    }

    fn method(&self) -> rustify::enums::RequestMethod {
        rustify::enums::RequestMethod::POST
    }

    fn body(&self) -> Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        Ok(Some(self.body.clone()))
    }
}

/// `{"auth": {"client_token", "lease_duration", "renewable", ...}}`; the body is wiped, and no
/// error quotes it (serde's message can quote input: only its position is kept).
fn parse_auth(mut body: Vec<u8>) -> Result<LoginAnswer, CallError> {
    let parsed: Result<AuthEnvelope, _> = serde_json::from_slice(&body);
    body.zeroize();
    let auth = parsed
        .map_err(|e| {
            CallError::Decode(format!(
                "the response is not the expected JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?
        .auth
        .ok_or_else(|| CallError::Decode("the response has no `auth`".into()))?;
    if auth.client_token.is_empty() {
        return Err(CallError::Decode(
            "the response has an empty `auth.client_token`".into(),
        ));
    }
    Ok(LoginAnswer {
        token: SecretString::new(auth.client_token),
        lease_duration: auth.lease_duration,
        renewable: auth.renewable,
        accessor: auth.accessor,
        policies: auth.policies,
        orphan: auth.orphan,
    })
}

/// The JWT (or Kubernetes service-account token) a login sends, read before anything goes on
/// the network. Files are read at every login, as Kubernetes rotates projected tokens.
pub fn login_jwt(auth: &VaultAuth) -> Result<Option<SecretString>, BrokerError> {
    let (source, what) = match auth {
        VaultAuth::Jwt { jwt, .. } => (jwt, "the JWT file (VAULT_JWT_FILE)"),
        VaultAuth::Kubernetes { jwt, .. } => (
            jwt,
            "the Kubernetes service-account token (VAULT_K8S_TOKEN_FILE)",
        ),
        _ => return Ok(None),
    };
    let path = match source {
        JwtSource::Inline(j) => return Ok(Some(j.clone())),
        JwtSource::File(path) => path,
    };
    let local = |reason: String| BrokerError::LocalFile {
        what,
        path: path.display().to_string(),
        reason,
    };
    let mut text = std::fs::read_to_string(path).map_err(|e| local(e.to_string()))?;
    let jwt = SecretString::new(text.trim());
    text.zeroize();
    if jwt.is_empty() {
        return Err(local("the file is empty".into()));
    }
    Ok(Some(jwt))
}

/// Whether a transport failure is about TLS trust (a CA problem), not the network.
pub(crate) fn is_tls_trust_failure(cause: &str) -> bool {
    let lower = cause.to_ascii_lowercase();
    lower.contains("certificate") || lower.contains("unknownissuer")
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
        lease_duration: envelope
            .lease_duration
            .filter(|d| *d > 0)
            .or(data.ttl.filter(|d| *d > 0)),
    })
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
    fn sts_answer_without_a_lease_takes_data_ttl() {
        let a = parse_sts(br#"{"lease_id":"","lease_duration":0,"data":{"access_key":"A","secret_key":"s","security_token":"t","ttl":1199}}"#).unwrap();
        assert_eq!(a.lease_duration, Some(1199));
        let a = parse_sts(br#"{"lease_duration":0,"data":{"access_key":"A","secret_key":"s","security_token":"t"}}"#).unwrap();
        assert_eq!(a.lease_duration, None);
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
    fn auth_answers_are_read_without_echoing_the_body() {
        let c = parse_auth(
            br#"{"auth":{"client_token":"s.CHILD","accessor":"acc","policies":["default","withawsrole-sts-p"],"lease_duration":600,"orphan":true}}"#.to_vec(),
        )
        .unwrap();
        assert_eq!(c.token.expose(), "s.CHILD");
        assert_eq!(c.accessor, "acc");
        assert_eq!(c.policies, ["default", "withawsrole-sts-p"]);
        assert_eq!(c.lease_duration, 600);
        assert!(c.orphan);
        let e = parse_auth(br#"{"auth":{"client_token":""}}"#.to_vec()).unwrap_err();
        assert!(matches!(e, CallError::Decode(_)), "{e:?}");
        let e = parse_auth(br#"{"auth":{"client_token":"s.CHILD"}"#.to_vec()).unwrap_err();
        assert!(!format!("{e:?}").contains("s.CHILD"), "{e:?}");
        let e = parse_auth(br#"{"auth": "s.CHILD"#.to_vec()).unwrap_err();
        assert!(!format!("{e:?}").contains("s.CHILD"), "{e:?}");
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
