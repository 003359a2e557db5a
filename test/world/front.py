"""The test world's front: Vault's AWS secrets engine, in front of a real OpenBao.

OpenBao has no AWS secrets engine, so this process plays that one engine and nothing else:

* `<mount>/sts/<role>`, `<mount>/creds/<role>`  (assumed_role only) -> moto's STS AssumeRole
* `<mount>/roles[/<role>]`, `<mount>/config/root`                    -> kept in memory
* `<mount>/config/rotate-root`                                         -> moto's IAM
* any other path inside a mount                                        -> 404 unsupported path
* every other `/v1/...` path                                           -> proxied to OpenBao unchanged

Authorisation is OpenBao's: each engine request is replayed with the caller's token on a KV v1
shadow mounted at the engine's path (Handler.check_acl), so policies with their parameter
rules, AppRole/JWT logins, namespaces, token expiry and renewal are all real.

`/_world/...` is the control API (loopback only): counters, fault injection, options, mounts.
See README.md beside this file.

Nothing secret is ever logged: one line per request with method, a path whose token-like
segments are masked, status, duration and how the request was served.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import socket
import string
import struct
import sys
import threading
import time
import uuid
from http.client import HTTPConnection, HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

# Hop-by-hop headers are about one connection, so they are never forwarded (RFC 9110 7.6.1).
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "host", "content-length",
}

# What Vault/OpenBao say for these statuses; default body of a "status" fault.
STANDARD_ERRORS = {
    400: "invalid request",
    403: "permission denied",
    404: "no handler for route",
    405: "unsupported operation",
    412: "required index state not present",
    429: "rate limit quota exceeded",
    500: "internal error",
    502: "upstream error",
    503: "Vault is sealed",
    504: "context deadline exceeded",
}

# Answer shapes by Vault release: up to 1.15 `security_token` only; from 1.16 also
# `session_token` (same value). The world answers like the newer one unless told otherwise.
VAULT_VERSIONS = ("1.15", "1.16")
DEFAULT_STS_TTL = 3600  # Vault's field default for sts/creds `ttl`
SYSTEM_MAX_LEASE_TTL = 768 * 3600  # OpenBao's default max_lease_ttl (32 days)

ROLE_FIELDS = {
    "credential_type": "", "role_arns": [], "policy_arns": [], "policy_document": "",
    "iam_groups": [], "iam_tags": {}, "default_sts_ttl": 0, "max_sts_ttl": 0,
    "user_path": "", "permissions_boundary_arn": "", "mfa_serial_number": "",
    "session_tags": {}, "external_id": "", "no_lease": False,
}
LIST_FIELDS = {"role_arns", "policy_arns", "iam_groups"}
TTL_FIELDS = {"default_sts_ttl", "max_sts_ttl"}
CREDENTIAL_TYPES = {"iam_user", "assumed_role", "federation_token", "session_token"}
CONFIG_FIELDS = {
    "access_key": "", "secret_key": "", "region": "", "iam_endpoint": "", "sts_endpoint": "",
    "sts_region": "", "max_retries": -1, "username_template": "", "role_arn": "",
}

# Segments that look like Vault/OpenBao tokens or accessors are masked in the log.
TOKEN_LIKE = re.compile(r"^(hv[sbr]|s|b|r)\.[A-Za-z0-9_-]{8,}$|^[A-Za-z0-9]{24,}$")


class WorldError(Exception):
    """A Vault-shaped error answer: status plus the `errors` list."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------------------------------------
# durations


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")


def parse_duration_seconds(value) -> int:
    """Seconds from an int, a decimal string, or a Go duration ("15m", "1h30m", "3600s").

    Same rules as Vault's TypeDurationSecond (parseutil.ParseDurationSecond), which also
    accepts a "d" suffix.
    """
    if isinstance(value, bool):
        raise ValueError(f"cannot parse {value!r} as a duration")
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if text == "":
        return 0
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    pos, total = 0, 0.0
    for match in _GO_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f'time: invalid duration "{text}"')
    return int(total)


# ---------------------------------------------------------------------------------------------
# state


