//! `awsrole exec`: run a command with credentials in its environment, pass its exit status on.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::thread;

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

/// Why the command could not be run (before it started).
#[derive(Debug)]
pub struct SpawnError {
    pub program: String,
    pub error: io::Error,
}

impl SpawnError {
    /// 127 when not found, 126 otherwise, as POSIX shells and env(1) answer.
    pub fn exit_code(&self) -> u8 {
        match self.error.kind() {
            io::ErrorKind::NotFound => 127,
            _ => 126,
        }
    }
}

/// Runs `argv` with `set` added to (and `clear` removed from) this process's environment, and
/// returns its exit code: its own, or 128+n when signal n ended it.
///
/// Signals that target awsrole alone (TERM, HUP, USR1, USR2: `kill <pid>`, a CI runner stopping
/// the job) are passed on to the command. INT and QUIT come from a terminal to the whole process
/// group, so the command has them already: awsrole only survives them, to report the command's
/// status; sending them again would make tools that escalate on a second Ctrl-C (terraform) stop
/// without cleaning up.
pub fn run(argv: &[OsString], set: &[(&str, String)], clear: &[&str]) -> Result<u8, SpawnError> {
    let program = argv[0].clone();
    let spawn_error = |error| SpawnError {
        program: program.to_string_lossy().into_owned(),
        error,
    };
    // Registered before the spawn: a TERM in between must not kill awsrole with its default action.
    let mut signals =
        Signals::new([SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGINT, SIGQUIT]).map_err(spawn_error)?;
    let mut command = Command::new(&program);
    command.args(&argv[1..]);
    for name in clear {
        command.env_remove(name);
    }
    for (name, value) in set {
        command.env(name, value);
    }
    let mut child = command.spawn().map_err(spawn_error)?;
    let pid = child.id() as libc::pid_t;
    let handle = signals.handle();
    let forwarder = thread::spawn(move || {
        for signal in signals.forever() {
            if signal == SIGINT || signal == SIGQUIT {
                continue;
            }
            // SAFETY: kill(2) has no memory effects; `pid` is our child, not reaped before
            // `handle.close()` below stops this loop.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    });
    let status = child.wait();
    handle.close();
    let _ = forwarder.join();
    Ok(exit_code(status.map_err(spawn_error)?))
}

/// The command's exit code, or 128+n for a signal, as a shell reports it.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
        (None, None) => 255,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<OsString> {
        ["sh", "-c", script].map(OsString::from).to_vec()
    }

    #[test]
    fn exit_codes_pass_through() {
        assert_eq!(run(&sh("exit 0"), &[], &[]).unwrap(), 0);
        assert_eq!(run(&sh("exit 42"), &[], &[]).unwrap(), 42);
    }

    #[test]
    fn a_signal_becomes_128_plus_its_number() {
        assert_eq!(run(&sh("kill -TERM $$"), &[], &[]).unwrap(), 128 + 15);
        assert_eq!(run(&sh("kill -KILL $$"), &[], &[]).unwrap(), 128 + 9);
    }

    #[test]
    fn the_environment_is_set_and_cleared() {
        std::env::set_var("AWSROLE_TEST_CLEARED", "old");
        let code = run(
            &sh(r#"[ "$AWSROLE_TEST_SET" = 'v a l' ] && [ -z "${AWSROLE_TEST_CLEARED+x}" ]"#),
            &[("AWSROLE_TEST_SET", "v a l".to_owned())],
            &["AWSROLE_TEST_CLEARED"],
        )
        .unwrap();
        assert_eq!(code, 0);
    }

    #[test]
    fn missing_and_unrunnable_commands_are_127_and_126() {
        let e = run(&[OsString::from("/nonexistent/awsrole-test")], &[], &[]).unwrap_err();
        assert_eq!(e.exit_code(), 127);
        let e = run(&[OsString::from("/")], &[], &[]).unwrap_err();
        assert_eq!(e.exit_code(), 126);
    }
}
