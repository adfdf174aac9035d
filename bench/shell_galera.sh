#!/usr/bin/env bash
# Yardstick for `replab up --topology galera`: a 3-node MariaDB Galera cluster by hand, as a DBA would script
# it from the docs: init three data dirs, a config per node (its own gmcast.listen_addr, ist.recv_addr,
# wsrep_sst_receive_address), the first node with --wsrep-new-cluster, then the two joiners, which get the
# data by mariabackup SST; done when all three are Synced. Usage: shell_galera.sh DIR [up|down]
set -euo pipefail
DIR=${1:?dir}; ACTION=${2:-up}; BASE=${BASE_PORT:-25306}
if [[ $ACTION == down ]]; then
  for f in "$DIR"/*/pid; do [[ -f $f ]] && kill "$(cat "$f" 2>/dev/null)" 2>/dev/null || true; done
  for f in "$DIR"/*/pid; do while [[ -f $f ]] && kill -0 "$(cat "$f" 2>/dev/null)" 2>/dev/null; do sleep 0.05; done; done
  rm -rf "$DIR"; exit 0
fi
PROVIDER=${GALERA_PROVIDER:-/usr/lib/galera/libgalera_smm.so}
USER_OPT=""; [[ $(id -u) == 0 ]] && USER_OPT="user=root"
NODES=(m s1 s2); mkdir -p "$DIR"
members=""; for i in 0 1 2; do members+="${members:+,}127.0.0.1:$((BASE + 10 + i))"; done
for i in 0 1 2; do
  n=${NODES[$i]}; mkdir -p "$DIR/$n"
  mariadb-install-db --no-defaults --datadir="$DIR/$n/data" --skip-test-db --tmpdir="$DIR/$n" \
    ${USER_OPT:+--user=root} >"$DIR/$n/install.log" 2>&1 || { echo "$n: install failed" >&2; exit 1; }
  cat >"$DIR/$n/my.cnf" <<CNF
[mariadbd]
datadir=$DIR/$n/data
socket=$DIR/$n/sock
pid-file=$DIR/$n/pid
log-error=$DIR/$n/error.log
port=$((BASE + i))
bind-address=127.0.0.1
server_id=$((i + 1))
log_bin=mysql-bin
log_slave_updates=1
binlog_format=ROW
innodb_autoinc_lock_mode=2
innodb_log_file_size=64M
$USER_OPT
wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=shell-bench
wsrep_cluster_address=gcomm://$members
wsrep_node_name=$n
wsrep_node_address=127.0.0.1:$((BASE + 10 + i))
wsrep_provider_options=gmcast.listen_addr=tcp://127.0.0.1:$((BASE + 10 + i));ist.recv_addr=127.0.0.1:$((BASE + 20 + i))
wsrep_sst_receive_address=127.0.0.1:$((BASE + 30 + i))
wsrep_sst_method=mariabackup
CNF
done
synced() { [[ $(mariadb --socket="$DIR/$1/sock" -uroot -Nse "SHOW STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | cut -f2) == Synced ]]; }
wait_synced() { for _ in $(seq 1 1200); do synced "$1" && return 0; sleep 0.1; done; echo "$1 not Synced" >&2; exit 1; }
setsid mariadbd --defaults-file="$DIR/m/my.cnf" --wsrep-new-cluster </dev/null >/dev/null 2>&1 &
wait_synced m
mariadb --socket="$DIR/m/sock" -uroot -e "CREATE DATABASE IF NOT EXISTS mydb; CREATE TABLE IF NOT EXISTS mydb.events (id BIGINT PRIMARY KEY, name VARCHAR(64), n BIGINT, descr VARCHAR(64)) ENGINE=InnoDB"
for n in s1 s2; do setsid mariadbd --defaults-file="$DIR/$n/my.cnf" </dev/null >/dev/null 2>&1 & done
wait_synced s1; wait_synced s2
