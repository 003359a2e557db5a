//! Request pairs -> a validated [`CredentialRequest`]. Nothing here touches the network.

use std::fmt;
use std::fmt::Write as _;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::config::{ConfigCache, ConfigSource, PurposeConfig};
use crate::error::BrokerError;
use crate::fields::{
    check_addr, check_mount, check_namespace, check_region, check_role_arn, check_segment,
    parse_bool,
};
use crate::secret::SecretString;
use crate::session;
use crate::sources::{self, LoginSource};
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
    ("hide_account_id", None),
    ("vault_addr", Some("VAULT_ADDR")),
    ("vault_namespace", Some("VAULT_NAMESPACE")),
    ("vault_cacert", Some("VAULT_CACERT")),
    ("vault_skip_verify", Some("VAULT_SKIP_VERIFY")),
    ("vault_token", Some("VAULT_TOKEN")),
    ("vault_token_file", Some("VAULT_TOKEN_FILE")),
    ("vault_role_id", Some("VAULT_ROLE_ID")),
    ("vault_secret_id", Some("VAULT_SECRET_ID")),
    ("vault_secret_id_file", Some("VAULT_SECRET_ID_FILE")),
    ("vault_jwt", Some("VAULT_JWT")),
    ("vault_jwt_file", Some("VAULT_JWT_FILE")),
    ("vault_jwt_role", Some("VAULT_JWT_ROLE")),
    ("vault_k8s_role", Some("VAULT_K8S_ROLE")),
    ("vault_k8s_token_file", Some("VAULT_K8S_TOKEN_FILE")),
    ("vault_auth_mount", Some("VAULT_AUTH_MOUNT")),
    ("config_file", Some("WITHAWSROLE_CONFIG")),
    ("job_id_token", Some("WITHAWSROLE_JOB_ID_TOKEN")),
    ("job_jwt_role", Some("WITHAWSROLE_JOB_JWT_ROLE")),
    ("config_text", None),
    ("config_name", None),
];

/// Keys whose value only the controller's own settings give (process environment, or the
/// `-Dwithawsrole.<VARIABLE>` system properties the bridge passes): where Vault is, how to trust
/// it, which namespace, how the controller logs in beyond a token or AppRole, and which purposes
/// file governs. A request that carries one is refused, so no caller (and so no Jenkinsfile) can
/// send the controller's login elsewhere or swap the reviewed config (docs/security.md).
pub const CONTROLLER_KEYS: &[&str] = &[
    "vault_addr",
    "vault_namespace",
    "vault_cacert",
    "vault_skip_verify",
    "vault_token_file",
    "vault_secret_id_file",
    "vault_jwt_file",
    "vault_k8s_role",
    "vault_k8s_token_file",
    "vault_auth_mount",
    "config_file",
    "job_id_token",
    "job_jwt_role",
];

/// Login keys a caller may give for a login of its own (a job's Jenkins credential). Given at
/// all, they must make a whole login by themselves: never completed with the controller's.
pub const OWN_LOGIN_KEYS: &[&str] = &[
    "vault_token",
    "vault_role_id",
    "vault_secret_id",
    "vault_jwt",
    "vault_jwt_role",
];

/// Refuses a key whose value only the controller's settings may give ([`CONTROLLER_KEYS`]).
pub fn refuse_controller_key(key: &str) -> Result<(), BrokerError> {
    if CONTROLLER_KEYS.contains(&key) {
        return Err(BrokerError::ControllerSetting {
            key: key.to_owned(),
            variable: variable_of(key).unwrap_or("its variable"),
        });
    }
    Ok(())
}

/// A request key's value from the controller's settings (`env` reads a variable): trimmed, and a
/// blank value is absent.
pub fn controller_value(env: &dyn Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    env(variable_of(key)?)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A Vault token travels in the X-Vault-Token header, where a control character makes the HTTP
/// client panic (vaultrs unwraps HeaderValue::from_str). Never echoes the value.
pub(crate) fn check_token(key: &'static str, token: &str, hint: &str) -> Result<(), BrokerError> {
    if token.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(BrokerError::invalid(key, "<redacted>", hint))
    }
}

/// The controller's environment variable behind a request key, if it has one.
pub fn variable_of(key: &str) -> Option<&'static str> {
    REQUEST_KEYS
        .iter()
        .find(|(name, _)| *name == key)
        .and_then(|(_, var)| *var)
}

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

/// Which STS role a credentials call asks for (and how its answer is shown): the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsTarget {
    pub purpose: String,
    pub mount: String,
    pub vault_role: String,
    pub role_arn: Option<String>,
    pub ttl_seconds: Option<u32>,
    pub session_name: String,
    pub region: Option<String>,
    /// Keep the AWS account id out of the build log (it does not change the credentials).
    pub hide_account_id: bool,
}

impl StsTarget {
    /// `<mount>/sts/<role>`, the Vault path this target calls.
    pub fn sts_path(&self) -> String {
        format!("{}/sts/{}", self.mount, self.vault_role)
    }
}

/// Which Vault and which login: the connection every Vault call (STS, token store) goes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultLogin {
    pub endpoint: VaultEndpoint,
    pub auth: VaultAuth,
}

impl VaultLogin {
    /// Keys the login-token cache: the Vault and who logs in (a hash of the secret, never it).
    pub(crate) fn login_key(&self) -> String {
        format!(
            "{}|{}|{}",
            self.endpoint.addr,
            self.endpoint.namespace.as_deref().unwrap_or(""),
            self.auth.login_identity()
        )
    }
}

/// A validated request for credentials: the STS target, asked for through a Vault login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRequest {
    pub target: StsTarget,
    pub login: VaultLogin,
}

impl CredentialRequest {
    /// `<mount>/sts/<role>`, the Vault path this request calls.
    pub fn sts_path(&self) -> String {
        self.target.sts_path()
    }

