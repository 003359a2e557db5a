//! The purposes config: a reviewed TOML file that maps a purpose to the Vault mount, Vault role,
//! IAM role ARN, ttl and region, so Jenkinsfiles say `withAwsRole('deploy')` and never carry ARNs.
//!
//! ```toml
//! [defaults]            # optional: for every purpose (mount, ttl, region)
//! region = "eu-west-1"
//!
//! [purposes.deploy]
//! vault_role = "deploy"
//! role_arn = "arn:aws:iam::123456789012:role/jenkins-deploy-role"
//! ttl = "30m"
//! ```
//!
//! The config is also the authorization boundary between Jenkinsfiles and the controller's Vault
//! identity (docs/security.md): a broker that governs (the JNI library) refuses a purpose the
//! config does not list, a job outside the purpose's `jobs` globs, and any choice the purpose does
//! not offer (`role_arns`, `max_ttl`); mount, Vault role and session name are never a pipeline's
//! choice there. An ungoverned caller (the awsrole CLI, whose Vault token already reaches one
//! path only) keeps the zero-config defaults for unlisted purposes. Every error names the file,
//! the line and the key.
//! Parsed configs are cached (by text, or by file path, size and mtime), so a cache hit never
//! parses TOML.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::{truncate, BrokerError};
use crate::fields::{check_mount, check_region, check_role_arn, check_segment};
use crate::ttl::parse_ttl;

/// The keys a `[purposes.<name>]` table may hold.
pub const PURPOSE_KEYS: &[&str] = &[
    "mount",
    "vault_role",
    "role_arn",
    "role_arns",
    "ttl",
    "max_ttl",
    "region",
    "jobs",
    "hide_account_id",
];
/// The keys the `[defaults]` table may hold (per-purpose identities make no sense there).
pub const DEFAULT_KEYS: &[&str] = &[
    "mount",
    "ttl",
    "max_ttl",
    "region",
    "jobs",
    "hide_account_id",
];

/// One purpose's settings from the file (each may be absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurposeConfig {
    /// The file has a `[purposes.<name>]` table for it.
    pub listed: bool,
    pub mount: Option<String>,
    pub vault_role: Option<String>,
    pub role_arn: Option<String>,
    /// IAM roles a pipeline may pick with `roleArn` (besides `role_arn`).
    pub role_arns: Option<Vec<String>>,
    pub ttl_seconds: Option<u32>,
    /// The longest `ttl` a pipeline may ask for.
    pub max_ttl_seconds: Option<u32>,
    pub region: Option<String>,
    /// Globs on the job's full name (`team-a/**`, `app/*`); absent: every job.
    pub jobs: Option<Vec<String>>,
    /// Keep the AWS account id out of the build log (a pipeline cannot show it again).
    pub hide_account_id: Option<bool>,
}

impl PurposeConfig {
    /// `self`, with gaps filled from `defaults`.
    fn or(&self, defaults: &PurposeConfig) -> PurposeConfig {
        PurposeConfig {
            listed: self.listed,
            mount: self.mount.clone().or_else(|| defaults.mount.clone()),
            vault_role: self.vault_role.clone(),
            role_arn: self.role_arn.clone(),
            role_arns: self.role_arns.clone(),
            ttl_seconds: self.ttl_seconds.or(defaults.ttl_seconds),
            max_ttl_seconds: self.max_ttl_seconds.or(defaults.max_ttl_seconds),
            region: self.region.clone().or_else(|| defaults.region.clone()),
            jobs: self.jobs.clone().or_else(|| defaults.jobs.clone()),
            hide_account_id: self.hide_account_id.or(defaults.hide_account_id),
        }
    }

    /// Whether a pipeline may pick `arn` with `roleArn`: the purpose's own `role_arn` or one of
    /// its `role_arns`.
    pub fn offers_role_arn(&self, arn: &str) -> bool {
        self.role_arn.as_deref() == Some(arn)
            || self
                .role_arns
                .as_ref()
                .is_some_and(|arns| arns.iter().any(|a| a == arn))
    }

