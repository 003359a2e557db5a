#!/usr/bin/env python3
"""Writes a release's manifest (release.json) to stdout; scripts/release calls it.

    scripts/release-manifest.py <version> <source commit> <artifact path> ...

What an admin checks a release against (docs/install.md, "Verifying a release"): the sha256 of
every artifact in the release tree and of every native library inside the bridge jar, the
platforms the jar carries and the oldest glibc each Linux library and CLI loads on (its highest
GLIBC_ symbol version), and the toolchains that built them. Keys are sorted, so the same release
gives the same bytes.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile

JAR = "resources/org/withawsrole/bridge/withawsrole-bridge.jar"
CLI = re.compile(r"^resources/org/withawsrole/cli/([a-z]+-[a-z0-9_]+)/awsrole$")
NATIVE = re.compile(r"^native/([a-z]+-[a-z0-9_]+)/(libwithawsrole_jni\.(?:so|dylib))$")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def min_glibc(data):
    """The highest GLIBC_x.y symbol version an ELF file needs, or None (not ELF, no versioned symbols)."""
    if not data.startswith(b"\x7fELF"):
        return None
    with tempfile.NamedTemporaryFile() as elf:
        elf.write(data)
        elf.flush()
        symbols = subprocess.run(["objdump", "-T", elf.name], capture_output=True, text=True).stdout
    versions = {tuple(int(p) for p in v.split(".")) for v in re.findall(r"GLIBC_([0-9.]+[0-9])", symbols)}
    return ".".join(map(str, max(versions))) if versions else None


def first_line(command):
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0].strip() if lines else None


def toolchains():
    venv = os.path.join(os.environ.get("WITHAWSROLE_CACHE", os.path.expanduser("~/.cache/withawsrole")), "zigbuild")
    pins = os.path.join(venv, "pins")
    gradle = os.environ.get("GRADLE", "gradle")
    gradle_version = next((line for line in (subprocess.run([gradle, "--version"], capture_output=True, text=True).stdout
                                             .splitlines()) if line.startswith("Gradle ")), None)
    return {
        "rustc": first_line(["rustc", "-V"]),
        "cargo": first_line(["cargo", "-V"]),
        "cargo-zigbuild (PyPI pins)": open(pins).read().strip() if os.path.isfile(pins) else None,
        "zig": first_line([os.path.join(venv, "bin", "python"), "-m", "ziglang", "version"]),
        "java": first_line(["java", "-version"]),
        "gradle": gradle_version,
    }


def main(version, source_commit, paths):
    artifacts = {}
    platforms = {}
    cli = {}
    for path in paths:
        data = open(path, "rb").read()
        artifacts[path] = sha256(data)
        match = CLI.match(path)
        if match:
            cli[match.group(1)] = {"path": path, "sha256": sha256(data), "min_glibc": min_glibc(data)}
    with zipfile.ZipFile(JAR) as jar:
        for name in jar.namelist():
            match = NATIVE.match(name)
            if match:
                data = jar.read(name)
                platforms[match.group(1)] = {"library": name, "sha256": sha256(data), "min_glibc": min_glibc(data)}
    glibc = [entry["min_glibc"] for entry in list(platforms.values()) + list(cli.values()) if entry["min_glibc"]]
    manifest = {
        "name": "withAwsRole",
        "version": version,
        "tag": "v" + version,
        "source_commit": source_commit,
        "platforms": platforms,
        "cli": cli,
        "min_glibc": max(glibc, key=lambda v: tuple(int(p) for p in v.split("."))) if glibc else None,
        "artifacts": artifacts,
        "toolchain": toolchains(),
    }
    json.dump(manifest, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit("usage: release-manifest.py <version> <source commit> <artifact> ...")
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
