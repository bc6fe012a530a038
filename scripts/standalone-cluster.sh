#!/usr/bin/env bash
# A Spark standalone cluster on loopback from the pyspark install: a master on 127.0.0.1 and
# N workers, worker i on 127.0.0.i (a distinct "host" per worker, loopback only).
#
#   scripts/standalone-cluster.sh start [--dir DIR] [--workers 2] [--cores 1] [--memory 1g]
#                                       [--port PORT] [--no-decommission]
#   scripts/standalone-cluster.sh stop   [--dir DIR]
#   scripts/standalone-cluster.sh status [--dir DIR]
#
# DIR (default $LAKEHOUSE_CACHE/standalone, else ~/.cache/lakehouse/standalone) holds
# master.pid, worker-<i>.pid, logs/*.log, master.url (spark://127.0.0.1:PORT) and work/.
# Ports are picked free unless --port is given. Workers honour the decommission signal
# (kill -PWR <worker pid>: graceful decommission, spark.decommission.enabled=true) unless
# --no-decommission. Always stop what you start.
set -euo pipefail

cmd="${1:-}"; shift || true
dir="${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/standalone"
workers=2; cores=1; memory=1g; port=""; decommission=true
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --cores) cores="$2"; shift 2 ;;
    --memory) memory="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --no-decommission) decommission=false; shift ;;
    *) echo "error: unknown option $1" >&2; exit 2 ;;
  esac
done

py="${LAKEHOUSE_PYTHON:-$(command -v python3)}"
spark_home() { "$py" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'; }
free_port() { "$py" -c 'import socket, sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1]); s.close()' "${1:-127.0.0.1}"; }

wait_for() {  # wait_for FILE PATTERN SECONDS
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "error: '$2' not seen in $1 after $3 s; last lines:" >&2
  tail -n 20 "$1" >&2 || true
  return 1
}

stop() {
  local pidfile pid i
  for pidfile in "$dir"/worker-*.pid "$dir"/master.pid; do
    [[ -f "$pidfile" ]] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    echo "stopped $(basename "$pidfile" .pid) (pid $pid)"
  done
}

case "$cmd" in
  start)
    if [[ -f "$dir/master.pid" ]] && kill -0 "$(cat "$dir/master.pid")" 2>/dev/null; then
      echo "error: a cluster is already running from $dir (master pid $(cat "$dir/master.pid"))" >&2
      exit 1
    fi
    mkdir -p "$dir/logs" "$dir/work"
    spark_home="${SPARK_HOME:-$(spark_home)}"
    port="${port:-$(free_port)}"
    export SPARK_HOME="$spark_home" SPARK_LOCAL_IP=127.0.0.1 SPARK_DAEMON_MEMORY="${SPARK_DAEMON_MEMORY:-256m}"
    export SPARK_NO_DAEMONIZE=1
    trap 'echo "start failed; stopping" >&2; stop' ERR
    SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false" \
      nohup "$spark_home/bin/spark-class" org.apache.spark.deploy.master.Master \
      --host 127.0.0.1 --port "$port" --webui-port "$(free_port)" \
      >"$dir/logs/master.log" 2>&1 </dev/null &
    echo $! >"$dir/master.pid"
    url="spark://127.0.0.1:$port"
    wait_for "$dir/logs/master.log" "I have been elected leader" 300
    echo "$url" >"$dir/master.url"
    worker_opts="-Dspark.worker.cleanup.enabled=false"
    if [[ "$decommission" == true ]]; then
      worker_opts="$worker_opts -Dspark.decommission.enabled=true -Dspark.worker.decommission.signal=PWR"
    fi
    for ((i = 1; i <= workers; i++)); do
      mkdir -p "$dir/work/worker-$i"
      # Worker i (and its executors) live on loopback address 127.0.0.i: each worker is a
      # distinct host to Spark, as separate nodes are, so losing one "node" only loses the
      # shuffle output of that host. Still loopback only: nothing is reachable from outside.
      host="127.0.0.$i"
      SPARK_LOCAL_IP="$host" SPARK_WORKER_OPTS="$worker_opts" nohup "$spark_home/bin/spark-class" \
        org.apache.spark.deploy.worker.Worker --host "$host" --port "$(free_port "$host")" \
        --webui-port "$(free_port "$host")" --cores "$cores" --memory "$memory" \
        --work-dir "$dir/work/worker-$i" "$url" \
        >"$dir/logs/worker-$i.log" 2>&1 </dev/null &
      echo $! >"$dir/worker-$i.pid"
    done
    for ((i = 1; i <= workers; i++)); do
      wait_for "$dir/logs/worker-$i.log" "Successfully registered with master" 300
    done
    trap - ERR
    echo "$url"
    ;;
  stop) stop ;;
  status)
    for pidfile in "$dir"/master.pid "$dir"/worker-*.pid; do
      [[ -f "$pidfile" ]] || continue
      pid="$(cat "$pidfile")"
      state=dead; kill -0 "$pid" 2>/dev/null && state=running
      echo "$(basename "$pidfile" .pid) pid $pid $state"
    done
    [[ -f "$dir/master.url" ]] && cat "$dir/master.url"
    ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