    /// Everything that changes the answer, and who may have it: the auth part includes a hash
    /// of the login secret (never the secret), so a wrong secret_id or another build's JWT
    /// cannot be answered from the cache; the TLS settings, so credentials fetched without
    /// verification never reach a caller who verifies.
    pub fn cache_key(&self) -> CacheKey {
        let (vault, target) = (&self.login.endpoint, &self.target);
        let tls = match (&vault.cacert, vault.skip_verify) {
            (_, true) => "skip-verify".to_owned(),
            (Some(ca), false) => format!("ca:{ca}"),
            (None, false) => String::new(),
        };
        CacheKey {
            addr: vault.addr.clone(),
            tls,
            namespace: vault.namespace.clone().unwrap_or_default(),
            auth_identity: self.login.auth.login_identity(),
            mount: target.mount.clone(),
            vault_role: target.vault_role.clone(),
            role_arn: target.role_arn.clone().unwrap_or_default(),
            ttl_seconds: target.ttl_seconds.unwrap_or(0),
            session_name: target.session_name.clone(),
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

/// Refuses a key that neither [`REQUEST_KEYS`] nor `extra` knows, listing them all.
pub(crate) fn check_known_keys(
    pairs: &[(String, String)],
    extra: &[&str],
) -> Result<(), BrokerError> {
    let known = || {
        REQUEST_KEYS
            .iter()
            .map(|(k, _)| *k)
            .chain(extra.iter().copied())
    };
    match pairs.iter().find(|(k, _)| !known().any(|name| name == k)) {
        Some((k, _)) => Err(BrokerError::UnknownKey {
            key: crate::error::truncate(k, 64),
            valid: known().collect::<Vec<_>>().join(", "),
        }),
        None => Ok(()),
    }
}

/// The one value of `key` in `pairs`, trimmed (blank is absent); given twice is an error.
pub(crate) fn single_value(
    pairs: &[(String, String)],
    key: &str,
) -> Result<Option<String>, BrokerError> {
    let mut found = pairs.iter().filter(|(k, _)| k == key);
    let given = found.next().map(|(_, v)| v.trim().to_owned());
    if found.next().is_some() {
        return Err(BrokerError::DuplicateKey {
            key: key.to_owned(),
        });
    }
    Ok(given.filter(|v| !v.is_empty()))
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
        check_known_keys(pairs, &[])?;
        for (k, v) in pairs {
            let Some(i) = key_index(k) else {
                continue;
            };
            refuse_controller_key(k)?;
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

    fn env_of(&self, key: &str) -> Option<String> {
        controller_value(self.env, key)
    }
}

/// Whether the purposes config is an authorization boundary for this caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Governance {
    /// The JNI library: callers are pipelines. Only purposes the config lists, only for the jobs
    /// it names, only the choices it offers; no config at all is an empty one.
    Governed,
    /// The awsrole CLI: its Vault login (often a child token for one path) is the boundary.
    Ungoverned,
}

/// What requests are parsed against: the controller's settings (`env` reads a variable), the
/// purposes configs parsed so far, and whether the purposes config is the boundary.
pub struct Parsing<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub configs: &'a ConfigCache,
    pub governance: Governance,
}

/// Parses and validates request pairs (see docs/architecture.md for the keys), ungoverned.
pub fn parse_request(
    pairs: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CredentialRequest, BrokerError> {
    parse_request_as(pairs, env, Governance::Ungoverned)
}

/// As [`parse_request`], governed or not, with no purposes config parsed before.
pub fn parse_request_as(
    pairs: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
    governance: Governance,
) -> Result<CredentialRequest, BrokerError> {
    let configs = ConfigCache::new();
    let with = Parsing {
        env,
        configs: &configs,
        governance,
    };
    parse_request_with(pairs, &with)
}

/// As [`parse_request`], as `with` says (parsed configs kept between requests, governed or not).
pub fn parse_request_with(
    pairs: &[(String, String)],
    with: &Parsing<'_>,
) -> Result<CredentialRequest, BrokerError> {
    let Parsing {
        env,
        configs,
        governance,
    } = *with;
    let v = Values::new(pairs, env)?;

    let purpose = v.pair("purpose").ok_or(BrokerError::MissingPurpose)?;
    check_segment("purpose", &purpose)?;

    let source = sources::purposes_source(
        v.env_of("config_file"),
        v.raw_pair("config_text"),
        v.pair("config_name"),
    );
    let config = match &source {
        Some(source) => configs.load(source)?.purpose(&purpose),
        None => PurposeConfig::default(),
    };
    let config_name = source.as_ref().map(ConfigSource::name);
    if governance == Governance::Governed {
        let name = config_name
            .clone()
            .unwrap_or_else(|| "(none: the library's purposes.toml was not passed)".to_owned());
        authorize(&v, &purpose, &config, &name)?;
    }
    let target = target_of(&v, purpose, config, config_name.as_deref())?;
    let login = login_of(&v, governance)?;
    Ok(CredentialRequest { target, login })
}

/// The STS target: the request's choices, else the purpose's config, else the defaults.
fn target_of(
    v: &Values<'_>,
    purpose: String,
    config: PurposeConfig,
    config_name: Option<&str>,
) -> Result<StsTarget, BrokerError> {
    let hide_account_id = hide_account_id(v, &purpose, &config, config_name)?;

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
    Ok(StsTarget {
        purpose,
        mount,
        vault_role,
        role_arn,
        ttl_seconds,
        session_name,
        region,
        hide_account_id,
    })
}

/// The controller's Vault, and the login sources::login_source picks.
fn login_of(v: &Values<'_>, governance: Governance) -> Result<VaultLogin, BrokerError> {
    let endpoint = endpoint_from(&|k| v.env_of(k))?;
    let own = OWN_LOGIN_KEYS.iter().any(|k| v.pair(k).is_some());
    let per_build = v.env_of("job_id_token").is_some();
    let governed = governance == Governance::Governed;
    let auth = match sources::login_source(own, per_build, governed) {
        // The bridge binds the build's id token as a login of the request's own: without one, a
        // controller that logs in as each build must never fall back to an identity of its own.
        LoginSource::Build => return Err(BrokerError::BuildLoginMissing),
        LoginSource::Own => resolve_auth(v, &|k| v.pair(k), true)?,
        LoginSource::Controller => {
            let setting = |k: &str| v.env_of(k);
            resolve_auth(v, &|k| sources::controller_login_value(&setting, k), false)?
        }
    };
    Ok(VaultLogin { endpoint, auth })
}

/// Whether the log hides the account id: the request's choice, except that a purpose whose config
/// hides it stays hidden (a team that treats its account ids as sensitive decides, not a
/// Jenkinsfile).
fn hide_account_id(
    v: &Values<'_>,
    purpose: &str,
    config: &PurposeConfig,
    config_name: Option<&str>,
) -> Result<bool, BrokerError> {
    let asked = match v.pair("hide_account_id") {
        Some(s) => Some(parse_bool("hide_account_id", &s)?),
        None => None,
    };
    match (asked, config.hide_account_id) {
        (Some(false), Some(true)) => Err(BrokerError::ChoiceNotAllowed {
            purpose: purpose.to_owned(),
            what: "show the AWS account id in the build log".to_owned(),
            fix: "leave hideAccountId out; hide_account_id = true is set".to_owned(),
            config: config_name.unwrap_or("the purposes config").to_owned(),
        }),
        (Some(asked), _) => Ok(asked),
        (None, configured) => Ok(configured.unwrap_or(false)),
    }
}

/// The purposes config as an authorization boundary: the purpose must be listed, the job admitted,
/// and every choice the request makes one the purpose offers. Checked before anything is sent.
fn authorize(
    v: &Values<'_>,
    purpose: &str,
    config: &PurposeConfig,
    config_name: &str,
) -> Result<(), BrokerError> {
    if !config.listed {
        return Err(BrokerError::PurposeNotListed {
            purpose: purpose.to_owned(),
            config: config_name.to_owned(),
        });
    }
    if let Some(globs) = &config.jobs {
        let job = v.pair("job").ok_or_else(|| BrokerError::UnknownJob {
            purpose: purpose.to_owned(),
            config: config_name.to_owned(),
        })?;
        if !config.admits_job(&job) {
            return Err(BrokerError::JobNotAllowed {
                purpose: purpose.to_owned(),
                job: crate::error::truncate(&job, 200),
                allowed: globs.join(", "),
                config: config_name.to_owned(),
            });
        }
    }
    let refuse = |what: String, fix: &str| BrokerError::ChoiceNotAllowed {
        purpose: purpose.to_owned(),
        what,
        fix: fix.to_owned(),
        config: config_name.to_owned(),
    };
    check_choices(v, config, &refuse)
}

/// Every choice the request makes must be one the purpose offers; `refuse` words a refusal
/// (what the request asked, how to fix it).
fn check_choices(
    v: &Values<'_>,
    config: &PurposeConfig,
    refuse: &dyn Fn(String, &str) -> BrokerError,
) -> Result<(), BrokerError> {
    for (key, what) in [
        ("mount", "choose the Vault mount"),
        ("vault_role", "choose the Vault role"),
        (
            "session_name",
            "name the STS session (it always names the job and build)",
        ),
    ] {
        if v.pair(key).is_some() {
            return Err(refuse(
                what.to_owned(),
                "leave the option out; the purpose's table sets mount and vault_role",
            ));
        }
    }
    if let Some(arn) = v.pair("role_arn") {
        // A malformed ARN is a typo to fix, not something to add to role_arns.
        check_role_arn(&arn)?;
        if !config.offers_role_arn(&arn) {
            return Err(refuse(
                format!("assume {}", crate::error::truncate(&arn, 200)),
                "leave roleArn out, or add the ARN to the purpose's role_arns",
            ));
        }
    }
    if let (Some(ttl), Some(max)) = (v.pair("ttl"), config.max_ttl_seconds) {
        if parse_ttl(&ttl)? > max {
            return Err(refuse(
                format!("ask for ttl {ttl} (its max_ttl is {max} s)"),
                "ask for less, or raise the purpose's max_ttl",
            ));
        }
    }
    Ok(())
}

/// Where the controller's Vault is, from its settings alone (`get` reads a request key's
/// variable): the address, namespace and TLS trust.
pub fn endpoint_from(get: &dyn Fn(&str) -> Option<String>) -> Result<VaultEndpoint, BrokerError> {
    Ok(VaultEndpoint {
        addr: check_addr(&get("vault_addr").ok_or(BrokerError::MissingVaultAddr)?)?,
        namespace: match get("vault_namespace") {
            Some(ns) => Some(check_namespace(&ns)?),
            None => None,
        },
        cacert: get("vault_cacert"),
        skip_verify: match get("vault_skip_verify") {
            Some(s) => parse_bool("vault_skip_verify", &s)?,
            None => false,
        },
    })
}

/// The login `get` gives (the caller's own, `own`, or the controller's), with the controller's
/// VAULT_AUTH_MOUNT; a missing or partial one says what is missing.
fn resolve_auth(
    v: &Values<'_>,
    get: &dyn Fn(&str) -> Option<String>,
    own: bool,
) -> Result<VaultAuth, BrokerError> {
    let auth_mount = match v.env_of("vault_auth_mount") {
        Some(m) => Some(check_mount(&m).map_err(|_| {
            BrokerError::invalid(
                "vault_auth_mount",
                &m,
                "use the path of the auth method without auth/, e.g. approle or jenkins-jwt",
            )
        })?),
        None => None,
    };
    if let Some(auth) = auth_from(get)? {
        return Ok(match auth_mount {
            Some(m) => auth.with_mount(m),
            None => auth,
        });
    }
    let detail = if get("vault_role_id").is_some() != get("vault_secret_id").is_some() {
        " (AppRole needs both VAULT_ROLE_ID and VAULT_SECRET_ID)"
    } else if get("vault_jwt").is_some() || get("vault_jwt_file").is_some() {
        " (a JWT also needs VAULT_JWT_ROLE)"
    } else if own {
        " (the job's own credential gave an incomplete login)"
    } else {
        ""
    };
    Err(BrokerError::MissingVaultCredentials {
        detail: detail.to_owned(),
    })
}

fn auth_from(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<VaultAuth>, BrokerError> {
    if let Some(token) = get("vault_token") {
        check_token(
            "vault_token",
            &token,
            "a Vault token is visible ASCII without spaces: look for a stray newline in VAULT_TOKEN or the Jenkins credential",
        )?;
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
    use crate::testing::{assert_err, assert_matches, env_of, pairs, temp_dir};

    /// A purposes file in a directory of the test's own (removed when dropped), for the
    /// controller's WITHAWSROLE_CONFIG.
    struct ConfigFile {
        path: PathBuf,
    }

    impl ConfigFile {
        fn new(name: &str, text: &str) -> Self {
            let path = temp_dir(name).join("purposes.toml");
            std::fs::write(&path, text).unwrap();
            ConfigFile { path }
        }

        fn name(&self) -> &str {
            self.path.to_str().unwrap()
        }

        /// The controller's settings: a Vault, a token, and this file.
        fn settings(&self) -> impl Fn(&str) -> Option<String> + Send + Sync {
            let vault = [("VAULT_ADDR", "http://v:8200"), ("VAULT_TOKEN", "t")];
            env_of(&[vault[0], vault[1], ("WITHAWSROLE_CONFIG", self.name())])
        }
    }

    impl Drop for ConfigFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.path.parent().unwrap());
        }
    }

    /// A request of only a purpose, from a controller at http://v:8200 with `settings` besides.
    fn plain_request_with(settings: &[(&str, &str)]) -> CredentialRequest {
        let mut all = vec![("VAULT_ADDR", "http://v:8200")];
        all.extend_from_slice(settings);
        parse(&[("purpose", "p")], &env_of(&all)).unwrap()
    }

    /// The request `p` parses to with settings `env`, ungoverned.
    fn parse(
        p: &[(&str, &str)],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<CredentialRequest, BrokerError> {
        parse_request(&pairs(p), env)
    }
    use crate::error::ErrorKind;

    fn base_env() -> impl Fn(&str) -> Option<String> + Send + Sync {
        env_of(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200/"),
            ("VAULT_TOKEN", "root-token"),
        ])
    }

    #[test]
    fn minimal_request_uses_defaults_and_env() {
        let r = parse(&[("purpose", "ecr-push")], &base_env()).unwrap();
        assert_eq!(r.target.mount, "aws");
        assert_eq!(r.target.vault_role, "ecr-push");
        assert_eq!(r.login.endpoint.addr, "http://127.0.0.1:8200");
        assert_eq!(r.login.auth, VaultAuth::Token("root-token".into()));
        assert_eq!(r.target.session_name, "jenkins-ecr-push");
        assert_eq!(r.target.ttl_seconds, None);
        assert_eq!(r.sts_path(), "aws/sts/ecr-push");
    }

    #[test]
    fn request_pairs_and_controller_settings_are_all_carried() {
        let env = env_of(&[
            ("VAULT_ADDR", "https://vault.example.com:8200"),
            ("VAULT_NAMESPACE", "admin/team-a"),
            ("VAULT_SKIP_VERIFY", "true"),
            ("VAULT_TOKEN", "root-token"),
        ]);
        let r = parse(
            &[
                ("purpose", "deploy"),
                ("mount", "/team-a/aws/"),
                ("vault_role", "deployer"),
                ("role_arn", "arn:aws:iam::123456789012:role/path/deploy"),
                ("ttl", "1h30m"),
                ("job", "app/main"),
                ("build", "17"),
                ("region", "eu-west-1"),
            ],
            &env,
        )
        .unwrap();
        assert_eq!(r.target.mount, "team-a/aws");
        assert_eq!(r.target.vault_role, "deployer");
        assert_eq!(r.target.ttl_seconds, Some(5400));
        assert_eq!(r.target.session_name, "jenkins-app-main-17");
        assert_eq!(r.target.region.as_deref(), Some("eu-west-1"));
        assert_eq!(r.login.endpoint.addr, "https://vault.example.com:8200");
        assert_eq!(r.login.endpoint.namespace.as_deref(), Some("admin/team-a"));
        assert!(r.login.endpoint.skip_verify);
    }

    #[test]
    fn controller_keys_in_pairs_are_refused_naming_the_variable() {
        for key in CONTROLLER_KEYS {
            let variable = variable_of(key).expect("every controller key has a variable");
            let e = parse(
                &[("purpose", "p"), (key, "http://attacker.example:8200")],
                &base_env(),
            )
            .unwrap_err();
            assert_eq!(
                e,
                BrokerError::ControllerSetting {
                    key: key.to_string(),
                    variable
                },
                "{key}"
            );
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{key}");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("`{key}`"))
                    && msg.contains(&format!("-Dwithawsrole.{variable}")),
                "{msg}"
            );
            assert!(!msg.contains("attacker"), "{msg}");
        }
        // Even with a login of the request's own, the address stays the controller's.
        assert_err!(
            parse(
                &[
                    ("purpose", "p"),
                    ("vault_token", "own"),
                    ("vault_addr", "https://elsewhere:8200"),
                ],
                &base_env()
            ),
            BrokerError::ControllerSetting { .. }
        );
        // Own-login keys are not controller keys, and every controller key has a variable.
        for key in OWN_LOGIN_KEYS {
            assert!(!CONTROLLER_KEYS.contains(key), "{key}");
        }
        assert_eq!(variable_of("vault_addr"), Some("VAULT_ADDR"));
        assert_eq!(variable_of("config_file"), Some("WITHAWSROLE_CONFIG"));
        assert_eq!(variable_of("purpose"), None);
        assert_eq!(variable_of("nonsense"), None);
    }

    #[test]
    fn unknown_key_lists_the_valid_keys() {
        let e = parse(&[("purpose", "x"), ("tll", "1h")], &base_env()).unwrap_err();
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
        let e = parse(&[("mount", "aws")], &base_env()).unwrap_err();
        assert_eq!(e, BrokerError::MissingPurpose);
        for bad in ["../sys", "a/b", "with space", "", "ü", &"x".repeat(129)] {
            let r = parse(&[("purpose", bad)], &base_env());
            assert!(r.is_err(), "{bad:?} accepted");
        }
        assert!(parse(&[("purpose", "A_b.c-1")], &base_env()).is_ok());
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
            let e = parse(&[("purpose", "p"), (k, v)], &base_env()).unwrap_err();
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
        let r = parse(
            &[
                ("purpose", "p"),
                ("vault_role_id", "rid"),
                ("vault_secret_id", "sid"),
            ],
            &base_env(),
        )
        .unwrap();
        assert_eq!(
            r.login.auth,
            VaultAuth::AppRole {
                mount: "approle".into(),
                role_id: "rid".into(),
                secret_id: "sid".into()
            }
        );
    }

    #[test]
    fn approle_from_env_and_jwt_file_are_resolved() {
        let r = plain_request_with(&[("VAULT_ROLE_ID", "rid"), ("VAULT_SECRET_ID", "sid")]);
        assert!(matches!(r.login.auth, VaultAuth::AppRole { .. }));

        let r = plain_request_with(&[
            ("VAULT_JWT_FILE", "/tmp/jwt"),
            ("VAULT_JWT_ROLE", "jenkins"),
        ]);
        assert_eq!(
            r.login.auth,
            VaultAuth::Jwt {
                mount: "jwt".into(),
                role: "jenkins".into(),
                jwt: JwtSource::File("/tmp/jwt".into())
            }
        );
    }

    #[test]
    fn empty_values_count_as_absent() {
        let r = parse(
            &[("purpose", "p"), ("role_arn", ""), ("vault_token", " ")],
            &base_env(),
        )
        .unwrap();
        assert_eq!(r.target.role_arn, None);
        assert_eq!(r.login.auth, VaultAuth::Token("root-token".into()));
    }

    #[test]
    fn duplicate_and_odd_inputs_are_rejected() {
        let e = parse(&[("purpose", "p"), ("purpose", "q")], &base_env()).unwrap_err();
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
        for (k, v) in [("ttl", "5m"), ("region", "EU WEST")] {
            let e = parse(&[("purpose", "p"), (k, v)], &base_env()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{k}={v}: {e}");
        }
        for (var, v, key) in [
            ("VAULT_ADDR", "vault.example.com", "vault_addr"),
            ("VAULT_ADDR", "ftp://vault", "vault_addr"),
            ("VAULT_ADDR", "https://user:pw@vault", "vault_addr"),
            ("VAULT_SKIP_VERIFY", "maybe", "vault_skip_verify"),
            ("VAULT_NAMESPACE", "../root", "vault_namespace"),
        ] {
            let mut vars = vec![("VAULT_ADDR", "http://v:8200"), ("VAULT_TOKEN", "t")];
            vars.retain(|(k, _)| *k != var);
            vars.push((var, v));
            let e = parse_request(&pairs(&[("purpose", "p")]), &env_of(&vars)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{var}={v}: {e}");
            assert!(e.to_string().contains(key), "{var}={v}: {e}");
        }
    }

    #[test]
    fn errors_and_debug_never_show_secrets() {
        let r = parse(
            &[
                ("purpose", "p"),
                ("vault_role_id", "rid"),
                ("vault_secret_id", "TOPSECRET"),
            ],
            &base_env(),
        )
        .unwrap();
        let shown = format!("{r:?} {:?}", r.cache_key());
        assert!(!shown.contains("TOPSECRET"), "{shown}");
        assert!(!shown.contains("root-token"), "{shown}");
        let t = parse(&[("purpose", "p")], &base_env()).unwrap();
        let shown = format!("{t:?} {:?}", t.cache_key());
        assert!(!shown.contains("root-token"), "{shown}");
        assert!(t.cache_key().auth_identity.starts_with("token:"));
    }

    #[test]
    fn cache_key_changes_with_everything_that_changes_the_answer() {
        let key_with = |vars: &[(&str, &str)], extra: &[(&str, &str)]| {
            let mut env = vec![
                ("VAULT_ADDR", "http://127.0.0.1:8200/"),
                ("VAULT_TOKEN", "root-token"),
            ];
            env.retain(|(k, _)| !vars.iter().any(|(v, _)| v == k));
            env.extend_from_slice(vars);
            let mut p = vec![("purpose", "p")];
            p.extend_from_slice(extra);
            parse_request(&pairs(&p), &env_of(&env))
                .unwrap()
                .cache_key()
        };
        let key = |extra: &[(&str, &str)]| key_with(&[], extra);
        let base = key(&[]);
        assert_eq!(base, key(&[]));
        for extra in [
            ("ttl", "1h"),
            ("role_arn", "arn:aws:iam::123456789012:role/x"),
            ("session_name", "other"),
            ("vault_role", "other"),
            ("mount", "aws2"),
            ("vault_token", "other-token"),
        ] {
            assert_ne!(base, key(&[extra]), "{extra:?}");
        }
        // The controller's settings change the answer too (a broker sees one set at a time,
        // but apply_overrides can move it).
        for var in [
            ("VAULT_NAMESPACE", "ns"),
            ("VAULT_ADDR", "http://other:8200"),
            ("VAULT_TOKEN", "other-token"),
            ("VAULT_SKIP_VERIFY", "true"),
            ("VAULT_CACERT", "/etc/vault-ca.pem"),
        ] {
            assert_ne!(base, key_with(&[var], &[]), "{var:?}");
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
    fn the_controllers_config_file_supplies_purpose_defaults_and_pairs_win() {
        let file = ConfigFile::new("cfg", "[purposes.deploy]\nvault_role = \"deployer\"\nrole_arn = \"arn:aws:iam::123456789012:role/deploy\"\nttl = \"1h\"\n");
        let env = file.settings();
        let p = file.name();
        let r = parse(&[("purpose", "deploy"), ("ttl", "2h")], &env).unwrap();
        assert_eq!(r.target.vault_role, "deployer");
        assert_eq!(
            r.target.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/deploy")
        );
        assert_eq!(r.target.ttl_seconds, Some(7200));
        let r = parse(&[("purpose", "other")], &env).unwrap();
        assert_eq!(r.target.vault_role, "other");

        std::fs::write(&file.path, "[purposes.deploy]\nrolearn = \"x\"\n").unwrap();
        let e = assert_err!(
            parse(&[("purpose", "deploy")], &env),
            BrokerError::Config { .. }
        );
        assert!(
            e.to_string().contains(&format!(
                "invalid purposes config {p}, line 2, key `purposes.deploy.rolearn`"
            )),
            "{e}"
        );
    }

    #[test]
    fn the_controllers_config_file_wins_over_config_text() {
        let controller =
            "[purposes.deploy]\nrole_arn = \"arn:aws:iam::123456789012:role/controller\"\n";
        let file = ConfigFile::new("cfg-wins", controller);
        let env = file.settings();
        let text = "[purposes.deploy]\nrole_arn = \"arn:aws:iam::123456789012:role/library\"\n";
        let r = parse(&[("purpose", "deploy"), ("config_text", text)], &env).unwrap();
        assert_eq!(
            r.target.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/controller")
        );
        // A controller file that cannot be read is an error, not a fall-back to config_text.
        let env = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_TOKEN", "t"),
            ("WITHAWSROLE_CONFIG", "/nonexistent/purposes.toml"),
        ]);
        let e = parse(&[("purpose", "deploy"), ("config_text", text)], &env).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/purposes.toml"), "{e}");
        // And a request cannot name a file of its own.
        let e = parse(
            &[
                ("purpose", "deploy"),
                ("config_text", text),
                ("config_file", "/x.toml"),
            ],
            &base_env(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            BrokerError::ControllerSetting {
                key: "config_file".into(),
                variable: "WITHAWSROLE_CONFIG"
            }
        );
    }

    #[test]
    fn config_text_applies_without_a_controller_file_and_is_named_in_errors() {
        let text = "[purposes.deploy]\nrole_arn = \"arn:aws:iam::123456789012:role/d\"\n";
        let r = parse(&[("purpose", "deploy"), ("config_text", text)], &base_env()).unwrap();
        assert_eq!(
            r.target.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/d")
        );
        let e = parse(
            &[
                ("purpose", "deploy"),
                ("config_text", "\n[purposes.deploy]\nttl = \"forever\"\n"),
                ("config_name", "org/withawsrole/purposes.toml"),
            ],
            &base_env(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert!(
            e.to_string().starts_with(
                "invalid purposes config org/withawsrole/purposes.toml, line 3, key `purposes.deploy.ttl`: invalid ttl"
            ),
            "{e}"
        );
    }

    #[test]
    fn auth_mount_and_k8s_token_file_are_honoured() {
        let r = plain_request_with(&[
            ("VAULT_K8S_ROLE", "jenkins"),
            ("VAULT_AUTH_MOUNT", "k8s-prod"),
        ]);
        assert_eq!(
            r.login.auth,
            VaultAuth::Kubernetes {
                mount: "k8s-prod".into(),
                role: "jenkins".into(),
                jwt: JwtSource::File(K8S_TOKEN_FILE.into())
            }
        );
        let token_file = ("VAULT_K8S_TOKEN_FILE", "/tmp/sa-token");
        let r = plain_request_with(&[("VAULT_K8S_ROLE", "jenkins"), token_file]);
        assert!(
            matches!(&r.login.auth, VaultAuth::Kubernetes { jwt: JwtSource::File(f), .. } if f == &PathBuf::from("/tmp/sa-token"))
        );
        let env = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_K8S_ROLE", "jenkins"),
            ("VAULT_AUTH_MOUNT", "a//b"),
        ]);
        let e = parse(&[("purpose", "p")], &env).unwrap_err();
        assert!(e.to_string().contains("vault_auth_mount"), "{e}");
        // The controller's auth mount also applies to a job's own AppRole login.
        let env = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_AUTH_MOUNT", "team-approle"),
        ]);
        let r = parse(
            &[
                ("purpose", "p"),
                ("vault_role_id", "r"),
                ("vault_secret_id", "s"),
            ],
            &env,
        )
        .unwrap();
        assert_matches!(r.login.auth, VaultAuth::AppRole { mount, .. } if mount == "team-approle");
    }

    // ---- a job's own login against the controller's --------------------------------------------

    #[test]
    fn a_partial_own_login_never_borrows_the_controllers_secret() {
        let controller = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_TOKEN", "CONTROLLER-TOKEN"),
            ("VAULT_ROLE_ID", "controller-rid"),
            ("VAULT_SECRET_ID", "CONTROLLER-SECRET-ID"),
            ("VAULT_JWT", "CONTROLLER.JWT.x"),
            ("VAULT_JWT_ROLE", "controller-jwt-role"),
        ]);
        for (own, detail) in [
            (
                vec![("vault_role_id", "job-rid")],
                "needs both VAULT_ROLE_ID and VAULT_SECRET_ID",
            ),
            (
                vec![("vault_secret_id", "job-sid")],
                "needs both VAULT_ROLE_ID and VAULT_SECRET_ID",
            ),
            (
                vec![("vault_jwt_role", "job-role")],
                "the job's own credential gave an incomplete login",
            ),
            (
                vec![("vault_jwt", "job.jwt.x")],
                "a JWT also needs VAULT_JWT_ROLE",
            ),
        ] {
            let mut p = vec![("purpose", "p")];
            p.extend_from_slice(&own);
            let e = parse_request(&pairs(&p), &controller).unwrap_err();
            assert!(
                matches!(e, BrokerError::MissingVaultCredentials { .. }),
                "{own:?}: {e:?}"
            );
            let msg = e.to_string();
            assert!(msg.contains(detail), "{own:?}: {msg}");
            assert!(!msg.contains("CONTROLLER"), "{msg}");
        }
        // Nor is a JWT role borrowed by a job's JWT, nor a controller JWT file by a job's role.
        let file_env = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_JWT_FILE", "/var/run/controller.jwt"),
        ]);
        assert_err!(
            parse(&[("purpose", "p"), ("vault_jwt_role", "r")], &file_env),
            BrokerError::MissingVaultCredentials { .. }
        );
    }

    #[test]
    fn a_whole_own_login_is_used_alone() {
        let controller = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_ROLE_ID", "controller-rid"),
            ("VAULT_SECRET_ID", "controller-sid"),
            ("VAULT_JWT_ROLE", "controller-jwt-role"),
        ]);
        let r = parse(&[("purpose", "p"), ("vault_token", "job")], &controller).unwrap();
        assert_eq!(r.login.auth, VaultAuth::Token("job".into()));
        let r = parse(
            &[
                ("purpose", "p"),
                ("vault_jwt", "job.jwt.x"),
                ("vault_jwt_role", "job-role"),
            ],
            &controller,
        )
        .unwrap();
        assert_eq!(
            r.login.auth,
            VaultAuth::Jwt {
                mount: JWT_MOUNT.into(),
                role: "job-role".into(),
                jwt: JwtSource::Inline("job.jwt.x".into())
            }
        );
        // Without any login key of its own, the request uses the controller's login.
        let r = parse(&[("purpose", "p")], &controller).unwrap();
        assert_matches!(r.login.auth, VaultAuth::AppRole { role_id, .. } if role_id == "controller-rid");
    }

    #[test]
    fn the_controllers_token_and_secret_id_are_read_from_their_files() {
        let dir = temp_dir("login-files");
        let token = dir.join("token");
        let secret_id = dir.join("secret-id");
        let blank = dir.join("blank");
        std::fs::write(&token, "hvs.FROM-FILE\n").unwrap();
        std::fs::write(&secret_id, "  sid-from-file\n").unwrap();
        std::fs::write(&blank, "\n").unwrap();
        let (token, secret_id, blank) = (
            token.to_str().unwrap(),
            secret_id.to_str().unwrap(),
            blank.to_str().unwrap(),
        );

        let env = env_of(&[("VAULT_ADDR", "http://v:8200"), ("VAULT_TOKEN_FILE", token)]);
        let r = parse(&[("purpose", "p")], &env).unwrap();
        assert_eq!(r.login.auth, VaultAuth::Token("hvs.FROM-FILE".into()));

        let env = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_ROLE_ID", "rid"),
            ("VAULT_SECRET_ID_FILE", secret_id),
        ]);
        let r = parse(&[("purpose", "p")], &env).unwrap();
        assert_eq!(
            r.login.auth,
            VaultAuth::AppRole {
                mount: APPROLE_MOUNT.into(),
                role_id: "rid".into(),
                secret_id: "sid-from-file".into()
            }
        );

        // The variable itself wins over its file.
        let env = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_TOKEN", "from-env"),
            ("VAULT_TOKEN_FILE", token),
        ]);
        let r = parse(&[("purpose", "p")], &env).unwrap();
        assert_eq!(r.login.auth, VaultAuth::Token("from-env".into()));

        // A missing or blank file is no login at all, named in the error.
        for file in ["/nonexistent/token", blank] {
            let env = env_of(&[("VAULT_ADDR", "http://v:8200"), ("VAULT_TOKEN_FILE", file)]);
            let e = assert_err!(
                parse(&[("purpose", "p")], &env),
                BrokerError::MissingVaultCredentials { .. }
            );
            assert!(e.to_string().contains("VAULT_TOKEN_FILE"), "{e}");
        }
        // A job's own partial AppRole does not read the controller's secret_id file either.
        let env = env_of(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_SECRET_ID_FILE", secret_id),
        ]);
        let e = parse(&[("purpose", "p"), ("vault_role_id", "job")], &env).unwrap_err();
        assert!(
            matches!(e, BrokerError::MissingVaultCredentials { .. }),
            "{e}"
        );
    }

    // ---- governed: the purposes config as an authorization boundary ---------------------------

    const GOVERNING: &str = r#"
