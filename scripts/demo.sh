#!/usr/bin/env bash
# `make demo`: run the original task as the `seed` scenario and write its report to reports/seed.
# Prints the readable summary and verdict, then where the report is. Exit code: that of the scenario
# (0 as expected, 1 an expectation failed, 2 could not run).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${VENV:-.venv}/bin/python"
[ -x "$PY" ] || PY=python3
OUT="${REPORT_DIR:-reports/seed}"
mkdir -p "$OUT"
"$PY" -m replab scenario run seed --report "$OUT" "$@"
rc=$?
echo
case $rc in
  0) echo "demo: the seed scenario behaved as expected." ;;
  1) echo "demo: an expectation of the seed scenario failed (see above)." ;;
  *) echo "demo: the seed scenario could not run (see above)." ;;
esac
if [ -f "$OUT/report.html" ]; then
  echo "demo: open the report: $(cd "$OUT" && pwd)/report.html (also report.json, junit.xml)"
fi
exit $rc
