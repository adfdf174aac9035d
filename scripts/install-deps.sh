#!/usr/bin/env bash
# Install the Debian packages replab needs, only those missing. Usage: install-deps.sh GROUP...
# Groups: core (MariaDB server, client, backup, client library headers), proxy (HAProxy, for up --proxy), galera
# (galera-4: the wsrep provider for --topology galera on the system's MariaDB), servers (mmdebstrap: fetches other
# servers from Debian's archive into private trees), bench (sysbench, percona-toolkit), net (nftables,
# iproute2), browser (chromium for report tests), venv (python3-venv when ensurepip is missing), docker (Debian 12's
# docker.io, plus Compose v2 taken from Debian 13's docker-compose package: a static binary, installed as the
# `docker compose` plugin in /usr/local/lib/docker/cli-plugins; the host's libc is never upgraded).
set -euo pipefail
declare -A GROUPS_PKGS=(
  [core]="mariadb-server mariadb-client mariadb-backup libmariadb-dev pkg-config"
  [servers]="mmdebstrap"
  [bench]="sysbench percona-toolkit"
  [net]="nftables iproute2"
  [browser]="chromium chromium-driver fonts-dejavu-core"
  [docker]="docker.io"
  [proxy]="haproxy"
  [galera]="galera-4"
)
COMPOSE_PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
want_compose=0
wanted=()
for group in "$@"; do
  if [[ "$group" == venv ]]; then
    python3 -c 'import ensurepip' 2>/dev/null || wanted+=(python3-venv)
    # headers to build mysqlclient (the feed's fast driver)
    python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
      || wanted+=(python3-dev)
    command -v gcc >/dev/null || wanted+=(gcc)
    continue
  fi
  if [[ "$group" == docker ]] && ! docker compose version >/dev/null 2>&1; then
    want_compose=1
  fi
  [[ -n "${GROUPS_PKGS[$group]:-}" ]] || { echo "install-deps: unknown group $group" >&2; exit 2; }
  for pkg in ${GROUPS_PKGS[$group]}; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || wanted+=("$pkg")
  done
done
[[ ${#wanted[@]} -eq 0 && $want_compose -eq 0 ]] && exit 0
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${wanted[*]}" >&2; exit 2; }
  SUDO="sudo"
fi

# Compose v2 from Debian 13 (trixie): fetched with a private sources list and private apt state (the host's
# sources and package lists stay as they are), unpacked with dpkg -x, and only its static binary installed.
install_compose() {
  local tmp deb plugin
  tmp=$(mktemp -d)
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/x"
  echo "deb http://deb.debian.org/debian trixie main" > "$tmp/sources.list"
  local apt_opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
                  -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o "Acquire::Languages=none"
                  -o "APT::Sandbox::User=$(id -un)")
  echo "install-deps: fetching Compose v2 (docker-compose from Debian trixie)"
  apt-get "${apt_opts[@]}" update -q >/dev/null
  (cd "$tmp" && apt-get "${apt_opts[@]}" download docker-compose >/dev/null)
  deb=$(ls "$tmp"/docker-compose_*.deb)
  dpkg -x "$deb" "$tmp/x"
  plugin=$(find "$tmp/x" -path '*cli-plugins/docker-compose' -type f | head -1)
  [[ -n "$plugin" ]] || { echo "install-deps: $deb has no cli-plugins/docker-compose" >&2; rm -rf "$tmp"; exit 1; }
  $SUDO install -D -m 0755 "$plugin" "$COMPOSE_PLUGIN_DIR/docker-compose"
  rm -rf "$tmp"
  echo "install-deps: $("$COMPOSE_PLUGIN_DIR/docker-compose" version)"
}
[[ ${#wanted[@]} -gt 0 ]] && echo "install-deps: installing ${wanted[*]}"
# Keep the packaged MariaDB service from starting: replab runs its own servers on free ports.
added_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  added_policy=1
fi
trap '[[ $added_policy -eq 1 ]] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
$SUDO apt-get update -q
if [[ ${#wanted[@]} -gt 0 ]]; then
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${wanted[@]}"
fi
[[ $want_compose -eq 1 ]] && install_compose
exit 0
