//! Where settings come from: every precedence decision of the core, each made here once. The
//! request parser, the broker, the bridge (Java and Groovy ask `Broker_blockLogin`) and the
//! awsrole CLI call these functions instead of deciding again; docs/architecture.md ("Where
//! settings come from") states the same order, and `the_order_is_pinned` tests it.
//!
//! Nothing a caller sends is a source of the controller's settings (Vault's address, TLS and
//! namespace, the controller's login, the purposes file): the request parser refuses those keys
//! before any of this runs (`request::CONTROLLER_KEYS`).
//!
//! This module uses only `config` and `error`: the request parser, the settings and the broker
//! use it, never the other way round.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::ConfigSource;
use crate::error::BrokerError;

/// The time for one Vault call when no setting says otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// (1) A controller setting: its `-Dwithawsrole.<VARIABLE>` system property (passed by the
/// bridge), over the controller's process environment; an empty property unsets the variable.
/// A property that names no setting (`known`) is refused, and then none is applied.
pub(crate) fn overlay(
    environment: HashMap<&'static str, String>,
    properties: &[(String, String)],
    known: &[&'static str],
) -> Result<HashMap<&'static str, String>, BrokerError> {
    let mut values = environment;
    for (name, value) in properties {
        let Some(var) = known.iter().find(|v| **v == name.as_str()) else {
            return Err(BrokerError::invalid(
                "controller setting",
                name,
                format!("known settings are {}", known.join(", ")),
            ));
        };
        if value.trim().is_empty() {
            values.remove(var);
        } else {
            values.insert(var, value.clone());
        }
    }
    Ok(values)
}

/// (2) The time for one Vault call: the given setting (a system property, or the environment's
/// `WITHAWSROLE_DEADLINE_SECONDS` when the broker is built; blank: the default), else
/// `otherwise` (the deadline the broker was built with, which may be a caller's own choice in
/// `BrokerOptions`). A setting is 1..=3600 whole seconds.
pub(crate) fn deadline(
    setting: Option<&str>,
    otherwise: Duration,
) -> Result<Duration, BrokerError> {
    let Some(value) = setting else {
        return Ok(otherwise);
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(DEFAULT_DEADLINE);
    }
    match value.parse::<u64>() {
        Ok(n) if (1..=3600).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(BrokerError::invalid(
            "WITHAWSROLE_DEADLINE_SECONDS",
            value,
            "use a whole number of seconds from 1 to 3600 (default 60)",
        )),
    }
}

/// (3a) The library's reviewed purposes config (given once by the bridge) stands in for a
/// request's `config_text` when it brings none: `pairs` with it added, or None when nothing is
/// to be added. Only on a parse, never on a cache hit.
pub(crate) fn with_library_config(
    pairs: &[(String, String)],
    library: Option<&(String, String)>,
) -> Option<Vec<(String, String)>> {
    let (name, text) = library?;
    if pairs.iter().any(|(k, _)| k == "config_text") {
        return None;
    }
    let mut all = pairs.to_vec();
    all.push(("config_text".to_owned(), text.clone()));
    all.push(("config_name".to_owned(), name.clone()));
    Some(all)
}

/// (3b) The purposes config: the controller's WITHAWSROLE_CONFIG file, so one library can serve
/// several controllers with a file of each's own; else the request's `config_text` (the
/// library's resource, see 3a; the bridge refuses one from a pipeline), named `config_name`.
pub(crate) fn purposes_source(
    controller_file: Option<String>,
    config_text: Option<String>,
    config_name: Option<String>,
) -> Option<ConfigSource> {
    if let Some(file) = controller_file {
        return Some(ConfigSource::File(file.into()));
    }
    config_text.map(|text| ConfigSource::Text {
        name: config_name.unwrap_or_else(|| "config_text".to_owned()),
        text,
    })
}

/// Whose Vault login a request or a block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginSource {
    /// The caller's own, alone (a block's `vaultCredentialsId`, the CLI's `--vault-token-file`).
    Own,
    /// The running build's id token, for the controller's JWT role: a controller that logs in
    /// as each build (`WITHAWSROLE_JOB_ID_TOKEN`); governed callers only.
    Build,
    /// The controller's own login, from its settings.
    Controller,
}

