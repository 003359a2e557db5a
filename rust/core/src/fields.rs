//! Field validation shared by requests and the purposes config: one place decides what a mount,
//! a Vault path segment, a role ARN, a region, a namespace and a Vault address may look like.
//! Depends on nothing but the error type, so `config` and `request` both use it and neither
//! imports the other's internals.

use crate::error::BrokerError;

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Ok when `ok`, else the refusal of `key`'s `value` with what to use instead.
fn accepted(ok: bool, key: &'static str, value: &str, hint: &str) -> Result<(), BrokerError> {
    ok.then_some(())
        .ok_or_else(|| BrokerError::invalid(key, value, hint))
}

/// `value` without outer slashes, when it is 1 to 256 characters of segments (each as
/// `segment_ok` says) joined by `/`.
fn segment_path(value: &str, segment_ok: impl Fn(&str) -> bool) -> Option<String> {
    let trimmed = value.trim_matches('/');
    let ok = !trimmed.is_empty() && trimmed.len() <= 256 && trimmed.split('/').all(segment_ok);
    ok.then(|| trimmed.to_owned())
}

/// One Vault path segment: `[A-Za-z0-9_.-]{1,128}`, and not `.` or `..`.
pub fn check_segment(key: &'static str, value: &str) -> Result<(), BrokerError> {
    let ok = (1..=128).contains(&value.len())
        && value.chars().all(is_segment_char)
        && value != "."
        && value != "..";
    accepted(
        ok,
        key,
        value,
        "use 1 to 128 characters of letters, digits, '_', '.' and '-'",
    )
}

/// A mount such as `aws` or `team-a/aws`: segments joined by `/` (outer slashes are trimmed).
pub fn check_mount(value: &str) -> Result<String, BrokerError> {
    segment_path(value, |seg| check_segment("mount", seg).is_ok()).ok_or_else(|| {
        BrokerError::invalid(
            "mount",
            value,
            "use the path of the AWS secrets engine, e.g. aws or team-a/aws (segments of letters, digits, '_', '.', '-')",
        )
    })
}

/// A Vault namespace such as `admin/team-a` (outer slashes are trimmed).
pub fn check_namespace(value: &str) -> Result<String, BrokerError> {
    let segment_ok = |seg: &str| {
        !seg.is_empty() && seg != "." && seg != ".." && seg.chars().all(is_segment_char)
    };
    segment_path(value, segment_ok).ok_or_else(|| {
        BrokerError::invalid(
            "vault_namespace",
            value,
            "use a Vault namespace path such as admin or admin/team-a",
        )
    })
}

/// `arn:<partition>:iam::<12 digits>:role/<optional path/>name`.
pub fn check_role_arn(value: &str) -> Result<(), BrokerError> {
    let bad = || {
        BrokerError::invalid(
            "role_arn",
            value,
            "expected arn:aws:iam::<12-digit account>:role/<name>, e.g. arn:aws:iam::123456789012:role/deploy",
        )
    };
    let rest = value.strip_prefix("arn:aws").ok_or_else(bad)?;
    let (partition_suffix, rest) = rest.split_once(':').ok_or_else(bad)?;
    if !partition_suffix
        .chars()
        .all(|c| c == '-' || c.is_ascii_lowercase())
        || (!partition_suffix.is_empty() && !partition_suffix.starts_with('-'))
    {
        return Err(bad());
    }
    let rest = rest.strip_prefix("iam::").ok_or_else(bad)?;
    let (account, rest) = rest.split_once(':').ok_or_else(bad)?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let name = rest.strip_prefix("role/").ok_or_else(bad)?;
    let name_ok = !name.is_empty()
        && !name.ends_with('/')
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-/".contains(c));
    name_ok.then_some(()).ok_or_else(bad)
}

pub fn check_region(value: &str) -> Result<(), BrokerError> {
    let ok = (1..=32).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    accepted(
        ok,
        "region",
        value,
        "expected an AWS region such as eu-west-1",
    )
}

/// An http(s) base URL; returned without a trailing slash.
pub fn check_addr(value: &str) -> Result<String, BrokerError> {
    let hint = "expected a URL such as https://vault.example.com:8200";
    let url = url::Url::parse(value)
        .map_err(|e| BrokerError::invalid("vault_addr", value, format!("{e}; {hint}")))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(BrokerError::invalid("vault_addr", value, hint));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Vault's own reading of VAULT_SKIP_VERIFY.
pub fn parse_bool(key: &'static str, value: &str) -> Result<bool, BrokerError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "yes" | "y" | "on" => Ok(true),
        "0" | "f" | "false" | "no" | "n" | "off" => Ok(false),
        _ => Err(BrokerError::invalid(key, value, "use true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_all_refused;

    #[test]
    fn addresses_are_http_urls_without_credentials_or_a_trailing_slash() {
        assert_eq!(
            check_addr("https://vault.example.com:8200/").unwrap(),
            "https://vault.example.com:8200"
        );
        assert_eq!(
            check_addr("http://127.0.0.1:8200").unwrap(),
            "http://127.0.0.1:8200"
        );
        let bad = [
            "vault.example.com:8200",
            "ftp://vault",
            "https://user:pw@vault",
            "https://vault?x=1",
            "https://vault#f",
            "http://",
            "",
        ];
        assert_all_refused(check_addr, &bad, "vault_addr");
    }

    #[test]
    fn mounts_and_namespaces_are_trimmed_paths_of_segments() {
        assert_eq!(check_mount("/team-a/aws/").unwrap(), "team-a/aws");
        assert_eq!(check_namespace("admin/team-a/").unwrap(), "admin/team-a");
        for bad in ["a//b", "a/../b", "/", "a b"] {
            assert!(check_mount(bad).is_err(), "mount {bad:?}");
            assert!(check_namespace(bad).is_err(), "namespace {bad:?}");
        }
        assert!(check_segment("purpose", "..").is_err());
        assert!(check_segment("purpose", &"x".repeat(129)).is_err());
        assert!(check_segment("purpose", "A_b.c-1").is_ok());
    }

    #[test]
    fn booleans_read_like_vaults_own_and_regions_like_aws() {
        for t in ["1", "true", "TRUE", "yes", "on", "t", "y"] {
            assert!(parse_bool("vault_skip_verify", t).unwrap(), "{t}");
        }
        for f in ["0", "false", "No", "off", "f", "n"] {
            assert!(!parse_bool("vault_skip_verify", f).unwrap(), "{f}");
        }
        assert!(parse_bool("vault_skip_verify", "maybe").is_err());
        assert!(check_region("eu-west-1").is_ok());
        assert!(check_region("EU WEST").is_err() && check_region("").is_err());
    }
}
