//! Request pairs -> a validated [`CredentialRequest`]. Nothing here touches the network.

use std::fmt;
use std::fmt::Write as _;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::config::{ConfigCache, ConfigSource, PurposeConfig};
use crate::error::BrokerError;
use crate::secret::SecretString;
use crate::session;
use crate::ttl::parse_ttl;

/// Looks up a process environment variable. Injected so tests never touch the real environment.
pub type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// The real process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Every request key of the JNI contract (docs/architecture.md), with its environment fallback.
pub const REQUEST_KEYS: &[(&str, Option<&str>)] = &[
    ("purpose", None),
    ("mount", None),
    ("vault_role", None),
    ("role_arn", None),
    ("ttl", None),
    ("session_name", None),
    ("job", None),
    ("build", None),
    ("region", None),
    ("vault_addr", Some("VAULT_ADDR")),
    ("vault_namespace", Some("VAULT_NAMESPACE")),
    ("vault_cacert", Some("VAULT_CACERT")),
    ("vault_skip_verify", Some("VAULT_SKIP_VERIFY")),
    ("vault_token", Some("VAULT_TOKEN")),
    ("vault_role_id", Some("VAULT_ROLE_ID")),
    ("vault_secret_id", Some("VAULT_SECRET_ID")),
    ("vault_jwt", Some("VAULT_JWT")),
    ("vault_jwt_file", Some("VAULT_JWT_FILE")),
    ("vault_jwt_role", Some("VAULT_JWT_ROLE")),
    ("vault_k8s_role", Some("VAULT_K8S_ROLE")),
    ("vault_k8s_token_file", Some("VAULT_K8S_TOKEN_FILE")),
    ("vault_auth_mount", Some("VAULT_AUTH_MOUNT")),
    ("config_file", Some("WITHAWSROLE_CONFIG")),
    ("config_text", None),
    ("config_name", None),
];

pub const DEFAULT_MOUNT: &str = "aws";
pub const APPROLE_MOUNT: &str = "approle";
pub const JWT_MOUNT: &str = "jwt";
pub const K8S_MOUNT: &str = "kubernetes";
pub const K8S_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Where Vault is and how to talk to it (TLS, namespace).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VaultEndpoint {
    /// Normalised base URL without a trailing slash, e.g. `https://vault.example.com:8200`.
    pub addr: String,
    pub namespace: Option<String>,
    pub cacert: Option<String>,
    pub skip_verify: bool,
}

/// A JWT given inline or as a file read at login time (so cache hits never read files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtSource {
    Inline(SecretString),
    File(PathBuf),
}

/// How the broker logs in to Vault. `Debug` is safe: secrets are [`SecretString`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultAuth {
    Token(SecretString),
    AppRole {
        mount: String,
        role_id: String,
        secret_id: SecretString,
    },
    Jwt {
        mount: String,
        role: String,
        jwt: JwtSource,
    },
    Kubernetes {
        mount: String,
        role: String,
        jwt: JwtSource,
    },
}

impl VaultAuth {
    /// The same login at another auth mount (`vault_auth_mount`); a token has none.
    fn with_mount(self, new: String) -> Self {
        match self {
            VaultAuth::AppRole {
                role_id, secret_id, ..
            } => VaultAuth::AppRole {
                mount: new,
                role_id,
                secret_id,
            },
            VaultAuth::Jwt { role, jwt, .. } => VaultAuth::Jwt {
                mount: new,
                role,
                jwt,
            },
            VaultAuth::Kubernetes { role, jwt, .. } => VaultAuth::Kubernetes {
                mount: new,
                role,
                jwt,
            },
            token @ VaultAuth::Token(_) => token,
        }
    }

    pub fn method(&self) -> &'static str {
        match self {
            VaultAuth::Token(_) => "token",
            VaultAuth::AppRole { .. } => "AppRole",
            VaultAuth::Jwt { .. } => "JWT",
            VaultAuth::Kubernetes { .. } => "Kubernetes",
        }
    }

    /// Who is asking, without the secret: a token's hash, or the login role.
    pub fn identity(&self) -> String {
        match self {
            VaultAuth::Token(t) => format!("token:{}", short_hash(t.expose())),
            VaultAuth::AppRole { mount, role_id, .. } => format!("approle:{mount}:{role_id}"),
            VaultAuth::Jwt { mount, role, .. } => format!("jwt:{mount}:{role}"),
            VaultAuth::Kubernetes { mount, role, .. } => format!("k8s:{mount}:{role}"),
        }
    }

    /// Like [`identity`](Self::identity) but also changes when the login secret changes
    /// (keys the login-token and credential caches; still never the secret itself).
    pub(crate) fn login_identity(&self) -> String {
        match self {
            VaultAuth::AppRole { secret_id, .. } => {
                format!("{}:{}", self.identity(), short_hash(secret_id.expose()))
            }
            VaultAuth::Jwt {
                jwt: JwtSource::Inline(j),
                ..
            }
            | VaultAuth::Kubernetes {
                jwt: JwtSource::Inline(j),
                ..
            } => format!("{}:{}", self.identity(), short_hash(j.expose())),
            _ => self.identity(),
        }
    }
}

