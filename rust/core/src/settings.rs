//! The controller's settings: which variables they are, and the snapshot a broker uses (the
//! process environment overlaid by the `-Dwithawsrole.<VARIABLE>` system properties the bridge
//! passes). Read once per change, never on a cache hit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::BrokerError;
use crate::request::{EnvLookup, REQUEST_KEYS};
use crate::sources;

pub const DEADLINE_ENV: &str = "WITHAWSROLE_DEADLINE_SECONDS";
pub use crate::sources::DEFAULT_DEADLINE;

/// The controller's token role to create child tokens against (unset: `auth/token/create`).
pub const TOKEN_ROLE_ENV: &str = "WITHAWSROLE_TOKEN_ROLE";

/// Every variable of the controller's settings, in the order docs/security.md lists them: those
/// behind request keys, the child-token role and the deadline. The bridge reads a system property
/// `withawsrole.<VARIABLE>` for each and passes those set (see `Settings::overridden`).
pub fn setting_variables() -> Vec<&'static str> {
    REQUEST_KEYS
        .iter()
        .filter_map(|(_, var)| *var)
        .chain([TOKEN_ROLE_ENV, DEADLINE_ENV])
        .collect()
}

/// Each setting variable with the Java system property that overrides it on a controller:
/// `-Dwithawsrole.VAULT_ADDR=...` (the bridge reads them; a pipeline cannot set either).
pub fn setting_properties() -> Vec<(&'static str, String)> {
    setting_variables()
        .into_iter()
        .map(|var| (var, format!("withawsrole.{var}")))
        .collect()
}

/// The controller's settings as a broker uses them: the process environment, overlaid by
/// the system properties the bridge passed.
pub(crate) struct Settings {
    pub(crate) values: HashMap<&'static str, String>,
    /// Overall time for one Vault call, retries included.
    pub(crate) deadline: Duration,
    /// The overrides this snapshot was made with, to tell a change from a repeat.
    pub(crate) overrides: Vec<(String, String)>,
    /// The library's purposes config (name, text), given once by the bridge: a request without
    /// `config_text` is parsed with it, so cache hits do not carry the text across JNI.
    pub(crate) library_config: Option<Arc<(String, String)>>,
}

impl Settings {
    /// The environment's settings, with the deadline the broker was built with.
    pub(crate) fn from_env(env: &EnvLookup, deadline: Duration) -> Self {
        Settings {
            values: environment_values(env),
            deadline,
            overrides: Vec::new(),
            library_config: None,
        }
    }

    /// A variable's value now.
    pub(crate) fn get(&self, var: &str) -> Option<String> {
        self.values.get(var).cloned()
    }

    /// These settings with another library config; None when it is the same.
    pub(crate) fn with_library_config(&self, name: &str, text: &str) -> Option<Settings> {
        let same = self
            .library_config
            .as_deref()
            .is_some_and(|(n, t)| n == name && t == text);
        (!same).then(|| Settings {
            values: self.values.clone(),
            deadline: self.deadline,
            overrides: self.overrides.clone(),
            library_config: Some(Arc::new((name.to_owned(), text.to_owned()))),
        })
    }

    /// The environment (`env`) overlaid by `overrides` (sources::overlay); None when these are
    /// the overrides of `self` already. `built_deadline` is the deadline the broker was built
    /// with, kept unless the overrides set one (sources::deadline).
    pub(crate) fn overridden(
        &self,
        env: &EnvLookup,
        built_deadline: Duration,
        overrides: &[(String, String)],
    ) -> Result<Option<Settings>, BrokerError> {
        if self.overrides == overrides {
            return Ok(None);
        }
        let values = sources::overlay(environment_values(env), overrides, &setting_variables())?;
        let property = overrides
            .iter()
            .find(|(name, _)| name == DEADLINE_ENV)
            .map(|(_, value)| value.as_str());
        let deadline = sources::deadline(property, built_deadline)?;
        Ok(Some(Settings {
            values,
            deadline,
            overrides: overrides.to_vec(),
            library_config: self.library_config.clone(),
        }))
    }
}

/// The setting variables the process environment (`env`) has.
fn environment_values(env: &EnvLookup) -> HashMap<&'static str, String> {
    setting_variables()
        .into_iter()
        .filter_map(|var| env(var).map(|value| (var, value)))
        .collect()
}
