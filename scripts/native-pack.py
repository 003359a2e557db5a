#!/usr/bin/env python3
"""Adds native libraries built on other machines to the bridge jar, reproducibly.

    scripts/native-pack.py <bridge dir> <platform>=<library> ...

Each library goes to native/<platform>/<file name> with its sha256 beside it (<file name>.sha256),
as `gradle bridgeJar` does for this machine's; then bridge.sha256 is rewritten. Entries carry a
fixed timestamp, so the same inputs give the same jar and the same sha256.
"""
import hashlib
import os
import re
import shutil
import sys
import tempfile
import zipfile

PLATFORMS = re.compile(r"^(linux|darwin)-(x86_64|aarch64)$")
FIXED_TIME = (1980, 2, 1, 0, 0, 0)


def entry(name, data):
    info = zipfile.ZipInfo(name, FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info, data


def main(bridge_dir, extras):
    jar = os.path.join(bridge_dir, "withawsrole-bridge.jar")
    added = {}
    for extra in extras:
        platform, _, path = extra.partition("=")
        if not PLATFORMS.match(platform) or not os.path.isfile(path):
            sys.exit(f"native-pack: '{extra}': want <linux|darwin>-<x86_64|aarch64>=<existing file>")
        name = "libwithawsrole_jni.dylib" if platform.startswith("darwin-") else "libwithawsrole_jni.so"
        data = open(path, "rb").read()
        added[f"native/{platform}/{name}"] = data
        added[f"native/{platform}/{name}.sha256"] = (hashlib.sha256(data).hexdigest() + "\n").encode()
    fd, tmp = tempfile.mkstemp(dir=bridge_dir, suffix=".jar")
    os.close(fd)
    with zipfile.ZipFile(jar) as old, zipfile.ZipFile(tmp, "w") as new:
        for info in old.infolist():
            if info.filename not in added:
                new.writestr(info, old.read(info.filename))
        for name in sorted(added):
            new.writestr(*entry(name, added[name]))
    shutil.move(tmp, jar)
    digest = hashlib.sha256(open(jar, "rb").read()).hexdigest()
    with open(os.path.join(bridge_dir, "bridge.sha256"), "w") as out:
        out.write(digest + "\n")
    # NativeBridge installs only the jar whose digest its own classpath holds (build.gradle).
    with open("src/org/withawsrole/bridge-jar.sha256", "w") as out:
        out.write(digest + "\n")
    for name in sorted(added):
        if not name.endswith(".sha256"):
            print(f"native-pack: {name} ({len(added[name])} bytes)")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