    /// Whether `job` (a full name such as `team-a/app/main`) may use this purpose.
    pub fn admits_job(&self, job: &str) -> bool {
        match &self.jobs {
            None => true,
            Some(globs) => globs.iter().any(|g| job_glob_matches(g, job)),
        }
    }
}

/// `*` matches within one path segment of a job's full name, `**` any number of segments
/// (`team-a/**` is every job in the folder team-a and below); anything else matches itself.
pub fn job_glob_matches(glob: &str, job: &str) -> bool {
    fn segments(glob: &[&str], job: &[&str]) -> bool {
        match glob.split_first() {
            None => job.is_empty(),
            Some((&"**", rest)) => (0..=job.len()).any(|skip| segments(rest, &job[skip..])),
            Some((first, rest)) => match job.split_first() {
                Some((name, tail)) => {
                    segment(first.as_bytes(), name.as_bytes()) && segments(rest, tail)
                }
                None => false,
            },
        }
    }
    fn segment(glob: &[u8], name: &[u8]) -> bool {
        match glob.split_first() {
            None => name.is_empty(),
            Some((b'*', rest)) => (0..=name.len()).any(|skip| segment(rest, &name[skip..])),
            Some((c, rest)) => name.first() == Some(c) && segment(rest, &name[1..]),
        }
    }
    let glob: Vec<&str> = glob.split('/').collect();
    let job: Vec<&str> = job.split('/').collect();
    segments(&glob, &job)
}

/// A parsed, validated purposes config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurposesConfig {
    defaults: PurposeConfig,
    purposes: HashMap<String, PurposeConfig>,
}

impl PurposesConfig {
    /// Parses and validates the whole file: a typo in any purpose fails every request, so it
    /// is found at the first build rather than the day that purpose is used.
    /// `name` is what error messages call the file.
    pub fn parse(name: &str, text: &str) -> Result<Self, BrokerError> {
        let at = |span: Option<Range<usize>>, key: Option<&str>, reason: String| {
            config_error(name, text, span, key, reason)
        };
        let root = DeTable::parse(text).map_err(|e| {
            // The message alone: the error's Display quotes the offending source line.
            at(e.span(), None, e.message().trim().to_owned())
        })?;
        let mut errors = Vec::new();
        let mut config = PurposesConfig::default();
        for (key, value) in root.get_ref().iter() {
            match key.get_ref().as_ref() {
                "purposes" => config.read_purposes(value, &mut errors),
                "defaults" => match value.get_ref().as_table() {
                    Some(t) => {
                        config.defaults = read_table(t, "defaults", DEFAULT_KEYS, &mut errors)
                    }
                    None => errors.push((
                        value.span(),
                        "defaults".into(),
                        "expected a table [defaults] with mount, ttl, max_ttl, region, jobs, hide_account_id".into(),
                    )),
                },
                other => errors.push((
                    key.span(),
                    other.to_owned(),
                    "unknown key: the file has [defaults] and [purposes.<name>] tables only".into(),
                )),
            }
        }
        for (key, value) in root.get_ref().iter() {
            if key.get_ref().as_ref() == "purposes" {
                config.check_ttls_within_max(value, &mut errors);
            }
        }
        // Tables iterate in key order: report the first problem in the file instead.
        match errors.into_iter().min_by_key(|(span, _, _)| span.start) {
            Some((span, key, reason)) => Err(at(Some(span), Some(&key), reason)),
            None => Ok(config),
        }
    }

