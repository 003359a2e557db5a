//! The fault matrix: every way Vault (or the road to it) can fail, injected into the real test
//! world, and what the broker does about it. Prints a Markdown table; exits 1 when any row's
//! outcome is not the expected one.
//!
//! ```sh
//! test/world/up && . test/world/.run/env
//! cargo run -q -p withawsrole-core --example fault_matrix            # the whole matrix
//! cargo run -q -p withawsrole-core --example fault_matrix -- --quick # without the OpenBao restart
//! ```
//! `scripts/reliability` runs it and writes docs/reliability.md.
//!
//! Per row: threads of this process (`/proc/self/task`) before and after; the outcome (kind of
//! error or success, with retries); the time to the outcome; and, once the fault is cleared,
//! that the next identical request is a cache miss that reaches Vault (nothing cached from a
//! failed call).

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use withawsrole_core::{BrokerError, BrokerOptions, CredentialBroker, ErrorKind};
use withawsrole_testkit::{env, http, Control};

const DEADLINE_SECS: u64 = 4;

/// The world this process runs against; its token changes when OpenBao restarts.
struct World {
    control: Control,
    addr: String,
    token: String,
    root: String,
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// What a row expects.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// Success, with at least this many retries.
    Success { min_retries: u64 },
    /// This kind of error, within the deadline (plus a little slack).
    Error(ErrorKind),
}

/// One row of the matrix: a request of `purpose` (with `extra` pairs) to Vault at `addr` (None:
/// the world's), made while the world's fault `rule` (None: none) is in place.
struct Case {
    fault: String,
    injected: String,
    purpose: &'static str,
    addr: Option<String>,
    extra: Vec<(String, String)>,
    expect: Expect,
    rule: Option<Value>,
}

impl Case {
    /// An ecr-push request to the world's Vault, with the fault `rule` (None: none) in place.
    fn new(fault: &str, injected: &str, expect: Expect, rule: Option<Value>) -> Case {
        Case {
            fault: fault.into(),
            injected: injected.into(),
            purpose: "ecr-push",
            addr: None,
            extra: Vec::new(),
            expect,
            rule,
        }
    }

    /// The same request logged in with this AppRole instead of the world's token.
    fn logged_in_as(mut self, role_id: &str, secret_id: &str) -> Case {
        self.extra = vec![
            ("vault_role_id".into(), role_id.into()),
            ("vault_secret_id".into(), secret_id.into()),
        ];
        self
    }
}

struct Row {
    fault: String,
    injected: String,
    expected: String,
    outcome: String,
    seconds: f64,
    threads: String,
    no_cache: String,
    ok: bool,
}

struct Matrix {
    world: World,
    rows: Vec<Row>,
    broker: CredentialBroker,
    seq: u32,
}

fn broker(deadline: u64) -> CredentialBroker {
    let vars: HashMap<String, String> =
        HashMap::from([("WITHAWSROLE_DEADLINE_SECONDS".into(), deadline.to_string())]);
    let options = BrokerOptions::with_env(Arc::new(move |k: &str| vars.get(k).cloned())).unwrap();
    CredentialBroker::new(options).unwrap()
}

fn describe(e: &BrokerError) -> String {
    let msg = e.to_string();
    let short: String = msg.chars().take(150).collect();
    let short = if short.len() < msg.len() {
        format!("{short}…")
    } else {
        short
    };
    format!(
        "{} error: {}",
        e.kind().as_str(),
        short.replace('|', "\\|").replace('\n', " ")
    )
}

impl Matrix {
    fn pairs(
        &self,
        purpose: &str,
        session: &str,
        extra: &[(String, String)],
    ) -> Vec<(String, String)> {
        let mut p = vec![
            ("purpose".to_string(), purpose.to_string()),
            ("session_name".to_string(), session.to_string()),
        ];
        if !extra.iter().any(|(k, _)| k.starts_with("vault_role_id")) {
            p.push(("vault_token".to_string(), self.world.token.clone()));
        }
        p.extend(extra.iter().cloned());
        p
    }

