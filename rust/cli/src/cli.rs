//! The command line: subcommands, options and their help. Values are checked here with the
//! core's own validators where they can be (a bad `--ttl` is a usage error, exit 2).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use withawsrole_core::fields::check_role_arn;
use withawsrole_core::session::explicit_session_name;
use withawsrole_core::ttl::parse_ttl;

// The help texts are macros so that `concat!` can join them into each subcommand's --help.
macro_rules! exit_codes {
    () => {
        "Exit codes:
  0    success (exec: the command's own exit code; 128+n when a signal n ended it)
  2    usage: unknown option, missing purpose, malformed --ttl/--role-arn/--session-name
  3    permission denied: Vault said 403 or refused the login (also: a revoked or expired VAULT_TOKEN)
  4    unavailable: Vault unreachable, sealed, overloaded or too slow; worth retrying later
  5    internal: an answer awsrole does not understand, or a bug
  6    invalid request: configuration or request Vault cannot serve (no VAULT_ADDR, no Vault
       login, unknown Vault role, ttl above the role's maximum, bad WITHAWSROLE_CONFIG)
  126  exec: the command cannot be run (not executable)
  127  exec: the command was not found"
    };
}

macro_rules! environment {
    () => {
        "Environment (the same names as the withAwsRole Jenkins step):
  VAULT_ADDR                      Vault's address, e.g. https://vault.example.com:8200
  VAULT_TOKEN                     a Vault token, or:
  VAULT_ROLE_ID, VAULT_SECRET_ID  an AppRole login, or:
  VAULT_JWT | VAULT_JWT_FILE, VAULT_JWT_ROLE   a JWT login, or:
  VAULT_K8S_ROLE                  a Kubernetes login
  VAULT_NAMESPACE, VAULT_CACERT, VAULT_SKIP_VERIFY
  WITHAWSROLE_CONFIG              purposes config file: per-purpose vault_role, role_arn, ttl, ...
  WITHAWSROLE_DEADLINE_SECONDS    overall time for one request, retries included (default 60)
Errors go to stderr, one line starting with `awsrole:`; no secret is ever printed there."
    };
}

macro_rules! creds_example {
    () => {
        "Examples:
  awsrole creds ecr-push
  eval \"$(awsrole creds deploy --format env --role-arn arn:aws:iam::123456789012:role/deploy)\""
    };
}

macro_rules! exec_example {
    () => {
        "Examples:
  awsrole exec ecr-push -- aws ecr describe-repositories
  awsrole exec deploy --ttl 1h --role-arn arn:aws:iam::123456789012:role/deploy -- terraform apply

The command gets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and
AWS_CREDENTIAL_EXPIRATION (and AWS_REGION/AWS_DEFAULT_REGION when a region is known). SIGTERM,
SIGHUP, SIGUSR1 and SIGUSR2 sent to awsrole are passed on to the command; SIGINT and SIGQUIT
(Ctrl-C, Ctrl-\\) reach it from the terminal directly and are not sent twice."
    };
}

macro_rules! credential_process_example {
    () => {
        "Example ~/.aws/config:
  [profile ecr-push]
  credential_process = awsrole credential-process ecr-push
  region = eu-west-1

then: AWS_PROFILE=ecr-push aws sts get-caller-identity
Every call starts a new awsrole process, which asks Vault for new credentials unless
--cache-file names a file where runs share them; SDKs call it again shortly before the
Expiration it prints."
    };
}

/// `--help` of a subcommand: its example, then exit codes and environment (`-h`: the example).
macro_rules! long_help {
    ($example:expr) => {
        concat!($example, "\n\n", exit_codes!(), "\n\n", environment!())
    };
}

#[derive(Debug, Parser)]
#[command(
    name = "awsrole",
    version,
    about = "Short-lived AWS credentials from Vault's AWS secrets engine",
    long_about = "Short-lived AWS credentials from Vault's AWS secrets engine (POST <mount>/sts/<role>), \
                  for a shell, a command, or an AWS SDK through credential_process.",
    after_help = "Example:\n  awsrole exec ecr-push -- aws sts get-caller-identity",
    after_long_help = long_help!("Example:\n  awsrole exec ecr-push -- aws sts get-caller-identity"),
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print credentials for a purpose (JSON, shell exports, or credential_process JSON)
    #[command(after_help = creds_example!(), after_long_help = long_help!(creds_example!()))]
    Creds {
        #[command(flatten)]
        request: RequestArgs,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// Run a command with credentials in its environment; exits with the command's exit code
    #[command(after_help = exec_example!(), after_long_help = long_help!(exec_example!()))]
    Exec {
        #[command(flatten)]
        request: RequestArgs,
        /// The command and its arguments, after `--`
        #[arg(
            last = true,
            required = true,
            num_args = 1..,
            value_name = "COMMAND",
            allow_hyphen_values = true
        )]
        command: Vec<OsString>,
    },
    /// Print AWS credential_process JSON (Version 1), for a profile in ~/.aws/config
    #[command(
        after_help = credential_process_example!(),
        after_long_help = long_help!(credential_process_example!())
    )]
    CredentialProcess {
        #[command(flatten)]
        request: RequestArgs,
        /// Share credentials between runs through this file (in a directory of this user with
        /// mode 0700) until shortly before they expire; runs wait for one another's fetch
        #[arg(long, value_name = "PATH")]
        cache_file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// {"access_key_id": ..., "secret_access_key": ..., "session_token": ..., "expiration": ..., ...}
    Json,
    /// `export AWS_ACCESS_KEY_ID=...` lines for eval in a POSIX shell
    Env,
    /// AWS credential_process JSON (Version 1)
    CredentialProcess,
}

