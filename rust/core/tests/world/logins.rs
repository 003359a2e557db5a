//! Every way the controller logs in to Vault (AppRole, JWT, Kubernetes, token and secret_id
//! files), and the login token's renewal and replacement.

use super::*;

#[test]
fn a_revoked_approle_token_is_replaced_by_one_new_login() {
    let w = world();
    let broker = w.broker();
    broker
        .credentials(&w.approle_request("world-relogin-a"))
        .unwrap();
    revoke_every_approle_login();
    broker
        .credentials(&w.approle_request("world-relogin-b"))
        .unwrap();
    assert_eq!(broker.stats().vault_logins, 2, "{:?}", broker.stats());
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
    let msg = assert_error(
        &e,
        ErrorKind::PermissionDenied,
        &["auth/approle/login", "VAULT_SECRET_ID"],
    );
    assert!(!msg.contains("not-the-secret-id"), "{msg}");
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
        .credentials(&ecr_push("world-jwt-file", &[]))
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
    let msg = assert_error(
        &e,
        ErrorKind::PermissionDenied,
        &[
            "Vault refused the JWT login at auth/jwt/login",
            "bound claim",
            "VAULT_JWT_ROLE",
        ],
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

#[test]
fn a_service_account_token_logs_in_at_auth_kubernetes() {
    let w = world();
    let file = temp_file("sa-token", &mint(&["--k8s", "ci/jenkins"]));
    let broker = k8s_broker(&w, &file);
    let issued = broker.credentials(&ecr_push("world-k8s", &[])).unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-k8s"));
    assert_eq!(w.proxied("auth/kubernetes/login"), 1);
    assert_eq!(broker.stats().vault_logins, 1);
}

#[test]
fn a_service_account_the_role_does_not_bind_is_refused() {
    let w = world();
    let file = temp_file("sa-token-other", &mint(&["--k8s", "ci/someone-else"]));
    let e = k8s_broker(&w, &file)
        .credentials(&ecr_push("world-k8s-other", &[]))
        .unwrap_err();
    assert_error(
        &e,
        ErrorKind::PermissionDenied,
        &["auth/kubernetes/login", "VAULT_K8S_ROLE"],
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
    assert_error(
        &e,
        ErrorKind::InvalidRequest,
        &[
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "VAULT_K8S_TOKEN_FILE",
        ],
    );
    assert_eq!(w.traffic(), before, "nothing was sent");
}

// ---- login tokens: renewal and re-login -------------------------------------------------------

/// An AppRole role whose tokens live `ttl` (created here; the world's own lives 1h).
fn short_lived_approle(name: &str, ttl: &str) -> (String, String) {
    openbao(
        "POST",
        &format!("auth/approle/role/{name}"),
        Some(&json!({"token_policies": ["jenkins"], "token_ttl": ttl, "token_max_ttl": "10m"})),
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
        Some(&json!({})),
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
    let request = |session: &str| approle_request(session, &role_id, &secret_id);
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
    broker
        .credentials(&w.approle_request("world-renew-revoked-a"))
        .unwrap();
    revoke_every_approle_login();
    // 55 of the login token's 60 minutes later: renewal is due, and Vault refuses it.
    clock.advance(Duration::from_secs(55 * 60));
    broker
        .credentials(&w.approle_request("world-renew-revoked-b"))
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
        Some(&json!({"policies": ["jenkins"], "ttl": "1h"})),
        None,
    )
    .1;
    let token = created["auth"]["client_token"].as_str().unwrap().to_owned();
    openbao(
        "POST",
        "auth/token/revoke",
        Some(&json!({"token": token})),
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
        .credentials(&ecr_push("world-token-file", &[]))
        .unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-token-file"));

    let secret_id = temp_file("controller.secret-id", &env("VAULT_SECRET_ID"));
    let _secret_id_removed = Removed(secret_id.clone());
    let broker = w.broker_with(&[
        ("VAULT_ROLE_ID", &env("VAULT_ROLE_ID")),
        ("VAULT_SECRET_ID_FILE", secret_id.to_str().unwrap()),
    ]);
    let issued = broker
        .credentials(&ecr_push("world-secret-id-file", &[]))
        .unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-secret-id-file"));
    assert_eq!(w.proxied("auth/approle/login"), 1);
}
