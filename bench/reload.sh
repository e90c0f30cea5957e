#!/usr/bin/env bash
# Workload 6: hot reload. The host resolv.conf given to dnsnet switches between two fake upstreams
# (A answers 192.0.2.1, B answers 192.0.2.2); time from the change to the first query, from inside a
# container, that the new upstream answers. Half the changes are in-place writes, half atomic renames.
# Usage: bench/reload.sh [OUT.tsv]    env: RELOADS=10
source "$(dirname "$0")/lib.sh"
OUT=${1:-$BENCH_DIR/results/reload.tsv}
RELOADS=${RELOADS:-10}
mkdir -p "$(dirname "$OUT")"
UP_A=$UP
start_upstream
UP_B="127.54.$((RANDOM % 250 + 2)).$((RANDOM % 250 + 2))"
taskset -c "$LOAD_CPU" dnsmasq --keep-in-foreground --no-resolv --no-hosts -C /dev/null --address=/#/192.0.2.2 \
  --listen-address="$UP_B" --bind-interfaces -p 53 --pid-file= --user=root --log-facility=/dev/null >/dev/null 2>&1 &
at_exit "stop_pid $!"
dnsnet_env
dnsnet_start
dn network create reloadnet >/dev/null
dn run -d --name asker --network reloadnet -- sleep infinity >/dev/null
NS=$(dn_netns asker)
echo -e "what\tserver\trun\tvalue\tunit" >"$OUT"
for i in $(seq 1 "$RELOADS"); do
  if [ $((i % 2)) = 1 ]; then target=$UP_B want=192.0.2.2; else target=$UP_A want=192.0.2.1; fi
  if [ $((i % 4)) -lt 2 ]; then how="in-place write"; else how="atomic rename"; fi
  sleep 0.5
  t0=$(now_ms)
  if [ "$how" = "in-place write" ]; then
    printf 'nameserver %s\n' "$target" >"$DNSNET_HOST_RESOLV_CONF"
  else
    printf 'nameserver %s\n' "$target" >"$DNSNET_HOST_RESOLV_CONF.new" && mv "$DNSNET_HOST_RESOLV_CONF.new" "$DNSNET_HOST_RESOLV_CONF"
  fi
  ok=0
  for j in $(seq 1 3000); do
    if nsenter --net="$NS" dig +short +time=1 +tries=1 @127.0.0.11 "r$i-$j.reload.dnt.test" A 2>/dev/null | grep -qx "$want"; then ok=1; break; fi
  done
  t1=$(now_ms)
  [ $ok = 1 ] || { echo "bench: the new upstream was never used" >&2; exit 1; }
  echo -e "change to first answer from the new upstream ($how)\tdnsnet\t$i\t$((t1 - t0))\tms" >>"$OUT"
done
/usr/bin/python3 "$BENCH_DIR/report.py" kv "$OUT"