    /// Runs one row: injects the case's fault; the request is made once; the fault is cleared;
    /// then the same request again must be a miss that reaches Vault (unless it succeeded).
    fn row(&mut self, case: Case) {
        let Case {
            fault,
            injected,
            purpose,
            addr,
            extra,
            expect,
            rule,
        } = case;
        self.world.control.reset();
        self.seq += 1;
        let session = format!("matrix-{}-{}", std::process::id(), self.seq);
        let addr = addr.unwrap_or_else(|| self.world.addr.clone());
        let pairs = self.pairs(purpose, &session, &extra);
        // Where Vault is, is the controller's setting (as the bridge passes a system property).
        self.broker
            .apply_overrides(&[("VAULT_ADDR".to_string(), addr.clone())])
            .unwrap();
        let before_threads = threads();
        let before = self.broker.stats();
        if let Some(rule) = &rule {
            self.world.control.fault(rule);
        }
        let started = Instant::now();
        let result = self.broker.credentials(&pairs);
        let seconds = started.elapsed().as_secs_f64();
        let after = self.broker.stats();
        self.world.control.clear_faults();
        let retries = after.retries - before.retries;
        let (outcome, ok_outcome) = match (&result, expect) {
            (Ok(i), Expect::Success { min_retries }) => (
                format!(
                    "success ({:?}) after {retries} retr{}",
                    i.cache,
                    if retries == 1 { "y" } else { "ies" }
                ),
                retries >= min_retries,
            ),
            (Ok(_), _) => (format!("unexpected success after {retries} retries"), false),
            (Err(e), Expect::Error(kind)) => (
                format!("{} (retries: {retries})", describe(e)),
                e.kind() == kind && seconds <= DEADLINE_SECS as f64 + 1.5,
            ),
            (Err(e), _) => (describe(e), false),
        };
        // Nothing cached from a failed call: the same request again goes to Vault (the world's
        // counters), or at least tries to (the broker's own attempt counters, when no Vault
        // listens at that address).
        let no_cache = if result.is_err() {
            let world_before = self.world.control.network_calls();
            let broker_before = self.broker.stats();
            let again = self.broker.credentials(&pairs);
            let world_delta = self.world.control.network_calls() - world_before;
            let s = self.broker.stats();
            let attempts = (s.vault_calls + s.vault_logins)
                - (broker_before.vault_calls + broker_before.vault_logins);
            let how = match &again {
                Ok(i) => format!("next call {:?}", i.cache),
                Err(e) => format!("next call {}", e.kind().as_str()),
            };
            if world_delta > 0 {
                format!("yes: {how}, +{world_delta} request(s) at Vault")
            } else if attempts > 0 && !addr.starts_with(&self.world.addr) {
                format!("yes: {how}, {attempts} new attempt(s) (nothing listens there)")
            } else {
                format!("NO: {how} without reaching Vault")
            }
        } else {
            "n/a (success is cached)".to_string()
        };
        // Let tokio's idle blocking threads (if any) wind down before counting.
        let mut after_threads = threads();
        for _ in 0..30 {
            if after_threads <= before_threads {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
            after_threads = threads();
        }
        let ok_threads = after_threads <= before_threads;
        let ok_cache = !no_cache.starts_with("NO");
        let expected = match expect {
            Expect::Success { min_retries } => format!("success (≥ {min_retries} retries)"),
            Expect::Error(kind) => format!("{} error ≤ {DEADLINE_SECS} s", kind.as_str()),
        };
        let ok = ok_outcome && ok_threads && ok_cache;
        eprintln!(
            "fault_matrix: {} {fault}: {outcome} in {seconds:.2} s",
            if ok { "ok  " } else { "FAIL" }
        );
        self.rows.push(Row {
            fault,
            injected,
            expected,
            outcome,
            seconds,
            threads: format!("{before_threads} → {after_threads}"),
            no_cache,
            ok,
        });
    }
}

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let world = World {
        control: Control::of_world(),
        addr: env("VAULT_ADDR"),
        token: env("VAULT_TOKEN"),
        root: env("WORLD_ROOT_TOKEN"),
    };
    let mut m = Matrix {
        world,
        rows: Vec::new(),
        broker: broker(DEADLINE_SECS),
        seq: 0,
    };
    let sts = |status: u16, body: Value, count: Option<u32>| {
        Some(json!({"path": "^aws/sts/", "status": status, "body": body, "count": count}))
    };
    let mode = |mode: &str, count: Option<u32>| {
        Some(json!({"path": "^aws/sts/", "mode": mode, "count": count}))
    };
    let retried = |retries: u64| Expect::Success {
        min_retries: retries,
    };
    let unavailable = Expect::Error(ErrorKind::Unavailable);
    let internal = Expect::Error(ErrorKind::Internal);
    let throttled = json!({"errors": ["Error assuming role: Throttling: Rate exceeded\n\tstatus code: 400, request id: 1"]});
    // The first row warms up: the first call starts the runtime's workers and the connection
    // pool, so that the thread counts below compare like with like.
    let cases = [
        Case::new("none (baseline)", "—", retried(0), None),
        Case::new(
            "Vault sealed, transient",
            "503 `Vault is sealed` ×2",
            retried(2),
            sts(503, Value::Null, Some(2)),
        ),
        Case::new(
            "Vault sealed, persistent",
            "503 `Vault is sealed` always",
            unavailable,
            sts(503, Value::Null, None),
        ),
        Case::new(
            "standby / rate limit quota",
            "429 `rate limit quota exceeded` ×2",
            retried(2),
            sts(429, Value::Null, Some(2)),
        ),
        Case::new(
            "AWS throttling in a 502",
            "502 `Throttling: Rate exceeded` ×2",
            retried(2),
            sts(502, throttled.clone(), Some(2)),
        ),
        Case::new(
            "AWS throttling in a 500",
            "500 `Throttling: Rate exceeded` ×2",
            retried(2),
            sts(500, throttled.clone(), Some(2)),
        ),
        Case::new(
            "AWS throttling, persistent",
            "502 `Throttling: Rate exceeded` always",
            unavailable,
            sts(502, throttled, None),
        ),
        Case::new(
            "slow Vault, past the deadline",
            &format!("delay 10 s, deadline {DEADLINE_SECS} s"),
            unavailable,
            Some(json!({"path": "^aws/sts/", "mode": "delay", "delay_ms": 10000})),
        ),
        Case::new(
            "slow Vault, within the deadline",
            "delay 1.5 s once",
            retried(0),
            Some(json!({"path": "^aws/sts/", "mode": "delay", "delay_ms": 1500, "count": 1})),
        ),
        Case {
            addr: Some(format!("http://127.0.0.1:{}", closed_port())),
            ..Case::new(
                "connection refused",
                "VAULT_ADDR = a closed port",
                unavailable,
                None,
            )
        },
        Case::new(
            "connection reset mid-response, transient",
            "`reset` ×2",
            retried(2),
            mode("reset", Some(2)),
        ),
        Case::new(
            "connection reset mid-response, persistent",
            "`reset` always",
            unavailable,
            mode("reset", None),
        ),
        Case::new(
            "truncated JSON (200)",
            "`truncate` once",
            internal,
            mode("truncate", Some(1)),
        ),
        Case::new(
            "malformed response: wrong types",
            "200 `{\"data\":{\"access_key\":5}}`",
            internal,
            sts(
                200,
                json!({"lease_duration": 900, "data": {"access_key": 5}}),
                Some(1),
            ),
        ),
        Case::new(
            "malformed response: no data",
            "200 `{}`",
            internal,
            sts(200, json!({}), Some(1)),
        ),
        Case::new(
            "gateway HTML page",
            "502 text/plain `<html>Bad Gateway</html>` ×2",
            retried(2),
            sts(
                502,
                json!("<html><body>502 Bad Gateway</body></html>"),
                Some(2),
            ),
        ),
    ];
    for case in cases {
        m.row(case);
    }

