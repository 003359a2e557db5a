//! The trust boundary between Jenkinsfiles and the controller: what a request may not choose,
//! governance, and invalid requests that never reach Vault.

use super::*;

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
        .credentials(&ecr_push("world-boundary", &[]))
        .unwrap();
    assert!(map(&issued)["arn"].ends_with("/world-boundary"));
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
