#!/usr/bin/env bash
# The demo: stand up the 3-node cluster, write a row on the primary, read it on every replica, tear down.
set -euo pipefail
cd "$(dirname "$0")/.."
export REPLAB_HOME="${REPLAB_HOME:-$PWD/.replab-demo}"
R=".venv/bin/replab"
$R down -q 2>/dev/null || true
$R up
$R sql mysql-m "INSERT INTO mydb.events (name, counter, description) VALUES ('some-event-1', 1, 'some-descr-1')"
sleep 0.5
for n in mysql-m mysql-s1 mysql-s2; do echo "$n count: $($R sql "$n" "SELECT COUNT(*) FROM mydb.events" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"][0][0])')"; done
$R status
$R down
