//! No secret in any error, Debug form or log line.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use super::*;

// Everything the core (and vaultrs, rustify, reqwest below it) logs, at every level, for the
// secrecy test. Installed once per test binary by `world()`.
static LOGS: Mutex<String> = Mutex::new(String::new());

pub(super) fn install_log_capture() {
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
                w.fault(&f);
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
