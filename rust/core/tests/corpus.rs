//! The bad-input corpus (`test/corpus/`): request pairs, environment values, purposes config
//! files and Vault responses that must each end in one clear, one-line error of the expected
//! kind — never a panic, never a hang — and, for input errors, before any network call.
//!
//! ```sh
//! test/world/up && . test/world/.run/env && cargo test -p withawsrole-core --test corpus
//! CORPUS_RECORD=1 cargo test -p withawsrole-core --test corpus -- --nocapture   # print actuals
//! ```
//! Without the world (no `WORLD_CONTROL_URL`) the request and config cases still run (the
//! "no network call" check and the Vault-response cases are skipped).
//!
//! Case files: `requests.jsonl` ({name, pairs | flat, env?, governance?, kind, contains}; `env` is
//! the controller's settings, `governance: "governed"` makes the broker the JNI library's), `configs.jsonl`
//! ({name, file, purpose, kind, contains}; files in `config/`), `responses.jsonl` ({name,
//! status, body, kind, contains}; the front answers `aws/sts/*` with it). `<<c*N>>` in a
//! string stands for the character c repeated N times (keeps huge cases small on disk).
//! Property tests (proptest, fixed case count) cover ttl parsing, session names and request
//! parsing at the end.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{json, Value};
use withawsrole_core::request::{variable_of, CONTROLLER_KEYS, REQUEST_KEYS};
use withawsrole_core::session::{clean, default_session_name, explicit_session_name};
use withawsrole_core::ttl::parse_ttl;
use withawsrole_core::{
    pairs_from_flat, parse_request, BrokerOptions, CredentialBroker, Governance,
};
use withawsrole_testkit::World;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/corpus")
}

fn load(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(corpus_dir().join(name)).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
        .collect()
}

/// `<<c*N>>` -> c repeated N times, in every string of `v`.
fn expand(v: &Value) -> Value {
    fn expand_str(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("<<") {
            let Some(end) = rest[start..].find(">>") else {
                break;
            };
            let inner = &rest[start + 2..start + end];
            let mut it = inner.splitn(2, '*');
            match (it.next(), it.next().and_then(|n| n.parse::<usize>().ok())) {
                (Some(c), Some(n)) if c.chars().count() == 1 => {
                    out.push_str(&rest[..start]);
                    out.push_str(&c.repeat(n));
                }
                _ => out.push_str(&rest[..start + end + 2]),
            }
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        out
    }
    match v {
        Value::String(s) => Value::String(expand_str(s)),
        Value::Array(a) => Value::Array(a.iter().map(expand).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), expand(v))).collect()),
        other => other.clone(),
    }
}

fn recording() -> bool {
    std::env::var_os("CORPUS_RECORD").is_some()
}

/// What one case came to: `success`, an error kind, `panic`, or `broker` (the broker itself
/// refused to start, e.g. a bad deadline) with its message.
fn outcome(
    env: HashMap<String, String>,
    pairs: &[(String, String)],
    governance: Governance,
) -> (String, String, f64) {
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let options = BrokerOptions::with_env(Arc::new(move |k: &str| env.get(k).cloned()));
        let mut options = match options {
            Ok(o) => o,
            Err(e) => return (e.kind().as_str().to_string(), e.to_string()),
        };
        options.retry.base = Duration::from_millis(20);
        options.governance = governance;
        let broker = match CredentialBroker::new(options) {
            Ok(b) => b,
            Err(e) => return (e.kind().as_str().to_string(), e.to_string()),
        };
        match broker.credentials(pairs) {
            Ok(i) => {
                let arn: String = i.credentials.arn.chars().take(80).collect();
                (
                    "success".to_string(),
                    format!("{arn} lease={}", i.credentials.lease_duration.as_secs()),
                )
            }
            Err(e) => (e.kind().as_str().to_string(), e.to_string()),
        }
    }));
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok((k, m)) => (k, m, secs),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            ("panic".into(), msg, secs)
        }
    }
}

