# The two commands that do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

GRADLE ?= gradle
GRADLE_FLAGS ?= --no-daemon --console=plain -q
CARGO ?= cargo
JENKINSFILE ?= examples/Jenkinsfile
NATIVE_LIB := target/release/libwithawsrole_jni.so

.PHONY: help tools native-dev jar demo test replay world-up world-down bench

help:
	@echo "make demo                      start the embedded world, run $(JENKINSFILE), stop the world"
	@echo "make test                      every suite (Rust, world, JVM/JNI, pipelines) on the embedded world"
	@echo "make replay JENKINSFILE=path   run a Jenkinsfile with this library (Vault in VAULT_ADDR, else the world)"
	@echo "make world-up / world-down     start or stop the embedded world (env: test/world/.run/env)"

tools:
	@scripts/ensure-tools

# The JNI library for this machine, built in release mode so tests exercise what ships.
native-dev: tools
	@echo "native: cargo build --release -p withawsrole-jni"
	@$(CARGO) build --release -p withawsrole-jni -q

# The bridge jar carries the native library; it lands in resources/ where libraryResource finds it.
jar: native-dev
	@echo "jar: gradle bridgeJar"
	@$(GRADLE) $(GRADLE_FLAGS) bridgeJar -PnativeLib=$(NATIVE_LIB)

demo: jar
	@scripts/with-world $(GRADLE) $(GRADLE_FLAGS) replay -Pjenkinsfile=examples/Jenkinsfile

replay: jar
	@scripts/with-world --prefer-external $(GRADLE) $(GRADLE_FLAGS) replay -Pjenkinsfile=$(abspath $(JENKINSFILE))

test: jar
	@scripts/with-world scripts/run-tests

world-up:
	@test/world/up

world-down:
	@test/world/down
