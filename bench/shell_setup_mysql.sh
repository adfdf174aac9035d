#!/usr/bin/env bash
# Yardstick for `replab up --server mysql-9.7`: the same steps by hand for MySQL, as a DBA would write them:
# initialize each data dir with the server's own installer, write configs, start, wait, create the
# replication user and schema, attach replicas with GTID auto-positioning, wait for both threads.
# Usage: shell_setup_mysql.sh BINDIR DIR [up|down]   (BINDIR holds mysqld and mysql, e.g. a catalogue shim dir)
set -euo pipefail
BIN=${1:?bindir}; DIR=${2:?dir}; ACTION=${3:-up}; BASE=${BASE_PORT:-24306}
NODES=(m s1 s2)
MYSQLD="$BIN/../sbin/mysqld"; [[ -x $MYSQLD ]] || MYSQLD="$BIN/mysqld"; MYSQL="$BIN/mysql"
BASEDIR=$(cd "$BIN/.." && pwd)
if [[ $ACTION == down ]]; then
  for f in "$DIR"/*/pid; do [[ -f $f ]] && kill "$(cat "$f" 2>/dev/null)" 2>/dev/null || true; done
  for f in "$DIR"/*/pid; do while [[ -f $f ]] && kill -0 "$(cat "$f" 2>/dev/null)" 2>/dev/null; do sleep 0.02; done; done
  rm -rf "$DIR"; exit 0
fi
mkdir -p "$DIR"
USER_OPT=""; [[ $(id -u) == 0 ]] && USER_OPT="--user=root"
SHARE="--basedir=$BASEDIR --lc-messages-dir=$BASEDIR/share/mysql --plugin-dir=$BASEDIR/lib/mysql/plugin"
for n in "${NODES[@]}"; do
  mkdir -p "$DIR/$n"
  "$MYSQLD" --no-defaults --initialize-insecure --datadir="$DIR/$n/data" $SHARE $USER_OPT \
    --innodb-redo-log-capacity=64M >"$DIR/$n/install.log" 2>&1
done
i=0
for n in "${NODES[@]}"; do
  i=$((i+1))
  cat >"$DIR/$n/my.cnf" <<CNF
[mysqld]
datadir=$DIR/$n/data
socket=$DIR/$n/sock
pid-file=$DIR/$n/pid
log-error=$DIR/$n/error.log
port=$((BASE+i))
bind-address=127.0.0.1
server_id=$i
log_bin=mysql-bin
gtid_mode=ON
enforce_gtid_consistency=ON
sync_binlog=1
innodb_flush_log_at_trx_commit=1
skip_name_resolve=1
mysqlx=0
secure_file_priv=$DIR/$n
basedir=$BASEDIR
lc_messages_dir=$BASEDIR/share/mysql
plugin_dir=$BASEDIR/lib/mysql/plugin
$( [[ $(id -u) == 0 ]] && echo user=root )
$( [[ $n != m ]] && echo read_only=1 )
CNF
  setsid "$MYSQLD" --defaults-file="$DIR/$n/my.cnf" </dev/null >/dev/null 2>&1 &
done
deadline=$((SECONDS+90))
for n in "${NODES[@]}"; do
  until "$MYSQL" --no-defaults -S "$DIR/$n/sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; do
    sleep 0.05; (( SECONDS < deadline )) || { echo "$n not ready" >&2; exit 1; }
  done
done
PW=$(head -c 12 /dev/urandom | base64 | tr -dc a-zA-Z0-9)
"$MYSQL" --no-defaults -S "$DIR/m/sock" -uroot <<SQL
CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '$PW';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';
CREATE DATABASE mydb;
CREATE TABLE mydb.events (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64), counter INT, description VARCHAR(255));
SQL
for n in s1 s2; do
  "$MYSQL" --no-defaults -S "$DIR/$n/sock" -uroot -e "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT=$((BASE+1)), SOURCE_USER='repl', SOURCE_PASSWORD='$PW', SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, GET_SOURCE_PUBLIC_KEY=1; START REPLICA;"
done
for n in s1 s2; do
  until "$MYSQL" --no-defaults -S "$DIR/$n/sock" -uroot -E -e 'SHOW REPLICA STATUS' | grep -q 'Replica_SQL_Running: Yes' &&
        "$MYSQL" --no-defaults -S "$DIR/$n/sock" -uroot -E -e 'SHOW REPLICA STATUS' | grep -q 'Replica_IO_Running: Yes'; do
    sleep 0.05; (( SECONDS < deadline )) || { echo "$n not replicating" >&2; exit 1; }
  done
done