/// Checks one outcome against its case; returns a failure line, if any.
fn judge(case: &Value, kind: &str, message: &str, secs: f64, limit_secs: f64) -> Option<String> {
    let name = case["name"].as_str().unwrap_or("?");
    if recording() {
        println!(
            "{}",
            json!({"name": name, "kind": kind, "message": message, "secs": secs})
        );
    }
    let want = case["kind"].as_str().unwrap();
    let contains = case["contains"].as_str().unwrap_or("");
    let mut problems = Vec::new();
    if kind != want {
        problems.push(format!("kind {kind}, expected {want}"));
    }
    if !message.contains(contains) {
        problems.push(format!("message lacks {contains:?}"));
    }
    if message.contains('\n') {
        problems.push("message spans several lines".into());
    }
    if message.chars().count() > 1500 {
        problems.push(format!(
            "message is {} characters long",
            message.chars().count()
        ));
    }
    let limit_secs = case["max_secs"].as_f64().unwrap_or(limit_secs);
    if secs > limit_secs {
        problems.push(format!("took {secs:.1} s"));
    }
    for secret in ["fakesecretfakesecret", "faketokenfaketoken", "corpus-token"] {
        if message.contains(secret) {
            problems.push("message carries a secret".into());
        }
    }
    let shown: String = message.chars().take(300).collect();
    if let Some(bug) = case["known_bug"].as_str() {
        // Reported, not failed: the fix belongs to rust/core (see docs/reliability.md).
        if problems.is_empty() {
            eprintln!("corpus: {name}: known bug fixed, remove `known_bug` from the case");
        } else {
            eprintln!("corpus: KNOWN BUG {name}: {bug} (now: {kind}: {shown})");
        }
        return None;
    }
    (!problems.is_empty()).then(|| format!("{name}: {} — {shown}", problems.join("; ")))
}

/// The controller's settings: the world's Vault when it is up, else an address nothing answers.
fn base_env(world_up: bool) -> HashMap<String, String> {
    let addr = std::env::var("VAULT_ADDR").ok().filter(|_| world_up);
    HashMap::from([
        (
            "VAULT_ADDR".into(),
            addr.unwrap_or_else(|| "http://127.0.0.1:9".into()),
        ),
        ("VAULT_TOKEN".into(), "corpus-token".into()),
    ])
}

fn report(section: &str, total: usize, failures: Vec<String>) {
    eprintln!(
        "corpus: {section}: {total} cases, {} failed",
        failures.len()
    );
    if !recording() {
        assert!(failures.is_empty(), "{section}:\n{}", failures.join("\n"));
    }
}

#[test]
fn bad_requests_and_environments_fail_before_any_network_call() {
    let world = World::take_if_up();
    let cases = load("requests.jsonl");
    assert!(
        cases.len() >= 100,
        "the request corpus has {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let pairs: Result<Vec<(String, String)>, _> = match (&case["pairs"], &case["flat"]) {
            (Value::Array(p), _) => Ok(p
                .iter()
                .map(|kv| {
                    (
                        kv[0].as_str().unwrap().to_string(),
                        kv[1].as_str().unwrap().to_string(),
                    )
                })
                .collect()),
            (_, Value::Array(f)) => {
                pairs_from_flat(f.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            }
            _ => panic!("case without pairs: {case}"),
        };
        let (kind, message, secs) = match pairs {
            Ok(pairs) => {
                let env = match &case["env"] {
                    Value::Object(o) => o
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect(),
                    _ => base_env(world.is_some()),
                };
                let governance = match case["governance"].as_str() {
                    Some("governed") => Governance::Governed,
                    None | Some("ungoverned") => Governance::Ungoverned,
                    Some(other) => panic!("{}: governance {other:?}", case["name"]),
                };
                outcome(env, &pairs, governance)
            }
            Err(e) => (e.kind().as_str().to_string(), e.to_string(), 0.0),
        };
        failures.extend(judge(case, &kind, &message, secs, 1.0));
    }
    if let Some(c) = &world {
        let calls = c.network_calls();
        if calls != 0 {
            failures.push(format!(
                "{calls} request(s) reached the world: input errors must stop before the network"
            ));
        }
    }
    report("requests", cases.len(), failures);
}

#[test]
fn bad_purposes_config_files_fail_before_any_network_call() {
    let world = World::take_if_up();
    let cases = load("configs.jsonl");
    let mut failures = Vec::new();
    for case in &cases {
        let file = corpus_dir()
            .join("config")
            .join(case["file"].as_str().unwrap());
        let pairs = vec![(
            "purpose".to_string(),
            case["purpose"].as_str().unwrap().to_string(),
        )];
        // The file is the controller's (WITHAWSROLE_CONFIG): a request cannot name one.
        let mut env = base_env(world.is_some());
        env.insert("WITHAWSROLE_CONFIG".into(), file.display().to_string());
        let (kind, message, secs) = outcome(env, &pairs, Governance::Ungoverned);
        failures.extend(judge(case, &kind, &message, secs, 1.0));
    }
    if let Some(c) = &world {
        let calls = c.network_calls();
        if calls != 0 {
            failures.push(format!("{calls} request(s) reached the world"));
        }
    }
    report("configs", cases.len(), failures);
}