    /// The `[purposes.<name>]` tables.
    fn read_purposes(&mut self, value: &Spanned<DeValue<'_>>, errors: &mut Vec<Problem>) {
        let Some(table) = value.get_ref().as_table() else {
            errors.push((
                value.span(),
                "purposes".into(),
                "expected tables such as [purposes.ecr-push]".into(),
            ));
            return;
        };
        for (purpose, settings) in table.iter() {
            let path = format!("purposes.{}", purpose.get_ref());
            if let Err(e) = check_segment("purpose", purpose.get_ref()) {
                errors.push((purpose.span(), path.clone(), e.to_string()));
                continue;
            }
            match settings.get_ref().as_table() {
                Some(t) => {
                    let mut c = read_table(t, &path, PURPOSE_KEYS, errors);
                    c.listed = true;
                    self.purposes.insert(purpose.get_ref().to_string(), c);
                }
                None => errors.push((
                    settings.span(),
                    path,
                    format!(
                        "expected a table such as [purposes.{}] with vault_role, role_arn, ttl, region",
                        purpose.get_ref()
                    ),
                )),
            }
        }
    }

    /// A purpose whose own ttl its pipelines could never ask for is a contradiction in review.
    fn check_ttls_within_max(&self, purposes: &Spanned<DeValue<'_>>, errors: &mut Vec<Problem>) {
        for (purpose, settings) in purposes.get_ref().as_table().into_iter().flatten() {
            let c = self.purpose(purpose.get_ref());
            if let (Some(ttl), Some(max)) = (c.ttl_seconds, c.max_ttl_seconds) {
                if ttl > max {
                    errors.push((
                        settings.span(),
                        format!("purposes.{}.ttl", purpose.get_ref()),
                        format!(
                            "ttl ({ttl} s) is above max_ttl ({max} s); lower it or raise max_ttl"
                        ),
                    ));
                }
            }
        }
    }

    /// The settings for `purpose`, defaults applied; empty when the purpose is not listed.
    pub fn purpose(&self, purpose: &str) -> PurposeConfig {
        match self.purposes.get(purpose) {
            Some(c) => c.or(&self.defaults),
            None => PurposeConfig::default().or(&self.defaults),
        }
    }
}

type Problem = (Range<usize>, String, String);

fn read_table(
    table: &DeTable<'_>,
    path: &str,
    allowed: &[&str],
    errors: &mut Vec<Problem>,
) -> PurposeConfig {
    let mut c = PurposeConfig::default();
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        let full = format!("{path}.{name}");
        if !allowed.contains(&name) {
            errors.push((
                key.span(),
                full,
                format!("unknown key; valid keys are {}", allowed.join(", ")),
            ));
            continue;
        }
        match read_value(name, value) {
            Ok(v) => match name {
                "mount" => c.mount = v.text,
                "vault_role" => c.vault_role = v.text,
                "role_arn" => c.role_arn = v.text,
                "role_arns" => c.role_arns = v.list,
                "ttl" => c.ttl_seconds = v.ttl,
                "max_ttl" => c.max_ttl_seconds = v.ttl,
                "region" => c.region = v.text,
                "jobs" => c.jobs = v.list,
                "hide_account_id" => c.hide_account_id = v.flag,
                _ => unreachable!("checked against the allowed keys"),
            },
            Err(reason) => errors.push((value.span(), full, reason)),
        }
    }
    c
}

#[derive(Default)]
struct Read {
    text: Option<String>,
    ttl: Option<u32>,
    list: Option<Vec<String>>,
    flag: Option<bool>,
}

/// A list of strings (`role_arns`, `jobs`), each checked like the single value.
fn read_list(key: &str, value: &Spanned<DeValue<'_>>) -> Result<Read, String> {
    let DeValue::Array(items) = value.get_ref() else {
        return Err(format!(
            "expected a list of strings such as {}, found {}",
            if key == "jobs" {
                "[\"team-a/**\", \"app/main\"]"
            } else {
                "[\"arn:aws:iam::123456789012:role/a\"]"
            },
            value.get_ref().type_str()
        ));
    };
    let mut list = Vec::new();
    for item in items.iter() {
        let DeValue::String(s) = item.get_ref() else {
            return Err(format!(
                "expected strings in the list, found {}",
                item.get_ref().type_str()
            ));
        };
        match key {
            "role_arns" => check_role_arn(s).map_err(|e| e.to_string())?,
            _ => check_job_glob(s)?,
        }
        list.push(s.to_string());
    }
    Ok(Read {
        list: Some(list),
        ..Read::default()
    })
}

