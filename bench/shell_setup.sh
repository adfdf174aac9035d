#!/usr/bin/env bash
# Yardstick for `replab up`: the same steps done by hand in a plain shell script, as a DBA would write it.
# 3 nodes: init data dirs, write configs, start servers, wait for them, create users and schema,
# attach replicas with GTID, wait until both replication threads run. Usage: shell_setup.sh DIR [up|down]
# NODES_COUNT=9 for a bigger cluster (default 3).
set -euo pipefail
DIR=${1:?dir}; ACTION=${2:-up}; BASE=${BASE_PORT:-23306}
NODES=(m); for ((k=1; k<${NODES_COUNT:-3}; k++)); do NODES+=("s$k"); done
REPLICAS=("${NODES[@]:1}")
if [[ $ACTION == down ]]; then  # every node dir there, whatever NODES_COUNT the up had
  for f in "$DIR"/*/pid; do [[ -f $f ]] && kill "$(cat "$f" 2>/dev/null)" 2>/dev/null || true; done
  for f in "$DIR"/*/pid; do while [[ -f $f ]] && kill -0 "$(cat "$f" 2>/dev/null)" 2>/dev/null; do sleep 0.02; done; done
  rm -rf "$DIR"; exit 0
fi
mkdir -p "$DIR"
USER_OPT=""; [[ $(id -u) == 0 ]] && USER_OPT="--user=root"
i=0
for n in "${NODES[@]}"; do
  mkdir -p "$DIR/$n"
  mariadb-install-db --no-defaults --datadir="$DIR/$n/data" --auth-root-authentication-method=normal \
    --skip-test-db $USER_OPT >"$DIR/$n/install.log" 2>&1  # concurrent runs of the installer race: one at a time
done
for n in "${NODES[@]}"; do
  i=$((i+1))
  cat >"$DIR/$n/my.cnf" <<CNF
[mariadbd]
datadir=$DIR/$n/data
socket=$DIR/$n/sock
pid-file=$DIR/$n/pid
log-error=$DIR/$n/error.log
port=$((BASE+i))
bind-address=127.0.0.1
server_id=$i
log_bin=mysql-bin
binlog_format=ROW
log_slave_updates=1
gtid_strict_mode=1
sync_binlog=1
innodb_flush_log_at_trx_commit=1
skip_name_resolve=1
$( [[ $(id -u) == 0 ]] && echo user=root )
$( [[ $n != m ]] && echo read_only=1 )
CNF
  setsid mariadbd --defaults-file="$DIR/$n/my.cnf" </dev/null >/dev/null 2>&1 &
done
deadline=$((SECONDS+60))
for n in "${NODES[@]}"; do
  until mariadb --no-defaults -S "$DIR/$n/sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; do
    sleep 0.05; (( SECONDS < deadline )) || { echo "$n not ready" >&2; exit 1; }
  done
done
PW=$(head -c 12 /dev/urandom | base64 | tr -dc a-zA-Z0-9)
mariadb --no-defaults -S "$DIR/m/sock" -uroot <<SQL
CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '$PW';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';
CREATE DATABASE mydb;
CREATE TABLE mydb.events (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64), counter INT, description VARCHAR(255));
SQL
for n in "${REPLICAS[@]}"; do
  mariadb --no-defaults -S "$DIR/$n/sock" -uroot -e "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$((BASE+1)), MASTER_USER='repl', MASTER_PASSWORD='$PW', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE;"
done
for n in "${REPLICAS[@]}"; do
  until mariadb --no-defaults -S "$DIR/$n/sock" -uroot -e 'SHOW SLAVE STATUS\G' | grep -q 'Slave_SQL_Running: Yes' &&
        mariadb --no-defaults -S "$DIR/$n/sock" -uroot -e 'SHOW SLAVE STATUS\G' | grep -q 'Slave_IO_Running: Yes'; do
    sleep 0.05; (( SECONDS < deadline )) || { echo "$n not replicating" >&2; exit 1; }
  done
done
