#!/usr/bin/env bash
# Workload 4: container start to resolvable. From just before `run -d` to the first answer for the new
# name, asked from another container on the same network; STARTS starts, median and p95.
# Usage: bench/start.sh [OUT.tsv]    env: STARTS=50
source "$(dirname "$0")/lib.sh"
OUT=${1:-$BENCH_DIR/results/start.tsv}
STARTS=${STARTS:-50}
mkdir -p "$(dirname "$OUT")"
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_name NETNS_PATH SERVER NAME: poll until NAME has an A record of a container (the fake upstream
# answers 192.0.2.1 for every name it is asked: that does not count); at most 4000 tries; 1 on failure.
wait_name() {
  local i
  for i in $(seq 1 4000); do
    nsenter --net="$1" dig +short +time=1 +tries=1 "@$2" "$3" A 2>/dev/null | grep -v '^192\.0\.2\.1$' | grep -q '^[0-9]' && return 0
  done
  return 1
}

log "fake upstream on $UP"
start_upstream
dnsnet_env
dnsnet_start
dn network create startnet >/dev/null
dn run -d --name probe --network startnet -- sleep infinity >/dev/null
DN_NS=$(dn_netns probe)

# Podman is NOT measured. It runs here (rootful, --rootfs /:O, runc: crun refuses this host's hybrid
# cgroups, cgroupfs, lowered default_ulimits), but Podman 4.3 hands aardvark-dns neither
# network_dns_servers nor a container's --dns (checked in /run/containers/networks/aardvark-dns/NET),
# so aardvark-dns forwards every name it does not know yet to the host's real resolver from
# /etc/resolv.conf -- and this bench asks for names before they exist. See RESULTS.md.
echo -e "what\tserver\trun\tvalue\tunit" >"$OUT"
for i in $(seq 1 "$STARTS"); do
  n=$(printf 's%03d' "$i")
  t0=$(now_ms)
  dn run -d --name "$n" --network startnet -- sleep infinity >/dev/null
  t1=$(now_ms)
  wait_name "$DN_NS" 127.0.0.11 "$n" || { echo "bench: dnsnet: $n never resolved" >&2; exit 1; }
  t2=$(now_ms)
  echo -e "run -d returns\tdnsnet\t$i\t$((t1 - t0))\tms" >>"$OUT"
  echo -e "start to resolvable\tdnsnet\t$i\t$((t2 - t0))\tms" >>"$OUT"
  [ $((i % 10)) = 0 ] && log "$i starts"
done
# p95 rows from the samples (the table shows medians of the samples and their range).
/usr/bin/python3 - "$OUT" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
for s in dict.fromkeys(r["server"] for r in rows):
    v = sorted(float(r["value"]) for r in rows if r["server"] == s and r["what"] == "start to resolvable")
    p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
    with open(sys.argv[1], "a") as f:
        f.write(f"start to resolvable p95\t{s}\t1\t{p95}\tms\n")
EOF
/usr/bin/python3 "$BENCH_DIR/report.py" kv "$OUT"