[defaults]
max_ttl = "2h"

[purposes.deploy]
role_arn = "arn:aws:iam::123456789012:role/deploy"
role_arns = ["arn:aws:iam::123456789012:role/deploy-eu", "arn:aws:iam::123456789012:role/deploy-us"]
max_ttl = "1h"
jobs = ["team-a/**", "app/*"]

[purposes.ecr-push]
vault_role = "ecr-push"

[purposes.nightly]
jobs = ["ops/nightly"]
"#;

    fn governed(extra: &[(&str, &str)]) -> Result<CredentialRequest, BrokerError> {
        governed_by(Some(GOVERNING), extra)
    }

    fn governed_by(
        config: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<CredentialRequest, BrokerError> {
        let mut p = extra.to_vec();
        if let Some(text) = config {
            p.push(("config_text", text));
            p.push(("config_name", "org/withawsrole/purposes.toml"));
        }
        parse_request_as(&pairs(&p), &base_env(), Governance::Governed)
    }

    #[test]
    fn governed_an_unlisted_purpose_is_refused() {
        let e = governed(&[("purpose", "admin")]).unwrap_err();
        assert!(
            matches!(&e, BrokerError::PurposeNotListed { purpose, .. } if purpose == "admin"),
            "{e:?}"
        );
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        let msg = e.to_string();
        assert!(
            msg.contains("org/withawsrole/purposes.toml") && msg.contains("[purposes.admin]"),
            "{msg}"
        );
        // Ungoverned (the CLI), the same request gets the zero-config defaults.
        let mut p = pairs(&[("purpose", "admin"), ("config_text", GOVERNING)]);
        let r = parse_request(&p, &base_env()).unwrap();
        assert_eq!(r.sts_path(), "aws/sts/admin");
        // A listed purpose without restrictions is served.
        p[0].1 = "ecr-push".into();
        let r = parse_request_as(&p, &base_env(), Governance::Governed).unwrap();
        assert_eq!(r.sts_path(), "aws/sts/ecr-push");
    }

    #[test]
    fn governed_no_config_or_an_empty_one_lists_nothing() {
        let e = assert_err!(
            governed_by(None, &[("purpose", "ecr-push")]),
            BrokerError::PurposeNotListed { .. }
        );
        assert!(e.to_string().contains("(none"), "{e}");
        for empty in [
            "# nothing reviewed yet\n",
            "[defaults]\nttl = \"1h\"\n",
            "[purposes]\n",
        ] {
            let e = governed_by(Some(empty), &[("purpose", "ecr-push")]).unwrap_err();
            assert!(
                matches!(e, BrokerError::PurposeNotListed { .. }),
                "{empty:?}: {e:?}"
            );
        }
    }

    #[test]
    fn governed_jobs_globs_admit_only_their_jobs() {
        for job in ["team-a/x/main", "team-a/y", "app/main", "app/release-1.2"] {
            let r = governed(&[("purpose", "deploy"), ("job", job)]);
            assert!(r.is_ok(), "{job}: {r:?}");
        }
        for job in [
            "team-b/x",
            "team-ab/x",
            "app/main/x",
            "app",
            "other",
            "team-a-x/y",
        ] {
            let e = governed(&[("purpose", "deploy"), ("job", job)]).unwrap_err();
            assert!(
                matches!(&e, BrokerError::JobNotAllowed { job: j, .. } if j == job),
                "{job}: {e:?}"
            );
            assert_eq!(e.kind(), ErrorKind::PermissionDenied);
            assert!(e.to_string().contains("team-a/**, app/*"), "{e}");
        }
        let r = governed(&[("purpose", "nightly"), ("job", "ops/nightly")]);
        assert!(r.is_ok(), "{r:?}");
        assert_err!(
            governed(&[("purpose", "nightly"), ("job", "ops/nightly-2")]),
            BrokerError::JobNotAllowed { .. }
        );
    }

    #[test]
    fn governed_defaults_jobs_apply_where_a_purpose_names_none() {
        let config = "[defaults]\njobs = [\"platform/**\"]\n\n[purposes.ecr-push]\n\n[purposes.open]\njobs = [\"**\"]\n";
        assert!(governed_by(
            Some(config),
            &[("purpose", "ecr-push"), ("job", "platform/x")]
        )
        .is_ok());
        assert_err!(
            governed_by(
                Some(config),
                &[("purpose", "ecr-push"), ("job", "team-a/x")],
            ),
            BrokerError::JobNotAllowed { .. }
        );
        assert!(governed_by(Some(config), &[("purpose", "open"), ("job", "team-a/x")]).is_ok());
    }

    #[test]
    fn governed_a_request_without_a_job_is_refused_where_jobs_are_limited() {
        for job in [None, Some(""), Some("  ")] {
            let mut p = vec![("purpose", "deploy")];
            if let Some(j) = job {
                p.push(("job", j));
            }
            let e = governed(&p).unwrap_err();
            assert!(
                matches!(e, BrokerError::UnknownJob { .. }),
                "{job:?}: {e:?}"
            );
            assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        }
        // Where the purpose names no jobs, none is needed.
        assert!(governed(&[("purpose", "ecr-push")]).is_ok());
    }

    #[test]
    fn governed_role_arn_must_be_one_the_purpose_offers() {
        let ok = |arn: &str| {
            governed(&[
                ("purpose", "deploy"),
                ("job", "app/main"),
                ("role_arn", arn),
            ])
        };
        for arn in [
            "arn:aws:iam::123456789012:role/deploy",
            "arn:aws:iam::123456789012:role/deploy-eu",
            "arn:aws:iam::123456789012:role/deploy-us",
        ] {
            assert_eq!(ok(arn).unwrap().target.role_arn.as_deref(), Some(arn));
        }
        let e = assert_err!(
            ok("arn:aws:iam::999999999999:role/admin"),
            BrokerError::ChoiceNotAllowed { .. }
        );
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert!(e.to_string().contains("role_arns"), "{e}");
        // Without role_arn, the purpose's own.
        let r = governed(&[("purpose", "deploy"), ("job", "app/main")]).unwrap();
        assert_eq!(
            r.target.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/deploy")
        );
        // A purpose that offers no ARN refuses every one.
        assert_err!(
            governed(&[
                ("purpose", "ecr-push"),
                ("role_arn", "arn:aws:iam::123456789012:role/deploy"),
            ]),
            BrokerError::ChoiceNotAllowed { .. }
        );
    }

    #[test]
    fn hiding_the_account_id_is_the_configs_floor_and_a_pipelines_choice_above_it() {
        let config = "[defaults]\nhide_account_id = true\n\n[purposes.quiet]\n\n[purposes.open]\nhide_account_id = false\n";
        let hidden =
            |p: &[(&str, &str)]| governed_by(Some(config), p).map(|r| r.target.hide_account_id);
        assert!(
            hidden(&[("purpose", "quiet")]).unwrap(),
            "[defaults] applies"
        );
        assert!(
            !hidden(&[("purpose", "open")]).unwrap(),
            "the purpose's own wins"
        );
        assert!(hidden(&[("purpose", "open"), ("hide_account_id", "true")]).unwrap());
        let e = assert_err!(
            hidden(&[("purpose", "quiet"), ("hide_account_id", "false")]),
            BrokerError::ChoiceNotAllowed { .. }
        );
        assert!(e.to_string().contains("leave hideAccountId out"), "{e}");
        assert_err!(
            hidden(&[("purpose", "open"), ("hide_account_id", "maybe")]),
            BrokerError::InvalidValue { .. }
        );
        // Without any config: shown unless asked.
        assert!(
            !governed(&[("purpose", "ecr-push")])
                .unwrap()
                .target
                .hide_account_id
        );
        let e = crate::config::PurposesConfig::parse(
            "t.toml",
            "[purposes.x]\nhide_account_id = \"yes\"\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("expected true or false, found string"),
            "{e}"
        );
    }

    #[test]
    fn governed_ttl_may_not_exceed_max_ttl() {
        let ttl = |purpose: &str, ttl: &str| {
            governed(&[("purpose", purpose), ("job", "app/main"), ("ttl", ttl)])
        };
        assert_eq!(ttl("deploy", "1h").unwrap().target.ttl_seconds, Some(3600));
        assert_eq!(ttl("deploy", "15m").unwrap().target.ttl_seconds, Some(900));
        let e = assert_err!(ttl("deploy", "3601"), BrokerError::ChoiceNotAllowed { .. });
        assert!(e.to_string().contains("max_ttl is 3600 s"), "{e}");
        // [defaults] max_ttl applies where the purpose sets none.
        assert!(ttl("ecr-push", "2h").is_ok());
        assert_err!(ttl("ecr-push", "3h"), BrokerError::ChoiceNotAllowed { .. });
        // A ttl that is invalid anyway stays an invalid ttl.
        assert_err!(ttl("deploy", "5m"), BrokerError::InvalidValue { .. });
    }

    #[test]
    fn governed_mount_vault_role_and_session_name_are_not_a_pipelines_choice() {
        for (key, value) in [
            ("mount", "aws"),
            ("vault_role", "admin"),
            ("session_name", "someone-else"),
        ] {
            let e = governed(&[("purpose", "ecr-push"), (key, value)]).unwrap_err();
            assert!(
                matches!(e, BrokerError::ChoiceNotAllowed { .. }),
                "{key}: {e:?}"
            );
            assert_eq!(e.kind(), ErrorKind::InvalidRequest);
            // Ungoverned, the same choice is the caller's.
            let p = pairs(&[
                ("purpose", "ecr-push"),
                (key, value),
                ("config_text", GOVERNING),
            ]);
            assert!(parse_request(&p, &base_env()).is_ok(), "{key}");
        }
        // Blank counts as absent, as everywhere.
        assert!(governed(&[("purpose", "ecr-push"), ("mount", " ")]).is_ok());
    }

    #[test]
    fn governed_the_controllers_file_is_the_boundary_over_config_text() {
        let file = ConfigFile::new("cfg-governed", "[purposes.ecr-push]\n");
        let env = file.settings();
        // config_text lists deploy, but the controller's file governs and does not.
        let p = pairs(&[
            ("purpose", "deploy"),
            ("job", "app/main"),
            ("config_text", GOVERNING),
        ]);
        let e = parse_request_as(&p, &env, Governance::Governed).unwrap_err();
        assert!(
            matches!(&e, BrokerError::PurposeNotListed { config, .. } if config == file.name()),
            "{e:?}"
        );
    }
}
