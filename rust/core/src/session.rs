//! STS role session names: the audit trail into CloudTrail.

use sha2::{Digest, Sha256};

use crate::error::BrokerError;

pub const MAX_SESSION_NAME: usize = 64;
pub const MIN_SESSION_NAME: usize = 2;

/// `jenkins-<job>-<build>`; without a job, `jenkins-<purpose>[-<build>]`. Always valid for STS.
pub fn default_session_name(purpose: &str, job: Option<&str>, build: Option<&str>) -> String {
    let raw = match (job, build) {
        (Some(j), Some(b)) => format!("jenkins-{j}-{b}"),
        (Some(j), None) => format!("jenkins-{j}"),
        (None, Some(b)) => format!("jenkins-{purpose}-{b}"),
        (None, None) => format!("jenkins-{purpose}"),
    };
    clean(&raw)
}

/// An explicit `session_name`, cleaned like the default; too short is an error.
pub fn explicit_session_name(raw: &str) -> Result<String, BrokerError> {
    let name = clean(raw);
    if name.chars().count() < MIN_SESSION_NAME {
        return Err(BrokerError::invalid(
            "session_name",
            raw,
            "STS needs 2 to 64 characters of letters, digits and +=,.@_-",
        ));
    }
    Ok(name)
}

/// Maps to the STS charset `[\w+=,.@-]` (a run of other characters becomes one `-`); when over
/// 64 characters, keeps the first 55 and appends `-` and 8 hex digits of the SHA-256 of the
/// whole raw name, so two long names that share a prefix stay distinct.
pub fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut replacing = false;
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
            out.push(c);
            replacing = false;
        } else if !replacing {
            out.push('-');
            replacing = true;
        }
    }
    // Only ASCII remains, so byte length == char count.
    if out.len() > MAX_SESSION_NAME {
        let digest = Sha256::digest(raw.as_bytes());
        let suffix: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        out.truncate(MAX_SESSION_NAME - 1 - suffix.len());
        out.push('-');
        out.push_str(&suffix);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts_valid(name: &str) -> bool {
        (MIN_SESSION_NAME..=MAX_SESSION_NAME).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    }

    #[test]
    fn default_name_carries_job_and_build() {
        assert_eq!(
            default_session_name("ecr-push", Some("app/main"), Some("42")),
            "jenkins-app-main-42"
        );
        assert_eq!(
            default_session_name("ecr-push", None, None),
            "jenkins-ecr-push"
        );
        assert_eq!(
            default_session_name("deploy", None, Some("7")),
            "jenkins-deploy-7"
        );
        assert_eq!(
            default_session_name("deploy", Some("nightly"), None),
            "jenkins-nightly"
        );
    }

    #[test]
    fn spaces_slashes_and_unicode_become_single_dashes() {
        let n = default_session_name("p", Some("Team Ω/déploiement prod"), Some("3"));
        assert_eq!(n, "jenkins-Team-d-ploiement-prod-3");
        assert!(sts_valid(&n));
        assert_eq!(clean("デプロイ"), "-");
        assert_eq!(clean("a+b=c,d.e@f_g-h"), "a+b=c,d.e@f_g-h");
    }

    #[test]
    fn long_names_are_cut_to_64_with_a_hash_suffix() {
        let job = "folder/".repeat(20) + "service";
        let n = default_session_name("p", Some(&job), Some("1234"));
        assert_eq!(n.len(), 64);
        assert!(sts_valid(&n));
        let (head, tail) = n.split_at(55);
        assert!(head.starts_with("jenkins-folder-folder-"));
        assert_eq!(&tail[..1], "-");
        assert!(tail[1..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(tail.len(), 9);
    }

    #[test]
    fn long_names_differing_only_at_the_end_stay_distinct() {
        let base = "x".repeat(100);
        let a = default_session_name("p", Some(&base), Some("1"));
        let b = default_session_name("p", Some(&base), Some("2"));
        assert_ne!(a, b);
        assert_eq!(a[..55], b[..55]);
    }

    #[test]
    fn exactly_64_is_kept_as_is() {
        let raw = "a".repeat(64);
        assert_eq!(clean(&raw), raw);
        assert_eq!(clean(&"a".repeat(65)).len(), 64);
    }

    #[test]
    fn explicit_session_name_must_have_two_chars() {
        assert!(explicit_session_name("x").is_err());
        assert_eq!(explicit_session_name("my session").unwrap(), "my-session");
    }
}