#[test]
fn bad_vault_responses_end_in_a_clear_error_without_panic_or_leak() {
    let Some(world) = World::take_if_up() else {
        eprintln!("corpus: responses: skipped (no world: WORLD_CONTROL_URL unset)");
        return;
    };
    let addr = std::env::var("VAULT_ADDR").unwrap();
    let token = std::env::var("VAULT_TOKEN").unwrap();
    let cases = load("responses.jsonl");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        world.reset();
        world.fault(
            &json!({"path": "^aws/sts/", "status": case["status"], "body": expand(&case["body"])}),
        );
        let pairs = vec![
            ("purpose".to_string(), "ecr-push".to_string()),
            (
                "session_name".to_string(),
                format!("corpus-{}-{i}", std::process::id()),
            ),
            ("vault_token".to_string(), token.clone()),
        ];
        let env = HashMap::from([
            ("WITHAWSROLE_DEADLINE_SECONDS".to_string(), "3".to_string()),
            ("VAULT_ADDR".to_string(), addr.clone()),
        ]);
        let (kind, message, secs) = outcome(env, &pairs, Governance::Ungoverned);
        failures.extend(judge(case, &kind, &message, secs, 4.0));
    }
    report("responses", cases.len(), failures);
}

// ---- properties -------------------------------------------------------------------------------

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Whatever the job and build, the default session name is valid for STS.
    #[test]
    fn default_session_names_are_always_valid_for_sts(purpose in "[a-z-]{1,20}", job in any::<Option<String>>(), build in any::<Option<String>>()) {
        let name = default_session_name(&purpose, job.as_deref(), build.as_deref());
        let n = name.chars().count();
        prop_assert!((2..=64).contains(&n), "{name:?} has {n} characters");
        prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)), "{name:?}");
    }

    /// Cleaning is idempotent, and two different long names stay different (hash suffix).
    #[test]
    fn cleaning_is_idempotent_and_long_names_keep_distinct(raw in "\\PC{0,200}", tail in "[a-z]{1,5}") {
        let once = clean(&raw);
        prop_assert_eq!(clean(&once), once.clone());
        let long = format!("{}{}", "x".repeat(70), raw);
        let other = format!("{long}{tail}");
        prop_assert_ne!(clean(&long), clean(&other));
    }

    /// An explicit session name is either rejected with an invalid_request or cleaned to 2..=64.
    #[test]
    fn explicit_session_names_are_valid_or_rejected(raw in "\\PC{0,100}") {
        match explicit_session_name(&raw) {
            Ok(name) => prop_assert!((2..=64).contains(&name.chars().count()), "{name:?}"),
            Err(e) => prop_assert_eq!(e.kind().as_str(), "invalid_request"),
        }
    }

    /// Any ttl string: within 900..=43200 or an invalid_request error; never a panic.
    #[test]
    fn ttl_parsing_never_panics_and_stays_within_sts_bounds(raw in "\\PC{0,30}") {
        match parse_ttl(&raw) {
            Ok(s) => prop_assert!((900..=43_200).contains(&s)),
            Err(e) => prop_assert_eq!(e.kind().as_str(), "invalid_request"),
        }
    }

    /// h/m/s forms agree with their seconds.
    #[test]
    fn ttl_units_agree_with_seconds(h in 0u32..13, m in 0u32..60, s in 0u32..60) {
        let total = h * 3600 + m * 60 + s;
        let text = format!("{h}h{m}m{s}s");
        match parse_ttl(&text) {
            Ok(v) => prop_assert_eq!(v, total),
            Err(_) => prop_assert!(!(900..=43_200).contains(&total), "{text} refused"),
        }
        if (900..=43_200).contains(&total) {
            prop_assert_eq!(parse_ttl(&total.to_string()).unwrap(), total);
        }
    }

    /// Arbitrary pairs (known keys with arbitrary values, or arbitrary keys): parsing returns
    /// a request or a non-internal error, never panics, and its message is one line.
    #[test]
    fn request_parsing_never_panics(entries in proptest::collection::vec((0usize..REQUEST_KEYS.len() + 3, "\\PC{0,40}"), 0..8)) {
        let pairs: Vec<(String, String)> = entries.into_iter().map(|(k, v)| {
            let key = REQUEST_KEYS.get(k).map(|(name, _)| name.to_string()).unwrap_or_else(|| format!("bogus{k}"));
            // Never point at the network or the file system from here.
            let v = if key.ends_with("_file") || key == "vault_cacert" { "/nonexistent".to_string() } else { v };
            (key, v)
        }).collect();
        let env = |_: &str| None;
        match parse_request(&pairs, &env) {
            Err(e) => {
                prop_assert_ne!(e.kind().as_str(), "internal", "{}", e);
                prop_assert!(!e.to_string().contains('\n'), "{}", e);
            }
            // A request that parses never carried a controller setting.
            Ok(_) => prop_assert!(!pairs.iter().any(|(k, _)| CONTROLLER_KEYS.contains(&k.as_str()))),
        }
    }

    /// Arbitrary controller settings (the variables behind the controller keys, with arbitrary
    /// values) and a plain request: a request or a non-internal, one-line error; never a panic.
    #[test]
    fn arbitrary_controller_settings_never_panic(entries in proptest::collection::vec((0usize..CONTROLLER_KEYS.len(), "\\PC{0,40}"), 0..6), own_token in any::<bool>()) {
        let mut settings: HashMap<&'static str, String> = HashMap::new();
        for (i, v) in entries {
            let key = CONTROLLER_KEYS[i];
            let var = variable_of(key).unwrap();
            // Never point at the network or the file system from here.
            let v = if key.ends_with("_file") || key == "vault_cacert" { "/nonexistent".to_string() } else { v };
            settings.insert(var, v);
        }
        let env = move |k: &str| settings.get(k).cloned();
        let mut pairs = vec![("purpose".to_string(), "ecr-push".to_string())];
        if own_token {
            pairs.push(("vault_token".to_string(), "t".to_string()));
        }
        if let Err(e) = parse_request(&pairs, &env) {
            prop_assert_ne!(e.kind().as_str(), "internal", "{}", e);
            prop_assert!(!e.to_string().contains('\n'), "{}", e);
        }
    }
}

