//! Against the real test world (OpenBao + moto + the Vault AWS-engine front), one file a topic:
//!
//! ```sh
//! test/world/up && . test/world/.run/env && cargo test -p withawsrole-core --test world
//! ```
//!
//! The world's counters and faults are global, so every test holds the world
//! (`withawsrole_testkit::World`) for its whole run (tests in this binary therefore run one at a
//! time even without `--test-threads=1`), starts with a reset, and uses its own session names.
//! Each test has its own broker (own cache).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use withawsrole_core::{
    BrokerError, BrokerOptions, CredentialBroker, ErrorKind, Governance, IssuedCredentials,
};
use withawsrole_testkit::{env, mint_jwt as mint, openbao, pairs};

mod boundary;
mod child_tokens;
mod concurrency;
mod credentials;
mod logins;
mod retries;
mod secrecy;
mod transport;

/// The world, held by one test, with the controller's address and the world's token.
struct World {
    world: withawsrole_testkit::World,
    addr: String,
    token: String,
}

/// Takes the world for this test (checks it answers, resets counters and faults).
fn world() -> World {
    secrecy::install_log_capture();
    World {
        world: withawsrole_testkit::World::take(),
        addr: env("VAULT_ADDR"),
        token: env("VAULT_TOKEN"),
    }
}

impl std::ops::Deref for World {
    type Target = withawsrole_testkit::Control;
    fn deref(&self) -> &Self::Target {
        &self.world
    }
}

impl World {
    fn broker(&self) -> CredentialBroker {
        self.broker_with(&[])
    }

    /// Options for a controller whose settings are the world's address (VAULT_ADDR) and `vars`
    /// (an empty value unsets; nothing else of the test process's environment is seen). The
    /// login is the request's own (`vault_token` & co.) unless `vars` gives the controller one.
    fn options(&self, vars: &[(&str, &str)]) -> BrokerOptions {
        let mut settings: HashMap<String, String> =
            HashMap::from([("VAULT_ADDR".to_string(), self.addr.clone())]);
        for (k, v) in vars {
            settings.insert(k.to_string(), v.to_string());
        }
        settings.retain(|_, v| !v.is_empty());
        BrokerOptions::with_env(Arc::new(move |k: &str| settings.get(k).cloned())).unwrap()
    }

    /// A broker with [`options`](Self::options) and quick retries.
    fn broker_with(&self, vars: &[(&str, &str)]) -> CredentialBroker {
        let mut options = self.options(vars);
        options.retry.base = Duration::from_millis(50);
        CredentialBroker::new(options).unwrap()
    }

    /// Pairs for `purpose` with a token login of the request's own and a per-test session name
    /// (the address is the broker's setting).
    fn token_request(
        &self,
        purpose: &str,
        session: &str,
        extra: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let mut p = pairs(&[
            ("purpose", purpose),
            ("session_name", session),
            ("vault_token", &self.token),
        ]);
        p.extend(pairs(extra));
        p
    }

    /// Pairs for ecr-push with a JWT login of the request's own.
    fn jwt_request(&self, session: &str, role: &str, jwt: &str) -> Vec<(String, String)> {
        ecr_push(session, &[("vault_jwt", jwt), ("vault_jwt_role", role)])
    }

    /// Pairs for ecr-push with the world's AppRole login, as the request's own.
    fn approle_request(&self, session: &str) -> Vec<(String, String)> {
        approle_request(session, &env("VAULT_ROLE_ID"), &env("VAULT_SECRET_ID"))
    }
}

/// `e` is of `kind` and its message holds every one of `texts` (what the user must read);
/// returns the message, for what else a test checks in it.
fn assert_error(e: &BrokerError, kind: ErrorKind, texts: &[&str]) -> String {
    assert_eq!(e.kind(), kind, "{e}");
    let msg = e.to_string();
    for text in texts {
        assert!(msg.contains(text), "{text:?} is not in: {msg}");
    }
    msg
}

/// Pairs for ecr-push in session `session` with the request's own `login` pairs (none: the
/// controller's login).
fn ecr_push(session: &str, login: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = pairs(&[("purpose", "ecr-push"), ("session_name", session)]);
    p.extend(pairs(login));
    p
}

/// Pairs for ecr-push with an AppRole login of the request's own.
fn approle_request(session: &str, role_id: &str, secret_id: &str) -> Vec<(String, String)> {
    ecr_push(
        session,
        &[("vault_role_id", role_id), ("vault_secret_id", secret_id)],
    )
}

/// Every AppRole login token OpenBao has issued, revoked (a cached login is then worthless).
fn revoke_every_approle_login() {
    openbao(
        "POST",
        "sys/leases/revoke-prefix/auth/approle/login",
        Some(&json!({})),
        None,
    );
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

/// A file in this test run's temporary directory.
fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("withawsrole-world-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}