/// A validated request for credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRequest {
    pub purpose: String,
    pub vault: VaultEndpoint,
    pub auth: VaultAuth,
    pub mount: String,
    pub vault_role: String,
    pub role_arn: Option<String>,
    pub ttl_seconds: Option<u32>,
    pub session_name: String,
    pub region: Option<String>,
}

impl CredentialRequest {
    /// `<mount>/sts/<role>`, the Vault path this request calls.
    pub fn sts_path(&self) -> String {
        format!("{}/sts/{}", self.mount, self.vault_role)
    }

    /// Everything that changes the answer, and who may have it: the auth part includes a hash
    /// of the login secret (never the secret), so a wrong secret_id or another build's JWT
    /// cannot be answered from the cache; the TLS settings, so credentials fetched without
    /// verification never reach a caller who verifies.
    pub fn cache_key(&self) -> CacheKey {
        let tls = match (&self.vault.cacert, self.vault.skip_verify) {
            (_, true) => "skip-verify".to_owned(),
            (Some(ca), false) => format!("ca:{ca}"),
            (None, false) => String::new(),
        };
        CacheKey {
            addr: self.vault.addr.clone(),
            tls,
            namespace: self.vault.namespace.clone().unwrap_or_default(),
            auth_identity: self.auth.login_identity(),
            mount: self.mount.clone(),
            vault_role: self.vault_role.clone(),
            role_arn: self.role_arn.clone().unwrap_or_default(),
            ttl_seconds: self.ttl_seconds.unwrap_or(0),
            session_name: self.session_name.clone(),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub addr: String,
    pub tls: String,
    pub namespace: String,
    pub auth_identity: String,
    pub mount: String,
    pub vault_role: String,
    pub role_arn: String,
    pub ttl_seconds: u32,
    pub session_name: String,
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/sts/{} as {} session {}",
            self.addr, self.mount, self.vault_role, self.auth_identity, self.session_name
        )
    }
}

fn valid_keys() -> String {
    REQUEST_KEYS
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Alternating key, value strings (the JNI shape) -> pairs.
pub fn pairs_from_flat(flat: Vec<String>) -> Result<Vec<(String, String)>, BrokerError> {
    if flat.len() % 2 != 0 {
        let count = flat.len();
        drop(RequestPairs(
            flat.into_iter().map(|s| (s, String::new())).collect(),
        ));
        return Err(BrokerError::OddPairs { count });
    }
    let mut it = flat.into_iter();
    let mut pairs = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        pairs.push((k, v));
    }
    Ok(pairs)
}

/// Request pairs that are wiped when dropped: values may hold a Vault token or secret_id.
#[derive(Default)]
pub struct RequestPairs(Vec<(String, String)>);

impl RequestPairs {
    /// From alternating key, value strings (the JNI shape).
    pub fn from_flat(flat: Vec<String>) -> Result<Self, BrokerError> {
        pairs_from_flat(flat).map(RequestPairs)
    }

    fn wipe(&mut self) {
        for (k, v) in self.0.iter_mut() {
            k.zeroize();
            v.zeroize();
        }
    }
}

impl From<Vec<(String, String)>> for RequestPairs {
    fn from(pairs: Vec<(String, String)>) -> Self {
        RequestPairs(pairs)
    }
}

// Compared and hashed as the slice they hold, so a map keyed by RequestPairs can be searched
// with a borrowed `&[(String, String)]` (the broker's parsed-request memo).
impl PartialEq for RequestPairs {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for RequestPairs {}

impl std::hash::Hash for RequestPairs {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_slice().hash(state);
    }
}

impl std::borrow::Borrow<[(String, String)]> for RequestPairs {
    fn borrow(&self) -> &[(String, String)] {
        &self.0
    }
}