/// A job glob: segments of Jenkins item-name characters, `*` or `**`, joined by `/`.
fn check_job_glob(glob: &str) -> Result<(), String> {
    let ok = !glob.is_empty()
        && glob.len() <= 512
        && glob.split('/').all(|seg| {
            !seg.is_empty() && !seg.chars().any(|c| c.is_control() || "?[]\\".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid job glob {glob:?}: use job full names with * (within a folder) and ** (any \
             depth), e.g. \"team-a/**\" or \"app/main\""
        ))
    }
}

/// One value, checked exactly as the same request key would be.
fn read_value(key: &str, value: &Spanned<DeValue<'_>>) -> Result<Read, String> {
    if matches!(key, "role_arns" | "jobs") {
        return read_list(key, value);
    }
    if key == "hide_account_id" {
        return match value.get_ref() {
            DeValue::Boolean(b) => Ok(Read {
                flag: Some(*b),
                ..Read::default()
            }),
            other => Err(format!(
                "expected true or false, found {}",
                other.type_str()
            )),
        };
    }
    let text = match value.get_ref() {
        DeValue::String(s) => s.to_string(),
        // `ttl = 900` reads naturally too.
        DeValue::Integer(i) if matches!(key, "ttl" | "max_ttl") => i.as_str().to_owned(),
        other => {
            return Err(format!(
                "expected a string{}, found {}",
                if matches!(key, "ttl" | "max_ttl") {
                    " or a number of seconds"
                } else {
                    ""
                },
                other.type_str()
            ))
        }
    };
    let checked = match key {
        "mount" => check_mount(&text).map(|m| Read {
            text: Some(m),
            ..Read::default()
        }),
        "vault_role" => check_segment("vault_role", &text).map(|()| Read {
            text: Some(text.clone()),
            ..Read::default()
        }),
        "role_arn" => check_role_arn(&text).map(|()| Read {
            text: Some(text.clone()),
            ..Read::default()
        }),
        "region" => check_region(&text).map(|()| Read {
            text: Some(text.clone()),
            ..Read::default()
        }),
        "ttl" | "max_ttl" => parse_ttl(&text).map(|t| Read {
            ttl: Some(t),
            ..Read::default()
        }),
        _ => unreachable!("checked against the allowed keys"),
    };
    checked.map_err(|e| e.to_string())
}

fn config_error(
    name: &str,
    text: &str,
    span: Option<Range<usize>>,
    key: Option<&str>,
    reason: String,
) -> BrokerError {
    let mut location = String::new();
    if let Some(span) = span {
        let start = span.start.min(text.len());
        let line = text.as_bytes()[..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        location.push_str(&format!(", line {line}"));
    }
    if let Some(key) = key {
        location.push_str(&format!(", key `{}`", truncate(key, 100)));
    }
    BrokerError::Config {
        name: name.to_owned(),
        location,
        reason,
    }
}

/// Where a request's config comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// `config_text` (a library resource read by `libraryResource`), named by `config_name`.
    Text { name: String, text: String },
    /// `config_file` / WITHAWSROLE_CONFIG.
    File(PathBuf),
}

impl ConfigSource {
    /// What messages call it: the resource name, or the file's path.
    pub fn name(&self) -> String {
        match self {
            ConfigSource::Text { name, .. } => name.clone(),
            ConfigSource::File(path) => path.display().to_string(),
        }
    }
}

/// Parsed configs, so that the request path parses each text or file version once.
#[derive(Default)]
pub struct ConfigCache {
    texts: RwLock<HashMap<(String, String), Arc<PurposesConfig>>>,
    files: RwLock<HashMap<PathBuf, (FileStamp, Arc<PurposesConfig>)>>,
}

/// What tells a changed file apart without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

/// Configs are few (one library resource, one controller file); more means churn: start over.
const MAX_CACHED_CONFIGS: usize = 32;

