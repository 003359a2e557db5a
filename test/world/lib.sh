# Shared by up, down and check (sourced, not run). Paths, ports and PID helpers.
WORLD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUN=$WORLD_DIR/.run
CACHE=${WITHAWSROLE_CACHE:-$HOME/.cache/withawsrole}
VENV=$CACHE/world-venv
# WORLD_PORT_BASE moves the whole world, so a second checkout (a local CI run) can have its own.
# OpenBao's dev server also takes its API port + 1 for its cluster listener: moto sits at base + 3.
WORLD_PORT_BASE=${WORLD_PORT_BASE:-18200}
FRONT_PORT=$WORLD_PORT_BASE
OPENBAO_PORT=$((WORLD_PORT_BASE + 1))
MOTO_PORT=$((WORLD_PORT_BASE + 3))
# TLS: the front's second listener (base + 4) and a second OpenBao with -dev-tls (base + 5, its
# cluster port base + 6) whose generated CA and server certificate the front's listener reuses.
FRONT_TLS_PORT=$((WORLD_PORT_BASE + 4))
OPENBAO_TLS_PORT=$((WORLD_PORT_BASE + 5))
export WORLD_FRONT_PORT=$FRONT_PORT WORLD_OPENBAO_PORT=$OPENBAO_PORT WORLD_MOTO_PORT=$MOTO_PORT
export WORLD_FRONT_TLS_PORT=$FRONT_TLS_PORT WORLD_OPENBAO_TLS_PORT=$OPENBAO_TLS_PORT
# Start/stop order matters: the front depends on OpenBao, moto and openbao-tls's certificates.
SERVICES="moto openbao openbao-tls front"

# What each service's command line contains: a PID is only ours if its cmdline still matches
# (PIDs are recycled, and we never signal a process we did not start).
marker() {
  case $1 in
    moto) echo "moto_server.py" ;;
    openbao) echo "-dev-root-token-id=world-root" ;;
    openbao-tls) echo "-dev-tls-cert-dir=" ;;
    front) echo "front.py" ;;
  esac
}

# Prints the PID of a running service that we started, or nothing.
our_pid() {
  local pidf=$RUN/$1.pid pid
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
  if tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$(marker "$1")"; then
    echo "$pid"
  fi
}

port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Stops one service by PID: TERM, wait up to 10 s, then KILL. Quiet when not running.
stop_service() {
  local name=$1 pid i
  pid=$(our_pid "$name")
  if [ -z "$pid" ]; then
    rm -f "$RUN/$name.pid"
    echo "${2:-down}: $name: not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  if [ -d "/proc/$pid" ]; then
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$RUN/$name.pid"
  echo "${2:-down}: $name: stopped (pid $pid)"
}
