#!/usr/bin/env bash
# `make demo`: run the original task as the `seed` scenario and write its report to reports/seed.
# Steps are printed as they happen (stderr), then the counts of every node per phase, what was measured,
# the diagnosis and the verdict (stdout), each once. Exit code: that of the scenario (0 as expected,
# 1 an expectation failed, 2 could not run).
# ENGINE=compose runs it on containers: with the Docker engine that answers, or else a private dockerd
# started here and stopped at the end; the image (IMAGE, default replab/mariadb:10.11) is built from the
# server catalogue (SERVER, default mariadb-10.11) unless IMAGE names another one.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${VENV:-.venv}/bin/python"
[ -x "$PY" ] || PY=python3
OUT="${REPORT_DIR:-reports/seed}"
ENGINE="${ENGINE:-local}"
mkdir -p "$OUT"
extra=()
if [[ "$ENGINE" == compose ]]; then
  SERVER="${SERVER:-mariadb-10.11}"
  IMAGE="${IMAGE:-}"
  if ! docker version >/dev/null 2>&1; then
    DOCKER_DIR=$(mktemp -d /tmp/replab-demo-docker-XXXX)
    trap '"$PY" -m replab.engines.dockerd stop "$DOCKER_DIR"' EXIT
    export "$("$PY" -m replab.engines.dockerd start "$DOCKER_DIR")" || exit 2
    echo "demo: no Docker engine answered; started a private dockerd ($DOCKER_HOST)"
  fi
  if [[ -z "$IMAGE" ]]; then
    IMAGE=$("$PY" -m replab image build "$SERVER") || exit 2
  fi
  extra=(--engine compose --image "$IMAGE")
fi
"$PY" -m replab scenario run seed --report "$OUT" "${extra[@]}" "$@"
rc=$?
case $rc in
  0) ;;
  1) echo "demo: an expectation of the seed scenario failed (named above)." ;;
  *) echo "demo: the seed scenario could not run (reason above)." ;;
esac
exit $rc