/// (4) The Vault login: the caller's own when it gives one (and then only that: a partial own
/// login is never completed with the controller's secrets); else, for a governed caller (the
/// JNI library) of a controller that logs in as each build, the build's id token (never the
/// controller's own identity); else the controller's. The CLI is ungoverned: its environment is
/// its caller's own.
pub fn login_source(own: bool, logs_in_as_each_build: bool, governed: bool) -> LoginSource {
    if own {
        LoginSource::Own
    } else if logs_in_as_each_build && governed {
        LoginSource::Build
    } else {
        LoginSource::Controller
    }
}

/// (5) A login value of the controller (`setting` reads the value behind a request key from its
/// settings as overlaid by 1, blank as absent): its variable, else for a token or a secret_id
/// the file its `*_FILE` variable names (read here, so a Vault Agent sink or a mounted secret
/// works and no secret has to live in the controller's environment). An unreadable file is
/// absent: the login that needs it names the variable to fix.
pub(crate) fn controller_login_value(
    setting: &dyn Fn(&str) -> Option<String>,
    key: &str,
) -> Option<String> {
    let file_key = match key {
        "vault_token" => "vault_token_file",
        "vault_secret_id" => "vault_secret_id_file",
        _ => return setting(key),
    };
    setting(key).or_else(|| {
        let path = setting(file_key)?;
        std::fs::read_to_string(path)
            .ok()
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{env_of, pairs, temp_dir};

    #[test]
    fn the_order_is_pinned() {
        // 1. A property wins over the environment; an empty one unsets; unknown ones are refused.
        let known = ["VAULT_ADDR", "VAULT_TOKEN"];
        let environment = HashMap::from([
            ("VAULT_ADDR", "env".to_owned()),
            ("VAULT_TOKEN", "t".to_owned()),
        ]);
        let values = overlay(
            environment.clone(),
            &pairs(&[("VAULT_ADDR", "property"), ("VAULT_TOKEN", " ")]),
            &known,
        )
        .unwrap();
        assert_eq!(
            values,
            HashMap::from([("VAULT_ADDR", "property".to_owned())])
        );
        assert!(overlay(environment, &pairs(&[("PATH", "x")]), &known).is_err());

        // 2. The deadline: the setting, a blank one the default, else the broker's own.
        let built = Duration::from_secs(9);
        assert_eq!(deadline(Some("7"), built).unwrap(), Duration::from_secs(7));
        assert_eq!(deadline(Some(""), built).unwrap(), DEFAULT_DEADLINE);
        assert_eq!(deadline(None, built).unwrap(), built);
        assert!(deadline(Some("forever"), built).is_err());

        // 3. The purposes config: the controller's file, else the request's text, else the library's.
        let library = ("purposes.toml".to_owned(), "[purposes.lib]\n".to_owned());
        let added = with_library_config(&pairs(&[("purpose", "p")]), Some(&library)).unwrap();
        assert!(added.contains(&("config_text".to_owned(), library.1.clone())));
        let own_text = pairs(&[("purpose", "p"), ("config_text", "[purposes.own]\n")]);
        assert!(with_library_config(&own_text, Some(&library)).is_none());
        let text = || Some("[purposes.p]\n".to_owned());
        assert_eq!(
            purposes_source(Some("/etc/p.toml".into()), text(), None).map(|s| s.name()),
            Some("/etc/p.toml".to_owned())
        );
        assert_eq!(
            purposes_source(None, text(), Some("purposes.toml".into())).map(|s| s.name()),
            Some("purposes.toml".to_owned())
        );
        assert!(purposes_source(None, None, None).is_none());

        // 4. The login: the caller's own, else the build's (governed), else the controller's.
        for (own, per_build, governed, source) in [
            (true, true, true, LoginSource::Own),
            (true, false, false, LoginSource::Own),
            (false, true, true, LoginSource::Build),
            (false, true, false, LoginSource::Controller),
            (false, false, true, LoginSource::Controller),
        ] {
            assert_eq!(
                login_source(own, per_build, governed),
                source,
                "{own} {per_build} {governed}"
            );
        }

        // 5. A controller's login value: its variable, else the file its *_FILE variable names.
        let dir = temp_dir("sources");
        let file = dir.join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let path = file.to_str().unwrap();
        let both = env_of(&[("vault_token", "from-variable"), ("vault_token_file", path)]);
        assert_eq!(
            controller_login_value(&both, "vault_token").as_deref(),
            Some("from-variable")
        );
        let file_only = env_of(&[("vault_token_file", path)]);
        assert_eq!(
            controller_login_value(&file_only, "vault_token").as_deref(),
            Some("from-file")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
