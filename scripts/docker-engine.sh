#!/usr/bin/env bash
# A Docker engine for the test suite, stopped again by the same script.
#   eval "$(bash scripts/docker-engine.sh start)"   # prints `export DOCKER_HOST=...` lines
#   bash scripts/docker-engine.sh stop              # stops only a dockerd this script started
# An engine that already answers (DOCKER_HOST or the default socket) is used as it is and never
# stopped. Otherwise Debian's docker.io is installed when missing and a dockerd of our own runs
# with its data, pidfile and socket under .tools/docker, without iptables rules or a bridge
# (containers use the host's network; test traffic stays on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/.tools/docker"
sock="$dir/docker.sock"
owned="$dir/started-by-test.pid"   # present only while a dockerd we started runs

log() { echo "docker-engine: $*" >&2; }

answers() { timeout 10 docker ${1:+-H "$1"} info >/dev/null 2>&1; }

exec_root() {
  # containerd's socket lives under the exec root; unix socket paths are limited to 107 bytes
  local candidate="$dir/run"
  if [ ${#candidate} -gt 60 ]; then
    candidate="/tmp/connaisseur-docker-$(printf %s "$dir" | sha256sum | cut -c1-12)"
  fi
  echo "$candidate"
}

install_engine() {
  # debootstrap makes the Debian base the local images are built on (tests/support/images.py)
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

start() {
  install_engine
  if answers "${DOCKER_HOST:-}"; then
    log "using the engine that answers at ${DOCKER_HOST:-the default socket}"
    [ -z "${DOCKER_HOST:-}" ] || echo "export DOCKER_HOST='$DOCKER_HOST'"
    return 0
  fi
  if [ -f "$owned" ] && answers "unix://$sock"; then
    log "using our dockerd left by an earlier run (pid $(cat "$owned"))"
    echo "export DOCKER_HOST='unix://$sock'"
    return 0
  fi
  command -v docker >/dev/null || { log "no docker client"; return 1; }
  mkdir -p "$dir/data"
  local run
  run="$(exec_root)"
  mkdir -p "$run"
  rm -f "$sock" "$dir/dockerd.pid"
  dockerd --data-root "$dir/data" --exec-root "$run" --pidfile "$dir/dockerd.pid" \
    --host "unix://$sock" --iptables=false --ip-masq=false --bridge=none \
    --log-level warn >"$dir/dockerd.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$owned"
  for _ in $(seq 1 300); do
    if answers "unix://$sock"; then
      log "started dockerd (pid $pid, $sock)"
      echo "export DOCKER_HOST='unix://$sock'"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.2
  done
  log "dockerd did not answer; its log:"
  tail -n 20 "$dir/dockerd.log" >&2 || true
  stop
  return 1
}

stop() {
  [ -f "$owned" ] || return 0
  local pid
  pid="$(cat "$owned")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "dockerd $pid did not stop in 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # dockerd leaves its host-network namespace bind-mounted under its exec root; only ours
  local run mounted
  run="$(exec_root)"
  while read -r _ mounted _; do
    case "$mounted" in "$run"/*) umount "$mounted" 2>/dev/null || true ;; esac
  done </proc/mounts
  rm -f "$owned"
  log "stopped dockerd (pid $pid)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
