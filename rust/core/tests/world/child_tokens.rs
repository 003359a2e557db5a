//! Child tokens for `withAwsRole(refresh: true)` (docs/refresh.md): what the controller hands an
//! agent, what such a token can reach, and how long it lives. The agent's side (the `awsrole`
//! CLI, botocore refreshing through it) is in rust/cli/tests/world.rs.

use withawsrole_core::child_token::{ChildToken, Revocation};

use super::*;

/// The token role test/world/provision.py creates (orphan, allowed_policies_glob withawsrole-sts-*).
const TOKEN_ROLE: &str = "withawsrole";
const DEPLOY_ARN: &str = "arn:aws:iam::123456789012:role/jenkins-deploy-role";

/// The controller's side: a broker logging in with the world's AppRole (as Jenkins does).
fn controller(w: &World) -> CredentialBroker {
    w.broker_with(&[
        ("VAULT_ROLE_ID", &env("VAULT_ROLE_ID")),
        ("VAULT_SECRET_ID", &env("VAULT_SECRET_ID")),
    ])
}

fn child_token(broker: &CredentialBroker, extra: &[(&str, &str)]) -> ChildToken {
    broker
        .create_child_token(&pairs(extra))
        .unwrap_or_else(|e| panic!("create_child_token: {e}"))
}

fn revoke(broker: &CredentialBroker, token: &str) -> Result<Revocation, BrokerError> {
    broker.revoke_child_token(&pairs(&[("token", token)]))
}

/// What the agent asks for with the child token alone (no login of the controller's).
fn with_child(
    w: &World,
    child: &ChildToken,
    purpose: &str,
) -> Result<IssuedCredentials, BrokerError> {
    let mut request = pairs(&[("purpose", purpose), ("vault_token", child.token.expose())]);
    if purpose == "deploy" {
        request.extend(pairs(&[("role_arn", DEPLOY_ARN)]));
    }
    w.broker().credentials(&request)
}

#[test]
fn a_child_token_reaches_its_own_purpose_and_nothing_else() {
    let w = world();
    let broker = controller(&w);
    let child = child_token(&broker, &[("purpose", "ecr-push"), ("token_ttl", "5m")]);
    let token = child.token.expose();
    assert!(with_child(&w, &child, "ecr-push").is_ok());
    let e = with_child(&w, &child, "deploy").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("aws/sts/deploy"), "{e}");

    let (status, _) = withawsrole_testkit::vault(
        "POST",
        "auth/token/create",
        token,
        Some(&json!({"ttl": "5m"})),
    );
    assert_eq!(status, 403, "a child token cannot make tokens");
    let (status, looked) = withawsrole_testkit::vault("GET", "auth/token/lookup-self", token, None);
    assert_eq!(status, 200);
    let data = &looked["data"];
    assert_eq!(data["renewable"], false, "{data}");
    assert_eq!(data["explicit_max_ttl"], 300, "{data}");
    assert!(data["ttl"].as_u64().unwrap() <= 300, "{data}");
    assert_eq!(data["meta"]["sts_path"], "aws/sts/ecr-push", "{data}");
    let (status, _) = withawsrole_testkit::vault(
        "POST",
        "auth/token/renew-self",
        token,
        Some(&json!({"increment": "1h"})),
    );
    assert_ne!(status, 200, "the agent cannot extend the token's life");

    assert_eq!(revoke(&broker, token).unwrap(), Revocation::Revoked);
    let e = with_child(&w, &child, "ecr-push").unwrap_err();
    assert!(matches!(e, BrokerError::TokenRejected { .. }), "{e:?}");
    assert_eq!(
        revoke(&broker, token).unwrap(),
        Revocation::AlreadyGone,
        "revoking twice is not an error"
    );
}

#[test]
fn token_role_children_outlive_the_controller_login_and_plain_children_do_not() {
    let w = world();
    // The controller's login: a short-lived token like an AppRole login's.
    let (_, created) = openbao(
        "POST",
        "auth/token/create",
        Some(&json!({"policies": ["jenkins", "withawsrole-sts-ecr-push"], "ttl": "10m"})),
        None,
    );
    let login = created["auth"]["client_token"].as_str().unwrap().to_owned();
    let broker = w.broker_with(&[("VAULT_TOKEN", &login)]);
    let plain = child_token(&broker, &[("purpose", "ecr-push"), ("token_ttl", "5m")]);
    // The token role is the controller's setting (WITHAWSROLE_TOKEN_ROLE), not a request's.
    broker
        .apply_overrides(&pairs(&[("WITHAWSROLE_TOKEN_ROLE", TOKEN_ROLE)]))
        .unwrap();
    let orphan = child_token(&broker, &[("purpose", "ecr-push"), ("token_ttl", "5m")]);
    assert!(!plain.orphan && orphan.orphan);

    // The login token ends (expiry or revocation alike): Vault revokes its children with it.
    openbao(
        "POST",
        "auth/token/revoke",
        Some(&json!({"token": login})),
        None,
    );
    with_child(&w, &orphan, "ecr-push").unwrap();
    let e = with_child(&w, &plain, "ecr-push").unwrap_err();
    assert!(matches!(e, BrokerError::TokenRejected { .. }), "{e:?}");
    assert_eq!(
        revoke(&broker, orphan.token.expose()).unwrap(),
        Revocation::Revoked
    );
}

#[test]
fn a_policy_jenkins_cannot_hand_out_is_refused_with_what_to_do() {
    let w = world();
    let broker = controller(&w);
    // The world's jenkins login does not hold withawsrole-sts-forbidden (and it does not exist).
    let e = broker
        .create_child_token(&pairs(&[("purpose", "forbidden")]))
        .unwrap_err();
    assert_error(
        &e,
        ErrorKind::InvalidRequest,
        &["`withawsrole-sts-forbidden`", "WITHAWSROLE_TOKEN_ROLE"],
    );

    // Through the token role, the policy's name is allowed, but the policy (if it existed) is
    // the admin's to write: a token without it reaches nothing.
    let e = broker
        .create_child_token(&pairs(&[
            ("purpose", "forbidden"),
            ("token_role", TOKEN_ROLE),
        ]))
        .unwrap_err();
    assert!(matches!(e, BrokerError::ControllerSetting { .. }), "{e:?}");
    broker
        .apply_overrides(&pairs(&[("WITHAWSROLE_TOKEN_ROLE", TOKEN_ROLE)]))
        .unwrap();
    let child = child_token(&broker, &[("purpose", "forbidden"), ("token_ttl", "2m")]);
    let e = with_child(&w, &child, "forbidden").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("aws/sts/forbidden"), "{e}");
    revoke(&broker, child.token.expose()).unwrap();
}