/// What to ask Vault for; Vault's address and login come from the environment.
#[derive(Debug, Clone, Args)]
pub struct RequestArgs {
    /// The purpose: the Vault role of the AWS secrets engine unless --vault-role or
    /// WITHAWSROLE_CONFIG says otherwise (e.g. ecr-push)
    pub purpose: String,
    /// Credential lifetime: 900..43200 seconds, or 15m, 1h, 1h30m (default: the Vault role's)
    #[arg(long, value_parser = valid_ttl)]
    pub ttl: Option<String>,
    /// The IAM role to assume, required when the Vault role lists several
    #[arg(long, value_parser = valid_role_arn)]
    pub role_arn: Option<String>,
    /// The STS role session name (CloudTrail shows it; default jenkins-<purpose>, or
    /// jenkins-<job>-<build> with --job/--build)
    #[arg(long, value_parser = valid_session_name)]
    pub session_name: Option<String>,
    /// Job name for the default session name
    #[arg(long)]
    pub job: Option<String>,
    /// Build number for the default session name
    #[arg(long)]
    pub build: Option<String>,
    /// The AWS secrets engine's mount (default aws)
    #[arg(long)]
    pub mount: Option<String>,
    /// The Vault role, when it is not named like the purpose
    #[arg(long)]
    pub vault_role: Option<String>,
    /// AWS region to report (exec and --format env set AWS_REGION and AWS_DEFAULT_REGION)
    #[arg(long)]
    pub region: Option<String>,
    /// Log in with the Vault token in this file instead of VAULT_TOKEN (a block of
    /// withAwsRole(roles: [...], refresh: true) has one token per role)
    #[arg(long, value_name = "PATH")]
    pub vault_token_file: Option<PathBuf>,
}

impl RequestArgs {
    /// The request as one line, to tell a cache file's entry for another request apart.
    pub fn fingerprint(&self) -> String {
        self.pairs()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The request pairs of the core (docs/architecture.md); Vault settings come from the env.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = vec![("purpose".to_owned(), self.purpose.clone())];
        let optional = [
            ("ttl", &self.ttl),
            ("role_arn", &self.role_arn),
            ("session_name", &self.session_name),
            ("job", &self.job),
            ("build", &self.build),
            ("mount", &self.mount),
            ("vault_role", &self.vault_role),
            ("region", &self.region),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                pairs.push((key.to_owned(), v.clone()));
            }
        }
        pairs
    }
}

fn valid_ttl(raw: &str) -> Result<String, String> {
    parse_ttl(raw)
        .map(|_| raw.trim().to_owned())
        .map_err(|e| e.to_string())
}

fn valid_role_arn(raw: &str) -> Result<String, String> {
    check_role_arn(raw)
        .map(|()| raw.to_owned())
        .map_err(|e| e.to_string())
}

fn valid_session_name(raw: &str) -> Result<String, String> {
    explicit_session_name(raw)
        .map(|_| raw.to_owned())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("awsrole").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn creds_options_become_request_pairs() {
        let cli = parse(&[
            "creds",
            "deploy",
            "--ttl",
            "1h",
            "--role-arn",
            "arn:aws:iam::123456789012:role/deploy",
            "--session-name",
            "me",
            "--format",
            "env",
        ])
        .unwrap();
        let Command::Creds { request, format } = cli.command else {
            panic!("not creds")
        };
        assert_eq!(format, Format::Env);
        assert_eq!(
            request.pairs(),
            [
                ("purpose", "deploy"),
                ("ttl", "1h"),
                ("role_arn", "arn:aws:iam::123456789012:role/deploy"),
                ("session_name", "me"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn exec_takes_the_command_after_the_double_dash() {
        let cli = parse(&[
            "exec",
            "ecr-push",
            "--ttl",
            "900",
            "--",
            "aws",
            "--version",
            "-x",
        ])
        .unwrap();
        let Command::Exec { request, command } = cli.command else {
            panic!("not exec")
        };
        assert_eq!(request.ttl.as_deref(), Some("900"));
        assert_eq!(command, ["aws", "--version", "-x"].map(OsString::from));
        assert!(
            parse(&["exec", "ecr-push"]).is_err(),
            "a command is required"
        );
    }

    #[test]
    fn malformed_values_are_usage_errors_with_the_core_hint() {
        for args in [
            &["creds", "p", "--ttl", "5m"][..],
            &["creds", "p", "--role-arn", "deploy"],
            &["creds", "p", "--session-name", "x"],
            &["creds", "p", "--format", "yaml"],
            &["credential-process"],
            &["nope"],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
        let e = parse(&["creds", "p", "--ttl", "5m"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("15m (900) to 12h"), "{e}");
    }

    #[test]
    fn every_subcommand_has_help_with_an_example() {
        for sub in ["creds", "exec", "credential-process"] {
            let mut cmd = Cli::command();
            let help = cmd
                .find_subcommand_mut(sub)
                .unwrap()
                .render_long_help()
                .to_string();
            assert!(help.contains("awsrole "), "{sub}: {help}");
            assert!(help.contains("Example"), "{sub}: {help}");
        }
    }
}
