//! Against the real test world (OpenBao + moto + the Vault AWS-engine front):
//!
//! ```sh
//! test/world/up && . test/world/.run/env && cargo test -p withawsrole-core --test world
//! ```
//!
//! The world's counters and faults are global, so every test holds `WORLD` for its whole run
//! (tests in this binary therefore run one at a time even without `--test-threads=1`), starts
//! with a reset, and uses its own session names. Each test has its own broker (own cache).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use withawsrole_core::{
    BrokerError, BrokerOptions, CredentialBroker, ErrorKind, Governance, IssuedCredentials,
};

static WORLD: Mutex<()> = Mutex::new(());

const START: &str = "start the world: test/world/up && . test/world/.run/env";

struct World {
    _guard: MutexGuard<'static, ()>,
    addr: String,
    token: String,
    control: String,
}

fn env(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("{name} is not set: {START}"))
}

/// Takes the world for this test, checks it answers, and resets counters and faults.
fn world() -> World {
    install_log_capture();
    let guard = WORLD.lock().unwrap_or_else(|p| p.into_inner());
    let w = World {
        _guard: guard,
        addr: env("VAULT_ADDR"),
        token: env("VAULT_TOKEN"),
        control: env("WORLD_CONTROL_URL"),
    };
    let (status, _) = w.call("GET", "/health", None);
    assert_eq!(status, 200, "the world's front does not answer: {START}");
    w.reset();
    w
}

impl World {
    /// A tiny HTTP/1.1 client for the loopback control API (no async runtime to nest).
    fn call(&self, method: &str, sub: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{}", self.control, sub);
        let rest = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("WORLD_CONTROL_URL must be http://: {url}"));
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(host).unwrap_or_else(|e| panic!("{url}: {e}; {START}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    fn reset(&self) {
        assert_eq!(self.call("POST", "/reset", None).0, 200);
        assert_eq!(self.call("DELETE", "/faults", None).0, 200);
    }

    fn counters(&self) -> Value {
        self.call("GET", "/counters", None).1
    }

    fn sts_calls(&self, role: &str) -> u64 {
        self.counters()["sts_calls"][format!("aws/{role}")]
            .as_u64()
            .unwrap_or(0)
    }

    fn fault(&self, spec: Value) {
        let (status, answer) = self.call("POST", "/faults", Some(spec));
        assert_eq!(status, 200, "{answer}");
    }

    fn broker(&self) -> CredentialBroker {
        self.broker_with(&[])
    }

    /// Options for a controller whose settings are the world's address (VAULT_ADDR) and `vars`
    /// (an empty value unsets; nothing else of the test process's environment is seen). The
    /// login is the request's own (`vault_token` & co.) unless `vars` gives the controller one.
    fn options(&self, vars: &[(&str, &str)]) -> BrokerOptions {
        let mut settings: HashMap<String, String> =
            HashMap::from([("VAULT_ADDR".to_string(), self.addr.clone())]);
        for (k, v) in vars {
            settings.insert(k.to_string(), v.to_string());
        }
        settings.retain(|_, v| !v.is_empty());
        BrokerOptions::with_env(Arc::new(move |k: &str| settings.get(k).cloned())).unwrap()
    }

    /// A broker with [`options`](Self::options) and quick retries.
    fn broker_with(&self, vars: &[(&str, &str)]) -> CredentialBroker {
        let mut options = self.options(vars);
        options.retry.base = Duration::from_millis(50);
        CredentialBroker::new(options).unwrap()
    }

    /// Pairs for `purpose` with a token login of the request's own and a per-test session name
    /// (the address is the broker's setting).
    fn token_request(
        &self,
        purpose: &str,
        session: &str,
        extra: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let mut p = vec![
            ("purpose".to_string(), purpose.to_string()),
            ("session_name".to_string(), session.to_string()),
            ("vault_token".to_string(), self.token.clone()),
        ];
        p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        p
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Leave no fault behind for the next test, even when this one failed.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.reset()));
    }
}

fn map(issued: &IssuedCredentials) -> HashMap<&'static str, String> {
    issued
        .pairs()
        .into_iter()
        .map(|(k, v)| (k, v.into_owned()))
        .collect()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn token_login_gets_ecr_push_credentials_and_the_second_call_is_a_hit() {
    let w = world();
    let broker = w.broker();
    let request = w.token_request("ecr-push", "world-token-login", &[("region", "us-east-1")]);
    let first = broker.credentials(&request).unwrap();
    let m = map(&first);
    assert!(
        m["arn"].contains("assumed-role/jenkins-ecr-push-role/world-token-login"),
        "{}",
        m["arn"]
    );
    assert!(
        m["access_key_id"].starts_with("ASIA"),
        "{}",
        m["access_key_id"]
    );
    assert!(!m["secret_access_key"].is_empty() && !m["session_token"].is_empty());
    assert_eq!(m["cache"], "miss");
    assert_eq!(m["session_name"], "world-token-login");
    assert_eq!(m["region"], "us-east-1");
    let lease: u64 = m["lease_duration_seconds"].parse().unwrap();
    let expires: u64 = m["expires_at_epoch_seconds"].parse().unwrap();
    assert!(lease >= 900, "{lease}");
    assert!(
        expires.abs_diff(now_secs() + lease) <= 5,
        "{expires} vs now+{lease}"
    );
    assert!(m["expiration"].ends_with('Z'));

    let second = broker.credentials(&request).unwrap();
    assert_eq!(map(&second)["cache"], "hit");
    assert_eq!(map(&second)["access_key_id"], m["access_key_id"]);
    assert_eq!(w.sts_calls("ecr-push"), 1);
    let stats = broker.stats();
    assert_eq!(
        (stats.vault_calls, stats.cache_hits, stats.cache_misses),
        (1, 1, 1)
    );
}

#[test]
fn requested_ttl_becomes_the_lease() {
    let w = world();
    let issued = w
        .broker()
        .credentials(&w.token_request("ecr-push", "world-ttl", &[("ttl", "15m")]))
        .unwrap();
    assert_eq!(map(&issued)["lease_duration_seconds"], "900");
}

#[test]
fn approle_login_gets_credentials_and_the_login_is_reused() {
    let w = world();
    let broker = w.broker();
    let approle = |session: &str| {
        vec![
            ("purpose".to_string(), "ecr-push".to_string()),
            ("session_name".to_string(), session.to_string()),
            ("vault_role_id".to_string(), env("VAULT_ROLE_ID")),
            ("vault_secret_id".to_string(), env("VAULT_SECRET_ID")),
        ]
    };
    let a = broker.credentials(&approle("world-approle-a")).unwrap();
    assert!(map(&a)["arn"].contains("assumed-role/jenkins-ecr-push-role/world-approle-a"));
    let b = broker.credentials(&approle("world-approle-b")).unwrap();
    assert!(map(&b)["arn"].contains("world-approle-b"));
    let stats = broker.stats();
    assert_eq!(stats.vault_logins, 1, "{stats:?}");
    assert_eq!(stats.vault_calls, 2, "{stats:?}");
}

#[test]
fn approle_from_the_environment_fallback() {
    let w = world();
    let role_id = env("VAULT_ROLE_ID");
    let secret_id = env("VAULT_SECRET_ID");
    let broker = w.broker_with(&[
        ("VAULT_ADDR", &w.addr),
        ("VAULT_ROLE_ID", &role_id),
        ("VAULT_SECRET_ID", &secret_id),
    ]);
    let issued = broker
        .credentials(&[
            ("purpose".into(), "ecr-push".into()),
            ("job".into(), "world/env fallback".into()),
            ("build".into(), "7".into()),
        ])
        .unwrap();
    let m = map(&issued);
    assert_eq!(m["session_name"], "jenkins-world-env-fallback-7");
    assert!(
        m["arn"].ends_with("/jenkins-world-env-fallback-7"),
        "{}",
        m["arn"]
    );
}

