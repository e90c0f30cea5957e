#!/usr/bin/env bash
# Workload 5: COUNT containers (`sleep infinity`) on one network through the CLI: total time, daemon RSS,
# resolver throughput afterwards, and lookups of existing names while CHURN containers start and stop
# (every lookup must be answered with an address: lost must be 0).
# Usage: bench/scale.sh [OUT.tsv]    env: COUNT=1000 CHURN=50 PAR=4
source "$(dirname "$0")/lib.sh"
OUT=${1:-$BENCH_DIR/results/scale.tsv}
COUNT=${COUNT:-1000}
CHURN=${CHURN:-50}
PAR=${PAR:-4}
mkdir -p "$(dirname "$OUT")"
start_upstream
dnsnet_env
dnsnet_start
dn network create --subnet "10.$((RANDOM % 40 + 200)).$((RANDOM % 16 * 16)).0/20" scalenet >/dev/null
dn run -d --name client --network scalenet -- sleep infinity >/dev/null
NS=$(dn_netns client)
echo -e "what\tserver\trun\tvalue\tunit" >"$OUT"
rss0=$(rss_kb "$(dnsnet_pid)")
t0=$(date +%s%N)
seq 1 "$COUNT" | xargs -P "$PAR" -I{} sh -c 'exec "$0" "$1" run -d --name "k{}" --network scalenet -- sleep infinity >/dev/null' "$NODE" "$CLI"
t1=$(date +%s%N)
n=$(dn ps -q | wc -l)
log "$n containers running ($COUNT asked + client) in $(( (t1 - t0) / 1000000 )) ms"
echo -e "containers running\tdnsnet\t1\t$n\tcount" >>"$OUT"
echo -e "time to start all (CLI, $PAR at a time)\tdnsnet\t1\t$(( (t1 - t0) / 1000000000 ))\ts" >>"$OUT"
echo -e "daemon RSS before\tdnsnet\t1\t$((rss0 / 1024))\tMB" >>"$OUT"
echo -e "daemon RSS with all running\tdnsnet\t1\t$(($(rss_kb "$(dnsnet_pid)") / 1024))\tMB" >>"$OUT"
seq 1 "$COUNT" | awk '{printf "k%d A\n", $1}' >"$WORK/q"
for r in $(seq 1 "$RUNS"); do
  res=$(perf "$NS" 127.0.0.11 "$WORK/q" 5 8 64)
  echo -e "throughput over $COUNT names (c64)\tdnsnet\t$r\t$(awk '{printf "%.0f", $1}' <<<"$res")\tqueries/s" >>"$OUT"
  echo -e "p99 at c64\tdnsnet\t$r\t$(awk '{print $4}' <<<"$res")\tµs" >>"$OUT"
done
# Churn: start CHURN new containers and remove CHURN old ones while the client asks for names that stay.
seq $((CHURN + 1)) "$COUNT" | awk '{printf "k%d A\n", $1}' >"$WORK/stay"
nsenter --net="$NS" taskset -c "$LOAD_CPU" "$DNSPING" 127.0.0.11 "$WORK/stay" 600 >"$WORK/churn.out" &
PING=$!
at_exit "stop_pid $PING"
tc0=$(date +%s%N)
for i in $(seq 1 "$CHURN"); do
  dn run -d --name "x$i" --network scalenet -- sleep infinity >/dev/null
  dn rm -f "k$i" >/dev/null
done
tc1=$(date +%s%N)
kill -INT "$PING" 2>/dev/null; sleep 0.2; stop_pid "$PING"
read -r samples lost p50 p99 p999 qps okpct <"$WORK/churn.out"
bad=$(awk -v n="$samples" -v ok="$okpct" -v l="$lost" 'BEGIN{printf "%d", l + n - (n * ok / 100) + 0.5}')
log "churn: $CHURN starts + $CHURN removals in $(( (tc1 - tc0) / 1000000 )) ms; $samples lookups of existing names, $lost lost, answered $okpct %"
echo -e "churn: lookups of existing names\tdnsnet\t1\t$samples\tcount" >>"$OUT"
echo -e "churn: lookups lost or unanswered\tdnsnet\t1\t$bad\tcount" >>"$OUT"
echo -e "churn: p99.9 lookup latency\tdnsnet\t1\t$p999\tµs" >>"$OUT"
echo -e "daemon RSS at the end\tdnsnet\t1\t$(($(rss_kb "$(dnsnet_pid)") / 1024))\tMB" >>"$OUT"
t2=$(date +%s%N)
dn ps -a -q | xargs -n 50 -P "$PAR" sh -c 'n=$0; c=$1; shift; exec "$n" "$c" rm -f "$@" >/dev/null' "$NODE" "$CLI"
t3=$(date +%s%N)
echo -e "time to remove all (CLI, 50 per call, $PAR at a time)\tdnsnet\t1\t$(( (t3 - t2) / 1000000000 ))\ts" >>"$OUT"
/usr/bin/python3 "$BENCH_DIR/report.py" kv "$OUT"
