#!/usr/bin/env bash
# Workload 4, before/after: two builds of dnsnet side by side (each its own daemon and roots, both
# pinned to SERVER_CPU), their `run -d` starts interleaved A, B, A, B... so both see the same noise of
# a shared machine. Same measure as start.sh: from just before `run -d` to its return, and to the first
# A answer for the new name asked from another container on the same network.
# Usage: CLI_A=/path/to/before/dist/cli/main.js CLI_B=/path/to/after/dist/cli/main.js bench/start-ab.sh [OUT.tsv]
#        env: STARTS=30 (per build), LABEL_A=before, LABEL_B=after
source "$(dirname "$0")/lib.sh"
OUT=${1:-$BENCH_DIR/results/start-ab.tsv}
STARTS=${STARTS:-30}
CLI_A=${CLI_A:?CLI_A: the "before" build (dist/cli/main.js)}
CLI_B=${CLI_B:?CLI_B: the "after" build (dist/cli/main.js)}
LABEL_A=${LABEL_A:-before}
LABEL_B=${LABEL_B:-after}
mkdir -p "$(dirname "$OUT")"

# dnx A|B ARGS...: the CLI of build A or B with its own roots (both daemons live at once).
dnx_argv() { # -> DNX: the argv prefix of build $1's CLI
  local cli=$CLI_A
  [ "$1" = B ] && cli=$CLI_B
  DNX=(env DNSNET_ROOT="$WORK/$1/state" DNSNET_RUN="$WORK/$1/run" DNSNET_HOST_RESOLV_CONF="$WORK/host-resolv.conf"
    DNSNET_SYSTEMD_RESOLV_CONF="$WORK/systemd-resolv.conf" DNSNET_DEFAULT_BRIDGE="dnt${TAG}$1" "$NODE" "$cli")
}
dnx() { dnx_argv "$1"; shift; "${DNX[@]}" "$@"; }
table_of() { "$NODE" -e 'const c=require("crypto");const p=require("path");console.log("dnsnet_"+c.createHash("sha256").update(p.resolve(process.argv[1])).digest("hex").slice(0,8))' "$WORK/$1/state"; }
teardown_one() {
  local ids
  dnx_argv "$1"
  if [ -S "$WORK/$1/run/dnsnet.sock" ]; then
    ids=$(timeout 120 "${DNX[@]}" ps -a -q 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -n "$ids" ] && timeout 300 "${DNX[@]}" rm -f $ids >/dev/null 2>&1
    timeout 60 "${DNX[@]}" network prune >/dev/null 2>&1
    stop_pid "$(cat "$WORK/$1/run/dnsnet.pid" 2>/dev/null)"
  fi
  ip link delete "dnt${TAG}$1" 2>/dev/null
  nft delete table inet "$(table_of "$1")" 2>/dev/null
  return 0
}

log "fake upstream on $UP"
start_upstream
printf 'nameserver %s\n' "$UP" >"$WORK/host-resolv.conf"
at_exit "teardown_one A"
at_exit "teardown_one B"
DN_TABLE="$(table_of A)|$(table_of B)" # for lib.sh's leak check
declare -A NS
for w in A B; do
  dnx $w network ls >/dev/null
  taskset -a -p -c "$SERVER_CPU" "$(cat "$WORK/$w/run/dnsnet.pid")" >/dev/null
  dnx $w network create startnet >/dev/null
  dnx $w run -d --name probe --network startnet -- sleep infinity >/dev/null
  NS[$w]="/run/netns/dnsnet-$(dnx $w inspect probe | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].Id.slice(0,12)))')"
done

echo -e "what\tserver\trun\tvalue\tunit" >"$OUT"
for i in $(seq 1 "$STARTS"); do
  n=$(printf 's%03d' "$i")
  # Alternate which build goes first, so neither always follows the other's teardown of nothing.
  order="A B"; [ $((i % 2)) = 0 ] && order="B A"
  for w in $order; do
    label=$LABEL_A; [ "$w" = B ] && label=$LABEL_B
    t0=$(now_ms)
    dnx $w run -d --name "$n" --network startnet -- sleep infinity >/dev/null
    t1=$(now_ms)
    wait_name "${NS[$w]}" 127.0.0.11 "$n" || { echo "bench: $label: $n never resolved" >&2; exit 1; }
    t2=$(now_ms)
    echo -e "run -d returns\t$label\t$i\t$((t1 - t0))\tms" >>"$OUT"
    echo -e "start to resolvable\t$label\t$i\t$((t2 - t0))\tms" >>"$OUT"
  done
  [ $((i % 10)) = 0 ] && log "$i starts of each"
done
/usr/bin/python3 "$BENCH_DIR/report.py" kv "$OUT"