class World:
    """Everything the front remembers: mounts, their config and roles, counters, faults."""

    def __init__(self, upstream: str, vault_version: str, admin_token: str | None = None):
        self.lock = threading.Lock()
        self.upstream = urlsplit(upstream)
        # OpenBao's root token: only to mount the KV v1 shadows and seed their entries (see
        # Handler.check_acl); callers' requests are always replayed with the caller's own token.
        self.admin_token = admin_token
        self.shadow_mounts: set[tuple[str, str]] = set()
        self.shadow_entries: set[tuple[str, str]] = set()
        self.default_options = {"vault_version": vault_version}
        self.options = dict(self.default_options)
        # (namespace, mount) -> {"config": dict | None, "roles": {name: dict}}
        self.mounts: dict[tuple[str, str], dict] = {}
        self.faults: list[dict] = []
        self.next_fault_id = 1
        self.sts_clients: dict[tuple, object] = {}
        self.reset_counters()

    # -- counters --------------------------------------------------------------------------
    def reset_counters(self) -> None:
        self.sts_calls: dict[str, int] = {}
        self.sts_issued_by_role: dict[str, int] = {}
        self.sts_total = 0
        self.sts_issued = 0
        self.proxied: dict[str, int] = {}
        self.proxied_total = 0
        self.faults_applied = 0

    def counters(self) -> dict:
        with self.lock:
            return {
                "sts_calls": dict(self.sts_calls),
                "sts_total": self.sts_total,
                "sts_issued": self.sts_issued,
                "sts_issued_by_role": dict(self.sts_issued_by_role),
                "proxied": dict(self.proxied),
                "proxied_total": self.proxied_total,
                "faults_applied": self.faults_applied,
            }

    # -- mounts ----------------------------------------------------------------------------
    def mount_state(self, namespace: str, mount: str, create: bool = False) -> dict | None:
        key = (namespace, mount)
        state = self.mounts.get(key)
        # `aws` exists in every namespace, like a default mount; others are added explicitly.
        if state is None and (create or mount == "aws"):
            state = {"config": None, "roles": {}}
            self.mounts[key] = state
        return state

    def find_route(self, namespace: str, rel: str):
        """(mount, kind, name) when `rel` belongs to an AWS mount, else None.

        kind is one of sts, creds, roles (name "" means the list), config, rotate-root,
        unsupported (any other path inside the mount: Vault's 404 "unsupported path").
        """
        with self.lock:
            mounts = {m for (ns, m) in self.mounts if ns == namespace} | {"aws"}
        for mount in sorted(mounts, key=len, reverse=True):
            if not rel.startswith(mount + "/"):
                continue
            rest = rel[len(mount) + 1:]
            match = re.fullmatch(r"(sts|creds|roles)/([^/]+)", rest)
            if match:
                return mount, match.group(1), match.group(2)
            if rest in ("roles", "roles/"):
                return mount, "roles", ""
            if rest == "config/root":
                return mount, "config", "root"
            if rest == "config/rotate-root":
                return mount, "rotate-root", ""
            # OpenBao holds a KV shadow at the mount's path, which must not answer for the engine.
            return mount, "unsupported", rest
        return None

    # -- faults ----------------------------------------------------------------------------
    def add_fault(self, spec: dict) -> dict:
        if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
            raise WorldError(400, 'a fault needs "path", a regex on the path after /v1/')
        mode = spec.get("mode", "status")
        if mode not in ("status", "reset", "truncate", "delay"):
            raise WorldError(400, 'fault "mode" must be status, reset, truncate or delay')
        try:
            pattern = re.compile(spec["path"])
        except re.error as err:
            raise WorldError(400, f"fault path is not a regex: {err}") from err
        status = spec.get("status")
        if status is None:
            status = 503 if mode == "status" else 200
        count = spec.get("count")
        fault = {
            "id": None,
            "path": spec["path"],
            "method": (spec.get("method") or "").upper() or None,
            "status": int(status),
            "body": spec.get("body"),
            "delay_ms": int(spec.get("delay_ms") or 0),
            "ratio": float(spec.get("ratio", 1.0)),
            "count": None if count is None else int(count),
            "mode": mode,
            "applied": 0,
            "_re": pattern,
        }
        with self.lock:
            fault["id"] = self.next_fault_id
            self.next_fault_id += 1
            self.faults.append(fault)
        return public_fault(fault)

    def pick_fault(self, method: str, rel: str) -> dict | None:
        """First fault whose regex matches and that still has uses; its ratio decides."""
        with self.lock:
            for fault in self.faults:
                if fault["count"] is not None and fault["count"] <= 0:
                    continue
                if fault["method"] and fault["method"] != method:
                    continue
                if not fault["_re"].search(rel):
                    continue
                if random.random() >= fault["ratio"]:
                    return None
                if fault["count"] is not None:
                    fault["count"] -= 1
                fault["applied"] += 1
                self.faults_applied += 1
                return dict(fault)
        return None

    # -- STS -------------------------------------------------------------------------------
    def sts_client(self, config: dict):
        key = (config["access_key"], config["secret_key"], config.get("sts_endpoint"),
               config.get("sts_region") or config.get("region") or "us-east-1",
               int(config.get("max_retries", -1)))
        with self.lock:
            client = self.sts_clients.get(key)
        if client is not None:
            return client
        retries = {"mode": "standard"}
        if key[4] >= 0:
            retries["total_max_attempts"] = key[4] + 1
        # An explicit session: the front never reads ~/.aws or the environment's keys.
        session = boto3.session.Session(
            aws_access_key_id=key[0], aws_secret_access_key=key[1], region_name=key[3])
        client = session.client(
            "sts", endpoint_url=key[2] or None,
            config=BotoConfig(retries=retries, connect_timeout=5, read_timeout=20,
                              max_pool_connections=32))
        with self.lock:
            self.sts_clients[key] = client
        return client


def record_issued(**secrets_by_kind) -> None:
    """Appends `sha256 length kind` for each secret the world minted to .run/issued.sha256, so
    scripts/leak-scan can find them in logs and reports without a plaintext copy anywhere."""
    if Handler.issued_file is None:
        return
    import hashlib

    lines = "".join(
        f"{hashlib.sha256(v.encode()).hexdigest()} {len(v)} {k}\n"
        for k, v in secrets_by_kind.items() if isinstance(v, str) and len(v) >= 8)
    with Handler.log_lock:
        with open(Handler.issued_file, "a", encoding="utf-8") as f:
            f.write(lines)


def public_fault(fault: dict) -> dict:
    return {k: v for k, v in fault.items() if not k.startswith("_")}