/// A fetch that panics (today: a lease_duration of u64::MAX) must not wedge its cache key:
/// the next call for the same key must still reach Vault and answer, not wait forever on the
/// single-flight slot of the panicked load.
#[test]
fn a_panicking_fetch_does_not_wedge_its_cache_key() {
    let Some(world) = World::take_if_up() else {
        return;
    };
    let body = json!({"lease_duration": u64::MAX, "data": {"access_key": "ASIAFAKE", "secret_key": "fakesecretfakesecret", "session_token": "faketokenfaketoken", "arn": "arn:aws:sts::123456789012:assumed-role/r/s"}});
    world.fault(&json!({"path": "^aws/sts/", "status": 200, "body": body, "count": 1}));
    let pairs = vec![
        ("purpose".to_string(), "ecr-push".to_string()),
        (
            "session_name".to_string(),
            format!("corpus-wedge-{}", std::process::id()),
        ),
        (
            "vault_token".to_string(),
            std::env::var("VAULT_TOKEN").unwrap(),
        ),
    ];
    let addr = std::env::var("VAULT_ADDR").unwrap();
    let settings = move |k: &str| (k == "VAULT_ADDR").then(|| addr.clone());
    let broker = Arc::new(
        CredentialBroker::new(BrokerOptions::with_env(Arc::new(settings)).unwrap()).unwrap(),
    );
    let first = catch_unwind(AssertUnwindSafe(|| broker.credentials(&pairs).map(|_| ())));
    let (tx, rx) = std::sync::mpsc::channel();
    let (b, p) = (broker.clone(), pairs.clone());
    std::thread::spawn(move || {
        let _ = tx.send(catch_unwind(AssertUnwindSafe(|| {
            b.credentials(&p).map(|i| i.cache)
        })));
    });
    let second = rx.recv_timeout(Duration::from_secs(10));
    eprintln!(
        "corpus: wedge: first call {}, second call {:?}",
        if first.is_err() {
            "panicked"
        } else {
            "returned"
        },
        second.as_ref().map(|r| r
            .as_ref()
            .map(|x| format!("{x:?}"))
            .unwrap_or_else(|_| "panicked".into()))
    );
    let second = second.expect("the second call for the key of a panicked fetch hung for 10 s");
    assert!(
        matches!(second, Ok(Ok(_))),
        "the second call did not succeed"
    );
}
