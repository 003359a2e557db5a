//! The `awsrole` binary against the real test world (OpenBao + moto + the Vault AWS-engine
//! front), including the `aws` CLI and botocore using it as their `credential_process`, and the
//! agent's side of `withAwsRole(refresh: true)` (docs/refresh.md) with a child token (the
//! controller's side, what such a token can reach and how long it lives, is in
//! rust/core/tests/world/child_tokens.rs):
//!
//! ```sh
//! test/world/up && . test/world/.run/env && cargo test -p awsrole --test world
//! ```
//!
//! Every test holds the world (`withawsrole_testkit::World`: the front's counters are global) and runs the binary as a new
//! process, as an SDK does.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use withawsrole_core::child_token::{ChildToken, Revocation};
use withawsrole_core::{BrokerOptions, CredentialBroker};
use withawsrole_testkit::{env, pairs, temp_dir, World};

const AWSROLE: &str = env!("CARGO_BIN_EXE_awsrole");
const DEPLOY_ARN: &str = "arn:aws:iam::123456789012:role/jenkins-deploy-role";

/// The world's Vault login variables: removed when a test gives awsrole only a child token.
const LOGIN_VARS: &[&str] = &[
    "VAULT_TOKEN",
    "VAULT_ROLE_ID",
    "VAULT_SECRET_ID",
    "VAULT_JWT",
    "VAULT_JWT_FILE",
    "VAULT_JWT_ROLE",
    "VAULT_K8S_ROLE",
];

const AWS_KEY_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
];

