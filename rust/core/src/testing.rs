//! Helpers of the crate's unit tests, written once; those the world tests share come from the
//! dev-only test kit (rust/testkit).

use std::collections::HashMap;
use std::fmt::Debug;

pub(crate) use withawsrole_testkit::{pairs, temp_dir};

use crate::error::{BrokerError, ErrorKind};

/// Settings that hold `vars` and nothing else: tests never read the real environment.
pub(crate) fn env_of(
    vars: &[(&str, &str)],
) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let map: HashMap<String, String> = pairs(vars).into_iter().collect();
    move |k| map.get(k).cloned()
}

/// `check` refuses every one of `inputs` as an invalid request whose message holds `hint`.
pub(crate) fn assert_all_refused<T: Debug>(
    check: impl Fn(&str) -> Result<T, BrokerError>,
    inputs: &[&str],
    hint: &str,
) {
    for input in inputs {
        let e = check(input).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{input:?}: {e}");
        assert!(e.to_string().contains(hint), "{input:?}: {e}");
    }
}

/// `answer` (result pairs) holds each of `expected`.
pub(crate) fn assert_holds<V: AsRef<str>>(answer: &[(&str, V)], expected: &[(&str, &str)]) {
    let map: HashMap<&str, &str> = answer.iter().map(|(k, v)| (*k, v.as_ref())).collect();
    for (key, value) in expected {
        assert_eq!(map.get(key).copied(), Some(*value), "{key}");
    }
}

/// `result` is an error matching `pattern`; evaluates to the error.
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {{
        let e = $result.unwrap_err();
        assert!(matches!(e, $pattern), "{e:?}");
        e
    }};
}
pub(crate) use assert_err;

/// `value` matches `pattern` (which may have a guard); the failure shows the value.
macro_rules! assert_matches {
    ($value:expr, $($pattern:tt)+) => {{
        let value = &$value;
        assert!(matches!(value, $($pattern)+), "{value:?}");
    }};
}
pub(crate) use assert_matches;

/// `e` is of `kind` and its message holds every one of `parts`.
pub(crate) fn assert_refused(e: &BrokerError, kind: ErrorKind, parts: &[&str]) {
    assert_eq!(e.kind(), kind, "{e}");
    let msg = e.to_string();
    for part in parts {
        assert!(msg.contains(part), "{part:?} in {msg}");
    }
}

/// What `parse` returns when it parses with settings `env`, as `governance` says, and no
/// purposes config parsed before.
pub(crate) fn parsing<T>(
    env: &dyn Fn(&str) -> Option<String>,
    governance: crate::request::Governance,
    parse: impl FnOnce(&crate::request::Parsing<'_>) -> T,
) -> T {
    let configs = crate::config::ConfigCache::new();
    parse(&crate::request::Parsing {
        env,
        configs: &configs,
        governance,
    })
}
