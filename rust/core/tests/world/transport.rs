//! How the broker reaches Vault: namespaces and TLS.

use super::*;

// ---- namespaces --------------------------------------------------------------------------------

#[test]
fn a_namespace_carries_login_and_fetch_via_x_vault_namespace() {
    let w = world();
    let ns = env("WORLD_NAMESPACE");
    let role_id = env("WORLD_NAMESPACE_ROLE_ID");
    let secret_id = env("WORLD_NAMESPACE_SECRET_ID");
    let request = |session: &str| approle_request(session, &role_id, &secret_id);
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

#[test]
fn vault_cacert_lets_the_broker_verify_vault_over_tls() {
    let w = world();
    let ca = env("WORLD_TLS_CACERT");
    let broker = tls_broker(&w, &[("VAULT_CACERT", &ca)]);
    let issued = broker
        .credentials(&w.token_request("ecr-push", "world-tls-ca", &[]))
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
        .credentials(&w.token_request("ecr-push", "world-tls-wrong", &[]))
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
        .credentials(&w.token_request("ecr-push", "world-tls-none", &[]))
        .unwrap_err();
    assert!(e.to_string().contains("VAULT_CACERT is not set"), "{e}");
    let e = tls_broker(&w, &[("VAULT_SKIP_VERIFY", "false")])
        .credentials(&w.token_request("ecr-push", "world-tls-false", &[]))
        .unwrap_err();
    assert!(matches!(e, BrokerError::TlsUntrusted { .. }), "{e:?}");

    let issued = tls_broker(&w, &[("VAULT_SKIP_VERIFY", "true")])
        .credentials(&w.token_request("ecr-push", "world-tls-skip", &[]))
        .unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-tls-skip"));
}
