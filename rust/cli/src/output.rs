//! What `creds` and `credential-process` print, and the environment `exec` gives its command.

use serde_json::{json, Map, Value};
use withawsrole_core::IssuedCredentials;

/// The contract's result keys (docs/architecture.md) as one JSON object; `cache` is left out:
/// every awsrole process starts with an empty cache.
pub fn json(issued: &IssuedCredentials) -> String {
    let mut object = Map::new();
    for (key, value) in issued.pairs() {
        if key == "cache" {
            continue;
        }
        let value = match key {
            "expires_at_epoch_seconds" | "lease_duration_seconds" => value
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(value.as_ref())),
            _ => Value::from(value.as_ref()),
        };
        object.insert(key.to_owned(), value);
    }
    Value::Object(object).to_string()
}

/// AWS `credential_process` output, Version 1.
pub fn credential_process(issued: &IssuedCredentials) -> String {
    let c = &*issued.credentials;
    json!({
        "Version": 1,
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key.expose(),
        "SessionToken": c.session_token.expose(),
        "Expiration": withawsrole_core::clock::rfc3339_utc(c.expires_at),
    })
    .to_string()
}

/// The variables the withAwsRole step sets, in this order.
pub fn environment(issued: &IssuedCredentials) -> Vec<(&'static str, String)> {
    let c = &*issued.credentials;
    let mut vars = vec![
        ("AWS_ACCESS_KEY_ID", c.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY",
            c.secret_access_key.expose().to_owned(),
        ),
        ("AWS_SESSION_TOKEN", c.session_token.expose().to_owned()),
        (
            "AWS_CREDENTIAL_EXPIRATION",
            withawsrole_core::clock::rfc3339_utc(c.expires_at),
        ),
    ];
    if let Some(region) = &issued.region {
        vars.push(("AWS_REGION", region.clone()));
        vars.push(("AWS_DEFAULT_REGION", region.clone()));
    }
    vars
}

/// Variables a command must not inherit next to fresh keys: a stale legacy token would be sent
/// along with them by old SDKs.
pub const CLEARED: &[&str] = &["AWS_SECURITY_TOKEN"];

/// `export NAME='value'` lines for a POSIX shell's eval.
pub fn env_lines(issued: &IssuedCredentials) -> String {
    environment(issued)
        .iter()
        .map(|(name, value)| format!("export {name}={}\n", shell_quote(value)))
        .collect()
}

/// Single quotes, with each `'` written as `'\''`: safe for any value in sh, bash, zsh.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};
    use withawsrole_core::{CacheStatus, Credentials};

    fn issued(region: Option<&str>) -> IssuedCredentials {
        IssuedCredentials {
            credentials: Arc::new(Credentials {
                access_key_id: "ASIAEXAMPLE".into(),
                secret_access_key: "se/cr+et".into(),
                session_token: "to'ken==".into(),
                arn: "arn:aws:sts::123456789012:assumed-role/r/s".into(),
                session_name: "s".into(),
                lease_duration: Duration::from_secs(900),
                expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_599),
            }),
            cache: CacheStatus::Miss,
            region: region.map(str::to_owned),
            hide_account_id: false,
        }
    }

    #[test]
    fn credential_process_output_is_version_1_with_iso_expiration() {
        let v: Value = serde_json::from_str(&credential_process(&issued(None))).unwrap();
        assert_eq!(v["Version"], 1);
        assert_eq!(v["AccessKeyId"], "ASIAEXAMPLE");
        assert_eq!(v["SecretAccessKey"], "se/cr+et");
        assert_eq!(v["SessionToken"], "to'ken==");
        assert_eq!(v["Expiration"], "2024-12-31T23:59:59Z");
        assert_eq!(v.as_object().unwrap().len(), 5);
    }

    #[test]
    fn json_output_has_the_contract_keys_without_cache() {
        let v: Value = serde_json::from_str(&json(&issued(Some("eu-west-1")))).unwrap();
        assert_eq!(v["access_key_id"], "ASIAEXAMPLE");
        assert_eq!(v["secret_access_key"], "se/cr+et");
        assert_eq!(v["expiration"], "2024-12-31T23:59:59Z");
        assert_eq!(v["expires_at_epoch_seconds"], 1_735_689_599u64);
        assert_eq!(v["lease_duration_seconds"], 900);
        assert_eq!(v["region"], "eu-west-1");
        assert!(v.get("cache").is_none());
    }

    #[test]
    fn env_lines_survive_eval_in_a_shell() {
        let lines = env_lines(&issued(Some("eu-west-1")));
        assert!(
            lines.starts_with("export AWS_ACCESS_KEY_ID='ASIAEXAMPLE'\n"),
            "{lines}"
        );
        assert!(
            lines.contains("export AWS_SESSION_TOKEN='to'\\''ken=='\n"),
            "{lines}"
        );
        assert!(
            lines.contains("export AWS_DEFAULT_REGION='eu-west-1'\n"),
            "{lines}"
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{lines}printf %s \"$AWS_SESSION_TOKEN|$AWS_SECRET_ACCESS_KEY\""
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "to'ken==|se/cr+et");
    }

    #[test]
    fn without_a_region_no_region_variables_are_set() {
        let names: Vec<_> = environment(&issued(None)).iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_CREDENTIAL_EXPIRATION"
            ]
        );
    }
}
