#!/usr/bin/env bash
# `make demo`: run the original task as the `seed` scenario and write its report to reports/seed.
# Steps are printed as they happen (stderr), then the counts of every node per phase, what was measured,
# the diagnosis and the verdict (stdout), each once. Exit code: that of the scenario (0 as expected,
# 1 an expectation failed, 2 could not run).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${VENV:-.venv}/bin/python"
[ -x "$PY" ] || PY=python3
OUT="${REPORT_DIR:-reports/seed}"
mkdir -p "$OUT"
"$PY" -m replab scenario run seed --report "$OUT" "$@"
rc=$?
case $rc in
  0) ;;
  1) echo "demo: an expectation of the seed scenario failed (named above)." ;;
  *) echo "demo: the seed scenario could not run (reason above)." ;;
esac
exit $rc