impl ConfigCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn load(&self, source: &ConfigSource) -> Result<Arc<PurposesConfig>, BrokerError> {
        match source {
            ConfigSource::Text { name, text } => self.load_text(name, text),
            ConfigSource::File(path) => self.load_file(path),
        }
    }

    fn load_text(&self, name: &str, text: &str) -> Result<Arc<PurposesConfig>, BrokerError> {
        let key = (name.to_owned(), text.to_owned());
        if let Some(c) = self
            .texts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        let parsed = Arc::new(PurposesConfig::parse(name, text)?);
        let mut texts = self.texts.write().unwrap_or_else(|p| p.into_inner());
        if texts.len() >= MAX_CACHED_CONFIGS {
            texts.clear();
        }
        texts.insert(key, parsed.clone());
        Ok(parsed)
    }

    fn load_file(&self, path: &PathBuf) -> Result<Arc<PurposesConfig>, BrokerError> {
        let name = path.display().to_string();
        let unreadable = |e: std::io::Error| BrokerError::Config {
            name: name.clone(),
            location: String::new(),
            reason: format!("cannot read it ({e})"),
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        let stamp = FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        };
        if let Some((s, c)) = self
            .files
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(path)
        {
            if *s == stamp {
                return Ok(c.clone());
            }
        }
        let text = std::fs::read_to_string(path).map_err(unreadable)?;
        let parsed = Arc::new(PurposesConfig::parse(&name, &text)?);
        let mut files = self.files.write().unwrap_or_else(|p| p.into_inner());
        if files.len() >= MAX_CACHED_CONFIGS {
            files.clear();
        }
        files.insert(path.clone(), (stamp, parsed.clone()));
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const EXAMPLE: &str = r#"# reviewed by the platform team
[defaults]
region = "eu-west-1"

[purposes.ecr-push]
vault_role = "ecr-push"
ttl = "15m"

[purposes.deploy]
vault_role = "deploy"
role_arn = "arn:aws:iam::123456789012:role/jenkins-deploy-role"
ttl = 1800
region = "us-east-1"
"#;

    fn message(text: &str) -> String {
        let e = PurposesConfig::parse("org/withawsrole/purposes.toml", text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
        e.to_string()
    }

    /// Each config (text, a part of its message) is refused with that message.
    fn assert_refused_with(cases: &[(&str, &str)]) {
        for (text, part) in cases {
            let msg = message(text);
            assert!(msg.contains(part), "{text:?}: {msg}");
        }
    }

    #[test]
    fn purposes_get_their_settings_and_the_defaults() {
        let c = PurposesConfig::parse("purposes.toml", EXAMPLE).unwrap();
        let deploy = c.purpose("deploy");
        assert_eq!(deploy.vault_role.as_deref(), Some("deploy"));
        assert_eq!(
            deploy.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/jenkins-deploy-role")
        );
        assert_eq!(deploy.ttl_seconds, Some(1800));
        assert_eq!(deploy.region.as_deref(), Some("us-east-1"));
        let ecr = c.purpose("ecr-push");
        assert_eq!(
            (ecr.ttl_seconds, ecr.region.as_deref()),
            (Some(900), Some("eu-west-1"))
        );
        let unlisted = c.purpose("other");
        assert_eq!(unlisted.vault_role, None);
        assert_eq!(unlisted.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn an_unknown_key_names_file_line_and_key() {
        let msg = message("[purposes.deploy]\nvault_role = \"deploy\"\nrolearn = \"x\"\n");
        assert!(
            msg.starts_with(
                "invalid purposes config org/withawsrole/purposes.toml, line 3, key `purposes.deploy.rolearn`: unknown key; valid keys are mount, vault_role, role_arn, role_arns, ttl, max_ttl, region, jobs, hide_account_id"
            ),
            "{msg}"
        );
    }

    #[test]
    fn a_bad_value_is_checked_like_the_request_key() {
        assert_refused_with(&[
            (
                "[purposes.deploy]\n\nrole_arn = \"arn:aws:iam::1:role/x\"\n",
                "line 3, key `purposes.deploy.role_arn`: invalid role_arn",
            ),
            (
                "[purposes.deploy]\nttl = \"5m\"\n",
                "line 2, key `purposes.deploy.ttl`: invalid ttl",
            ),
            ("[purposes.deploy]\nttl = \"5m\"\n", "15m (900)"),
            (
                "[purposes.deploy]\nttl = true\n",
                "expected a string or a number of seconds, found boolean",
            ),
        ]);
    }

    #[test]
    fn syntax_errors_give_the_line() {
        assert_refused_with(&[
            (
                "[purposes.deploy]\nvault_role = \"deploy\"\nttl = \"1h\n",
                ", line 3",
            ),
            (
                "[purposes.a]\nttl = \"1h\"\n[purposes.a]\nttl = \"2h\"\n",
                ", line 3",
            ),
        ]);
    }

    #[test]
    fn the_first_problem_in_the_file_is_reported() {
        assert_refused_with(&[(
            "[purposes.zeta]\nbad1 = 1\n[purposes.alpha]\nbad2 = 2\n",
            "line 2, key `purposes.zeta.bad1`",
        )]);
    }

    #[test]
    fn unknown_tables_and_bad_shapes_are_errors() {
        assert_refused_with(&[
            (
                "[purpose.deploy]\nttl = \"1h\"\n",
                "line 1, key `purpose`: unknown key",
            ),
            ("purposes = \"deploy\"\n", "key `purposes`: expected tables"),
            (
                "[defaults]\nrole_arn = \"arn:aws:iam::123456789012:role/x\"\n",
                "valid keys are mount, ttl, max_ttl, region, jobs, hide_account_id",
            ),
            (
                "[purposes.\"a/b\"]\nttl = \"1h\"\n",
                "key `purposes.a/b`: invalid purpose",
            ),
        ]);
    }

    #[test]
    fn listed_purposes_carry_role_arns_jobs_and_max_ttl() {
        let c = PurposesConfig::parse(
            "purposes.toml",
            r#"
[defaults]
max_ttl = "2h"
jobs = ["platform/**"]

[purposes.deploy]
role_arn = "arn:aws:iam::123456789012:role/deploy"
role_arns = ["arn:aws:iam::123456789012:role/deploy-eu"]
max_ttl = 3600
jobs = ["team-a/**", "app/*"]

[purposes.ecr-push]
"#,
        )
        .unwrap();
        let deploy = c.purpose("deploy");
        assert!(deploy.listed);
        assert_eq!(
            deploy.role_arns,
            Some(vec!["arn:aws:iam::123456789012:role/deploy-eu".to_owned()])
        );
        assert_eq!(deploy.max_ttl_seconds, Some(3600));
        assert_eq!(
            deploy.jobs,
            Some(vec!["team-a/**".to_owned(), "app/*".to_owned()])
        );
        assert!(deploy.offers_role_arn("arn:aws:iam::123456789012:role/deploy"));
        assert!(deploy.offers_role_arn("arn:aws:iam::123456789012:role/deploy-eu"));
        assert!(!deploy.offers_role_arn("arn:aws:iam::123456789012:role/deploy-us"));
        assert!(deploy.admits_job("team-a/x/main") && !deploy.admits_job("platform/x"));
        // An empty table lists the purpose, with the defaults' limits.
        let ecr = c.purpose("ecr-push");
        assert!(ecr.listed);
        assert_eq!(ecr.max_ttl_seconds, Some(7200));
        assert!(ecr.admits_job("platform/tools/main") && !ecr.admits_job("team-a/x"));
        assert!(!ecr.offers_role_arn("arn:aws:iam::123456789012:role/deploy"));
        // An unlisted purpose is not listed, whatever the defaults say.
        assert!(!c.purpose("other").listed);
        assert!(!PurposeConfig::default().listed);
        assert!(PurposeConfig::default().admits_job("anything/at/all"));
    }

    #[test]
    fn bad_role_arns_jobs_and_max_ttl_name_file_line_and_key() {
        assert_refused_with(&[
            ("[purposes.deploy]\nrole_arns = \"arn:aws:iam::123456789012:role/a\"\n", "line 2, key `purposes.deploy.role_arns`: expected a list of strings"),
            ("[purposes.deploy]\n\nrole_arns = [\"arn:aws:iam::1:role/x\"]\n", "line 3, key `purposes.deploy.role_arns`: invalid role_arn"),
            ("[purposes.deploy]\nrole_arns = [1]\n", "key `purposes.deploy.role_arns`: expected strings in the list, found integer"),
            ("[purposes.deploy]\njobs = \"team-a/**\"\n", "line 2, key `purposes.deploy.jobs`: expected a list of strings such as [\"team-a/**\""),
        ]);
        for bad in [
            "",
            "team-a//x",
            "/team-a",
            "team-?",
            "team-[ab]/x",
            "a\\\\b",
        ] {
            let text = format!("[purposes.deploy]\njobs = [\"ok/*\", \"{bad}\"]\n");
            let invalid = "line 2, key `purposes.deploy.jobs`: invalid job glob";
            assert_refused_with(&[(&text, invalid)]);
        }
        assert_refused_with(&[
            (
                "[defaults]\njobs = [\"x\", \"\"]\n",
                "line 2, key `defaults.jobs`: invalid job glob",
            ),
            (
                "[purposes.deploy]\nttl = \"1h\"\nmax_ttl = \"5m\"\n",
                "line 3, key `purposes.deploy.max_ttl`: invalid ttl",
            ),
            (
                "[defaults]\nmax_ttl = true\n",
                "key `defaults.max_ttl`: expected a string or a number of seconds, found boolean",
            ),
            (
                "[defaults]\nrole_arns = [\"arn:aws:iam::123456789012:role/a\"]\n",
                "key `defaults.role_arns`: unknown key",
            ),
        ]);
    }

    #[test]
    fn job_globs_match_within_and_across_folders() {
        let cases = [
            ("team-a/**", "team-a/x/main", true),
            ("team-a/**", "team-a/y", true),
            ("team-a/**", "team-b/x", false),
            ("team-a/**", "team-ab/x", false),
            ("app/*", "app/main", true),
            ("app/*", "app/main/x", false),
            ("app/*", "app", false),
            ("app/main", "app/main", true),
            ("app/main", "app/main2", false),
            ("app/main", "App/main", false),
            ("*/main", "anything/main", true),
            ("*/main", "a/b/main", false),
            ("**/main", "a/b/main", true),
            ("**/main", "main", true),
            ("**", "any/depth/at/all", true),
            ("release-*", "release-1.2", true),
            ("release-*", "hotfix-1.2", false),
            ("a/**/z", "a/z", true),
            ("a/**/z", "a/b/c/z", true),
            ("a/**/z", "a/b/c/y", false),
            ("*-deploy/*", "team-deploy/prod", true),
        ];
        for (glob, job, expected) in cases {
            assert_eq!(job_glob_matches(glob, job), expected, "{glob} ~ {job}");
        }
    }

    #[test]
    fn texts_and_files_are_parsed_once_per_version() {
        let cache = ConfigCache::new();
        let src = ConfigSource::Text {
            name: "r".into(),
            text: EXAMPLE.into(),
        };
        let a = cache.load(&src).unwrap();
        let b = cache.load(&src).unwrap();
        assert!(Arc::ptr_eq(&a, &b));

        let dir = std::env::temp_dir().join(format!("withawsrole-cfgcache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("purposes.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let src = ConfigSource::File(path.clone());
        let a = cache.load(&src).unwrap();
        assert!(Arc::ptr_eq(&a, &cache.load(&src).unwrap()));
        std::fs::write(&path, "[purposes.deploy]\nttl = \"2h\"\n").unwrap();
        assert_eq!(
            cache.load(&src).unwrap().purpose("deploy").ttl_seconds,
            Some(7200)
        );
        std::fs::remove_file(&path).unwrap();
        let e = cache.load(&src).unwrap_err();
        assert!(e.to_string().contains("cannot read it"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
