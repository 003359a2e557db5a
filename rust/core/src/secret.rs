//! A string that never shows itself: redacted `Debug`/`Display`, zeroized on drop.

use std::fmt;

use zeroize::Zeroize;

/// Every secret (Vault tokens, AppRole secret_id, JWTs, AWS keys) lives in one of these.
///
/// Reading the value needs an explicit [`SecretString::expose`], so a secret cannot
/// slip into a log line or an error message through `{}` or `{:?}`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        SecretString(value.into())
    }

    /// The secret itself. Call sites are few and easy to audit with `grep expose`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        SecretString(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        SecretString(value.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let s = SecretString::new("hvs.super-secret-token");
        assert_eq!(format!("{s:?}"), "SecretString(<redacted>)");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(SecretString(<redacted>))");
        assert_eq!(s.expose(), "hvs.super-secret-token");
    }

    #[test]
    fn secret_inside_a_derived_debug_struct_stays_hidden() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Login {
            role_id: String,
            secret_id: SecretString,
        }
        let l = Login {
            role_id: "r-1".into(),
            secret_id: "s3cr3t".into(),
        };
        let shown = format!("{l:?}");
        assert!(shown.contains("r-1"));
        assert!(!shown.contains("s3cr3t"));
    }
}
