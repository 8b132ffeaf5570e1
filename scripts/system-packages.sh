#!/usr/bin/env bash
# The real servers the integration tests run against (Debian packages). Needs root or sudo.
set -euo pipefail
packages=(docker-registry etcd-server notary redis-server skopeo wrk)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v apt-get >/dev/null; then
  echo "system-packages: no apt-get; install ${missing[*]} yourself" >&2
  exit 1
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts these as services on install; the tests start their own on free ports.
for svc in redis-server docker-registry etcd; do
  $sudo systemctl stop "$svc" >/dev/null 2>&1 || $sudo service "$svc" stop >/dev/null 2>&1 || true
done
