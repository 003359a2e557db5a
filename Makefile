# The two commands that do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

GRADLE ?= gradle
GRADLE_FLAGS ?= --no-daemon --console=plain -q
CARGO ?= cargo
JENKINSFILE ?= examples/Jenkinsfile

.PHONY: help tools native jar release demo test replay world-up world-down bench bench-core bench-jni bench-load bench-refresh reliability scaling

help:
	@echo "make demo                      start the embedded world, run $(JENKINSFILE), stop the world"
	@echo "make test                      every suite (Rust, world, JVM/JNI, pipelines) on the embedded world"
	@echo "make replay JENKINSFILE=path   run a Jenkinsfile with this library (Vault in VAULT_ADDR, else the world)"
	@echo "      [LIBRARY_REPO=git url/path]  ... loading @Library('withAwsRole@<ref>') from that repository, no build"
	@echo "make release VERSION=x.y.z     build what ships and record it as tag vX.Y.Z on branch releases (docs/install.md)"
	@echo "make world-up / world-down     start or stop the embedded world (env: test/world/.run/env)"
	@echo "make native                    release JNI library (size and strip checked) into the bridge jar in resources/"
	@echo "make bench                     core, JNI, load and refresh benchmarks; each rewrites its section of docs/benchmarks.md"
	@echo "make reliability               the fault matrix; rewrites docs/reliability.md"
	@echo "make scaling                   two controllers behind an OpenBao Proxy; docs/scaling.md"

tools:
	@scripts/ensure-tools

# The release JNI library (checked: size <= 4 MB, stripped, panic=unwind) packed into the bridge
# jar in resources/, and the awsrole CLI beside it (refresh: true puts it on the agent).
# NATIVE_EXTRA="linux-aarch64=<path> ..." adds libraries built elsewhere (README, Platforms).
# Tests run on exactly what ships.
native: tools
	@scripts/native

jar: native

release: tools
	@scripts/release $(VERSION)

demo: jar
	@scripts/with-world $(GRADLE) $(GRADLE_FLAGS) replay -Pjenkinsfile=examples/Jenkinsfile

# With LIBRARY_REPO=<git URL or path>, @Library('withAwsRole@<ref>') is checked out of that repository
# (a release tag holds the built jar), as Jenkins does: no native build. LIBRARY_VERSION: the default version.
replay: $(if $(LIBRARY_REPO),,jar)
	@scripts/with-world --prefer-external $(GRADLE) $(GRADLE_FLAGS) replay -Pjenkinsfile=$(abspath $(JENKINSFILE)) \
		$(if $(LIBRARY_REPO),-PlibraryRepo=$(LIBRARY_REPO)) $(if $(LIBRARY_VERSION),-PlibraryVersion=$(LIBRARY_VERSION))

test: jar
	@scripts/with-world scripts/run-tests

world-up:
	@test/world/up

world-down:
	@test/world/down

# Not a test: measures cache hits through JNI on this machine and rewrites docs/benchmarks.md's
# "JNI" section (other sections are left as they are).
bench: bench-core bench-jni bench-load bench-refresh

bench-core: tools
	@scripts/with-world scripts/bench-core

bench-jni: native
	@scripts/with-world scripts/bench

# 500 aws CLI runs in one refresh: true block, with and without the block's credentials cache.
bench-refresh: jar
	@scripts/with-world scripts/bench-refresh

# ConcurrentBuildsBenchmark runs only here (WITHAWSROLE_BENCHMARK=1): N builds at once, each its own
# classloader and executor thread, as a controller's concurrency comes (docs/benchmarks.md, Load).
bench-load: jar
	@WITHAWSROLE_BENCHMARK=1 scripts/with-world $(GRADLE) $(GRADLE_FLAGS) cleanTest test -Pbenchmark \
		--tests org.withawsrole.evidence.LoadTest --tests org.withawsrole.evidence.ConcurrentBuildsBenchmark
	@cat build/evidence/load.md build/evidence/concurrent-builds.md

# The whole fault matrix, OpenBao restart included; rewrites docs/reliability.md.
reliability: tools
	@scripts/reliability

# Two controllers (JVMs) behind an OpenBao Proxy; rewrites the measurement in docs/scaling.md.
scaling: jar
	@scripts/with-world test/world/proxy/run