# ---------------------------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections to Vault
    server_version = "withawsrole-world-front"
    sys_version = ""
    world: World  # set on the class in main()
    log_file = None
    issued_file: str | None = None  # .run/issued.sha256 beside the log (see record_issued)
    jwt_key_file: str | None = None  # signs the world cluster's service-account tokens
    log_lock = threading.Lock()
    upstream_local = threading.local()

    # Vault's API uses the LIST verb too; every verb goes through one dispatcher.
    def do_GET(self): self.dispatch()  # noqa: E704
    def do_POST(self): self.dispatch()  # noqa: E704
    def do_PUT(self): self.dispatch()  # noqa: E704
    def do_DELETE(self): self.dispatch()  # noqa: E704
    def do_LIST(self): self.dispatch()  # noqa: E704
    def do_PATCH(self): self.dispatch()  # noqa: E704
    def do_HEAD(self): self.dispatch()  # noqa: E704
    def do_OPTIONS(self): self.dispatch()  # noqa: E704

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        pass  # replaced by log_line, which never writes secrets

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: with Nagle on, the body waits for the client's
        # delayed ACK (up to 40 ms on Linux), which swamped client-side timings in benchmarks.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing --------------------------------------------------------------------------
    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send(self, status: int, body, headers: dict | None = None) -> None:
        if isinstance(body, (dict, list)):
            payload = json.dumps(body).encode()
            ctype = "application/json"
        elif isinstance(body, bytes):
            payload = body
            ctype = "application/json"
        elif body is None:
            payload = b""
            ctype = None
        else:
            payload = str(body).encode()
            ctype = "text/plain; charset=utf-8"
        self.send_response(status)
        sent = set()
        for name, value in (headers or {}).items():
            self.send_header(name, value)
            sent.add(name.lower())
        if ctype and "content-type" not in sent and payload:
            self.send_header("Content-Type", ctype)
        if "cache-control" not in sent:
            self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)
        self.status_sent = status

    def error(self, status: int, message: str) -> None:
        self.send(status, {"errors": [message]})

    def log_line(self, how: str, started: float) -> None:
        if self.log_file is None:
            return
        path = urlsplit(self.path).path
        shown = "/".join("***" if TOKEN_LIKE.match(seg) else seg for seg in path.split("/"))
        ns = self.headers.get("X-Vault-Namespace")
        line = "%s %s %s %s %s %dms%s\n" % (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), self.command, shown,
            getattr(self, "status_sent", "-"), how, (time.monotonic() - started) * 1000,
            f" ns={ns}" if ns else "")
        with self.log_lock:
            self.log_file.write(line)
            self.log_file.flush()

    # -- dispatch --------------------------------------------------------------------------
    def dispatch(self) -> None:
        started = time.monotonic()
        how = "?"
        try:
            body = self.read_body()
            parts = urlsplit(self.path)
            if parts.path == "/_world" or parts.path.startswith("/_world/"):
                how = "control"
                self.control(parts.path, body)
                return
            if not parts.path.startswith("/v1/"):
                how = "proxy"
                self.proxy(body)
                return
            rel = parts.path[len("/v1/"):]
            namespace = (self.headers.get("X-Vault-Namespace") or "").strip("/")
            route = self.world.find_route(namespace, rel)
            w = self.world
            with w.lock:
                if route and route[1] in ("sts", "creds"):
                    key = f"{route[0]}/{route[2]}"
                    w.sts_calls[key] = w.sts_calls.get(key, 0) + 1
                    w.sts_total += 1
                elif not route:
                    w.proxied[rel] = w.proxied.get(rel, 0) + 1
                    w.proxied_total += 1
            fault = w.pick_fault(self.command, rel)
            if fault is not None:
                how = f"fault:{fault['mode']}#{fault['id']}"
                if fault["delay_ms"]:
                    time.sleep(fault["delay_ms"] / 1000)
                if fault["mode"] != "delay":
                    self.apply_fault(fault, route)
                    return
            if route:
                how = f"front:{route[1]}"
                self.front(namespace, route, parts.query, body)
            else:
                how = "proxy"
                self.proxy(body)
        except WorldError as err:
            self.error(err.status, err.message)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:  # noqa: BLE001 - a bug here must answer, not hang the client
            how += f" crash:{type(err).__name__}"
            try:
                self.error(500, f"world front internal error: {type(err).__name__}")
            except OSError:
                self.close_connection = True
        finally:
            self.log_line(how, started)

    # -- faults ----------------------------------------------------------------------------
    def apply_fault(self, fault: dict, route) -> None:
        status = fault["status"]
        body = fault["body"]
        if fault["mode"] == "status":
            if body is None:
                body = {"errors": [STANDARD_ERRORS.get(status, "injected fault")]}
            self.send(status, body)
            return
        # reset/truncate damage a plausible success answer (never real credentials).
        if body is None:
            mount, kind, role = route if route else ("aws", "sts", "fault")
            body = vault_secret(f"{mount}/{kind}/{role}", 3600, {
                "access_key": "fault-access-key-id", "secret_key": "fault",
                "session_token": "fault", "arn": "arn:aws:sts::000000000000:assumed-role/fault/fault"})
        payload = body if isinstance(body, bytes) else (
            json.dumps(body).encode() if isinstance(body, (dict, list)) else str(body).encode())
        half = payload[: max(1, len(payload) // 2)]
        if fault["mode"] == "truncate":
            # Well-formed HTTP whose JSON body stops half way: a parse error for the client.
            self.send(status, half, {"Content-Type": "application/json"})
            self.close_connection = True
            return
        # reset: promise the whole body, send half, then abort with a TCP RST.
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(half)
        self.wfile.flush()
        self.status_sent = status
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    # -- upstream --------------------------------------------------------------------------
    def upstream_request(self, method: str, path: str, body: bytes, headers: dict):
        """One request to OpenBao over a per-thread keep-alive connection."""
        up = self.world.upstream
        for attempt in (1, 2):
            conn = getattr(self.upstream_local, "conn", None)
            if conn is None:
                conn = HTTPConnection(up.hostname, up.port or 80, timeout=30)
                self.upstream_local.conn = conn
            try:
                conn.request(method, path, body=body or None, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.getheaders(), resp.read()
            except (HTTPException, OSError):
                conn.close()
                self.upstream_local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def proxy(self, body: bytes) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            status, resp_headers, payload = self.upstream_request(self.command, self.path, body, headers)
        except (HTTPException, OSError) as err:
            self.error(502, f"world front: OpenBao unreachable ({type(err).__name__})")
            return
        if status == 200 and "/auth/" in self.path:
            # Logins and token creations mint Vault tokens: record them for the leak scan.
            try:
                auth = json.loads(payload).get("auth") or {}
                record_issued(vault_token=auth.get("client_token"), accessor=auth.get("accessor"))
            except (ValueError, AttributeError):
                pass
        kept = {k: v for k, v in resp_headers if k.lower() not in HOP_BY_HOP and k.lower() != "date"}
        self.send_response(status)
        for name, value in kept.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)
        self.status_sent = status

    def caller_headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        token = self.headers.get("X-Vault-Token")
        if not token:
            auth = self.headers.get("Authorization", "")
            if auth.lower().startswith("bearer "):
                token = auth[7:].strip()
        if token:
            headers["X-Vault-Token"] = token
        ns = self.headers.get("X-Vault-Namespace")
        if ns:
            headers["X-Vault-Namespace"] = ns
        return headers

    def admin_request(self, namespace: str, method: str, path: str, body: dict | None = None):
        """One request to OpenBao with the admin token (shadow mounts and entries only)."""
        if not self.world.admin_token:
            raise WorldError(500, "world front: started without --admin-token, cannot check policies")
        headers = {"X-Vault-Token": self.world.admin_token, "Content-Type": "application/json"}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        payload = json.dumps(body).encode() if body is not None else b""
        try:
            status, _, answer = self.upstream_request(method, path, payload, headers)
            return status, answer
        except (HTTPException, OSError) as err:
            raise WorldError(502, f"world front: OpenBao unreachable ({type(err).__name__})") from err

    def ensure_shadow(self, namespace: str, mount: str, rel: str | None, exists: bool) -> None:
        """The KV v1 shadow of `mount` exists, and its entry at `rel` exists iff `exists`.

        KV has an existence check (a write to a new key needs `create`, to an existing one
        `update`); the AWS engine's sts/creds/roles/rotate-root paths have none (every write
        needs `update`), config/root has one (`create` until a config is stored). Seeding or
        removing the entry first makes the caller's replayed write the operation Vault would see.
        """
        w = self.world
        if (namespace, mount) not in w.shadow_mounts:
            status, answer = self.admin_request(namespace, "POST", f"/v1/sys/mounts/{mount}", {
                "type": "kv", "options": {"version": "1"},
                "description": "world front: ACL shadow of the AWS engine (policies are checked here)"})
            if status not in (200, 204) and b"already in use" not in answer:
                # e.g. an unknown namespace: the caller's replayed request gets OpenBao's answer.
                return
            with w.lock:
                w.shadow_mounts.add((namespace, mount))
        if rel is None:
            return
        key = (namespace, rel)
        with w.lock:
            known = key in w.shadow_entries
        if exists and not known:
            self.admin_request(namespace, "POST", f"/v1/{rel}", {"world_shadow": "ACL replay target"})
            with w.lock:
                w.shadow_entries.add(key)
        elif not exists:
            self.admin_request(namespace, "DELETE", f"/v1/{rel}")
            with w.lock:
                w.shadow_entries.discard(key)

    def acl(self, namespace: str, mount: str, rel: str, exists: bool = True, hide=()) -> None:
        """check_acl for the request being served; `hide` names body fields whose values are
        secrets: the shadow sees the field with a placeholder value, never the secret."""
        body = getattr(self, "raw_body", b"")
        if hide and body.strip():
            try:
                fields = json.loads(body)
                for name in hide:
                    if isinstance(fields, dict) and name in fields:
                        fields[name] = "(hidden from the ACL shadow)"
                body = json.dumps(fields).encode()
            except ValueError:
                pass
        self.check_acl(namespace, mount, rel, body, getattr(self, "raw_query", ""), exists)

    def check_acl(self, namespace: str, mount: str, rel: str, body: bytes, query: str,
                  exists: bool = True) -> None:
        """Raise Vault's 403 unless OpenBao's ACL admits this very request.

        The request (method, path, query, body) is replayed with the caller's token on the KV v1
        shadow mounted at the engine's path, so OpenBao evaluates capabilities and
        allowed/denied/required_parameters exactly as Vault would for the engine. Only a 403
        is a refusal: after the ACL, KV may answer anything (404 on a read, 400 on an empty
        write). `exists` says whether Vault's existence check would find the entry (writes).
        """
        method = self.command
        headers = self.caller_headers()
        if "X-Vault-Token" not in headers:
            raise WorldError(403, "permission denied")
        target = f"/v1/{rel}" + (f"?{query}" if query else "")
        w = self.world
        for attempt in (1, 2):
            if method in ("POST", "PUT"):
                self.ensure_shadow(namespace, mount, rel, exists)
            else:
                self.ensure_shadow(namespace, mount, None, True)
            try:
                status, _, payload = self.upstream_request(method, target, body, headers)
            except (HTTPException, OSError) as err:
                raise WorldError(502, f"world front: OpenBao unreachable ({type(err).__name__})") from err
            try:
                message = json.loads(payload)["errors"][0]
            except Exception:  # noqa: BLE001
                message = STANDARD_ERRORS.get(status, "upstream error")
            stale = (status == 404 and "no handler for route" in message) or \
                (status in (401, 403) and method in ("POST", "PUT") and exists)
            if attempt == 1 and stale:
                # An OpenBao restarted under the front lost the shadow (or its entry), and a
                # missing entry turns the caller's write into a `create`: set it up again, once.
                with w.lock:
                    w.shadow_mounts.discard((namespace, mount))
                    w.shadow_entries.discard((namespace, rel))
                continue
            break
        if status in (401, 403):
            raise WorldError(403, message)
        if status >= 500 or status == 429 or (status == 404 and payload.strip() != b'{"errors":[]}') \
                or (status == 400 and "missing data fields" not in message):
            # Sealed, rate limited, no such namespace...: OpenBao's own answer is the truthful
            # one. (After the ACL, KV answers only 404 with no error or "missing data fields".)
            raise WorldError(status, message)
        if method == "DELETE" and status < 300:
            with w.lock:
                w.shadow_entries.discard((namespace, rel))

    def display_name(self) -> str:
        """The token's display name, for Vault's default role_session_name."""
        try:
            status, _, payload = self.upstream_request(
                "GET", "/v1/auth/token/lookup-self", b"", self.caller_headers())
            if status == 200:
                return json.loads(payload)["data"].get("display_name") or "token"
        except Exception:  # noqa: BLE001 - only cosmetic
            pass
        return "token"

    # -- the AWS secrets engine ------------------------------------------------------------
    def front(self, namespace: str, route, query: str, body: bytes) -> None:
        mount, kind, name = route
        self.raw_body, self.raw_query = body, query  # replayed by check_acl
        params: dict = {}
        if self.command in ("POST", "PUT") and body.strip():
            try:
                params = json.loads(body)
            except ValueError as err:
                raise WorldError(400, f"failed to parse JSON input: {err}") from err
            if params is None:
                params = {}  # `vault write -f` sends `null`, which Vault takes as no parameters
            if not isinstance(params, dict):
                raise WorldError(400, "failed to parse JSON input: not an object")
        else:
            params = {k: v[-1] for k, v in parse_qs(query).items()}
        if kind in ("sts", "creds"):
            self.issue(namespace, mount, kind, name, params)
        elif kind == "roles":
            self.roles(namespace, mount, name, params, query)
        elif kind == "config":
            self.config_root(namespace, mount, params)
        elif kind == "rotate-root":
            self.rotate_root(namespace, mount)
        else:
            raise WorldError(404, "unsupported path")

    def issue(self, namespace: str, mount: str, kind: str, role_name: str, params: dict) -> None:
        method = self.command
        if method not in ("GET", "POST", "PUT"):
            raise WorldError(405, STANDARD_ERRORS[405])
        self.acl(namespace, mount, f"{mount}/{kind}/{role_name}")
        w = self.world
        with w.lock:
            state = w.mount_state(namespace, mount)
            role = dict(state["roles"].get(role_name) or {}) if state else {}
            config = dict(state["config"]) if state and state["config"] else None
            options = dict(w.options)
        if not role:
            raise WorldError(400, f'Role "{role_name}" not found')
        if role["credential_type"] != "assumed_role":
            raise WorldError(400, f"the test world only issues assumed_role credentials, "
                                  f"not {role['credential_type']}")
        try:
            ttl = parse_duration_seconds(params["ttl"]) if params.get("ttl") not in (None, "") else None
        except ValueError as err:
            raise WorldError(400, f'error converting input {params["ttl"]} for field "ttl": {err}') from err
        if ttl is None:
            ttl = role["default_sts_ttl"] or DEFAULT_STS_TTL
        max_ttl = role["max_sts_ttl"] or SYSTEM_MAX_LEASE_TTL
        ttl = min(ttl, max_ttl)  # what Vault does (path_user.go): silently capped, never an error
        role_arn = params.get("role_arn") or ""
        arns = role["role_arns"]
        if not role_arn:
            if len(arns) != 1:
                raise WorldError(400, "did not supply a role_arn parameter and unable to determine one")
            role_arn = arns[0]
        elif role_arn not in arns:
            raise WorldError(400, f'role_arn "{role_arn}" not in allowed role arns for Vault role "{role_name}"')
        # Vault replaces characters STS does not take by "_" (and leaves the length to STS).
        session_name = (normalize_name(params["role_session_name"]) if params.get("role_session_name")
                        else default_session_name(self.display_name(), role_name))
        if config is None or not config.get("access_key"):
            raise WorldError(400, "Error assuming role: NoCredentialProviders: no valid providers in chain")
        policy, policy_arns = role["policy_document"], list(role["policy_arns"])
        if role["iam_groups"]:
            # Vault adds the groups' inline policies to the session policy and their attached
            # policies to the policy ARNs, reading them with its own key (path_user.go).
            policy, group_arns = self.group_policies(config, role["iam_groups"], policy)
            policy_arns += group_arns
        request = {"RoleArn": role_arn, "RoleSessionName": session_name, "DurationSeconds": int(ttl)}
        if policy:
            request["Policy"] = policy
        if policy_arns:
            request["PolicyArns"] = [{"arn": a} for a in policy_arns]
        if role["external_id"]:
            request["ExternalId"] = role["external_id"]
        if role["session_tags"]:
            request["Tags"] = [{"Key": k, "Value": v} for k, v in role["session_tags"].items()]
        try:
            answer = w.sts_client(config).assume_role(**request)
        except ClientError as err:
            error = err.response.get("Error", {})
            meta = err.response.get("ResponseMetadata", {})
            code = error.get("Code", "Unknown")
            status = 502 if code in ("Throttling", "ThrottlingException", "RequestLimitExceeded") else 400
            raise WorldError(status, "Error assuming role: %s: %s\n\tstatus code: %s, request id: %s" % (
                code, error.get("Message", ""), meta.get("HTTPStatusCode", "?"), meta.get("RequestId", ""))) from err
        except ParamValidationError as err:
            # aws-sdk-go validates before sending too (e.g. DurationSeconds < 900).
            raise WorldError(400, f"Error assuming role: InvalidParameter: {err}") from err
        except BotoCoreError as err:
            raise WorldError(400, f"Error assuming role: RequestError: send request failed\ncaused by: {err}") from err
        creds = answer["Credentials"]
        # Every Vault answers security_token; 1.16 added session_token (same value).
        data = {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "security_token": creds["SessionToken"]}
        if options["vault_version"] != "1.15":
            data["session_token"] = creds["SessionToken"]
        data["arn"] = answer["AssumedRoleUser"]["Arn"]
        # Vault's lease (or no_lease's data.ttl) is the time left until AWS's Expiration, often
        # 1 s less than granted; the world answers the granted ttl, so tests can be exact.
        left = int(ttl)
        record_issued(access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                      session_token=creds["SessionToken"])
        with w.lock:
            w.sts_issued += 1
            key = f"{mount}/{role_name}"
            w.sts_issued_by_role[key] = w.sts_issued_by_role.get(key, 0) + 1
        if role.get("no_lease"):
            # A role with no_lease answers without a secret: lease_duration 0, the ttl in data.
            data["ttl"] = left
            self.send(200, vault_response(data))
        else:
            self.send(200, vault_secret(f"{mount}/{kind}/{role_name}", left, data))

    def group_policies(self, config: dict, groups: list, policy: str) -> tuple[str, list]:
        """The session policy and policy ARNs of `groups`, as Vault gathers them: IAM
        ListAttachedGroupPolicies, ListGroupPolicies, GetGroupPolicy with the engine's key.
        IAM refusals are Vault's 400 with AWS's error text."""
        iam = boto3.session.Session(
            aws_access_key_id=config["access_key"], aws_secret_access_key=config["secret_key"],
            region_name=config.get("region") or "us-east-1",
        ).client("iam", endpoint_url=config.get("iam_endpoint") or None,
                 config=BotoConfig(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=20))
        statements, arns = [], []
        try:
            for group in groups:
                arns += [p["PolicyArn"] for p in
                         iam.list_attached_group_policies(GroupName=group)["AttachedPolicies"]]
                for name in iam.list_group_policies(GroupName=group)["PolicyNames"]:
                    document = iam.get_group_policy(GroupName=group, PolicyName=name)["PolicyDocument"]
                    if isinstance(document, str):
                        document = json.loads(unquote(document))
                    found = document.get("Statement", [])
                    statements += found if isinstance(found, list) else [found]
        except ClientError as err:
            error = err.response.get("Error", {})
            raise WorldError(400, f"{error.get('Code')}: {error.get('Message')}") from err
        if not statements:
            return policy, arns
        if policy:
            found = json.loads(policy).get("Statement", [])
            statements += found if isinstance(found, list) else [found]
        return json.dumps({"Version": "2012-10-17", "Statement": statements}), arns

    def roles(self, namespace: str, mount: str, name: str, params: dict, query: str) -> None:
        method = self.command
        listing = method == "LIST" or (method == "GET" and (name == "" or parse_qs(query).get("list") == ["true"]))
        w = self.world
        if listing:
            self.acl(namespace, mount, f"{mount}/roles")
            with w.lock:
                keys = sorted((w.mount_state(namespace, mount) or {"roles": {}})["roles"])
            if not keys:
                self.send(404, {"errors": []})
                return
            self.send(200, vault_response({"keys": keys}))
            return
        path = f"{mount}/roles/{name}"
        if method == "GET":
            self.acl(namespace, mount, path)
            with w.lock:
                role = (w.mount_state(namespace, mount) or {"roles": {}})["roles"].get(name)
            if role is None:
                self.send(404, {"errors": []})
                return
            self.send(200, vault_response(dict(role)))
        elif method in ("POST", "PUT"):
            # No existence check on Vault's roles path: creating a role needs `update` too.
            self.acl(namespace, mount, path)
            with w.lock:
                exists = name in (w.mount_state(namespace, mount) or {"roles": {}})["roles"]
            with w.lock:
                state = w.mount_state(namespace, mount)
                current = dict(state["roles"].get(name) or ROLE_FIELDS)
                role = merge_role(current, params, creating=not exists)
                state["roles"][name] = role
            self.send(204, None)
        elif method == "DELETE":
            self.acl(namespace, mount, path)
            with w.lock:
                (w.mount_state(namespace, mount) or {"roles": {}})["roles"].pop(name, None)
            self.send(204, None)
        else:
            raise WorldError(405, STANDARD_ERRORS[405])

    def config_root(self, namespace: str, mount: str, params: dict) -> None:
        method = self.command
        path = f"{mount}/config/root"
        w = self.world
        if method == "GET":
            self.acl(namespace, mount, path)
            with w.lock:
                config = (w.mount_state(namespace, mount) or {}).get("config")
            if not config:
                self.send(404, {"errors": []})
                return
            shown = {k: v for k, v in config.items() if k != "secret_key"}
            self.send(200, vault_response(shown))
        elif method in ("POST", "PUT"):
            with w.lock:
                exists = bool((w.mount_state(namespace, mount) or {}).get("config"))
            # config/root has an existence check: `create` for the first write, `update` after.
            self.acl(namespace, mount, path, exists=exists, hide=("secret_key",))
            unknown = set(params) - set(CONFIG_FIELDS)
            # Vault merges: given fields replace, others keep their stored values
            # (path_config_root.go); only username_template falls back to the default.
            with w.lock:
                config = dict((w.mount_state(namespace, mount) or {}).get("config") or CONFIG_FIELDS)
            config["username_template"] = ""
            for key in CONFIG_FIELDS:
                if key in params:
                    config[key] = params[key]
            try:
                config["max_retries"] = int(config["max_retries"])
            except (TypeError, ValueError) as err:
                raise WorldError(400, f'error converting input for field "max_retries": {err}') from err
            with w.lock:
                w.mount_state(namespace, mount)["config"] = config
            if unknown:
                self.send(200, vault_response(None, warnings=[
                    f"Endpoint ignored these unrecognized parameters: {sorted(unknown)}"]))
            else:
                self.send(204, None)
        else:
            raise WorldError(405, STANDARD_ERRORS[405])

    def rotate_root(self, namespace: str, mount: str) -> None:
        """config/rotate-root as Vault does it: with the configured key, GetUser (the key's
        own user), CreateAccessKey, store the new key, then DeleteAccessKey of the old one.
        AWS refusals are Go errors in Vault, so they come back as 500s."""
        if self.command not in ("POST", "PUT"):
            raise WorldError(405, STANDARD_ERRORS[405])
        self.acl(namespace, mount, f"{mount}/config/rotate-root")
        w = self.world
        with w.lock:
            config = dict((w.mount_state(namespace, mount) or {}).get("config") or {})
        if not config.get("access_key") or not config.get("secret_key"):
            raise WorldError(400, "Cannot call config/rotate-root when either access_key or secret_key is empty")
        iam = boto3.session.Session(
            aws_access_key_id=config["access_key"], aws_secret_access_key=config["secret_key"],
            region_name=config.get("region") or "us-east-1",
        ).client("iam", endpoint_url=config.get("iam_endpoint") or None,
                 config=BotoConfig(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=20))

        def aws_error(what: str, err: Exception) -> WorldError:
            if isinstance(err, ClientError):
                error = err.response.get("Error", {})
                return WorldError(500, f"error calling {what}: {error.get('Code')}: {error.get('Message')}")
            return WorldError(500, f"error calling {what}: {type(err).__name__}")

        try:
            user = iam.get_user()["User"]["UserName"]
        except (ClientError, BotoCoreError) as err:
            raise aws_error("GetUser", err) from err
        try:
            created = iam.create_access_key(UserName=user)["AccessKey"]
        except (ClientError, BotoCoreError) as err:
            raise aws_error("CreateAccessKey", err) from err
        record_issued(secret_key=created["SecretAccessKey"])
        with w.lock:
            state = w.mount_state(namespace, mount)
            state["config"] = {**state["config"], "access_key": created["AccessKeyId"],
                               "secret_key": created["SecretAccessKey"]}
        try:
            iam.delete_access_key(UserName=user, AccessKeyId=config["access_key"])
        except (ClientError, BotoCoreError) as err:
            error = aws_error("DeleteAccessKey", err)
            raise WorldError(500, error.message.replace("error calling DeleteAccessKey",
                                                        "error deleting old access key")) from err
        self.send(200, vault_response({"access_key": created["AccessKeyId"]}))

    # -- control API -----------------------------------------------------------------------
    def control(self, path: str, body: bytes) -> None:
        if not self.client_address[0].startswith("127.") and self.client_address[0] != "::1":
            raise WorldError(403, "the control API is loopback only")
        w = self.world
        method = self.command
        try:
            spec = json.loads(body) if body.strip() else {}
        except ValueError as err:
            raise WorldError(400, f"control body is not JSON: {err}") from err
        sub = path[len("/_world"):].strip("/")
        if sub == "health" and method == "GET":
            self.send(200, {"ok": True, "pid": os.getpid()})
        elif sub == "counters" and method == "GET":
            self.send(200, w.counters())
        elif sub == "reset" and method == "POST":
            with w.lock:
                w.reset_counters()
                w.faults.clear()
                w.options = dict(w.default_options)
            self.send(200, {"ok": True})
        elif sub == "faults" and method == "GET":
            with w.lock:
                self.send(200, {"faults": [public_fault(f) for f in w.faults]})
        elif sub == "faults" and method == "POST":
            specs = spec if isinstance(spec, list) else [spec]
            added = [w.add_fault(s) for s in specs]
            self.send(200, added[0] if not isinstance(spec, list) else {"faults": added})
        elif sub == "faults" and method == "DELETE":
            with w.lock:
                w.faults.clear()
            self.send(200, {"ok": True})
        elif sub.startswith("faults/") and method == "DELETE":
            fault_id = sub.split("/", 1)[1]
            with w.lock:
                w.faults[:] = [f for f in w.faults if str(f["id"]) != fault_id]
            self.send(200, {"ok": True})
        elif sub == "options" and method == "GET":
            with w.lock:
                self.send(200, dict(w.options))
        elif sub == "options" and method in ("POST", "PUT"):
            allowed = {"vault_version": set(VAULT_VERSIONS)}
            for key, value in spec.items():
                if key not in allowed or value not in allowed[key]:
                    raise WorldError(400, f"unknown option {key}={value!r}; allowed: "
                                          f"{ {k: sorted(v) for k, v in allowed.items()} }")
            with w.lock:
                w.options.update(spec)
                self.send(200, dict(w.options))
        elif sub == "k8s/apis/authentication.k8s.io/v1/tokenreviews" and method == "POST":
            # OpenBao's kubernetes auth (kubernetes_host = <front>/_world/k8s) asks here.
            self.send(201, token_review(spec, self.jwt_key_file))
        elif sub == "mounts" and method == "GET":
            with w.lock:
                mounts = sorted({(ns, m) for (ns, m) in w.mounts} | {("", "aws")})
            self.send(200, {"mounts": [{"namespace": ns, "mount": m} for ns, m in mounts]})
        elif sub == "mounts" and method == "POST":
            mount = str(spec.get("mount") or "").strip("/")
            if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", mount):
                raise WorldError(400, 'mounts need {"mount": "name", "namespace"?: "ns"}')
            with w.lock:
                w.mount_state(str(spec.get("namespace") or "").strip("/"), mount, create=True)
            self.send(200, {"ok": True, "mount": mount})
        else:
            raise WorldError(404, f"no control endpoint {method} /_world/{sub}")


def token_review(review: dict, key_file: str | None) -> dict:
    """A Kubernetes TokenReview answer: the world's cluster signs service-account tokens with
    the JWT key in .run/ (mint_jwt.py), so a token is authentic iff that key signed it and it
    has not expired. The account comes from the projected (`kubernetes.io`) or legacy claims."""
    import base64

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    spec = review.get("spec") or {}
    token = str(spec.get("token") or "")
    answer = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
              "status": {"authenticated": False}}

    def b64(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    try:
        head, body, sig = token.split(".")
        key = serialization.load_pem_private_key(open(key_file, "rb").read(), None).public_key()
        key.verify(b64(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        claims = json.loads(b64(body))
    except (ValueError, TypeError, OSError, InvalidSignature):
        answer["status"]["error"] = "invalid bearer token"
        return answer
    if int(claims.get("exp", 0)) <= time.time():
        answer["status"]["error"] = "token has expired"
        return answer
    k8s = claims.get("kubernetes.io") or {}
    namespace = k8s.get("namespace") or claims.get("kubernetes.io/serviceaccount/namespace")
    account = k8s.get("serviceaccount") or {}
    name = account.get("name") or claims.get("kubernetes.io/serviceaccount/service-account.name")
    uid = account.get("uid") or claims.get("kubernetes.io/serviceaccount/service-account.uid")
    if not (namespace and name):
        answer["status"]["error"] = "not a service account token"
        return answer
    answer["status"] = {
        "authenticated": True,
        "user": {"username": f"system:serviceaccount:{namespace}:{name}", "uid": uid or "",
                 "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]},
        "audiences": spec.get("audiences") or [],
    }
    return answer


def merge_role(current: dict, params: dict, creating: bool) -> dict:
    """Apply a roles/<name> write the way Vault does: given fields replace, others stay."""
    role = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
            for k, v in current.items()}
    for key, value in params.items():
        if key not in ROLE_FIELDS:
            continue  # Vault ignores unknown parameters (with a warning)
        if key in LIST_FIELDS:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            role[key] = list(value or [])
        elif key in TTL_FIELDS:
            try:
                role[key] = parse_duration_seconds(value)
            except ValueError as err:
                raise WorldError(400, f'error converting input {value} for field "{key}": {err}') from err
        elif key == "policy_document" and isinstance(value, (dict, list)):
            role[key] = json.dumps(value)
        elif key == "no_lease":
            role[key] = value is True or str(value).lower() in ("true", "1")
        else:
            role[key] = value
    if creating and not params.get("credential_type"):
        raise WorldError(400, "did not supply credential_type")
    if role["credential_type"] not in CREDENTIAL_TYPES:
        raise WorldError(400, f"unrecognized credential_type: {role['credential_type']}")
    # A write merges into the stored role, so fields of another credential type stay and
    # fail here, as in Vault (docs/migration.md: clear them when switching a role's type).
    problems = []
    if role["max_sts_ttl"] and role["default_sts_ttl"] > role["max_sts_ttl"]:
        problems.append('"default_sts_ttl" value must be less than or equal to "max_sts_ttl" value')
    for field in ("default_sts_ttl", "max_sts_ttl"):
        if role[field] and role["credential_type"] == "iam_user":
            problems.append(f"{field} parameter only valid for assumed_role, federation_token, "
                            "and session_token credential types")
    if role["user_path"] and role["credential_type"] != "iam_user":
        problems.append("user_path parameter only valid for iam_user credential type")
    if role["permissions_boundary_arn"] and role["credential_type"] != "iam_user":
        problems.append("cannot supply permissions_boundary_arn when credential_type isn't iam_user")
    if role["role_arns"] and role["credential_type"] != "assumed_role":
        problems.append("cannot supply role_arns when credential_type isn't assumed_role")
    if problems:
        raise WorldError(400, "\n".join(problems))
    return role


def vault_response(data, warnings=None) -> dict:
    return {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False,
            "lease_duration": 0, "data": data, "wrap_info": None, "warnings": warnings, "auth": None}


def vault_secret(lease_prefix: str, ttl: int, data: dict) -> dict:
    lease_suffix = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))
    return {"request_id": str(uuid.uuid4()), "lease_id": f"{lease_prefix}/{lease_suffix}",
            "renewable": False, "lease_duration": ttl, "data": data, "wrap_info": None,
            "warnings": None, "auth": None}


def normalize_name(name: str) -> str:
    """Vault's normalizeDisplayName: every character STS does not take becomes "_"."""
    return re.sub(r"[^a-zA-Z0-9+=,.@_-]", "_", name)


def default_session_name(display_name: str, role_name: str) -> str:
    """Shaped like Vault's default username template: vault-<display>-<role>-<time>-<random>."""
    stem = f"{normalize_name(display_name)}-{normalize_name(role_name)}"[:42]
    rand = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(20))
    return f"vault-{stem}-{int(time.time())}-{rand}"[:64]


class FrontServer(ThreadingHTTPServer):
    daemon_threads = True
    # listen() backlog: benchmarks open many connections at once; the stdlib default (5)
    # overflows and the kernel then drops or resets new connections.
    request_queue_size = 256


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default=os.environ.get("FRONT_LISTEN", "127.0.0.1:18200"))
    parser.add_argument("--upstream", default=os.environ.get("FRONT_UPSTREAM", "http://127.0.0.1:18201"))
    parser.add_argument("--log", default=os.environ.get("FRONT_LOG"))
    # A second listener speaking TLS (cert and key from OpenBao's -dev-tls), same handler.
    parser.add_argument("--tls-listen")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--jwt-key", help="PEM key that signs the world's k8s tokens")
    args = parser.parse_args(argv)
    vault_version = os.environ.get("FRONT_VAULT_VERSION", "1.16")
    if vault_version not in VAULT_VERSIONS:
        sys.exit(f"front: FRONT_VAULT_VERSION must be one of {', '.join(VAULT_VERSIONS)}, not {vault_version!r}")
    host, _, port = args.listen.rpartition(":")
    # OpenBao's root token (the dev server's, world-root): mounts the KV shadows that let
    # OpenBao's ACL judge each engine request. From the environment, so `ps` never shows it.
    Handler.world = World(args.upstream, vault_version, os.environ.get("FRONT_ADMIN_TOKEN"))
    if args.log:
        Handler.log_file = open(args.log, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        Handler.issued_file = os.path.join(os.path.dirname(os.path.abspath(args.log)), "issued.sha256")
    Handler.jwt_key_file = args.jwt_key
    server = FrontServer((host, int(port)), Handler)
    print(f"front: listening on {host}:{port}, OpenBao at {args.upstream}", flush=True)
    if args.tls_listen:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        tls_host, _, tls_port = args.tls_listen.rpartition(":")
        tls_server = FrontServer((tls_host, int(tls_port)), Handler)
        tls_server.socket = context.wrap_socket(tls_server.socket, server_side=True)
        threading.Thread(target=tls_server.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()
        print(f"front: TLS listening on {tls_host}:{tls_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
