#!/usr/bin/env bash
# Install the Debian packages replab needs, only those missing. Usage: install-deps.sh GROUP...
# Groups: core (MariaDB server, client, backup, client library headers), servers (mmdebstrap: fetches other
# servers from Debian's archive into private trees), bench (sysbench, percona-toolkit), net (nftables,
# iproute2), browser (chromium for report tests), venv (python3-venv when ensurepip is missing).
set -euo pipefail
declare -A GROUPS_PKGS=(
  [core]="mariadb-server mariadb-client mariadb-backup libmariadb-dev pkg-config"
  [servers]="mmdebstrap"
  [bench]="sysbench percona-toolkit"
  [net]="nftables iproute2"
  [browser]="chromium chromium-driver fonts-dejavu-core"
)
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
  [[ -n "${GROUPS_PKGS[$group]:-}" ]] || { echo "install-deps: unknown group $group" >&2; exit 2; }
  for pkg in ${GROUPS_PKGS[$group]}; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || wanted+=("$pkg")
  done
done
[[ ${#wanted[@]} -eq 0 ]] && exit 0
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${wanted[*]}" >&2; exit 2; }
  SUDO="sudo"
fi
echo "install-deps: installing ${wanted[*]}"
# Keep the packaged MariaDB service from starting: replab runs its own servers on free ports.
added_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  added_policy=1
fi
trap '[[ $added_policy -eq 1 ]] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
$SUDO apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${wanted[@]}"