impl std::ops::Deref for RequestPairs {
    type Target = [(String, String)];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl fmt::Debug for RequestPairs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Drop for RequestPairs {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// Request values with the environment fallback applied; empty strings count as absent.
/// Indexed like [`REQUEST_KEYS`] (a handful of keys: a scan beats hashing on every cache hit).
struct Values<'a> {
    given: [Option<&'a str>; REQUEST_KEYS.len()],
    env: &'a dyn Fn(&str) -> Option<String>,
}

fn key_index(key: &str) -> Option<usize> {
    REQUEST_KEYS.iter().position(|(name, _)| *name == key)
}

impl<'a> Values<'a> {
    fn new(
        pairs: &'a [(String, String)],
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, BrokerError> {
        let mut given = [None; REQUEST_KEYS.len()];
        for (k, v) in pairs {
            let Some(i) = key_index(k) else {
                return Err(BrokerError::UnknownKey {
                    key: crate::error::truncate(k, 64),
                    valid: valid_keys(),
                });
            };
            if given[i].replace(v.as_str()).is_some() {
                return Err(BrokerError::DuplicateKey { key: k.clone() });
            }
        }
        Ok(Values { given, env })
    }

    /// From the request only.
    fn pair(&self, key: &str) -> Option<String> {
        key_index(key)
            .and_then(|i| self.given[i])
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// From the request, untrimmed (a config text keeps its line numbers); blank is absent.
    fn raw_pair(&self, key: &str) -> Option<String> {
        key_index(key)
            .and_then(|i| self.given[i])
            .filter(|v| !v.trim().is_empty())
            .map(str::to_owned)
    }

    /// From the request, else from its environment variable.
    fn get(&self, key: &str) -> Option<String> {
        self.pair(key).or_else(|| self.env_of(key))
    }

    fn env_of(&self, key: &str) -> Option<String> {
        let var = REQUEST_KEYS[key_index(key)?].1?;
        (self.env)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// Parses and validates request pairs (see docs/architecture.md for the keys).
pub fn parse_request(
    pairs: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CredentialRequest, BrokerError> {
    parse_request_with(pairs, env, &ConfigCache::new())
}

/// As [`parse_request`], with parsed purposes configs kept in `configs` between requests.
pub fn parse_request_with(
    pairs: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
    configs: &ConfigCache,
) -> Result<CredentialRequest, BrokerError> {
    let v = Values::new(pairs, env)?;

    let purpose = v.pair("purpose").ok_or(BrokerError::MissingPurpose)?;
    check_segment("purpose", &purpose)?;

    let config = match config_source(&v)? {
        Some(source) => configs.load(&source)?.purpose(&purpose),
        None => PurposeConfig::default(),
    };

    let mount = v
        .pair("mount")
        .or(config.mount)
        .unwrap_or_else(|| DEFAULT_MOUNT.to_owned());
    let mount = check_mount(&mount)?;

    let vault_role = v
        .pair("vault_role")
        .or(config.vault_role)
        .unwrap_or_else(|| purpose.clone());
    check_segment("vault_role", &vault_role)?;

    let role_arn = v.pair("role_arn").or(config.role_arn);
    if let Some(arn) = &role_arn {
        check_role_arn(arn)?;
    }

    let ttl_seconds = match v.pair("ttl") {
        Some(t) => Some(parse_ttl(&t)?),
        None => config.ttl_seconds,
    };

    let session_name = match v.pair("session_name") {
        Some(s) => session::explicit_session_name(&s)?,
        None => session::default_session_name(
            &purpose,
            v.pair("job").as_deref(),
            v.pair("build").as_deref(),
        ),
    };

    let region = v.pair("region").or(config.region);
    if let Some(r) = &region {
        check_region(r)?;
    }

    let vault = VaultEndpoint {
        addr: check_addr(&v.get("vault_addr").ok_or(BrokerError::MissingVaultAddr)?)?,
        namespace: match v.get("vault_namespace") {
            Some(ns) => Some(check_namespace(&ns)?),
            None => None,
        },
        cacert: v.get("vault_cacert"),
        skip_verify: match v.get("vault_skip_verify") {
            Some(s) => parse_bool("vault_skip_verify", &s)?,
            None => false,
        },
    };

    let auth = resolve_auth(&v)?;

    Ok(CredentialRequest {
        purpose,
        vault,
        auth,
        mount,
        vault_role,
        role_arn,
        ttl_seconds,
        session_name,
        region,
    })
}

/// `config_text` (a library resource) wins over `config_file`, which wins over
/// WITHAWSROLE_CONFIG; giving both request keys is a mistake worth reporting.
fn config_source(v: &Values<'_>) -> Result<Option<ConfigSource>, BrokerError> {
    match (v.raw_pair("config_text"), v.pair("config_file")) {
        (Some(_), Some(file)) => Err(BrokerError::invalid(
            "config_file",
            &file,
            "pass either config_text (with config_name) or config_file, not both",
        )),
        (Some(text), None) => Ok(Some(ConfigSource::Text {
            name: v
                .pair("config_name")
                .unwrap_or_else(|| "config_text".to_owned()),
            text,
        })),
        (None, Some(file)) => Ok(Some(ConfigSource::File(file.into()))),
        (None, None) => Ok(v
            .env_of("config_file")
            .map(|f| ConfigSource::File(f.into()))),
    }
}

/// Picks the login method. Methods whose keys are in the request win over the environment,
/// so a job that passes an AppRole is not overridden by a VAULT_TOKEN on the controller.
fn resolve_auth(v: &Values<'_>) -> Result<VaultAuth, BrokerError> {
    let from_pairs = |k: &str| v.pair(k);
    let from_both = |k: &str| v.get(k);
    let auth_mount = match v.get("vault_auth_mount") {
        Some(m) => Some(check_mount(&m).map_err(|_| {
            BrokerError::invalid(
                "vault_auth_mount",
                &m,
                "use the path of the auth method without auth/, e.g. approle or jenkins-jwt",
            )
        })?),
        None => None,
    };
    for get in [&from_pairs as &dyn Fn(&str) -> Option<String>, &from_both] {
        if let Some(auth) = auth_from(get)? {
            return Ok(match auth_mount.clone() {
                Some(m) => auth.with_mount(m),
                None => auth,
            });
        }
    }
    let detail = if v.get("vault_role_id").is_some() != v.get("vault_secret_id").is_some() {
        " (AppRole needs both VAULT_ROLE_ID and VAULT_SECRET_ID)"
    } else if v.get("vault_jwt").is_some() || v.get("vault_jwt_file").is_some() {
        " (a JWT also needs VAULT_JWT_ROLE)"
    } else {
        ""
    };
    Err(BrokerError::MissingVaultCredentials {
        detail: detail.to_owned(),
    })
}

fn auth_from(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<VaultAuth>, BrokerError> {
    if let Some(token) = get("vault_token") {
        // The token travels in the X-Vault-Token header, where a control character makes the
        // HTTP client panic (vaultrs unwraps HeaderValue::from_str). Never echo the value.
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BrokerError::invalid(
                "vault_token",
                "<redacted>",
                "a Vault token is visible ASCII without spaces: look for a stray newline in VAULT_TOKEN or the Jenkins credential",
            ));
        }
        return Ok(Some(VaultAuth::Token(SecretString::new(token))));
    }
    if let (Some(role_id), Some(secret_id)) = (get("vault_role_id"), get("vault_secret_id")) {
        return Ok(Some(VaultAuth::AppRole {
            mount: APPROLE_MOUNT.to_owned(),
            role_id,
            secret_id: SecretString::new(secret_id),
        }));
    }
    if let Some(role) = get("vault_jwt_role") {
        let jwt = match (get("vault_jwt"), get("vault_jwt_file")) {
            (Some(j), _) => Some(JwtSource::Inline(SecretString::new(j))),
            (None, Some(f)) => Some(JwtSource::File(PathBuf::from(f))),
            (None, None) => None,
        };
        if let Some(jwt) = jwt {
            check_segment("vault_jwt_role", &role)?;
            return Ok(Some(VaultAuth::Jwt {
                mount: JWT_MOUNT.to_owned(),
                role,
                jwt,
            }));
        }
    }
    if let Some(role) = get("vault_k8s_role") {
        check_segment("vault_k8s_role", &role)?;
        let file = get("vault_k8s_token_file").unwrap_or_else(|| K8S_TOKEN_FILE.to_owned());
        return Ok(Some(VaultAuth::Kubernetes {
            mount: K8S_MOUNT.to_owned(),
            role,
            jwt: JwtSource::File(PathBuf::from(file)),
        }));
    }
    Ok(None)
}

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// One Vault path segment: `[A-Za-z0-9_.-]{1,128}`, and not `.` or `..`.
pub fn check_segment(key: &'static str, value: &str) -> Result<(), BrokerError> {
    let ok = (1..=128).contains(&value.len())
        && value.chars().all(is_segment_char)
        && value != "."
        && value != "..";
    if ok {
        Ok(())
    } else {
        Err(BrokerError::invalid(
            key,
            value,
            "use 1 to 128 characters of letters, digits, '_', '.' and '-'",
        ))
    }
}

/// A mount such as `aws` or `team-a/aws`: segments joined by `/` (outer slashes are trimmed).
pub(crate) fn check_mount(value: &str) -> Result<String, BrokerError> {
    let trimmed = value.trim_matches('/');
    let ok = !trimmed.is_empty()
        && trimmed.len() <= 256
        && trimmed
            .split('/')
            .all(|seg| check_segment("mount", seg).is_ok());
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err(BrokerError::invalid(
            "mount",
            value,
            "use the path of the AWS secrets engine, e.g. aws or team-a/aws (segments of letters, digits, '_', '.', '-')",
        ))
    }
}

fn check_namespace(value: &str) -> Result<String, BrokerError> {
    let trimmed = value.trim_matches('/');
    let ok = !trimmed.is_empty()
        && trimmed.len() <= 256
        && trimmed.split('/').all(|seg| {
            !seg.is_empty() && seg != "." && seg != ".." && seg.chars().all(is_segment_char)
        });
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err(BrokerError::invalid(
            "vault_namespace",
            value,
            "use a Vault namespace path such as admin or admin/team-a",
        ))
    }
}

/// `arn:<partition>:iam::<12 digits>:role/<optional path/>name`.
pub fn check_role_arn(value: &str) -> Result<(), BrokerError> {
    let bad = || {
        BrokerError::invalid(
            "role_arn",
            value,
            "expected arn:aws:iam::<12-digit account>:role/<name>, e.g. arn:aws:iam::123456789012:role/deploy",
        )
    };
    let rest = value.strip_prefix("arn:aws").ok_or_else(bad)?;
    let (partition_suffix, rest) = rest.split_once(':').ok_or_else(bad)?;
    if !partition_suffix
        .chars()
        .all(|c| c == '-' || c.is_ascii_lowercase())
        || (!partition_suffix.is_empty() && !partition_suffix.starts_with('-'))
    {
        return Err(bad());
    }
    let rest = rest.strip_prefix("iam::").ok_or_else(bad)?;
    let (account, rest) = rest.split_once(':').ok_or_else(bad)?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let name = rest.strip_prefix("role/").ok_or_else(bad)?;
    let name_ok = !name.is_empty()
        && !name.ends_with('/')
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-/".contains(c));
    if name_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

pub(crate) fn check_region(value: &str) -> Result<(), BrokerError> {
    let ok = (1..=32).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(BrokerError::invalid(
            "region",
            value,
            "expected an AWS region such as eu-west-1",
        ))
    }
}

/// An http(s) base URL; returned without a trailing slash.
fn check_addr(value: &str) -> Result<String, BrokerError> {
    let hint = "expected a URL such as https://vault.example.com:8200";
    let url = url::Url::parse(value)
        .map_err(|e| BrokerError::invalid("vault_addr", value, format!("{e}; {hint}")))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(BrokerError::invalid("vault_addr", value, hint));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Vault's own reading of VAULT_SKIP_VERIFY.
fn parse_bool(key: &'static str, value: &str) -> Result<bool, BrokerError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "yes" | "y" | "on" => Ok(true),
        "0" | "f" | "false" | "no" | "n" | "off" => Ok(false),
        _ => Err(BrokerError::invalid(key, value, "use true or false")),
    }
}

/// 96 bits of SHA-256 in hex: tells secrets apart without revealing them (on every cache hit
/// for token logins, so no allocation per byte).
fn short_hash(s: &str) -> String {
    let mut out = String::with_capacity(24);
    for b in &Sha256::digest(s.as_bytes())[..12] {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn base_env() -> impl Fn(&str) -> Option<String> + Send + Sync {
        env_of(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200/"),
            ("VAULT_TOKEN", "root-token"),
        ])
    }

    #[test]
    fn minimal_request_uses_defaults_and_env() {
        let r = parse_request(&pairs(&[("purpose", "ecr-push")]), &base_env()).unwrap();
        assert_eq!(r.mount, "aws");
        assert_eq!(r.vault_role, "ecr-push");
        assert_eq!(r.vault.addr, "http://127.0.0.1:8200");
        assert_eq!(r.auth, VaultAuth::Token("root-token".into()));
        assert_eq!(r.session_name, "jenkins-ecr-push");
        assert_eq!(r.ttl_seconds, None);
        assert_eq!(r.sts_path(), "aws/sts/ecr-push");
    }

    #[test]
    fn pairs_override_env_and_everything_is_carried() {
        let r = parse_request(
            &pairs(&[
                ("purpose", "deploy"),
                ("mount", "/team-a/aws/"),
                ("vault_role", "deployer"),
                ("role_arn", "arn:aws:iam::123456789012:role/path/deploy"),
                ("ttl", "1h30m"),
                ("job", "app/main"),
                ("build", "17"),
                ("region", "eu-west-1"),
                ("vault_addr", "https://vault.example.com:8200"),
                ("vault_namespace", "admin/team-a"),
                ("vault_skip_verify", "true"),
            ]),
            &base_env(),
        )
        .unwrap();
        assert_eq!(r.mount, "team-a/aws");
        assert_eq!(r.vault_role, "deployer");
        assert_eq!(r.ttl_seconds, Some(5400));
        assert_eq!(r.session_name, "jenkins-app-main-17");
        assert_eq!(r.region.as_deref(), Some("eu-west-1"));
        assert_eq!(r.vault.addr, "https://vault.example.com:8200");
        assert_eq!(r.vault.namespace.as_deref(), Some("admin/team-a"));
        assert!(r.vault.skip_verify);
    }

    #[test]
    fn unknown_key_lists_the_valid_keys() {
        let e = parse_request(&pairs(&[("purpose", "x"), ("tll", "1h")]), &base_env()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        let msg = e.to_string();
        assert!(msg.contains("unknown request key `tll`"), "{msg}");
        assert!(
            msg.contains("purpose, mount, vault_role, role_arn, ttl"),
            "{msg}"
        );
        assert!(msg.contains("config_file"), "{msg}");
    }

    #[test]
    fn purpose_is_required_and_must_be_a_path_segment() {
        let e = parse_request(&pairs(&[("mount", "aws")]), &base_env()).unwrap_err();
        assert_eq!(e, BrokerError::MissingPurpose);
        for bad in ["../sys", "a/b", "with space", "", "ü", &"x".repeat(129)] {
            let r = parse_request(&pairs(&[("purpose", bad)]), &base_env());
            assert!(r.is_err(), "{bad:?} accepted");
        }
        assert!(parse_request(&pairs(&[("purpose", "A_b.c-1")]), &base_env()).is_ok());
    }

    #[test]
    fn vault_role_and_mount_are_validated() {
        for (k, v) in [
            ("vault_role", "a/b"),
            ("vault_role", ".."),
            ("mount", "a//b"),
            ("mount", "a/../b"),
            ("mount", "/"),
        ] {
            let e = parse_request(&pairs(&[("purpose", "p"), (k, v)]), &base_env()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{k}={v}");
        }
    }

    #[test]
    fn role_arn_shape_is_checked() {
        for good in [
            "arn:aws:iam::123456789012:role/deploy",
            "arn:aws-cn:iam::123456789012:role/a/b/c-d_e+f=g,h.i@j",
            "arn:aws-us-gov:iam::123456789012:role/x",
        ] {
            assert!(check_role_arn(good).is_ok(), "{good}");
        }
        for bad in [
            "arn:aws:iam::12345678901:role/deploy",
            "arn:aws:iam::123456789012:user/deploy",
            "arn:aws:sts::123456789012:role/deploy",
            "arn:awsx:iam::123456789012:role/deploy",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/a b",
            "deploy",
        ] {
            let e = check_role_arn(bad).unwrap_err();
            assert!(
                e.to_string()
                    .contains("arn:aws:iam::<12-digit account>:role/<name>"),
                "{bad}"
            );
        }
    }

    #[test]
    fn missing_addr_and_credentials_say_which_env_to_set() {
        let e = parse_request(&pairs(&[("purpose", "p")]), &env_of(&[])).unwrap_err();
        assert!(e.to_string().contains("set VAULT_ADDR"));
        let e = parse_request(
            &pairs(&[("purpose", "p")]),
            &env_of(&[("VAULT_ADDR", "http://v:8200"), ("VAULT_ROLE_ID", "r")]),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("VAULT_TOKEN")
                && msg.contains("needs both VAULT_ROLE_ID and VAULT_SECRET_ID"),
            "{msg}"
        );
    }

    #[test]
    fn approle_in_the_request_wins_over_a_token_in_the_env() {
        let r = parse_request(
            &pairs(&[
                ("purpose", "p"),
                ("vault_role_id", "rid"),
                ("vault_secret_id", "sid"),
            ]),
            &base_env(),
        )
        .unwrap();
        assert_eq!(
            r.auth,
            VaultAuth::AppRole {
                mount: "approle".into(),
                role_id: "rid".into(),
                secret_id: "sid".into()
            }
        );
    }

    #[test]
    fn approle_from_env_and_jwt_file_are_resolved() {
        let env = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_ROLE_ID", "rid"),
            ("VAULT_SECRET_ID", "sid"),
        ]);
        let r = parse_request(&pairs(&[("purpose", "p")]), &env).unwrap();
        assert!(matches!(r.auth, VaultAuth::AppRole { .. }));

        let env = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_JWT_FILE", "/tmp/jwt"),
            ("VAULT_JWT_ROLE", "jenkins"),
        ]);
        let r = parse_request(&pairs(&[("purpose", "p")]), &env).unwrap();
        assert_eq!(
            r.auth,
            VaultAuth::Jwt {
                mount: "jwt".into(),
                role: "jenkins".into(),
                jwt: JwtSource::File("/tmp/jwt".into())
            }
        );
    }

    #[test]
    fn empty_values_count_as_absent() {
        let r = parse_request(
            &pairs(&[("purpose", "p"), ("role_arn", ""), ("vault_token", " ")]),
            &base_env(),
        )
        .unwrap();
        assert_eq!(r.role_arn, None);
        assert_eq!(r.auth, VaultAuth::Token("root-token".into()));
    }

    #[test]
    fn duplicate_and_odd_inputs_are_rejected() {
        let e =
            parse_request(&pairs(&[("purpose", "p"), ("purpose", "q")]), &base_env()).unwrap_err();
        assert!(matches!(e, BrokerError::DuplicateKey { .. }));
        let e = pairs_from_flat(vec!["purpose".into()]).unwrap_err();
        assert_eq!(e, BrokerError::OddPairs { count: 1 });
        assert_eq!(
            pairs_from_flat(vec!["a".into(), "1".into(), "b".into(), "2".into()]).unwrap(),
            pairs(&[("a", "1"), ("b", "2")])
        );
    }

    #[test]
    fn bad_addr_ttl_region_and_skip_verify_are_invalid_requests() {
        for (k, v) in [
            ("vault_addr", "vault.example.com"),
            ("vault_addr", "ftp://vault"),
            ("vault_addr", "https://user:pw@vault"),
            ("ttl", "5m"),
            ("region", "EU WEST"),
            ("vault_skip_verify", "maybe"),
        ] {
            let e = parse_request(&pairs(&[("purpose", "p"), (k, v)]), &base_env()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{k}={v}: {e}");
        }
    }

    #[test]
    fn errors_and_debug_never_show_secrets() {
        let r = parse_request(
            &pairs(&[
                ("purpose", "p"),
                ("vault_role_id", "rid"),
                ("vault_secret_id", "TOPSECRET"),
            ]),
            &base_env(),
        )
        .unwrap();
        let shown = format!("{r:?} {:?}", r.cache_key());
        assert!(!shown.contains("TOPSECRET"), "{shown}");
        assert!(!shown.contains("root-token"), "{shown}");
        let t = parse_request(&pairs(&[("purpose", "p")]), &base_env()).unwrap();
        let shown = format!("{t:?} {:?}", t.cache_key());
        assert!(!shown.contains("root-token"), "{shown}");
        assert!(t.cache_key().auth_identity.starts_with("token:"));
    }

    #[test]
    fn cache_key_changes_with_everything_that_changes_the_answer() {
        let env = base_env();
        let key = |extra: &[(&str, &str)]| {
            let mut p = vec![("purpose", "p")];
            p.extend_from_slice(extra);
            parse_request(&pairs(&p), &env).unwrap().cache_key()
        };
        let base = key(&[]);
        assert_eq!(base, key(&[]));
        for extra in [
            ("ttl", "1h"),
            ("role_arn", "arn:aws:iam::123456789012:role/x"),
            ("session_name", "other"),
            ("vault_role", "other"),
            ("mount", "aws2"),
            ("vault_namespace", "ns"),
            ("vault_addr", "http://other:8200"),
            ("vault_token", "other-token"),
            ("vault_skip_verify", "true"),
            ("vault_cacert", "/etc/vault-ca.pem"),
        ] {
            assert_ne!(base, key(&[extra]), "{extra:?}");
        }
        // Another secret_id for the same role_id is another caller: no shared cache entry.
        let approle = |secret: &str| key(&[("vault_role_id", "rid"), ("vault_secret_id", secret)]);
        assert_ne!(approle("s1"), approle("s2"));
        let jwt = |j: &str| key(&[("vault_jwt", j), ("vault_jwt_role", "jenkins")]);
        assert_ne!(jwt("build-1-token"), jwt("build-2-token"));
        // Region is reported back but does not change what Vault returns.
        assert_eq!(base, key(&[("region", "eu-west-1")]));
    }

    #[test]
    fn config_file_supplies_purpose_defaults_and_pairs_win() {
        let dir = std::env::temp_dir().join(format!("withawsrole-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("purposes.toml");
        std::fs::write(
            &path,
            "[purposes.deploy]\nvault_role = \"deployer\"\nrole_arn = \"arn:aws:iam::123456789012:role/deploy\"\nttl = \"1h\"\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let r = parse_request(
            &pairs(&[("purpose", "deploy"), ("config_file", p), ("ttl", "2h")]),
            &base_env(),
        )
        .unwrap();
        assert_eq!(r.vault_role, "deployer");
        assert_eq!(
            r.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/deploy")
        );
        assert_eq!(r.ttl_seconds, Some(7200));
        let r = parse_request(
            &pairs(&[("purpose", "other"), ("config_file", p)]),
            &base_env(),
        )
        .unwrap();
        assert_eq!(r.vault_role, "other");

        std::fs::write(&path, "[purposes.deploy]\nrolearn = \"x\"\n").unwrap();
        let e = parse_request(
            &pairs(&[("purpose", "deploy"), ("config_file", p)]),
            &base_env(),
        )
        .unwrap_err();
        assert!(matches!(e, BrokerError::Config { .. }), "{e}");
        assert!(
            e.to_string().contains(&format!(
                "invalid purposes config {p}, line 2, key `purposes.deploy.rolearn`"
            )),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn config_text_wins_over_the_env_file_and_is_named_in_errors() {
        let env = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_TOKEN", "t"),
            ("WITHAWSROLE_CONFIG", "/nonexistent/purposes.toml"),
        ]);
        let text = "[purposes.deploy]\nrole_arn = \"arn:aws:iam::123456789012:role/d\"\n";
        let r = parse_request(
            &pairs(&[("purpose", "deploy"), ("config_text", text)]),
            &env,
        )
        .unwrap();
        assert_eq!(
            r.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/d")
        );
        // Without config_text the env's file is used (and here cannot be read).
        let e = parse_request(&pairs(&[("purpose", "deploy")]), &env).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/purposes.toml"), "{e}");

        let e = parse_request(
            &pairs(&[
                ("purpose", "deploy"),
                ("config_text", "\n[purposes.deploy]\nttl = \"forever\"\n"),
                ("config_name", "org/withawsrole/purposes.toml"),
            ]),
            &env,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert!(
            e.to_string().starts_with(
                "invalid purposes config org/withawsrole/purposes.toml, line 3, key `purposes.deploy.ttl`: invalid ttl"
            ),
            "{e}"
        );
        let e = parse_request(
            &pairs(&[
                ("purpose", "deploy"),
                ("config_text", text),
                ("config_file", "/x.toml"),
            ]),
            &env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
    }

    #[test]
    fn auth_mount_and_k8s_token_file_are_honoured() {
        let env = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_K8S_ROLE", "jenkins"),
            ("VAULT_AUTH_MOUNT", "k8s-prod"),
        ]);
        let r = parse_request(&pairs(&[("purpose", "p")]), &env).unwrap();
        assert_eq!(
            r.auth,
            VaultAuth::Kubernetes {
                mount: "k8s-prod".into(),
                role: "jenkins".into(),
                jwt: JwtSource::File(K8S_TOKEN_FILE.into())
            }
        );
        let r = parse_request(
            &pairs(&[("purpose", "p"), ("vault_k8s_token_file", "/tmp/sa-token")]),
            &env,
        )
        .unwrap();
        assert!(
            matches!(&r.auth, VaultAuth::Kubernetes { jwt: JwtSource::File(f), .. } if f == &PathBuf::from("/tmp/sa-token"))
        );
        let e = parse_request(
            &pairs(&[("purpose", "p"), ("vault_auth_mount", "a//b")]),
            &env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("vault_auth_mount"), "{e}");
    }
}
