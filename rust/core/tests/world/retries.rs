//! What the broker retries (transient Vault and AWS faults, a refused connection) and what it
//! does not (a 400, a 403), and the deadline that ends retrying.

use super::*;

/// The front's answer when AWS throttles the engine's AssumeRole, passed through with `status`.
fn throttled(status: u16) -> Value {
    json!({"path": "^aws/sts/ecr-push", "status": status, "count": 1,
           "body": {"errors": [
               "Error assuming role: Throttling: Rate exceeded\n\tstatus code: 400, request id: x"]}})
}

/// `fault` on the next sts calls (`count` of them), then all is well: the broker retries into
/// one issue, one retry a fault, and nothing of the failures is cached.
fn retried_into_one_issue(w: &World, fault: Value, session: &str) {
    w.reset();
    w.fault(&fault);
    let faults = fault["count"].as_u64().unwrap();
    let broker = w.broker();
    let issued = broker
        .credentials(&w.token_request("ecr-push", session, &[]))
        .unwrap_or_else(|e| panic!("{session}: {e}"));
    let m = map(&issued);
    assert!(m["arn"].ends_with(session), "{session}: {}", m["arn"]);
    assert_eq!(m["cache"], "miss", "{session}");
    let c = w.counters();
    assert_eq!(c["sts_calls"]["aws/ecr-push"], faults + 1, "{session}: {c}");
    assert_eq!(c["sts_issued"], 1, "{session}: {c}");
    let stats = broker.stats();
    assert_eq!(
        (stats.vault_calls, stats.retries),
        (faults + 1, faults),
        "{session}: {stats:?}"
    );
}

#[test]
fn transient_vault_and_aws_faults_are_retried_into_one_issue() {
    let w = world();
    let sts = |extra: Value| {
        let mut fault = json!({"path": "^aws/sts/ecr-push", "count": 1});
        fault
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        fault
    };
    for (session, fault) in [
        ("world-retry-503", sts(json!({"status": 503, "count": 2}))),
        (
            "world-retry-sealed",
            sts(json!({"status": 503, "body": {"errors": ["Vault is sealed"]}})),
        ),
        // A standby, or a rate-limit quota.
        ("world-retry-429", sts(json!({"status": 429}))),
        ("world-retry-500", sts(json!({"status": 500}))),
        ("world-retry-reset", sts(json!({"mode": "reset"}))),
        ("world-retry-throttle-400", throttled(400)),
        ("world-retry-throttle-500", throttled(500)),
        ("world-retry-throttle-502", throttled(502)),
    ] {
        retried_into_one_issue(&w, fault, session);
    }
}

#[test]
fn a_400_or_a_403_is_not_retried() {
    let w = world();
    for (status, kind) in [
        (400, ErrorKind::InvalidRequest),
        (403, ErrorKind::PermissionDenied),
    ] {
        w.reset();
        w.fault(&json!({"path": "^aws/sts/ecr-push", "status": status, "count": 5}));
        let broker = w.broker();
        let e = broker
            .credentials(&w.token_request("ecr-push", &format!("world-no-retry-{status}"), &[]))
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{status}: {e}");
        assert!(
            status != 403 || matches!(e, BrokerError::Forbidden { .. }),
            "{e:?}"
        );
        assert_eq!(w.sts_calls("ecr-push"), 1, "{status}");
        assert_eq!(broker.stats().retries, 0, "{status}");
    }
}

#[test]
fn the_deadline_ends_in_unavailable_naming_the_last_cause() {
    let w = world();
    w.fault(&json!({"path": "aws/sts/ecr-push", "status": 503, "ratio": 1.0}));
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
fn a_vault_sealed_until_the_deadline_is_explained() {
    let w = world();
    w.fault(&json!({"path": "^aws/sts/ecr-push", "status": 503,
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
    w.fault(&json!({"path": "^auth/approle/login", "status": 503, "count": 1}));
    let broker = w.broker();
    broker
        .credentials(&w.approle_request("world-login-retry"))
        .unwrap();
    assert_eq!(w.proxied("auth/approle/login"), 2);
    assert_eq!(broker.stats().vault_logins, 2);
}

#[test]
fn an_unreachable_vault_is_retried_until_the_deadline_then_unavailable() {
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
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        e.to_string()
            .contains("cannot reach Vault at http://127.0.0.1:9"),
        "{e}"
    );
    assert!(broker.stats().retries >= 2, "{:?}", broker.stats());
}