#[test]
fn deploy_needs_a_role_arn() {
    let w = world();
    let broker = w.broker();
    let e = broker
        .credentials(&w.token_request("deploy", "world-deploy", &[]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    assert!(e.to_string().contains("role_arn"), "{e}");

    let arn = format!(
        "arn:aws:iam::{}:role/jenkins-deploy-role",
        env("WORLD_ACCOUNT_ID")
    );
    let issued = broker
        .credentials(&w.token_request("deploy", "world-deploy", &[("role_arn", &arn)]))
        .unwrap();
    assert!(map(&issued)["arn"].contains("assumed-role/jenkins-deploy-role/world-deploy"));
}

#[test]
fn forbidden_role_is_permission_denied_with_the_fix() {
    let w = world();
    let e = w
        .broker()
        .credentials(&w.token_request("forbidden", "world-forbidden", &[]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert_eq!(
        e.to_string(),
        "Vault denied `update` on aws/sts/forbidden: ask your Vault admin to add it to the policy \
         of the token/AppRole used by Jenkins"
    );
    assert_eq!(w.sts_calls("forbidden"), 1, "403 is not retried");
}

#[test]
fn unknown_role_is_an_invalid_request() {
    let w = world();
    let e = w
        .broker()
        .credentials(&w.token_request("no-such-role", "world-unknown", &[]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    assert!(e.to_string().contains("no-such-role"), "{e}");
}

#[test]
fn sixty_four_parallel_requests_make_one_sts_call() {
    let w = world();
    let broker = Arc::new(w.broker());
    let request = Arc::new(w.token_request("ecr-push", "world-parallel-64", &[]));
    let barrier = Arc::new(Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let (broker, request, barrier) = (broker.clone(), request.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let issued = broker.credentials(&request).unwrap();
                map(&issued)["access_key_id"].clone()
            })
        })
        .collect();
    let keys: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "everyone gets the same credentials"
    );
    assert_eq!(w.sts_calls("ecr-push"), 1, "{}", w.counters());
    let stats = broker.stats();
    assert_eq!(stats.vault_calls, 1);
    assert_eq!(stats.cache_misses, 1);
    assert_eq!(stats.cache_hits, 63);
}

#[test]
fn clear_cache_forces_a_new_vault_call() {
    let w = world();
    let broker = w.broker();
    let request = w.token_request("ecr-push", "world-clear", &[]);
    broker.credentials(&request).unwrap();
    broker.clear_cache();
    assert_eq!(map(&broker.credentials(&request).unwrap())["cache"], "miss");
    assert_eq!(w.sts_calls("ecr-push"), 2);
}

/// A role in the front's `aws` mount, written as the world's root; deleted by the caller.
fn front_role(name: &str, fields: Value) {
    let url = format!("{}/v1/aws/roles/{name}", env("VAULT_ADDR"));
    let root = env("WORLD_ROOT_TOKEN");
    let mut body = json!({"credential_type": "assumed_role",
        "role_arns": ["arn:aws:iam::123456789012:role/jenkins-ecr-push-role"]});
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let (status, answer) = http("POST", &url, &[("X-Vault-Token", &root)], Some(body));
    assert_eq!(status, 204, "{answer}");
}

fn delete_front_role(name: &str) {
    let url = format!("{}/v1/aws/roles/{name}", env("VAULT_ADDR"));
    http(
        "DELETE",
        &url,
        &[("X-Vault-Token", &env("WORLD_ROOT_TOKEN"))],
        None,
    );
}

/// The answer shapes Vault has shipped (test/world/README.md): up to 1.15 `security_token`
/// only, from 1.16 `session_token` too; either with a lease, or, for a role with `no_lease`,
/// `lease_duration` 0 and the keys' lifetime in `data.ttl`. The role caps the requested hour at
/// 20 minutes without saying so, and the keys must never be trusted for longer.
#[test]
fn every_answer_shape_vault_shipped_gives_working_keys_trusted_no_longer_than_granted() {
    let w = world();
    let role = "world-shapes";
    for version in ["1.15", "1.16"] {
        for no_lease in [false, true] {
            w.reset();
            let (status, answer) = w.call(
                "POST",
                "/options",
                Some(json!({ "vault_version": version })),
            );
            assert_eq!(status, 200, "{answer}");
            front_role(role, json!({"max_sts_ttl": "20m", "no_lease": no_lease}));
            let session = format!("world-shape-{}-{no_lease}", version.replace('.', "-"));
            let issued = w.broker().credentials(&w.token_request(
                "ecr-push",
                &session,
                &[("vault_role", role), ("ttl", "1h")],
            ));
            delete_front_role(role);
            let m = map(&issued.unwrap_or_else(|e| panic!("{version} no_lease={no_lease}: {e}")));
            assert!(!m["session_token"].is_empty());
            assert!(m["arn"].contains(&session), "{}", m["arn"]);
            let lease: u64 = m["lease_duration_seconds"].parse().unwrap();
            assert_eq!(lease, 1200, "Vault {version}, no_lease={no_lease}");
            let expires: u64 = m["expires_at_epoch_seconds"].parse().unwrap();
            assert!(expires <= now_secs() + 1200, "{expires}");
        }
    }
}

#[test]
fn two_503s_are_retried_into_one_issue() {
    let w = world();
    w.fault(json!({"path": "aws/sts/ecr-push", "status": 503, "ratio": 1.0, "count": 2}));
    let broker = w.broker();
    let issued = broker
        .credentials(&w.token_request("ecr-push", "world-retry-503", &[]))
        .unwrap();
    assert_eq!(map(&issued)["cache"], "miss");
    let c = w.counters();
    assert_eq!(c["sts_calls"]["aws/ecr-push"], 3, "{c}");
    assert_eq!(c["sts_issued"], 1, "{c}");
    let stats = broker.stats();
    assert_eq!((stats.vault_calls, stats.retries), (3, 2), "{stats:?}");
}

#[test]
fn a_reset_connection_is_retried() {
    let w = world();
    w.fault(json!({"path": "aws/sts/ecr-push", "mode": "reset", "count": 1}));
    let issued = w
        .broker()
        .credentials(&w.token_request("ecr-push", "world-retry-reset", &[]))
        .unwrap();
    assert!(map(&issued)["arn"].contains("world-retry-reset"));
    assert_eq!(w.sts_calls("ecr-push"), 2);
}

#[test]
fn aws_throttling_is_retried() {
    let w = world();
    w.fault(json!({"path": "aws/sts/ecr-push", "status": 400, "count": 1,
                   "body": {"errors": ["Error assuming role: Throttling: Rate exceeded\n\tstatus code: 400"]}}));
    w.broker()
        .credentials(&w.token_request("ecr-push", "world-throttled", &[]))
        .unwrap();
    assert_eq!(w.sts_calls("ecr-push"), 2);
}

#[test]
fn a_400_is_not_retried() {
    let w = world();
    w.fault(json!({"path": "aws/sts/ecr-push", "status": 400, "ratio": 1.0, "count": 5}));
    let e = w
        .broker()
        .credentials(&w.token_request("ecr-push", "world-no-retry-400", &[]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    assert_eq!(w.sts_calls("ecr-push"), 1);
}

#[test]
fn the_deadline_ends_in_unavailable_naming_the_last_cause() {
    let w = world();
    w.fault(json!({"path": "aws/sts/ecr-push", "status": 503, "ratio": 1.0}));
    let broker = w.broker_with(&[("WITHAWSROLE_DEADLINE_SECONDS", "2")]);
    let started = Instant::now();
    let e = broker
        .credentials(&w.token_request("ecr-push", "world-deadline", &[]))
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with("gave up after 2 s"), "{msg}");
    assert!(msg.contains("503"), "{msg}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(w.sts_calls("ecr-push") >= 2);
}

#[test]
fn a_failed_fetch_is_not_cached() {
    let w = world();
    w.fault(json!({"path": "aws/sts/ecr-push", "status": 400, "count": 1}));
    let broker = w.broker();
    let request = w.token_request("ecr-push", "world-not-cached", &[]);
    assert!(broker.credentials(&request).is_err());
    assert_eq!(map(&broker.credentials(&request).unwrap())["cache"], "miss");
}

#[test]
fn a_ttl_over_the_iam_max_session_duration_explains_the_remedies() {
    let w = world();
    let e = w
        .broker()
        .credentials(&w.token_request("ecr-push", "world-ttl-too-long", &[("ttl", "2h")]))
        .unwrap_err();
    assert!(matches!(e, BrokerError::DurationTooLong { .. }), "{e:?}");
    let msg = e.to_string();
    for needle in ["lower ttl", "MaxSessionDuration", "role chaining"] {
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
}

#[test]
fn a_revoked_approle_token_is_replaced_by_one_new_login() {
    let w = world();
    let broker = w.broker();
    let approle = |session: &str| {
        vec![
            ("purpose".to_string(), "ecr-push".to_string()),
            ("session_name".to_string(), session.to_string()),
            ("vault_role_id".to_string(), env("VAULT_ROLE_ID")),
            ("vault_secret_id".to_string(), env("VAULT_SECRET_ID")),
        ]
    };
    broker.credentials(&approle("world-relogin-a")).unwrap();
    // Revoke every AppRole token: the broker's cached login token is now worthless.
    let revoke = vaultrs_free_post(
        &env("WORLD_OPENBAO_ADDR"),
        "/v1/sys/leases/revoke-prefix/auth/approle/login",
        &env("WORLD_ROOT_TOKEN"),
    );
    assert!(revoke == 204 || revoke == 200, "revoke answered {revoke}");
    broker.credentials(&approle("world-relogin-b")).unwrap();
    assert_eq!(broker.stats().vault_logins, 2, "{:?}", broker.stats());
}

/// POSTs `{}` with a token (plain HTTP on loopback); returns the status.
fn vaultrs_free_post(addr: &str, path: &str, token: &str) -> u16 {
    let host = addr.strip_prefix("http://").expect("http address");
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nX-Vault-Token: {token}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_policy_denial_with_a_fresh_approle_login_is_not_retried_with_another_login() {
    let w = world();
    let broker = w.broker();
    let e = broker
        .credentials(&[
            ("purpose".into(), "forbidden".into()),
            ("session_name".into(), "world-forbidden-approle".into()),
            ("vault_role_id".into(), env("VAULT_ROLE_ID")),
            ("vault_secret_id".into(), env("VAULT_SECRET_ID")),
        ])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let stats = broker.stats();
    assert_eq!((stats.vault_logins, stats.vault_calls), (1, 1), "{stats:?}");
}

#[test]
fn a_wrong_secret_id_is_a_refused_login() {
    let w = world();
    let e = w
        .broker()
        .credentials(&[
            ("purpose".into(), "ecr-push".into()),
            ("vault_role_id".into(), env("VAULT_ROLE_ID")),
            ("vault_secret_id".into(), "not-the-secret-id".into()),
        ])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("auth/approle/login") && msg.contains("VAULT_SECRET_ID"),
        "{msg}"
    );
    assert!(!msg.contains("not-the-secret-id"), "{msg}");
}

#[test]
fn an_unreachable_vault_is_unavailable() {
    let w = world();
    let broker = w.broker_with(&[
        ("WITHAWSROLE_DEADLINE_SECONDS", "1"),
        ("VAULT_ADDR", "http://127.0.0.1:9"),
    ]);
    let e = broker
        .credentials(&[
            ("purpose".into(), "ecr-push".into()),
            ("vault_token".into(), w.token.clone()),
        ])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        e.to_string()
            .contains("cannot reach Vault at http://127.0.0.1:9"),
        "{e}"
    );
}

// ---- helpers for the auth, TLS, config, retry and secrecy tests below --------------------------

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One HTTP/1.1 request to a loopback `http://` URL: (status, JSON body or Null).
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<Value>) -> (u16, Value) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(host).unwrap_or_else(|e| panic!("{url}: {e}; {START}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// OpenBao itself (not the front), as the world's root.
fn openbao(method: &str, path: &str, body: Option<Value>, ns: Option<&str>) -> (u16, Value) {
    let root = env("WORLD_ROOT_TOKEN");
    let mut headers = vec![("X-Vault-Token", root.as_str())];
    if let Some(ns) = ns {
        headers.push(("X-Vault-Namespace", ns));
    }
    let url = format!("{}/v1/{path}", env("WORLD_OPENBAO_ADDR"));
    let (status, answer) = http(method, &url, &headers, body);
    assert!(status < 300, "{method} {path}: {status} {answer}");
    (status, answer)
}

/// A JWT from the world's stand-in for Jenkins' OIDC provider (test/world/mint_jwt.py).
fn mint(args: &[&str]) -> String {
    let key = PathBuf::from(env("WORLD_JWT_KEY_FILE"));
    let script = key.parent().unwrap().parent().unwrap().join("mint_jwt.py");
    let out = std::process::Command::new(format!("{}/bin/python", env("WORLD_VENV")))
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A file in this test run's temporary directory.
fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("withawsrole-world-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

impl World {
    fn proxied(&self, path: &str) -> u64 {
        self.counters()["proxied"][path].as_u64().unwrap_or(0)
    }

    /// Every request that reached the front: credential calls and everything proxied to OpenBao.
    fn traffic(&self) -> (u64, u64) {
        let c = self.counters();
        (
            c["sts_total"].as_u64().unwrap_or(0),
            c["proxied_total"].as_u64().unwrap_or(0),
        )
    }

    fn jwt_request(&self, session: &str, role: &str, jwt: &str) -> Vec<(String, String)> {
        pairs(&[
            ("purpose", "ecr-push"),
            ("session_name", session),
            ("vault_jwt", jwt),
            ("vault_jwt_role", role),
        ])
    }
}

// Everything the core (and vaultrs, rustify, reqwest below it) logs, at every level, for the
// secrecy test. Installed once per test binary by `world()`.
static LOGS: Mutex<String> = Mutex::new(String::new());

fn install_log_capture() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing::subscriber::set_global_default(Capture::default());
    });
}

#[derive(Default)]
struct Capture {
    next_id: AtomicU64,
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut logs = LOGS.lock().unwrap_or_else(|p| p.into_inner());
        let _ = write!(logs, "\nspan {}", span.metadata().name());
        span.record(&mut Fields(&mut logs));
        tracing::span::Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(
            &mut LOGS.lock().unwrap_or_else(|p| p.into_inner()),
        ));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut logs = LOGS.lock().unwrap_or_else(|p| p.into_inner());
        let _ = write!(
            logs,
            "\n{} {}",
            event.metadata().level(),
            event.metadata().target()
        );
        event.record(&mut Fields(&mut logs));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

// ---- JWT (Jenkins' OIDC provider) ---------------------------------------------------------------

#[test]
fn a_jwt_minted_for_a_build_logs_in_and_gets_credentials() {
    let w = world();
    let broker = w.broker();
    let jwt = mint(&["--sub", "job/app/42"]);
    let issued = broker
        .credentials(&w.jwt_request("world-jwt-inline", "jenkins", &jwt))
        .unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-jwt-inline"));
    assert_eq!(w.proxied("auth/jwt/login"), 1);

    // The same token from a file (VAULT_JWT_FILE), the way an agent-side file would be given.
    let file = temp_file("build.jwt", &format!("{jwt}\n"));
    let broker = w.broker_with(&[
        ("VAULT_ADDR", &w.addr),
        ("VAULT_JWT_FILE", file.to_str().unwrap()),
        ("VAULT_JWT_ROLE", "jenkins"),
    ]);
    let issued = broker
        .credentials(&pairs(&[
            ("purpose", "ecr-push"),
            ("session_name", "world-jwt-file"),
        ]))
        .unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-jwt-file"));
    assert_eq!(broker.stats().vault_logins, 1);
}

#[test]
fn a_jwt_of_another_job_is_refused_by_the_roles_bound_claim() {
    let w = world();
    let role = env("WORLD_JWT_BOUND_ROLE");
    let broker = w.broker();
    let deploy = mint(&["--sub", "job/deploy/7"]);
    broker
        .credentials(&w.jwt_request("world-jwt-bound-ok", &role, &deploy))
        .unwrap();

    let other = mint(&["--sub", "job/app/7"]);
    let e = broker
        .credentials(&w.jwt_request("world-jwt-bound-no", &role, &other))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("Vault refused the JWT login at auth/jwt/login")
            && msg.contains("bound claim")
            && msg.contains("VAULT_JWT_ROLE"),
        "{msg}"
    );
    assert!(!msg.contains(&other), "{msg}");
    // The other job's credentials (same purpose) are not handed out from the cache either.
    let e = broker
        .credentials(&w.jwt_request("world-jwt-bound-ok", &role, &other))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
}

#[test]
fn an_expired_jwt_is_a_refused_login() {
    let w = world();
    let jwt = mint(&["--sub", "job/app/1", "--ttl", "-120"]);
    let e = w
        .broker()
        .credentials(&w.jwt_request("world-jwt-expired", "jenkins", &jwt))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert_eq!(w.sts_calls("ecr-push"), 0);
}

// ---- Kubernetes -------------------------------------------------------------------------------

/// A controller that logs in with a Kubernetes service account token (its own settings).
fn k8s_broker(w: &World, token_file: &std::path::Path) -> CredentialBroker {
    w.broker_with(&[
        ("VAULT_K8S_ROLE", &env("WORLD_K8S_ROLE")),
        ("VAULT_K8S_TOKEN_FILE", token_file.to_str().unwrap()),
    ])
}

fn k8s_request(session: &str) -> Vec<(String, String)> {
    pairs(&[("purpose", "ecr-push"), ("session_name", session)])
}

#[test]
fn a_service_account_token_logs_in_at_auth_kubernetes() {
    let w = world();
    let file = temp_file("sa-token", &mint(&["--k8s", "ci/jenkins"]));
    let broker = k8s_broker(&w, &file);
    let issued = broker.credentials(&k8s_request("world-k8s")).unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-k8s"));
    assert_eq!(w.proxied("auth/kubernetes/login"), 1);
    assert_eq!(broker.stats().vault_logins, 1);
}

#[test]
fn a_service_account_the_role_does_not_bind_is_refused() {
    let w = world();
    let file = temp_file("sa-token-other", &mint(&["--k8s", "ci/someone-else"]));
    let e = k8s_broker(&w, &file)
        .credentials(&k8s_request("world-k8s-other"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("auth/kubernetes/login") && msg.contains("VAULT_K8S_ROLE"),
        "{msg}"
    );
}

#[test]
fn without_a_token_file_the_kubernetes_login_names_the_default_path() {
    let w = world();
    let before = w.traffic();
    let e = w
        .broker_with(&[("VAULT_K8S_ROLE", "jenkins")])
        .credentials(&pairs(&[("purpose", "ecr-push")]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("/var/run/secrets/kubernetes.io/serviceaccount/token")
            && msg.contains("VAULT_K8S_TOKEN_FILE"),
        "{msg}"
    );
    assert_eq!(w.traffic(), before, "nothing was sent");
}

// ---- namespaces --------------------------------------------------------------------------------

#[test]
fn a_namespace_carries_login_and_fetch_via_x_vault_namespace() {
    let w = world();
    let ns = env("WORLD_NAMESPACE");
    let role_id = env("WORLD_NAMESPACE_ROLE_ID");
    let secret_id = env("WORLD_NAMESPACE_SECRET_ID");
    let request = |session: &str| {
        pairs(&[
            ("purpose", "ecr-push"),
            ("session_name", session),
            ("vault_role_id", &role_id),
            ("vault_secret_id", &secret_id),
        ])
    };
    // The namespace is the controller's setting: here a -Dwithawsrole.VAULT_NAMESPACE property.
    let broker = w.broker();
    let in_namespace = [("VAULT_NAMESPACE".to_string(), ns.clone())];
    broker.apply_overrides(&in_namespace).unwrap();
    let issued = broker.credentials(&request("world-namespace")).unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-namespace"));

    // The namespace's AppRole does not exist at the root.
    broker.apply_overrides(&[]).unwrap();
    let e = broker
        .credentials(&request("world-namespace-root"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("auth/approle/login"), "{e}");

    // And a root-namespace token's policy says nothing about team-a's paths.
    broker.apply_overrides(&in_namespace).unwrap();
    let e = broker
        .credentials(&w.token_request("ecr-push", "world-namespace-token", &[]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
}

// ---- TLS ----------------------------------------------------------------------------------------

/// A controller whose Vault is the world's TLS front, with `vars` (VAULT_CACERT, ...).
fn tls_broker(w: &World, vars: &[(&str, &str)]) -> CredentialBroker {
    let tls = env("WORLD_TLS_ADDR");
    let mut all = vec![("VAULT_ADDR", tls.as_str())];
    all.extend_from_slice(vars);
    w.broker_with(&all)
}

fn tls_request(w: &World, session: &str) -> Vec<(String, String)> {
    pairs(&[
        ("purpose", "ecr-push"),
        ("session_name", session),
        ("vault_token", &w.token),
    ])
}

#[test]
fn vault_cacert_lets_the_broker_verify_vault_over_tls() {
    let w = world();
    let ca = env("WORLD_TLS_CACERT");
    let broker = tls_broker(&w, &[("VAULT_CACERT", &ca)]);
    let issued = broker
        .credentials(&tls_request(&w, "world-tls-ca"))
        .unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-tls-ca"));
    assert_eq!(w.sts_calls("ecr-push"), 1);
}

#[test]
fn openbaos_own_dev_tls_listener_is_verified_with_its_ca() {
    let w = world();
    // An empty OpenBao: no AWS engine, so Vault's own 404 proves TLS and HTTP went through.
    let e = w
        .broker_with(&[
            ("VAULT_ADDR", &env("WORLD_OPENBAO_TLS_ADDR")),
            ("VAULT_CACERT", &env("WORLD_TLS_CACERT")),
        ])
        .credentials(&pairs(&[
            ("purpose", "ecr-push"),
            ("vault_token", "world-tls-root"),
        ]))
        .unwrap_err();
    assert!(
        matches!(e, BrokerError::VaultRejected { status: 404, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("an AWS secrets engine is mounted"),
        "{e}"
    );
}

#[test]
fn a_wrong_ca_fails_at_once_naming_vault_cacert() {
    let w = world();
    let wrong = "/etc/ssl/certs/ca-certificates.crt";
    let broker = tls_broker(&w, &[("VAULT_CACERT", wrong)]);
    let e = broker
        .credentials(&tls_request(&w, "world-tls-wrong"))
        .unwrap_err();
    assert!(matches!(e, BrokerError::TlsUntrusted { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    let msg = e.to_string();
    assert!(
        msg.contains("cannot verify the TLS certificate of Vault")
            && msg.contains(&format!("now VAULT_CACERT={wrong}")),
        "{msg}"
    );
    assert_eq!(broker.stats().retries, 0, "a CA problem is not retried");
    assert_eq!(w.sts_calls("ecr-push"), 0);
}

#[test]
fn tls_is_verified_unless_vault_skip_verify_is_true() {
    let w = world();
    let e = tls_broker(&w, &[])
        .credentials(&tls_request(&w, "world-tls-none"))
        .unwrap_err();
    assert!(e.to_string().contains("VAULT_CACERT is not set"), "{e}");
    let e = tls_broker(&w, &[("VAULT_SKIP_VERIFY", "false")])
        .credentials(&tls_request(&w, "world-tls-false"))
        .unwrap_err();
    assert!(matches!(e, BrokerError::TlsUntrusted { .. }), "{e:?}");

    let issued = tls_broker(&w, &[("VAULT_SKIP_VERIFY", "true")])
        .credentials(&tls_request(&w, "world-tls-skip"))
        .unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-tls-skip"));
}

// ---- login tokens: renewal and re-login -------------------------------------------------------

/// An AppRole role whose tokens live `ttl` (created here; the world's own lives 1h).
fn short_lived_approle(name: &str, ttl: &str) -> (String, String) {
    openbao(
        "POST",
        &format!("auth/approle/role/{name}"),
        Some(json!({"token_policies": ["jenkins"], "token_ttl": ttl, "token_max_ttl": "10m"})),
        None,
    );
    let role_id = openbao(
        "GET",
        &format!("auth/approle/role/{name}/role-id"),
        None,
        None,
    )
    .1["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = openbao(
        "POST",
        &format!("auth/approle/role/{name}/secret-id"),
        Some(json!({})),
        None,
    )
    .1["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (role_id, secret_id)
}

#[test]
fn a_short_lived_login_token_is_renewed_rather_than_replaced() {
    let w = world();
    let (role_id, secret_id) = short_lived_approle("world-short", "10s");
    let mut options = w.options(&[]);
    options.jitter = Arc::new(withawsrole_core::clock::FixedJitter(0.0));
    let broker = CredentialBroker::new(options).unwrap();
    let request = |session: &str| {
        pairs(&[
            ("purpose", "ecr-push"),
            ("session_name", session),
            ("vault_role_id", &role_id),
            ("vault_secret_id", &secret_id),
        ])
    };
    broker.credentials(&request("world-renew-a")).unwrap();
    // A 10 s token is due for refresh after 5 s (half its life): renew it, do not log in again.
    std::thread::sleep(Duration::from_millis(5500));
    broker.credentials(&request("world-renew-b")).unwrap();
    assert_eq!(w.proxied("auth/approle/login"), 1, "{}", w.counters());
    assert_eq!(w.proxied("auth/token/renew-self"), 1, "{}", w.counters());
    assert_eq!(broker.stats().vault_logins, 1);
    assert_eq!(w.counters()["sts_issued"], 2);
}

#[test]
fn a_revoked_login_token_due_for_renewal_is_replaced_by_a_login() {
    let w = world();
    let clock = withawsrole_core::ManualClock::at_epoch_seconds(now_secs());
    let mut options = w.options(&[]);
    options.clock = Arc::new(clock.clone());
    let broker = CredentialBroker::new(options).unwrap();
    let approle = |session: &str| {
        pairs(&[
            ("purpose", "ecr-push"),
            ("session_name", session),
            ("vault_role_id", &env("VAULT_ROLE_ID")),
            ("vault_secret_id", &env("VAULT_SECRET_ID")),
        ])
    };
    broker
        .credentials(&approle("world-renew-revoked-a"))
        .unwrap();
    openbao(
        "POST",
        "sys/leases/revoke-prefix/auth/approle/login",
        Some(json!({})),
        None,
    );
    // 55 of the login token's 60 minutes later: renewal is due, and Vault refuses it.
    clock.advance(Duration::from_secs(55 * 60));
    broker
        .credentials(&approle("world-renew-revoked-b"))
        .unwrap();
    assert_eq!(w.proxied("auth/token/renew-self"), 1, "{}", w.counters());
    assert_eq!(broker.stats().vault_logins, 2);
}

#[test]
fn a_revoked_static_token_says_to_replace_vault_token() {
    let w = world();
    let created = openbao(
        "POST",
        "auth/token/create",
        Some(json!({"policies": ["jenkins"], "ttl": "1h"})),
        None,
    )
    .1;
    let token = created["auth"]["client_token"].as_str().unwrap().to_owned();
    openbao(
        "POST",
        "auth/token/revoke",
        Some(json!({"token": token})),
        None,
    );
    let broker = w.broker();
    let e = broker
        .credentials(&pairs(&[("purpose", "ecr-push"), ("vault_token", &token)]))
        .unwrap_err();
    assert!(matches!(e, BrokerError::TokenRejected { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    let msg = e.to_string();
    assert!(
        msg.contains("expired or revoked") && msg.contains("new VAULT_TOKEN"),
        "{msg}"
    );
    assert!(!msg.contains(&token));
    assert_eq!(w.sts_calls("ecr-push"), 1, "one try, no retry");
    assert_eq!(broker.stats().vault_logins, 0);
}

// ---- purposes config ------------------------------------------------------------------------------

#[test]
fn a_purposes_config_text_supplies_role_arn_and_ttl() {
    let w = world();
    let config = format!(
        "[purposes.deploy]\nrole_arn = \"arn:aws:iam::{}:role/jenkins-deploy-role\"\nttl = \"15m\"\n\n\
         [purposes.push]\nvault_role = \"ecr-push\"\nregion = \"eu-west-1\"\n",
        env("WORLD_ACCOUNT_ID")
    );
    let broker = w.broker();
    let with_config = |purpose: &str, session: &str| {
        w.token_request(
            purpose,
            session,
            &[
                ("config_text", &config),
                ("config_name", "org/withawsrole/purposes.toml"),
            ],
        )
    };
    let m = map(&broker
        .credentials(&with_config("deploy", "world-config-deploy"))
        .unwrap());
    assert!(
        m["arn"].contains("assumed-role/jenkins-deploy-role/"),
        "{}",
        m["arn"]
    );
    assert_eq!(m["lease_duration_seconds"], "900");
    let m = map(&broker
        .credentials(&with_config("push", "world-config-push"))
        .unwrap());
    assert!(
        m["arn"].contains("assumed-role/jenkins-ecr-push-role/"),
        "{}",
        m["arn"]
    );
    assert_eq!(m["region"], "eu-west-1");
}

#[test]
fn the_shipped_example_config_works_against_the_world() {
    let w = world();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../resources/org/withawsrole/purposes.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let broker = w.broker();
    for (purpose, iam_role) in [
        ("ecr-push", "jenkins-ecr-push-role"),
        ("deploy", "jenkins-deploy-role"),
    ] {
        let session = format!("world-example-{purpose}");
        let m = map(&broker
            .credentials(&w.token_request(
                purpose,
                &session,
                &[("config_text", &text), ("config_name", "purposes.toml")],
            ))
            .unwrap());
        assert!(
            m["arn"].contains(&format!("assumed-role/{iam_role}/{session}")),
            "{}",
            m["arn"]
        );
    }
}

// ---- the trust boundary between Jenkinsfiles and the controller -------------------------------

#[test]
fn a_request_cannot_send_the_controllers_login_to_another_server() {
    let w = world();
    // A server of the Jenkinsfile's choosing: it must never see a connection.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_addr = format!("http://{}", trap.local_addr().unwrap());
    let broker = w.broker_with(&[("VAULT_TOKEN", &w.token)]);
    for (key, value) in [
        ("vault_addr", trap_addr.as_str()),
        ("vault_skip_verify", "true"),
        ("vault_namespace", "elsewhere"),
    ] {
        let e = broker
            .credentials(&pairs(&[("purpose", "ecr-push"), (key, value)]))
            .unwrap_err();
        assert!(
            matches!(e, BrokerError::ControllerSetting { .. }),
            "{key}: {e:?}"
        );
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        matches!(trap.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the trap was called"
    );
    assert_eq!(w.traffic(), (0, 0));
    // The controller's own settings still work.
    let issued = broker
        .credentials(&pairs(&[
            ("purpose", "ecr-push"),
            ("session_name", "world-boundary"),
        ]))
        .unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-boundary"));
}

/// Removes a secret-holding temporary file when dropped, also when the test fails: the leak scan
/// at the end of `make test` rightly flags any file left with a live token or secret_id.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn the_controllers_token_and_secret_id_files_log_in() {
    let w = world();
    let token = temp_file("controller.token", &format!("{}\n", w.token));
    let _token_removed = Removed(token.clone());
    let broker = w.broker_with(&[("VAULT_TOKEN_FILE", token.to_str().unwrap())]);
    let issued = broker
        .credentials(&pairs(&[
            ("purpose", "ecr-push"),
            ("session_name", "world-token-file"),
        ]))
        .unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-token-file"));

    let secret_id = temp_file("controller.secret-id", &env("VAULT_SECRET_ID"));
    let _secret_id_removed = Removed(secret_id.clone());
    let broker = w.broker_with(&[
        ("VAULT_ROLE_ID", &env("VAULT_ROLE_ID")),
        ("VAULT_SECRET_ID_FILE", secret_id.to_str().unwrap()),
    ]);
    let issued = broker
        .credentials(&pairs(&[
            ("purpose", "ecr-push"),
            ("session_name", "world-secret-id-file"),
        ]))
        .unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-secret-id-file"));
    assert_eq!(w.proxied("auth/approle/login"), 1);
}

#[test]
fn a_governed_broker_serves_listed_purposes_to_admitted_jobs_only() {
    let w = world();
    let mut options = w.options(&[("VAULT_TOKEN", &w.token)]);
    options.governance = Governance::Governed;
    let broker = CredentialBroker::new(options).unwrap();
    let arn = format!(
        "arn:aws:iam::{}:role/jenkins-deploy-role",
        env("WORLD_ACCOUNT_ID")
    );
    let config = format!(
        "[purposes.ecr-push]\njobs = [\"world/**\"]\nmax_ttl = \"30m\"\n\n\
         [purposes.deploy]\nrole_arns = [\"{arn}\"]\njobs = [\"world/deploy/*\"]\n"
    );
    let ask = |purpose: &str, job: &str, extra: &[(&str, &str)]| {
        let mut p = pairs(&[
            ("purpose", purpose),
            ("job", job),
            ("build", "1"),
            ("config_text", &config),
            ("config_name", "org/withawsrole/purposes.toml"),
        ]);
        p.extend(pairs(extra));
        broker.credentials(&p)
    };
    let m = map(&ask("ecr-push", "world/governed/main", &[("ttl", "15m")]).unwrap());
    assert!(
        m["arn"].ends_with("/jenkins-world-governed-main-1"),
        "{}",
        m["arn"]
    );
    let m = map(&ask("deploy", "world/deploy/main", &[("role_arn", &arn)]).unwrap());
    assert!(
        m["arn"].contains("assumed-role/jenkins-deploy-role/"),
        "{}",
        m["arn"]
    );
    let calls = w.traffic();

    let refused: Vec<(&str, BrokerError)> = vec![
        (
            "unlisted purpose",
            ask("forbidden", "world/x", &[]).unwrap_err(),
        ),
        (
            "job outside the globs",
            ask("ecr-push", "other/x", &[]).unwrap_err(),
        ),
        (
            "deeper than *",
            ask("deploy", "world/deploy/main/x", &[("role_arn", &arn)]).unwrap_err(),
        ),
        (
            "ttl above max_ttl",
            ask("ecr-push", "world/x", &[("ttl", "1h")]).unwrap_err(),
        ),
        (
            "session name",
            ask("ecr-push", "world/x", &[("session_name", "other")]).unwrap_err(),
        ),
        (
            "vault role",
            ask("ecr-push", "world/x", &[("vault_role", "forbidden")]).unwrap_err(),
        ),
        (
            "another role ARN",
            ask(
                "deploy",
                "world/deploy/main",
                &[("role_arn", "arn:aws:iam::123456789012:role/admin")],
            )
            .unwrap_err(),
        ),
    ];
    for (what, e) in &refused {
        assert!(
            matches!(
                e.kind(),
                ErrorKind::InvalidRequest | ErrorKind::PermissionDenied
            ),
            "{what}: {e}"
        );
        assert!(
            e.to_string().contains("org/withawsrole/purposes.toml"),
            "{what}: {e}"
        );
    }
    assert_eq!(w.traffic(), calls, "refusals reach no Vault");
}

// ---- invalid requests never reach Vault -------------------------------------------------------

#[test]
fn invalid_requests_fail_before_any_request_reaches_vault() {
    let w = world();
    let broker = w.broker();
    let missing = "/nonexistent/withawsrole/file";
    let not_pem = temp_file("not-a-cert.pem", "not a certificate");
    let empty = temp_file("empty.jwt", "\n");
    let tls = env("WORLD_TLS_ADDR");
    // (what, the controller's settings for the case, the request's pairs beyond token_request's)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>);
    let request_only = |what, extra| -> Case { (what, vec![], extra) };
    let settings_only = |what, settings| -> Case { (what, settings, vec![]) };
    let cases: Vec<Case> = vec![
        request_only("unknown key", vec![("tll", "1h")]),
        request_only("duplicate key", vec![("ttl", "1h"), ("ttl", "2h")]),
        request_only("ttl below STS minimum", vec![("ttl", "5m")]),
        request_only("ttl above STS maximum", vec![("ttl", "13h")]),
        request_only("bad role_arn", vec![("role_arn", "arn:aws:iam::1:role/x")]),
        request_only("bad region", vec![("region", "EU WEST")]),
        request_only("bad mount", vec![("mount", "a/../b")]),
        request_only("bad vault_role", vec![("vault_role", "../sys")]),
        request_only("short session name", vec![("session_name", "x")]),
        request_only(
            "bad config",
            vec![("config_text", "[purposes.ecr-push]\nttl = \"5m\"\n")],
        ),
        request_only(
            "unknown config key",
            vec![("config_text", "[purposes.x]\nrole = \"y\"\n")],
        ),
        // What only the controller may set, a request may not even name.
        request_only("vault_addr in the request", vec![("vault_addr", &tls)]),
        request_only(
            "vault_cacert in the request",
            vec![("vault_cacert", missing)],
        ),
        request_only("config_file in the request", vec![("config_file", missing)]),
        request_only(
            "vault_skip_verify in the request",
            vec![("vault_skip_verify", "true")],
        ),
        settings_only("bad skip_verify", vec![("VAULT_SKIP_VERIFY", "maybe")]),
        settings_only("bad namespace", vec![("VAULT_NAMESPACE", "a//b")]),
        settings_only("missing config file", vec![("WITHAWSROLE_CONFIG", missing)]),
        settings_only(
            "missing CA file",
            vec![("VAULT_ADDR", &tls), ("VAULT_CACERT", missing)],
        ),
        settings_only(
            "CA file not PEM",
            vec![
                ("VAULT_ADDR", &tls),
                ("VAULT_CACERT", not_pem.to_str().unwrap()),
            ],
        ),
        settings_only(
            "missing JWT file",
            vec![("VAULT_JWT_FILE", missing), ("VAULT_JWT_ROLE", "jenkins")],
        ),
        settings_only(
            "empty JWT file",
            vec![
                ("VAULT_JWT_FILE", empty.to_str().unwrap()),
                ("VAULT_JWT_ROLE", "jenkins"),
            ],
        ),
        settings_only(
            "missing k8s token",
            vec![
                ("VAULT_K8S_ROLE", "jenkins"),
                ("VAULT_K8S_TOKEN_FILE", missing),
            ],
        ),
        settings_only("missing token file", vec![("VAULT_TOKEN_FILE", missing)]),
    ];
    for (what, settings, extra) in cases {
        broker.apply_overrides(&pairs(&settings)).unwrap();
        let mut request = w.token_request("ecr-push", "world-invalid", &[]);
        let overrides: Vec<&str> = extra.iter().map(|(k, _)| *k).collect();
        request.retain(|(k, _)| !overrides.contains(&k.as_str()) || k == "purpose");
        // The controller's own login is used only when the request brings none.
        let controller_login = settings.iter().any(|(k, _)| {
            k.starts_with("VAULT_JWT") || k.starts_with("VAULT_K8S") || k.starts_with("VAULT_TOKEN")
        });
        if controller_login {
            request.retain(|(k, _)| k != "vault_token");
        }
        request.extend(pairs(&extra));
        let before = w.traffic();
        let e = broker.credentials(&request).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{what}: {e}");
        if what.ends_with("in the request") {
            assert!(
                matches!(e, BrokerError::ControllerSetting { .. }),
                "{what}: {e:?}"
            );
        }
        assert_eq!(w.traffic(), before, "{what} reached Vault: {e}");
        assert_eq!(
            broker.stats().vault_calls + broker.stats().vault_logins,
            0,
            "{what}: {e}"
        );
    }
    broker
        .apply_overrides(&pairs(&[("VAULT_ADDR", "")]))
        .unwrap();
    let e = broker
        .credentials(&pairs(&[
            ("purpose", "ecr-push"),
            ("vault_token", &w.token),
        ]))
        .unwrap_err();
    assert!(matches!(e, BrokerError::MissingVaultAddr), "{e}");
    assert_eq!(broker.stats().vault_calls + broker.stats().vault_logins, 0);
    assert_eq!(w.traffic(), (0, 0));
}

// ---- retries ------------------------------------------------------------------------------------

/// One fault on the next sts call, then all is well: the broker retries into credentials.
fn retried_once(w: &World, fault: Value, session: &str) -> CredentialBroker {
    w.fault(fault);
    let broker = w.broker();
    let issued = broker
        .credentials(&w.token_request("ecr-push", session, &[]))
        .unwrap();
    assert!(map(&issued)["arn"].ends_with(session));
    assert_eq!(w.sts_calls("ecr-push"), 2, "{}", w.counters());
    assert_eq!(broker.stats().retries, 1);
    broker
}

#[test]
fn a_429_from_a_standby_or_a_rate_limit_quota_is_retried() {
    let w = world();
    retried_once(
        &w,
        json!({"path": "^aws/sts/ecr-push", "status": 429, "count": 1}),
        "world-retry-429",
    );
}

#[test]
fn a_500_is_retried() {
    let w = world();
    retried_once(
        &w,
        json!({"path": "^aws/sts/ecr-push", "status": 500, "count": 1}),
        "world-retry-500",
    );
}

#[test]
fn aws_throttling_passed_through_as_500_or_502_is_retried() {
    let w = world();
    for status in [500, 502] {
        w.reset();
        retried_once(
            &w,
            json!({"path": "^aws/sts/ecr-push", "status": status, "count": 1,
                   "body": {"errors": ["Error assuming role: Throttling: Rate exceeded\n\tstatus code: 400, request id: x"]}}),
            &format!("world-retry-throttle-{status}"),
        );
    }
}

#[test]
fn a_sealed_vault_is_retried_and_then_explained() {
    let w = world();
    retried_once(
        &w,
        json!({"path": "^aws/sts/ecr-push", "status": 503, "count": 1,
               "body": {"errors": ["Vault is sealed"]}}),
        "world-retry-sealed",
    );
    w.reset();
    w.fault(json!({"path": "^aws/sts/ecr-push", "status": 503,
                   "body": {"errors": ["Vault is sealed"]}}));
    let e = w
        .broker_with(&[("WITHAWSROLE_DEADLINE_SECONDS", "1")])
        .credentials(&w.token_request("ecr-push", "world-sealed", &[]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(
        e.to_string()
            .contains("Vault is sealed; Vault is sealed or in maintenance"),
        "{e}"
    );
}

#[test]
fn a_sealed_vault_during_login_is_retried() {
    let w = world();
    w.fault(json!({"path": "^auth/approle/login", "status": 503, "count": 1}));
    let broker = w.broker();
    broker
        .credentials(&pairs(&[
            ("purpose", "ecr-push"),
            ("session_name", "world-login-retry"),
            ("vault_role_id", &env("VAULT_ROLE_ID")),
            ("vault_secret_id", &env("VAULT_SECRET_ID")),
        ]))
        .unwrap();
    assert_eq!(w.proxied("auth/approle/login"), 2);
    assert_eq!(broker.stats().vault_logins, 2);
}

#[test]
fn connection_refused_is_retried_until_the_deadline() {
    let w = world();
    let broker = w.broker_with(&[
        ("WITHAWSROLE_DEADLINE_SECONDS", "1"),
        ("VAULT_ADDR", "http://127.0.0.1:9"),
    ]);
    let e = broker
        .credentials(&pairs(&[
            ("purpose", "ecr-push"),
            ("vault_token", &w.token),
        ]))
        .unwrap_err();
    assert!(matches!(e, BrokerError::DeadlineExceeded { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("cannot reach Vault at http://127.0.0.1:9"),
        "{e}"
    );
    assert!(broker.stats().retries >= 2, "{:?}", broker.stats());
}

#[test]
fn a_403_is_not_retried() {
    let w = world();
    w.fault(json!({"path": "^aws/sts/ecr-push", "status": 403, "count": 5}));
    let broker = w.broker();
    let e = broker
        .credentials(&w.token_request("ecr-push", "world-no-retry-403", &[]))
        .unwrap_err();
    assert!(matches!(e, BrokerError::Forbidden { .. }), "{e:?}");
    assert_eq!(w.sts_calls("ecr-push"), 1);
    assert_eq!(broker.stats().retries, 0);
}

// ---- single-flight and the bound on concurrent Vault calls --------------------------------------

#[test]
fn waiters_share_one_failure_and_the_next_request_tries_again() {
    let w = world();
    w.fault(
        json!({"path": "^aws/sts/ecr-push", "status": 400, "delay_ms": 300, "count": 1,
                   "body": {"errors": ["one shared failure"]}}),
    );
    let broker = Arc::new(w.broker());
    let request = Arc::new(w.token_request("ecr-push", "world-shared-failure", &[]));
    let barrier = Arc::new(Barrier::new(16));
    let errors: Vec<BrokerError> = (0..16)
        .map(|_| {
            let (broker, request, barrier) = (broker.clone(), request.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                broker.credentials(&request).unwrap_err()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert!(errors.iter().all(|e| *e == errors[0]), "{errors:?}");
    assert!(errors[0].to_string().contains("one shared failure"));
    assert_eq!(w.sts_calls("ecr-push"), 1);
    broker.credentials(&request).unwrap();
    assert_eq!(w.sts_calls("ecr-push"), 2);
}

#[test]
fn concurrent_vault_calls_are_bounded() {
    let w = world();
    w.fault(json!({"path": "^aws/sts/ecr-push", "mode": "delay", "delay_ms": 300}));
    let mut options = w.options(&[]);
    options.max_concurrent_vault_calls = 2;
    let broker = Arc::new(CredentialBroker::new(options).unwrap());
    let started = Instant::now();
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let broker = broker.clone();
            let request = w.token_request("ecr-push", &format!("world-bounded-{i}"), &[]);
            std::thread::spawn(move || broker.credentials(&request).map(|_| ()))
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    // Six distinct requests, two at a time, 300 ms each: at least three rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(w.sts_calls("ecr-push"), 6);
}

// ---- no secret in errors, Debug or logs -----------------------------------------------------------

/// Makes every error variant happen with secrets in the request (and Vault echoing them) and
/// checks that no message, Debug form or log line shows one.
#[test]
fn no_error_debug_or_log_line_shows_a_secret() {
    let w = world();
    const TOKEN: &str = "hvs.SECRET-TOKEN-0123456789";
    const SECRET_ID: &str = "SECRET-ID-0123456789";
    const JWT: &str = "eyJSECRET.JWT.0123456789";
    let secrets = [TOKEN, SECRET_ID, JWT];
    let with = |extra: &[(&str, &str)]| {
        let mut p = pairs(&[("purpose", "ecr-push")]);
        p.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        p.extend(pairs(extra));
        p
    };
    let real_token = w.token.clone();
    let tls = env("WORLD_TLS_ADDR");
    // Vault echoing the secret the broker sent (the broker blanks what it knows it sent).
    let echo = json!({"errors": [format!("bad token {TOKEN}")]});
    let echo_secret_id = json!({"errors": [format!("invalid secret_id {SECRET_ID}")]});
    let broker = w.broker_with(&[("WITHAWSROLE_DEADLINE_SECONDS", "1")]);
    // The library's broker: the purposes config governs (its own refusals, secrets in the pairs).
    let mut governed = w.options(&[("WITHAWSROLE_DEADLINE_SECONDS", "1")]);
    governed.governance = Governance::Governed;
    let governed = CredentialBroker::new(governed).unwrap();
    let config = "[purposes.ecr-push]\njobs = [\"world/**\"]\n";
    let mut errors: Vec<BrokerError> = Vec::new();
    // One request: the controller's settings for it (system properties), its pairs, a fault.
    let mut run =
        |settings: &[(&str, &str)], pairs: Vec<(String, String)>, fault: Option<Value>| {
            w.reset();
            if let Some(f) = fault {
                w.fault(f);
            }
            broker.apply_overrides(&self::pairs(settings)).unwrap();
            errors.push(broker.credentials(&pairs).unwrap_err());
        };
    run(&[], vec![("vault_token".into(), TOKEN.into())], None); // MissingPurpose
    run(&[], with(&[("vault_tokn", TOKEN)]), None);
    run(
        &[],
        with(&[("vault_token", TOKEN), ("vault_token", TOKEN)]),
        None,
    );
    run(&[], with(&[("vault_token", TOKEN), ("ttl", "5m")]), None);
    run(&[("VAULT_ADDR", "")], with(&[("vault_token", TOKEN)]), None); // no address
    run(&[], with(&[("vault_jwt", JWT)]), None); // no JWT role
    run(
        &[],
        with(&[("vault_token", TOKEN), ("config_text", "[x]")]),
        None,
    );
    run(
        &[("VAULT_ADDR", &tls)],
        with(&[("vault_token", TOKEN)]),
        None,
    );
    run(
        &[("VAULT_ADDR", &tls), ("VAULT_CACERT", "/nonexistent")],
        with(&[("vault_role_id", "r"), ("vault_secret_id", SECRET_ID)]),
        None,
    ); // LocalFile (the CA)
    run(
        &[],
        with(&[("vault_token", TOKEN)]),
        Some(json!({"path": "^aws/sts/", "status": 400, "body": echo})),
    );
    run(
        &[],
        with(&[("vault_token", &real_token), ("ttl", "2h")]),
        None,
    );
    run(
        &[],
        pairs(&[("purpose", "forbidden"), ("vault_token", &real_token)]),
        None,
    );
    run(&[], with(&[("vault_token", TOKEN)]), None); // TokenRejected: Vault knows no such token
    run(
        &[],
        with(&[
            ("vault_role_id", &env("VAULT_ROLE_ID")),
            ("vault_secret_id", SECRET_ID),
        ]),
        Some(json!({"path": "^auth/approle/login", "status": 400, "body": echo_secret_id})),
    );
    run(
        &[("VAULT_ADDR", "http://127.0.0.1:9")],
        with(&[("vault_token", TOKEN)]),
        None,
    );
    run(
        &[],
        with(&[("vault_token", TOKEN)]),
        Some(json!({"path": "^aws/sts/", "status": 503, "body": echo})),
    ); // DeadlineExceeded
    run(
        &[],
        with(&[("vault_token", &real_token)]),
        Some(json!({"path": "^aws/sts/", "mode": "truncate",
                    "body": {"data": {"secret_key": TOKEN, "session_token": SECRET_ID}}})),
    );
    run(
        &[],
        with(&[("vault_token", TOKEN), ("vault_addr", "http://127.0.0.1:9")]),
        None,
    ); // ControllerSetting
    for (purpose, job, extra) in [
        ("admin", "world/x", None),                      // PurposeNotListed
        ("ecr-push", "other/x", None),                   // JobNotAllowed
        ("ecr-push", "", None),                          // UnknownJob
        ("ecr-push", "world/x", Some(("mount", "aws"))), // ChoiceNotAllowed
    ] {
        let mut p = pairs(&[
            ("purpose", purpose),
            ("vault_role_id", "r"),
            ("vault_secret_id", SECRET_ID),
            ("config_text", config),
        ]);
        if !job.is_empty() {
            p.push(("job".into(), job.into()));
        }
        if let Some((k, v)) = extra {
            p.push((k.into(), v.into()));
        }
        errors.push(governed.credentials(&p).unwrap_err());
    }
    assert_eq!(
        governed.stats().vault_calls + governed.stats().vault_logins,
        0
    );
    // A controller that logs in as each build, asked without the build's login: never its own.
    governed
        .apply_overrides(&pairs(&[
            ("WITHAWSROLE_JOB_ID_TOKEN", "build-id-token"),
            ("WITHAWSROLE_JOB_JWT_ROLE", "jenkins"),
            ("VAULT_TOKEN", &real_token),
        ]))
        .unwrap();
    errors.push(
        governed
            .credentials(&pairs(&[
                ("purpose", "ecr-push"),
                ("job", "world/x"),
                ("config_text", config),
            ]))
            .unwrap_err(),
    );
    assert_eq!(
        governed.stats().vault_calls + governed.stats().vault_logins,
        0
    );
    errors.push(
        withawsrole_core::pairs_from_flat(vec![
            "vault_token".into(),
            TOKEN.into(),
            SECRET_ID.into(),
        ])
        .unwrap_err(),
    );
    errors.push(BrokerError::Internal("a caught panic".into()));

    let mut seen = std::collections::BTreeSet::new();
    for e in &errors {
        seen.insert(variant(e));
        // Transient errors reach the caller inside DeadlineExceeded, once retries run out.
        if let BrokerError::DeadlineExceeded { last_cause, .. } = e {
            if last_cause.starts_with("cannot reach Vault") {
                seen.insert("Unreachable");
            }
            if last_cause.starts_with("Vault answered") {
                seen.insert("VaultUnavailable");
            }
        }
        let shown = format!("{e} {e:?}");
        for s in secrets {
            assert!(!shown.contains(s), "{} shows a secret: {shown}", variant(e));
        }
    }
    let all = [
        "MissingPurpose",
        "UnknownKey",
        "DuplicateKey",
        "OddPairs",
        "InvalidValue",
        "MissingVaultAddr",
        "ControllerSetting",
        "ChoiceNotAllowed",
        "MissingVaultCredentials",
        "Config",
        "TlsUntrusted",
        "LocalFile",
        "VaultRejected",
        "DurationTooLong",
        "Forbidden",
        "TokenRejected",
        "LoginDenied",
        "PurposeNotListed",
        "BuildLoginMissing",
        "JobNotAllowed",
        "UnknownJob",
        "Unreachable",
        "VaultUnavailable",
        "DeadlineExceeded",
        "UnexpectedResponse",
        "Internal",
    ];
    let missing: Vec<_> = all.iter().filter(|v| !seen.contains(*v)).collect();
    assert!(missing.is_empty(), "variants not exercised: {missing:?}");

    let logs = LOGS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(
        logs.contains("cache miss"),
        "the log capture saw nothing: {logs}"
    );
    for s in secrets
        .iter()
        .chain([&real_token.as_str(), &env("VAULT_SECRET_ID").as_str()])
    {
        if let Some(at) = logs.find(*s) {
            let line_start = logs[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = logs[at..].find('\n').map_or(logs.len(), |i| at + i);
            // The line with the secret blanked: enough to find the culprit, nothing to leak.
            let from = logs[..line_start]
                .char_indices()
                .rev()
                .nth(600)
                .map_or(0, |(i, _)| i);
            panic!(
                "a log line shows a secret: {}",
                logs[from..line_end].replace(*s, "<SECRET>")
            );
        }
    }
}

/// Every variant by name: a new variant fails to compile here until the test covers it.
fn variant(e: &BrokerError) -> &'static str {
    use BrokerError::*;
    match e {
        MissingPurpose => "MissingPurpose",
        UnknownKey { .. } => "UnknownKey",
        DuplicateKey { .. } => "DuplicateKey",
        OddPairs { .. } => "OddPairs",
        InvalidValue { .. } => "InvalidValue",
        MissingVaultAddr => "MissingVaultAddr",
        ControllerSetting { .. } => "ControllerSetting",
        ChoiceNotAllowed { .. } => "ChoiceNotAllowed",
        MissingVaultCredentials { .. } => "MissingVaultCredentials",
        Config { .. } => "Config",
        TlsUntrusted { .. } => "TlsUntrusted",
        LocalFile { .. } => "LocalFile",
        VaultRejected { .. } => "VaultRejected",
        DurationTooLong { .. } => "DurationTooLong",
        Forbidden { .. } => "Forbidden",
        TokenRejected { .. } => "TokenRejected",
        LoginDenied { .. } => "LoginDenied",
        PurposeNotListed { .. } => "PurposeNotListed",
        BuildLoginMissing => "BuildLoginMissing",
        JobNotAllowed { .. } => "JobNotAllowed",
        UnknownJob { .. } => "UnknownJob",
        Unreachable { .. } => "Unreachable",
        VaultUnavailable { .. } => "VaultUnavailable",
        DeadlineExceeded { .. } => "DeadlineExceeded",
        UnexpectedResponse { .. } => "UnexpectedResponse",
        Internal(_) => "Internal",
    }
}

// ---- waiting in slices (crate::waiting): an aborted Jenkins step stops waiting, not the fetch --

#[test]
fn a_caller_that_stops_waiting_leaves_the_fetch_to_the_others_and_a_full_cache_entry() {
    let w = world();
    w.fault(json!({"path": "aws/sts/ecr-push", "mode": "delay", "delay_ms": 2000, "count": 1}));
    let broker = Arc::new(w.broker());
    let request = w.token_request("ecr-push", "jenkins-slices-1", &[]);

    let started = Instant::now();
    let first = broker
        .credentials_within(&request, Duration::from_millis(200))
        .unwrap();
    assert!(first.is_none(), "Vault is slow: not yet");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(broker.pending_fetches(), 1);

    // A parallel branch that waits the whole time shares the same fetch.
    let other = {
        let (broker, request) = (broker.clone(), request.clone());
        std::thread::spawn(move || broker.credentials(&request).unwrap())
    };
    // The first caller is gone (its build was aborted); the fetch goes on without it.
    let shared = other.join().unwrap();
    assert_eq!(w.sts_calls("ecr-push"), 1, "one Vault call for both");
    assert!(no_fetch_left(&broker), "nothing left under way");

    // The whole entry is in the cache: the next ask is a hit with the same keys.
    let again = broker
        .credentials_within(&request, Duration::from_millis(200))
        .unwrap()
        .expect("cached");
    assert_eq!(again.cache.as_str(), "hit");
    assert_eq!(
        again.credentials.access_key_id,
        shared.credentials.access_key_id
    );
    assert_eq!(w.sts_calls("ecr-push"), 1);
}

#[test]
fn a_fetch_that_fails_after_its_caller_stopped_waiting_leaves_no_entry() {
    let w = world();
    w.fault(
        json!({"path": "aws/sts/ecr-push", "status": 400, "delay_ms": 1000, "count": 1,
                   "body": {"errors": ["invalid request"]}}),
    );
    let broker = w.broker();
    let request = w.token_request("ecr-push", "jenkins-slices-2", &[]);
    assert!(broker
        .credentials_within(&request, Duration::from_millis(100))
        .unwrap()
        .is_none());
    // Wait as the step would, slice after slice: the failure reaches the caller that asks again.
    let mut answer = None;
    for _ in 0..40 {
        match broker.credentials_within(&request, Duration::from_millis(100)) {
            Ok(None) => continue,
            other => {
                answer = Some(other);
                break;
            }
        }
    }
    let answer = answer.expect("an answer within 4 s");
    assert!(answer.is_err(), "{answer:?}");
    assert!(no_fetch_left(&broker));
    // Nothing half-filled was kept: the next ask is a new fetch, which succeeds.
    let issued = broker.credentials(&request).unwrap();
    assert_eq!(issued.cache.as_str(), "miss");
    assert_eq!(w.sts_calls("ecr-push"), 2);
}

/// The detached fetch forgets its entry right after it answers: give it a moment to.
fn no_fetch_left(broker: &CredentialBroker) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    while broker.pending_fetches() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    broker.pending_fetches() == 0
}
