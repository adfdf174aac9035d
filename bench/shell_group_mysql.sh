#!/usr/bin/env bash
# Yardstick for `replab up --topology group --server mysql-9.7`: the same steps by hand, as a DBA would write
# them: initialize each data dir with the server's installer (no group settings: initializing with them
# fails), then write each member's config with its group settings, start all, create the recovery user on
# each member outside the binary log, set the recovery channel's credentials, bootstrap the first member,
# join the others one by one, wait until all three are ONLINE. SQL goes on stdin: no password in `ps`.
# Usage: shell_group_mysql.sh BINDIR DIR [up|down]   (BINDIR holds mysqld and mysql, e.g. a catalogue shim dir)
set -euo pipefail
BIN=${1:?bindir}; DIR=${2:?dir}; ACTION=${3:-up}; BASE=${BASE_PORT:-25306}; GCS=${GCS_PORT:-25406}
NODES=(m s1 s2)
MYSQLD="$BIN/../sbin/mysqld"; [[ -x $MYSQLD ]] || MYSQLD="$BIN/mysqld"; MYSQL="$BIN/mysql"
BASEDIR=$(cd "$BIN/.." && pwd)
if [[ $ACTION == down ]]; then
  for f in "$DIR"/*/pid; do [[ -f $f ]] && kill -9 "$(cat "$f" 2>/dev/null)" 2>/dev/null || true; done
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
GROUP=$(cat /proc/sys/kernel/random/uuid)
SEEDS="127.0.0.1:$((GCS+1)),127.0.0.1:$((GCS+2)),127.0.0.1:$((GCS+3))"
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
report_host=127.0.0.1
server_id=$i
log_bin=mysql-bin
gtid_mode=ON
enforce_gtid_consistency=ON
skip_name_resolve=1
mysqlx=0
secure_file_priv=$DIR/$n
basedir=$BASEDIR
lc_messages_dir=$BASEDIR/share/mysql
plugin_dir=$BASEDIR/lib/mysql/plugin
plugin_load_add=group_replication.so
group_replication_group_name=$GROUP
group_replication_start_on_boot=OFF
group_replication_local_address=127.0.0.1:$((GCS+i))
group_replication_group_seeds=$SEEDS
group_replication_ip_allowlist=127.0.0.1/32
group_replication_recovery_get_public_key=ON
$( [[ $(id -u) == 0 ]] && echo user=root )
CNF
  setsid "$MYSQLD" --defaults-file="$DIR/$n/my.cnf" </dev/null >/dev/null 2>&1 &
done
deadline=$((SECONDS+180))
for n in "${NODES[@]}"; do
  until "$MYSQL" --no-defaults -S "$DIR/$n/sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; do
    sleep 0.05; (( SECONDS < deadline )) || { echo "$n not ready" >&2; exit 1; }
  done
done
PW=$(head -c 12 /dev/urandom | base64 | tr -dc a-zA-Z0-9)
for n in "${NODES[@]}"; do
  "$MYSQL" --no-defaults -S "$DIR/$n/sock" -uroot <<SQL
SET SQL_LOG_BIN=0;
CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '$PW';
GRANT REPLICATION SLAVE, BACKUP_ADMIN ON *.* TO 'repl'@'127.0.0.1';
SET SQL_LOG_BIN=1;
CHANGE REPLICATION SOURCE TO SOURCE_USER='repl', SOURCE_PASSWORD='$PW' FOR CHANNEL 'group_replication_recovery';
SQL
done
"$MYSQL" --no-defaults -S "$DIR/m/sock" -uroot <<SQL
SET GLOBAL group_replication_bootstrap_group=ON;
START GROUP_REPLICATION;
SET GLOBAL group_replication_bootstrap_group=OFF;
CREATE DATABASE mydb;
CREATE TABLE mydb.events (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64), counter INT, description VARCHAR(255));
SQL
for n in s1 s2; do
  "$MYSQL" --no-defaults -S "$DIR/$n/sock" -uroot -e 'START GROUP_REPLICATION'
done
for n in "${NODES[@]}"; do
  until [[ $("$MYSQL" --no-defaults -S "$DIR/$n/sock" -uroot -N -e "SELECT MEMBER_STATE FROM performance_schema.replication_group_members WHERE MEMBER_ID=@@server_uuid") == ONLINE ]]; do
    sleep 0.05; (( SECONDS < deadline )) || { echo "$n not ONLINE" >&2; exit 1; }
  done
done