    // A real STS AccessDenied: a Vault role whose IAM role the engine's user may not assume
    // (its policy allows only role/jenkins-*; moto enforces it).
    let (status, v) = http(
        "POST",
        &format!("{}/v1/aws/roles/matrix-denied", m.world.addr),
        &[("X-Vault-Token", &m.world.root)],
        Some(
            &json!({"credential_type": "assumed_role", "role_arns": ["arn:aws:iam::123456789012:role/other-team-role"]}),
        ),
    );
    assert!(
        status == 204 || status == 200,
        "cannot create matrix-denied: {status} {v}"
    );
    m.row(Case {
        purpose: "matrix-denied",
        extra: vec![("vault_role".into(), "matrix-denied".into())],
        ..Case::new(
            "STS AccessDenied for a role",
            "Vault role → IAM role outside the engine's policy",
            Expect::Error(ErrorKind::InvalidRequest),
            None,
        )
    });
    m.row(Case {
        purpose: "forbidden",
        ..Case::new(
            "Vault policy denies the purpose",
            "`aws/sts/forbidden` denied by policy (403)",
            Expect::Error(ErrorKind::PermissionDenied),
            None,
        )
    });

    if !quick {
        openbao_restart(&mut m);
    }

    let failed = m.rows.iter().filter(|r| !r.ok).count();
    println!("| fault | injected | expected | outcome | time to outcome | threads before → after | failed call not cached | ok |");
    println!("|---|---|---|---|---:|---|---|---|");
    for r in &m.rows {
        println!(
            "| {} | {} | {} | {} | {:.2} s | {} | {} | {} |",
            r.fault,
            r.injected,
            r.expected,
            r.outcome,
            r.seconds,
            r.threads,
            r.no_cache,
            if r.ok { "✓" } else { "**✗**" }
        );
    }
    println!();
    println!("{} rows, {} as expected, {failed} not; deadline {DEADLINE_SECS} s (WITHAWSROLE_DEADLINE_SECONDS); retry base 200 ms, cap 5 s, 8 attempts.", m.rows.len(), m.rows.len() - failed);
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// OpenBao restarted under a broker that holds an AppRole login token: the token is gone.
fn openbao_restart(m: &mut Matrix) {
    let run = std::env::var("WORLD_RUN_DIR").unwrap_or_else(|_| "test/world/.run".into());
    let up = std::env::var("WORLD_UP").unwrap_or_else(|_| "test/world/up".into());
    let role_id = env("VAULT_ROLE_ID");
    let secret_id = env("VAULT_SECRET_ID");
    // 1. Log in and cache a token (and credentials) before the restart.
    m.row(
        Case::new(
            "AppRole login before the OpenBao restart",
            "—",
            Expect::Success { min_retries: 0 },
            None,
        )
        .logged_in_as(&role_id, &secret_id),
    );
    // 2. Restart OpenBao (dev server: in memory), re-provision with `up`.
    let pid = std::fs::read_to_string(format!("{run}/openbao.pid"))
        .expect("openbao.pid")
        .trim()
        .to_string();
    let restarted = Instant::now();
    let _ = Command::new("kill").arg(&pid).status();
    for _ in 0..50 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = Command::new(&up).output().expect("run world up");
    assert!(
        out.status.success(),
        "up failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env_text = std::fs::read_to_string(format!("{run}/env")).unwrap_or_default();
    let new_var = |name: &str| {
        env_text
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("export {name}="))
                    .map(|v| v.trim_matches('\'').to_string())
            })
            .unwrap_or_default()
    };
    let new_role_id = new_var("VAULT_ROLE_ID");
    let new_secret_id = new_var("VAULT_SECRET_ID");
    m.world.token = new_var("VAULT_TOKEN");
    let changed = |new: &str, old: &str| if new == old { "unchanged" } else { "changed" };
    let changes = format!(
        "role_id {}, secret_id {}",
        changed(&new_role_id, &role_id),
        changed(&new_secret_id, &secret_id)
    );
    eprintln!(
        "fault_matrix: OpenBao restarted and re-provisioned in {:.1} s; {changes}",
        restarted.elapsed().as_secs_f64()
    );
    // 3. The cached login token is gone: the broker sees 403, logs in once more with the
    //    secret_id it was given. Whether that works depends on the re-provisioned AppRole.
    let same_creds = new_role_id == role_id && new_secret_id == secret_id;
    let expect_after = if same_creds {
        Expect::Success { min_retries: 0 }
    } else {
        Expect::Error(ErrorKind::PermissionDenied)
    };
    let injected =
        format!("kill OpenBao, `up` again ({changes}); same broker, old VAULT_SECRET_ID");
    let logins_before = m.broker.stats().vault_logins;
    m.row(
        Case::new(
            "OpenBao restarted mid-run (token gone)",
            &injected,
            expect_after,
            None,
        )
        .logged_in_as(&role_id, &secret_id),
    );
    let relogins = m.broker.stats().vault_logins - logins_before;
    if let Some(r) = m.rows.last_mut() {
        r.outcome = format!(
            "{}; logins tried by this call and its repeat: {relogins}",
            r.outcome
        );
    }
    // 4. With the new secret_id (what a controller gets after the operator re-issues it).
    m.row(
        Case::new(
            "after the restart, with the re-issued secret_id",
            "new VAULT_ROLE_ID/VAULT_SECRET_ID",
            Expect::Success { min_retries: 0 },
            None,
        )
        .logged_in_as(&new_role_id, &new_secret_id),
    );
}
