#!/usr/bin/env python3
"""Writes the "## JNI" section of docs/benchmarks.md from build/bench/jni.json (JniBench).

    scripts/bench-report.py <jni.json> <benchmarks.md>

Only the lines from "## JNI" up to the next "## " heading are replaced; the file and the section
are created when missing, and every other section stays as it is.
"""
import datetime
import json
import os
import subprocess
import sys

HEADING = "## JNI"
FILE_HEADER = """# Benchmarks

Measured on the project's build machine; each section is written by its own generator from one
run (see its first lines). Targets come from shared/DESIGN.md.
"""
TARGET_P99_NS = 20_000
TARGET_HITS_PER_SECOND_8 = 500_000


def us(ns):
    return f"{ns / 1000:.1f} µs" if ns >= 1000 else f"{ns} ns"


def phase(report, pid, threads):
    for p in report["phases"]:
        if p["id"] == pid and p["threads"] == threads:
            return p
    raise SystemExit(f"bench-report: no phase {pid} with {threads} threads in the report")


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def section(report):
    m = report["machine"]
    full1, full8 = phase(report, "full", 1), phase(report, "full", 8)
    nat1, nat8 = phase(report, "native", 1), phase(report, "native", 8)
    stats, version, java = phase(report, "stats", 1), phase(report, "version", 1), phase(report, "java", 1)
    n = report["result_strings"]
    per_string = max(0, (stats["p50_ns"] - version["p50_ns"]) / 9)
    native_beyond_call = max(0, nat1["p50_ns"] - version["p50_ns"])
    p99_ok = full1["p99_ns"] <= TARGET_P99_NS and full8["p99_ns"] <= TARGET_P99_NS
    rate_ok = full8["calls_per_second"] >= TARGET_HITS_PER_SECOND_8
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = "\n".join(
        f"| {p['name']} | {p['threads']} | {p['calls_per_second']:,} | {us(p['p50_ns'])} | {us(p['p90_ns'])} | "
        f"{us(p['p99_ns'])} | {us(p['p999_ns'])} |"
        for p in report["phases"])
    return f"""{HEADING}

Written by `make bench` (scripts/bench → `gradle bench`, test/jvm/bench/org/withawsrole/bench/JniBench.java
→ scripts/bench-report.py) on {now}, commit {git_commit()}. Do not edit by hand: the next run
replaces this section.

**What is measured:** a cache hit as a build makes it: `AwsRoleBroker.shared().credentials(Map)` for a
key already in the native cache (`purpose=ecr-push`, to which the bridge adds the packed purposes config), from Java through JNI
into the Rust core and back, as a `Map` of {n // 2} entries. Each phase runs {report['seconds_per_phase']:g} s
after a warm-up; every call is timed with `System.nanoTime()` (about 20 ns of each figure); calls/s
counts all threads' calls over the phase's wall time. The parts of a call are measured alone to
show where the time goes.

**Machine:** {m['cpu']}, {m['cpus']} CPUs, {m['memory']} RAM; {m['kernel']}; {m['java']}
(`{m['jvm_args']}`); native library {m['native_version']}, {report['library_bytes']:,} bytes, release
profile (opt-level "z", LTO, codegen-units 1, stripped). Load average (1, 5, 15 min) at the
start: {m.get('load_average', '?')}; other work on a 2-CPU machine moves these figures by tens of per cent. The Vault (test world) is only asked once, to warm the key.

| phase | threads | calls/s | p50 | p90 | p99 | p99.9 |
|---|---:|---:|---:|---:|---:|---:|
{rows}

**Targets (shared/DESIGN.md):** p99 ≤ 20 µs: **{'met' if p99_ok else 'not met'}** ({us(full1['p99_ns'])} with 1
thread, {us(full8['p99_ns'])} with 8). ≥ 500,000 hits/s with 8 threads on 2 cores: **{'met' if rate_ok else 'not met'}**
({full8['calls_per_second']:,}/s; 1 thread: {full1['calls_per_second']:,}/s).

**Where a hit's {us(full1['p50_ns'])} go (p50, 1 thread):**
- JNI call itself (a native call returning one string): {us(version['p50_ns'])}.
- `Native.Broker_credentialsPacked` beyond that, about {us(round(native_beyond_call))}: reading the
  packed request (one string, `key \\0 value \\0 …`), the core's work on a hit (`parse_request`:
  validation, session name, cache key; `get_fresh`: read lock + lookup; `IssuedCredentials::pairs`:
  RFC 3339 and decimal formatting) and returning the {n} keys and values as one packed string.
- Java side around the native call (`Map` → packed `String`, packed `String` → `LinkedHashMap`): {us(java['p50_ns'])}.
- For comparison, a `String[]` result costs about {us(round(per_string))} a string (from `Broker_stats`,
  10 strings): what the {n}-string result cost before the packed contract (docs/jni-verification.md,
  section 7, R2).
- With 8 threads on 2 CPUs each thread gets a quarter of a CPU: calls/s is bounded by 2 CPUs'
  worth of the per-call cost, and p99 includes time a thread waits for a CPU.
"""


def main(json_path, md_path):
    with open(json_path, encoding="utf-8") as f:
        report = json.load(f)
    text = open(md_path, encoding="utf-8").read() if os.path.exists(md_path) else FILE_HEADER
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == HEADING), None)
    new = section(report)
    if start is None:
        out = text.rstrip("\n") + "\n\n" + new
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        out = "".join(lines[:start]) + new + ("\n" + tail if tail else "")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(out)
    print(f"bench-report: wrote the JNI section of {md_path}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
