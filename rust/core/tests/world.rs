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
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use withawsrole_core::{
    BrokerError, BrokerOptions, CredentialBroker, ErrorKind, IssuedCredentials,
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

    /// A broker whose env fallback sees only `vars` (requests carry Vault settings as pairs).
    fn broker_with(&self, vars: &[(&str, &str)]) -> CredentialBroker {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut options =
            BrokerOptions::with_env(Arc::new(move |k: &str| vars.get(k).cloned())).unwrap();
        options.retry.base = Duration::from_millis(50);
        CredentialBroker::new(options).unwrap()
    }

    /// Pairs for `purpose` with a token login and a per-test session name.
    fn token_request(
        &self,
        purpose: &str,
        session: &str,
        extra: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let mut p = vec![
            ("purpose".to_string(), purpose.to_string()),
            ("session_name".to_string(), session.to_string()),
            ("vault_addr".to_string(), self.addr.clone()),
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
            ("vault_addr".to_string(), w.addr.clone()),
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

#[test]
fn older_vaults_security_token_is_read() {
    let w = world();
    assert_eq!(
        w.call(
            "POST",
            "/options",
            Some(json!({"token_field": "security_token"}))
        )
        .0,
        200
    );
    let issued = w
        .broker()
        .credentials(&w.token_request("ecr-push", "world-security-token", &[]))
        .unwrap();
    assert!(!map(&issued)["session_token"].is_empty());
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
    for needle in [
        "lower ttl",
        "max_sts_ttl",
        "MaxSessionDuration",
        "role chaining",
    ] {
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
            ("vault_addr".to_string(), w.addr.clone()),
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
            ("vault_addr".into(), w.addr.clone()),
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
            ("vault_addr".into(), w.addr.clone()),
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
    let broker = w.broker_with(&[("WITHAWSROLE_DEADLINE_SECONDS", "1")]);
    let e = broker
        .credentials(&[
            ("purpose".into(), "ecr-push".into()),
            ("vault_addr".into(), "http://127.0.0.1:9".into()),
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