/// `awsrole args...` with the test's environment plus `set`, minus `remove` and any AWS keys.
fn awsrole(args: &[&str], set: &[(&str, &str)], remove: &[&str]) -> Output {
    let mut command = Command::new(AWSROLE);
    command.args(args);
    for name in AWS_KEY_VARS.iter().chain(remove) {
        command.env_remove(name);
    }
    for (name, value) in set {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// `awsrole args...` with the test's environment, which must succeed: what it printed, as JSON.
fn awsrole_json(args: &[&str]) -> (Value, Output) {
    let o = awsrole(args, &[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    (serde_json::from_str(&stdout(&o)).unwrap(), o)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Secrets of the world that must never appear on awsrole's stderr.
fn world_secrets() -> Vec<String> {
    ["VAULT_TOKEN", "VAULT_SECRET_ID"]
        .iter()
        .map(|v| env(v))
        .collect()
}

fn assert_clean_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(
        o.stdout.is_empty(),
        "nothing on stdout on failure: {}",
        stdout(o)
    );
    assert!(err.starts_with("awsrole: "), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "`{needle}` missing from: {err}");
    for secret in world_secrets() {
        assert!(!err.contains(&secret), "a secret on stderr: {err}");
    }
}

/// The controller's side of `refresh: true`: a broker logging in with the world's AppRole (as
/// Jenkins does) and the child token it made for `request`, to hand to the agent.
struct Controller {
    broker: CredentialBroker,
    child: ChildToken,
}

impl Controller {
    fn with_child_token(request: &[(&str, &str)]) -> Controller {
        let vars: Vec<(String, String)> = ["VAULT_ADDR", "VAULT_ROLE_ID", "VAULT_SECRET_ID"]
            .iter()
            .map(|v| (v.to_string(), env(v)))
            .collect();
        let lookup = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let broker =
            CredentialBroker::new(BrokerOptions::with_env(Arc::new(lookup)).unwrap()).unwrap();
        let child = broker
            .create_child_token(&pairs(request))
            .unwrap_or_else(|e| panic!("create_child_token: {e}"));
        Controller { broker, child }
    }

    /// The end of the block: the child token revoked.
    fn revoke_child_token(&self) {
        let revoked = self
            .broker
            .revoke_child_token(&pairs(&[("token", self.child.token.expose())]));
        assert_eq!(revoked.unwrap(), Revocation::Revoked);
    }
}

/// An AWS config whose profile `withawsrole` runs `awsrole credential-process <args>`.
/// `aws sts get-caller-identity` with only the `withawsrole` profile of `config` to get
/// credentials from (none from the test's own environment).
fn caller_identity_through(dir: &Path, config: &Path) -> Command {
    let mut aws = Command::new("aws");
    aws.args([
        "sts",
        "get-caller-identity",
        "--query",
        "Arn",
        "--output",
        "text",
    ])
    .env("AWS_CONFIG_FILE", config)
    .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("credentials"))
    .env("AWS_PROFILE", "withawsrole")
    .env_remove("AWS_ACCESS_KEY_ID")
    .env_remove("AWS_SECRET_ACCESS_KEY")
    .env_remove("AWS_SESSION_TOKEN");
    aws
}

fn aws_config(dir: &Path, args: &str) -> PathBuf {
    let path = dir.join("config");
    std::fs::write(
        &path,
        format!(
            "[profile withawsrole]\ncredential_process = \"{AWSROLE}\" credential-process {args}\nregion = us-east-1\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("credentials"), "").unwrap();
    path
}

// ---- creds, exec, credential-process --------------------------------------------------------

#[test]
fn creds_prints_the_contract_keys_as_json() {
    let _w = World::take();
    let (v, o) = awsrole_json(&["creds", "ecr-push", "--session-name", "cli-json"]);
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    assert!(v["access_key_id"].as_str().unwrap().starts_with("ASIA"));
    assert!(v["secret_access_key"].as_str().unwrap().len() >= 16);
    assert!(v["session_token"].as_str().unwrap().len() >= 16);
    assert!(v["arn"]
        .as_str()
        .unwrap()
        .ends_with("assumed-role/jenkins-ecr-push-role/cli-json"));
    assert_eq!(v["session_name"], "cli-json");
    assert!(v["expiration"].as_str().unwrap().ends_with('Z'));
    assert!(v.get("cache").is_none());
}

#[test]
fn creds_env_format_is_eval_ready_for_the_aws_cli() {
    let _w = World::take();
    let o = awsrole(
        &[
            "creds",
            "deploy",
            "--format",
            "env",
            "--role-arn",
            DEPLOY_ARN,
            "--region",
            "eu-west-1",
        ],
        &[],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = stdout(&o);
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        assert!(
            lines.contains(&format!("export {name}='")),
            "{name}: {lines}"
        );
    }
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{lines}aws sts get-caller-identity --query Arn --output text"
        ))
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("assumed-role/jenkins-deploy-role/"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn exec_gives_the_command_credentials_and_passes_its_exit_code() {
    let _w = World::take();
    let o = awsrole(
        &[
            "exec",
            "ecr-push",
            "--",
            "sh",
            "-c",
            "aws sts get-caller-identity --query Arn --output text && exit 42",
        ],
        &[("AWS_SECURITY_TOKEN", "stale")],
        &[],
    );
    assert_eq!(o.status.code(), Some(42), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("assumed-role/jenkins-ecr-push-role/"),
        "{}",
        stdout(&o)
    );

    let o = awsrole(
        &["exec", "ecr-push", "--", "sh", "-c", "kill -TERM $$"],
        &[],
        &[],
    );
    assert_eq!(o.status.code(), Some(128 + 15), "a signal becomes 128+n");

    let o = awsrole(&["exec", "ecr-push", "--", "/nonexistent/tool"], &[], &[]);
    assert_clean_error(&o, 127, "cannot run `/nonexistent/tool`");
}

#[test]
fn exec_passes_a_term_signal_on_to_the_command() {
    let _w = World::take();
    let dir = temp_dir("term");
    let started = dir.join("started");
    let script = format!(
        "trap 'exit 99' TERM; touch '{}'; while :; do sleep 0.1; done",
        started.display()
    );
    let mut child = Command::new(AWSROLE)
        .args(["exec", "ecr-push", "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the command did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(99),
        "the command's TERM trap ran: {status:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn credential_process_prints_version_1_json() {
    let _w = World::take();
    let (v, _) = awsrole_json(&["credential-process", "ecr-push", "--ttl", "15m"]);
    assert_eq!(v["Version"], 1);
    for key in [
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    ] {
        assert!(v[key].as_str().is_some_and(|s| !s.is_empty()), "{key}: {v}");
    }
    // ISO 8601 / RFC 3339 in UTC, e.g. 2026-01-31T12:00:00Z
    let expiration = v["Expiration"].as_str().unwrap();
    assert_eq!(expiration.len(), 20, "{expiration}");
    assert_eq!(&expiration[10..11], "T");
}

#[test]
fn the_aws_cli_gets_credentials_through_credential_process() {
    let w = World::take();
    let dir = temp_dir("aws-cli");
    let config = aws_config(&dir, "ecr-push");
    let before = w.issued("ecr-push");
    let o = caller_identity_through(&dir, &config).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(":assumed-role/jenkins-ecr-push-role/jenkins-ecr-push"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        w.issued("ecr-push"),
        before + 1,
        "one credential_process run, one STS call"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn exit_codes_tell_permission_unavailable_invalid_and_usage_apart() {
    let w = World::take();
    let o = awsrole(&["creds", "forbidden"], &[], &[]);
    assert_clean_error(&o, 3, "Vault denied `update` on aws/sts/forbidden");

    let o = awsrole(
        &["creds", "ecr-push"],
        &[
            ("VAULT_ADDR", "http://127.0.0.1:9"),
            ("WITHAWSROLE_DEADLINE_SECONDS", "1"),
        ],
        &[],
    );
    assert_clean_error(&o, 4, "127.0.0.1:9");

    let o = awsrole(&["creds", "ecr-push"], &[], &["VAULT_ADDR"]);
    assert_clean_error(&o, 6, "VAULT_ADDR");

    let o = awsrole(&["creds", "no-such-role"], &[], &[]);
    assert_clean_error(&o, 6, "Role \"no-such-role\" not found");

    let o = awsrole(&["credential-process", "ecr-push"], &[], LOGIN_VARS);
    assert_clean_error(&o, 6, "no Vault credentials");

    let o = awsrole(&["creds", "ecr-push", "--ttl", "5m"], &[], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("15m (900) to 12h"), "{}", stderr(&o));
    let o = awsrole(&["creds"], &[], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        w.counters()["sts_total"],
        2,
        "usage errors send nothing: {}",
        w.counters()
    );
}

#[test]
fn every_subcommand_has_help_with_an_example_and_the_exit_codes() {
    for sub in ["creds", "exec", "credential-process"] {
        let o = awsrole(&[sub, "--help"], &[], &[]);
        assert_eq!(o.status.code(), Some(0));
        let help = stdout(&o);
        assert!(help.contains("Example"), "{sub}: {help}");
        assert!(help.contains(&format!("awsrole {sub} ")), "{sub}: {help}");
        assert!(
            help.contains("Exit codes:") && help.contains("permission denied"),
            "{sub}"
        );
        assert!(help.contains("VAULT_ADDR"), "{sub}");
    }
    let o = awsrole(&["--help"], &[], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("credential-process"));
}

#[test]
fn aws_cli_runs_with_a_cache_file_share_one_vault_call() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::take();
    let dir = temp_dir("cache-file");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let cache = dir.join("cache-ecr-push.json");
    let config = aws_config(
        &dir,
        &format!("ecr-push --ttl 30m --cache-file \"{}\"", cache.display()),
    );
    let before = w.issued("ecr-push");
    // All at once, as a block's parallel commands would start them.
    let runs: Vec<_> = (0..8)
        .map(|_| {
            caller_identity_through(&dir, &config)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let o = run.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            stdout(&o).contains(":assumed-role/jenkins-ecr-push-role/"),
            "{}",
            stdout(&o)
        );
    }
    assert_eq!(w.issued("ecr-push"), before + 1, "eight runs, one STS call");
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the cached keys are the user's alone");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- child tokens for refresh: true ---------------------------------------------------------

/// botocore refreshes credential_process credentials within 15 minutes of their expiry: with
/// ttl 900 every call runs awsrole again, and each run is a new AssumeRole with the child token.
const BOTO_SCRIPT: &str = r#"
import json, re, sys
import boto3
session = boto3.Session(profile_name="withawsrole")
sts = session.client("sts")
used = []
def remember_key(request, **kwargs):
    match = re.search(r"Credential=([A-Z0-9]+)/", request.headers["Authorization"].decode())
    used.append(match.group(1))
sts.meta.events.register("before-send.sts.GetCallerIdentity", remember_key)
arns = [sts.get_caller_identity()["Arn"] for _ in range(int(sys.argv[1]))]
print(json.dumps({"arns": arns, "keys": used}))
"#;

fn run_boto(dir: &Path, config: &Path, child: &str, calls: u32) -> Output {
    let script = dir.join("calls.py");
    std::fs::write(&script, BOTO_SCRIPT).unwrap();
    let mut command = Command::new(format!("{}/bin/python", env("WORLD_VENV")));
    command.arg(&script).arg(calls.to_string());
    for name in LOGIN_VARS.iter().chain(AWS_KEY_VARS) {
        command.env_remove(name);
    }
    command
        .env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("credentials"))
        .env("VAULT_TOKEN", child)
        .output()
        .unwrap()
}

#[test]
fn botocore_gets_fresh_credentials_on_every_refresh_through_a_child_token() {
    let w = World::take();
    let controller = Controller::with_child_token(&[
        ("purpose", "ecr-push"),
        ("token_ttl", "10m"),
        ("job", "refresh"),
        ("build", "1"),
    ]);
    let child = &controller.child;
    assert!(
        child
            .policies
            .iter()
            .any(|p| p == "withawsrole-sts-ecr-push"),
        "{:?}",
        child.policies
    );
    let dir = temp_dir("botocore");
    let config = aws_config(
        &dir,
        &format!(
            "ecr-push --ttl 900 --session-name {}",
            child.request.target.session_name
        ),
    );
    let before = w.issued("ecr-push");
    let o = run_boto(&dir, &config, child.token.expose(), 4);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let keys: Vec<&str> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let distinct: HashSet<_> = keys.iter().collect();
    assert_eq!(keys.len(), 4, "{v}");
    assert_eq!(
        distinct.len(),
        4,
        "a new access key for every call: {keys:?}"
    );
    assert!(
        v["arns"][3]
            .as_str()
            .unwrap()
            .ends_with("assumed-role/jenkins-ecr-push-role/jenkins-refresh-1"),
        "{v}"
    );
    assert!(w.issued("ecr-push") >= before + 4, "{}", w.counters());

    controller.revoke_child_token();
    let o = run_boto(&dir, &config, child.token.expose(), 1);
    assert_ne!(
        o.status.code(),
        Some(0),
        "botocore fails once the token is revoked"
    );
    assert!(
        stderr(&o).contains("no longer accepts the token in VAULT_TOKEN"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_revoked_child_token_makes_the_cli_fail_with_permission_denied() {
    let _w = World::take();
    let controller = Controller::with_child_token(&[("purpose", "ecr-push"), ("token_ttl", "5m")]);
    let child = &controller.child;
    let with_child = [("VAULT_TOKEN", child.token.expose())];
    let o = awsrole(&["credential-process", "ecr-push"], &with_child, LOGIN_VARS);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    controller.revoke_child_token();
    let o = awsrole(&["credential-process", "ecr-push"], &with_child, LOGIN_VARS);
    assert_clean_error(&o, 3, "no longer accepts the token in VAULT_TOKEN");
    assert!(stderr(&o).contains("refresh: true"), "{}", stderr(&o));
    assert!(!stderr(&o).contains(child.token.expose()));
}
