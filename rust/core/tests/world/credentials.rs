//! Credentials from the world for each login and request shape Jenkins sends, the answer shapes
//! Vault has shipped, and the purposes config.

use withawsrole_testkit::vault;

use super::*;

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
    let a = broker
        .credentials(&w.approle_request("world-approle-a"))
        .unwrap();
    assert!(map(&a)["arn"].contains("assumed-role/jenkins-ecr-push-role/world-approle-a"));
    let b = broker
        .credentials(&w.approle_request("world-approle-b"))
        .unwrap();
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
    assert_eq!(
        assert_error(&e, ErrorKind::PermissionDenied, &[]),
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
    assert_error(&e, ErrorKind::InvalidRequest, &["no-such-role"]);
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
    let mut body = json!({"credential_type": "assumed_role",
        "role_arns": ["arn:aws:iam::123456789012:role/jenkins-ecr-push-role"]});
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let root = env("WORLD_ROOT_TOKEN");
    let (status, answer) = vault("POST", &format!("aws/roles/{name}"), &root, Some(&body));
    assert_eq!(status, 204, "{answer}");
}

fn delete_front_role(name: &str) {
    vault(
        "DELETE",
        &format!("aws/roles/{name}"),
        &env("WORLD_ROOT_TOKEN"),
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
            w.call(
                "POST",
                "/options",
                Some(&json!({ "vault_version": version })),
            );
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
fn a_failed_fetch_is_not_cached() {
    let w = world();
    w.fault(&json!({"path": "aws/sts/ecr-push", "status": 400, "count": 1}));
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
    for (purpose, iam_role, field, value) in [
        (
            "deploy",
            "jenkins-deploy-role",
            "lease_duration_seconds",
            "900",
        ),
        ("push", "jenkins-ecr-push-role", "region", "eu-west-1"),
    ] {
        let session = format!("world-config-{purpose}");
        let config = [
            ("config_text", config.as_str()),
            ("config_name", "org/withawsrole/purposes.toml"),
        ];
        let m = map(&broker
            .credentials(&w.token_request(purpose, &session, &config))
            .unwrap());
        assert!(
            m["arn"].contains(&format!("assumed-role/{iam_role}/{session}")),
            "{}",
            m["arn"]
        );
        assert_eq!(m[field], value, "{purpose}");
    }
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
