//! The test world (test/world: OpenBao + moto + the Vault AWS-engine front) as Rust tests and
//! examples reach it: one small HTTP/1.1 client for loopback `http://` URLs, the front's control
//! API (reset, counters, faults), Vault through the front, OpenBao as the world's root, and the
//! lock every world test holds. Dev-only: a dev-dependency of the core and the CLI, never a
//! dependency of what ships.
//!
//! The world's counters and faults are global: a test takes [`World::take`] for its whole run, so
//! tests of one binary run one at a time (and `cargo test` runs binaries one after another).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

/// What to do when the world is not there.
pub const START: &str = "start the world: test/world/up && . test/world/.run/env";

/// A variable of the world's environment (test/world/.run/env), if set and not empty.
pub fn try_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A variable of the world's environment; panics saying how to start the world.
pub fn env(name: &str) -> String {
    try_env(name).unwrap_or_else(|| panic!("{name} is not set: {START}"))
}

/// One HTTP/1.1 request to a loopback `http://` URL: (status, JSON body or Null). A chunked body
/// (OpenBao's) is put back together. A connection the server cuts short gives what arrived
/// (status 0 when nothing did): callers assert on the status.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("the world is reached over http:// on loopback: {url}"));
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    let mut stream = TcpStream::connect(host).unwrap_or_else(|e| panic!("{url}: {e}; {START}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The body of a `Transfer-Encoding: chunked` answer.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size =
            usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// Vault as Jenkins sees it: the front at `VAULT_ADDR`, with `token`.
pub fn vault(method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    let url = format!("{}/v1/{path}", env("VAULT_ADDR"));
    http(method, &url, &[("X-Vault-Token", token)], body)
}

/// OpenBao itself (not the front), as the world's root, in namespace `ns` if given; asserts success.
pub fn openbao(method: &str, path: &str, body: Option<&Value>, ns: Option<&str>) -> (u16, Value) {
    let root = env("WORLD_ROOT_TOKEN");
    let mut headers = vec![("X-Vault-Token", root.as_str())];
    if let Some(ns) = ns {
        headers.push(("X-Vault-Namespace", ns));
    }
    let url = format!("{}/v1/{path}", env("WORLD_OPENBAO_ADDR"));
    let (status, answer) = http(method, &url, &headers, body);
    assert!(status < 300, "{method} {path}: {status} {answer}");
    (status, answer)
}

/// The front's loopback control API (`WORLD_CONTROL_URL`): counters and faults.
#[derive(Clone, Debug)]
pub struct Control {
    url: String,
}

impl Control {
    /// The control API of the world in the environment, if there is one.
    pub fn from_env() -> Option<Control> {
        try_env("WORLD_CONTROL_URL").map(|url| Control { url })
    }

    /// The control API of the world in the environment; panics saying how to start the world.
    pub fn of_world() -> Control {
        Control {
            url: env("WORLD_CONTROL_URL"),
        }
    }

    /// One call; asserts a 200 (the control API answers nothing else when used right).
    pub fn call(&self, method: &str, sub: &str, body: Option<&Value>) -> Value {
        let (status, answer) = http(method, &format!("{}{sub}", self.url), &[], body);
        assert_eq!(
            status, 200,
            "the world's control API, {method} {sub}: {answer}; {START}"
        );
        answer
    }

    /// Counters to zero and every fault cleared.
    pub fn reset(&self) {
        self.call("POST", "/reset", None);
    }

    /// Adds a fault (or a list of them): test/world/README.md says what a spec holds.
    pub fn fault(&self, spec: &Value) {
        self.call("POST", "/faults", Some(spec));
    }

    pub fn clear_faults(&self) {
        self.call("DELETE", "/faults", None);
    }

    pub fn counters(&self) -> Value {
        self.call("GET", "/counters", None)
    }

    /// Credential calls the front answered for `aws/<role>` (faults included).
    pub fn sts_calls(&self, role: &str) -> u64 {
        self.counters()["sts_calls"][format!("aws/{role}")]
            .as_u64()
            .unwrap_or(0)
    }

    /// Credentials the front issued for `aws/<role>`.
    pub fn issued(&self, role: &str) -> u64 {
        self.counters()["sts_issued_by_role"][format!("aws/{role}")]
            .as_u64()
            .unwrap_or(0)
    }

    /// Requests proxied to OpenBao at `path` (logins, token calls).
    pub fn proxied(&self, path: &str) -> u64 {
        self.counters()["proxied"][path].as_u64().unwrap_or(0)
    }

    /// Every request that reached the front: (credential calls, everything proxied to OpenBao).
    pub fn traffic(&self) -> (u64, u64) {
        let c = self.counters();
        (
            c["sts_total"].as_u64().unwrap_or(0),
            c["proxied_total"].as_u64().unwrap_or(0),
        )
    }

    /// Every request that reached Vault, of any kind.
    pub fn network_calls(&self) -> u64 {
        let (sts, proxied) = self.traffic();
        sts + proxied
    }
}

static WORLD: Mutex<()> = Mutex::new(());

/// The world, held by one test: reset on taking it and again when dropped (no fault outlives the
/// test that set it, also when that test fails).
pub struct World {
    pub control: Control,
    _turn: MutexGuard<'static, ()>,
}

impl World {
    /// Waits for this test's turn, checks the world answers and resets it.
    pub fn take() -> World {
        let turn = WORLD.lock().unwrap_or_else(|p| p.into_inner());
        let world = World {
            control: Control::of_world(),
            _turn: turn,
        };
        world.control.reset();
        world
    }

    /// The world as [`take`](Self::take) if it is up (`WORLD_CONTROL_URL` set), else `None`: for
    /// tests that also run, with less to check, without a world.
    pub fn take_if_up() -> Option<World> {
        try_env("WORLD_CONTROL_URL").map(|_| World::take())
    }
}

impl std::ops::Deref for World {
    type Target = Control;
    fn deref(&self) -> &Control {
        &self.control
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.control.reset()));
    }
}

/// `(name, value)` pairs as the core takes them.
pub fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A fresh directory under the system temp dir for this process (the test removes it).
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "withawsrole-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A JWT from the world's stand-in for Jenkins' OIDC provider (test/world/mint_jwt.py).
pub fn mint_jwt(args: &[&str]) -> String {
    let key = PathBuf::from(env("WORLD_JWT_KEY_FILE"));
    let script = key.parent().unwrap().parent().unwrap().join("mint_jwt.py");
    let out = std::process::Command::new(format!("{}/bin/python", env("WORLD_VENV")))
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
