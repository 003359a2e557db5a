//! `awsrole`: the withAwsRole core on a command line. It only turns options into the core's
//! request pairs and the answer into output; Vault logic stays in `withawsrole_core`.
//!
//! ```sh
//! awsrole exec ecr-push -- aws ecr describe-repositories
//! ```
//!
//! Exit codes and formats: docs/cli.md (and `awsrole <subcommand> --help`).

mod block_cache;
mod cli;
mod exec;
mod output;

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;

use clap::Parser;
use withawsrole_core::{BrokerError, CredentialBroker, ErrorKind, IssuedCredentials, SystemClock};

use crate::cli::{Cli, Command, Format, RequestArgs};

pub const EXIT_PERMISSION: u8 = 3;
pub const EXIT_UNAVAILABLE: u8 = 4;
pub const EXIT_INTERNAL: u8 = 5;
pub const EXIT_INVALID_REQUEST: u8 = 6;

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors: clap prints them and exits 2
                            // A panic is a bug: one line on stderr and exit 5, never a message that could hold a value.
    std::panic::set_hook(Box::new(|_| {}));
    let code = catch_unwind(AssertUnwindSafe(|| run(cli))).unwrap_or_else(|_| {
        eprintln!("awsrole: internal error (a panic); this is a bug, please report it");
        EXIT_INTERNAL
    });
    ExitCode::from(code)
}

fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Creds { request, format } => print_credentials(&request, format),
        Command::CredentialProcess {
            request,
            cache_file: None,
        } => print_credentials(&request, Format::CredentialProcess),
        Command::CredentialProcess {
            request,
            cache_file: Some(path),
        } => print_cached_credentials(&request, &path),
        Command::Exec { request, command } => {
            let issued = match fetch(&request) {
                Ok(issued) => issued,
                Err(code) => return code,
            };
            let environment = output::environment(&issued);
            drop(issued);
            match exec::run(&command, &environment, output::CLEARED) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("awsrole: cannot run `{}`: {}", e.program, e.error);
                    e.exit_code()
                }
            }
        }
    }
}

fn print_credentials(request: &RequestArgs, format: Format) -> u8 {
    let issued = match fetch(request) {
        Ok(issued) => issued,
        Err(code) => return code,
    };
    let text = match format {
        Format::Json => output::json(&issued) + "\n",
        Format::Env => output::env_lines(&issued),
        Format::CredentialProcess => output::credential_process(&issued) + "\n",
    };
    write_stdout(&text)
}

fn write_stdout(text: &str) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("awsrole: cannot write the credentials to stdout: {e}");
            EXIT_INTERNAL
        }
    }
}

/// `credential-process --cache-file`: the block's shared credentials, fetched when missing or
/// near expiry (see block_cache).
fn print_cached_credentials(request: &RequestArgs, path: &std::path::Path) -> u8 {
    let fetched = block_cache::cached_or_fetch(path, &request.fingerprint(), &SystemClock, || {
        fetch(request).map(|issued| block_cache::Cached {
            output: output::credential_process(&issued),
            expires_at: issued.credentials.expires_at,
            lease: issued.credentials.lease_duration,
        })
    });
    let text = match fetched {
        Ok(Ok(text)) => text + "\n",
        Ok(Err(code)) => return code,
        Err(block_cache::CacheFileError(problem)) => {
            eprintln!("awsrole: {problem}");
            return EXIT_INVALID_REQUEST;
        }
    };
    write_stdout(&text)
}

/// One request to the core, with a fresh broker: nothing is cached between invocations.
fn fetch(request: &RequestArgs) -> Result<IssuedCredentials, u8> {
    let broker = CredentialBroker::from_process_env().map_err(report)?;
    let mut pairs = request.pairs();
    if let Some(path) = &request.vault_token_file {
        // A login of the request's own: the core then uses it alone, never VAULT_TOKEN.
        let token = std::fs::read_to_string(path).map_err(|e| {
            eprintln!(
                "awsrole: cannot read the Vault token file {}: {e}",
                path.display()
            );
            EXIT_INVALID_REQUEST
        })?;
        pairs.push(("vault_token".to_owned(), token.trim().to_owned()));
    }
    let issued = broker.credentials(&pairs).map_err(report);
    drop(withawsrole_core::request::RequestPairs::from(pairs));
    issued
}

/// Prints the core's message (which never holds a secret) and returns the exit code of its kind.
fn report(e: BrokerError) -> u8 {
    eprintln!("awsrole: {}", message(&e));
    exit_code(e.kind())
}

/// The core's message, except where it speaks to a Jenkins controller: on a command line (or an
/// agent in a `refresh: true` block) the environment is the caller's own.
fn message(e: &BrokerError) -> String {
    match e {
        BrokerError::MissingVaultAddr => {
            "no Vault address: set VAULT_ADDR, e.g. export VAULT_ADDR=https://vault.example.com:8200"
                .into()
        }
        BrokerError::MissingVaultCredentials { detail } => format!(
            "no Vault credentials: set VAULT_TOKEN (or VAULT_TOKEN_FILE), or VAULT_ROLE_ID and \
             VAULT_SECRET_ID (or VAULT_SECRET_ID_FILE) for AppRole, or VAULT_JWT/VAULT_JWT_FILE \
             with VAULT_JWT_ROLE, or VAULT_K8S_ROLE{detail}"
        ),
        BrokerError::TokenRejected { .. } => {
            "Vault no longer accepts the token in VAULT_TOKEN (expired or revoked): get a new one, \
             or log in with AppRole, JWT or Kubernetes instead; inside withAwsRole(refresh: true) \
             the block's token ends with the block or at its timeout"
                .into()
        }
        other => other.to_string(),
    }
}

fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidRequest => EXIT_INVALID_REQUEST,
        ErrorKind::PermissionDenied => EXIT_PERMISSION,
        ErrorKind::Unavailable => EXIT_UNAVAILABLE,
        ErrorKind::Internal => EXIT_INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_kind_has_its_own_exit_code() {
        let codes = [
            exit_code(ErrorKind::InvalidRequest),
            exit_code(ErrorKind::PermissionDenied),
            exit_code(ErrorKind::Unavailable),
            exit_code(ErrorKind::Internal),
        ];
        assert_eq!(codes, [6, 3, 4, 5]);
    }

    #[test]
    fn messages_meant_for_a_jenkins_controller_speak_to_the_caller() {
        for e in [
            BrokerError::MissingVaultAddr,
            BrokerError::MissingVaultCredentials {
                detail: String::new(),
            },
            BrokerError::TokenRejected {
                addr: "http://v:8200".into(),
            },
        ] {
            let text = message(&e);
            assert!(!text.contains("controller"), "{text}");
            assert!(text.contains("VAULT_"), "{text}");
        }
    }
}
