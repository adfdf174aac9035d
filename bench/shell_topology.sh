#!/usr/bin/env bash
# Yardstick for `replab up --topology SHAPE`: the same steps by hand in a plain shell script (MariaDB, the
# system's server), as a DBA would write it: init data dirs, write configs (per-writer gtid_domain_id and
# auto_increment offsets, log_slave_updates), start, wait, create the replication user on every node (not
# binlogged), schema on the first writer, one CHANGE MASTER per edge (named connections for fan-in), wait
# until every edge's threads run. Usage: SHAPE=chain|fan-in|active-active|ring shell_topology.sh DIR [up|down]
set -euo pipefail
DIR=${1:?dir}; ACTION=${2:-up}; BASE=${BASE_PORT:-24306}; SHAPE=${SHAPE:-chain}
if [[ $ACTION == down ]]; then
  for f in "$DIR"/*/pid; do [[ -f $f ]] && kill "$(cat "$f" 2>/dev/null)" 2>/dev/null || true; done
  for f in "$DIR"/*/pid; do while [[ -f $f ]] && kill -0 "$(cat "$f" 2>/dev/null)" 2>/dev/null; do sleep 0.02; done; done
  rm -rf "$DIR"; exit 0
fi
case $SHAPE in   # nodes; edges as source:replica:connection
  chain)         NODES=(m s1 s2);   EDGES=(m:s1: s1:s2:);          WRITERS=(m) ;;
  fan-in)        NODES=(m1 m2 s1);  EDGES=(m1:s1:m1 m2:s1:m2);     WRITERS=(m1 m2) ;;
  active-active) NODES=(m1 m2);     EDGES=(m2:m1: m1:m2:);         WRITERS=(m1 m2) ;;
  ring)          NODES=(m1 m2 m3);  EDGES=(m1:m2: m2:m3: m3:m1:);  WRITERS=(m1 m2 m3) ;;
  *) echo "unknown SHAPE $SHAPE" >&2; exit 2 ;;
esac
mkdir -p "$DIR"
USER_OPT=""; [[ $(id -u) == 0 ]] && USER_OPT="--user=root"
declare -A PORT
i=0
for n in "${NODES[@]}"; do
  mkdir -p "$DIR/$n"
  mariadb-install-db --no-defaults --datadir="$DIR/$n/data" --auth-root-authentication-method=normal \
    --skip-test-db --tmpdir="$DIR/$n" $USER_OPT >"$DIR/$n/install.log" 2>&1 || { echo "$n: install failed" >&2; tail -5 "$DIR/$n/install.log" >&2; exit 1; }
done
for n in "${NODES[@]}"; do
  i=$((i+1)); PORT[$n]=$((BASE+i)); extra=""
  for k in "${!WRITERS[@]}"; do
    if [[ ${WRITERS[$k]} == "$n" && ${#WRITERS[@]} -gt 1 ]]; then
      extra="gtid_domain_id=$((k+1))"
      [[ $SHAPE != fan-in ]] && extra="$extra
auto_increment_increment=${#WRITERS[@]}
auto_increment_offset=$((k+1))"
    fi
  done
  cat >"$DIR/$n/my.cnf" <<CNF
[mariadbd]
datadir=$DIR/$n/data
socket=$DIR/$n/sock
pid-file=$DIR/$n/pid
log-error=$DIR/$n/error.log
port=${PORT[$n]}
bind-address=127.0.0.1
server_id=$i
log_bin=mysql-bin
binlog_format=ROW
log_slave_updates=1
gtid_strict_mode=1
sync_binlog=1
innodb_flush_log_at_trx_commit=1
skip_name_resolve=1
$extra
$( [[ $(id -u) == 0 ]] && echo user=root )
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
for n in "${NODES[@]}"; do
  mariadb --no-defaults -S "$DIR/$n/sock" -uroot -e "SET sql_log_bin=0; CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '$PW'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';"
done
for w in "${WRITERS[@]}"; do
  mariadb --no-defaults -S "$DIR/$w/sock" -uroot -e "CREATE DATABASE IF NOT EXISTS mydb; CREATE TABLE mydb.events_$w (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64), counter INT, description VARCHAR(255));"
done
for e in "${EDGES[@]}"; do
  IFS=: read -r src rep conn <<<"$e"
  name=""; [[ -n $conn ]] && name="'$conn'"
  mariadb --no-defaults -S "$DIR/$rep/sock" -uroot -e "CHANGE MASTER $name TO MASTER_HOST='127.0.0.1', MASTER_PORT=${PORT[$src]}, MASTER_USER='repl', MASTER_PASSWORD='$PW', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE $name;"
done
for e in "${EDGES[@]}"; do
  IFS=: read -r src rep conn <<<"$e"
  name=""; [[ -n $conn ]] && name="'$conn'"
  until mariadb --no-defaults -S "$DIR/$rep/sock" -uroot -e "SHOW SLAVE $name STATUS\G" | grep -q 'Slave_SQL_Running: Yes' &&
        mariadb --no-defaults -S "$DIR/$rep/sock" -uroot -e "SHOW SLAVE $name STATUS\G" | grep -q 'Slave_IO_Running: Yes'; do
    sleep 0.05; (( SECONDS < deadline )) || { echo "$rep not replicating from $src" >&2; exit 1; }
  done
done
