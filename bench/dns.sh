#!/usr/bin/env bash
# Workloads 1-3: local names, forwarded names, 90/10 mixed; dnsnet vs dnsmasq vs aardvark-dns vs dnsnet's
# aardvark-dns, side by side in one run. "aardvark" is what Podman runs (Podman + aardvark-dns); "pmdnsnet" is
# Podman + dnsnet: the `aardvark-dns` that `dnsnet system podman install` puts in Podman's way, given the very
# same netavark config directory, served by the dnsnet daemon.
# Every server listens on 127.0.0.11:53 inside a netns and dnsperf runs in that same netns (dnsnet: a real
# container made with the CLI). Server pinned to SERVER_CPU, dnsperf and the fake upstream to LOAD_CPU.
# c=1 latency: bench/dnsping.c (one query in flight); throughput and p99 under load: dnsperf.
# Usage: bench/dns.sh [OUT.tsv]    env: RUNS=3 LAT_SECS=2 HIGH_SECS=5 LATPASS_SECS=2 HIGH_C=8 HIGH_Q=64 NAMES=100
source "$(dirname "$0")/lib.sh"
# The batched C upstream: with dnsmasq as the upstream, the load core (dnsperf + upstream) was the limit.
FAKE_UPSTREAM=${FAKE_UPSTREAM:-fast}

OUT=${1:-$BENCH_DIR/results/dns.tsv}
LAT_SECS=${LAT_SECS:-2}
HIGH_SECS=${HIGH_SECS:-5}
HIGH_C=${HIGH_C:-8}
HIGH_Q=${HIGH_Q:-64}
NAMES=${NAMES:-100}
SERVERS=${SERVERS:-"dnsnet dnsmasq aardvark pmdnsnet"}
WORKLOADS=${WORKLOADS:-"local forwarded mixed"}
mkdir -p "$(dirname "$OUT")"

# ---------- query files ----------
Q="$WORK/q"; mkdir -p "$Q"
for i in $(seq 1 "$NAMES"); do printf 'c%03d A\n' "$i"; done >"$Q/local"
seq 1 200000 | awk '{printf "q%d.fwd.dnt.test A\n", $1}' >"$Q/forwarded"
# 9 local lines then 1 forwarded (unique) line, repeated.
awk -v n="$NAMES" '{ for (j = 0; j < 9; j++) printf "c%03d A\n", ((NR * 9 + j) % n) + 1; printf "m%d.fwd.dnt.test A\n", NR }' <(seq 1 50000) >"$Q/mixed"

# ---------- servers ----------
log "fake upstream on $UP (host netns)"
start_upstream

log "dnsnet: network + $NAMES containers + 1 client through the CLI"
dnsnet_env
dnsnet_start
dn network create benchnet >/dev/null
declare -A ADDR
for i in $(seq 1 "$NAMES"); do
  n=$(printf 'c%03d' "$i")
  dn run -d --name "$n" --network benchnet -- sleep infinity >/dev/null
done
dn run -d --name client --network benchnet -- sleep infinity >/dev/null
DN_NS=$(dn_netns client)
# The same names and addresses for the peers.
for i in $(seq 1 "$NAMES"); do
  n=$(printf 'c%03d' "$i")
  ADDR[$n]="10.250.$((i / 250)).$((i % 250 + 2))"
done
nsenter --net="$DN_NS" dig +short +time=1 +tries=1 @127.0.0.11 c001 | grep -q . || { echo "bench: dnsnet does not answer c001" >&2; exit 1; }
nsenter --net="$DN_NS" dig +short +time=1 +tries=1 @127.0.0.11 x.fwd.dnt.test | grep -q 192.0.2.1 || { echo "bench: dnsnet does not forward" >&2; exit 1; }

log "dnsmasq $(dnsmasq --version | awk 'NR==1{print $3}') in netns dnt${TAG}m"
NS_M="dnt${TAG}m"; mk_netns "$NS_M"
start_upstream "$NS_M"
for n in "${!ADDR[@]}"; do echo "${ADDR[$n]} $n"; done >"$WORK/hosts"
ip netns exec "$NS_M" taskset -c "$SERVER_CPU" dnsmasq --keep-in-foreground --no-resolv --no-hosts -C /dev/null \
  --addn-hosts="$WORK/hosts" --server="$UP" --listen-address=127.0.0.11 --bind-interfaces -p 53 --pid-file= --user=root \
  --log-facility=/dev/null >/dev/null 2>&1 &
DNSMASQ_PID=$!
at_exit "stop_pid $DNSMASQ_PID"

log "aardvark-dns $("$AARDVARK" --version | awk '{print $2}') in netns dnt${TAG}a"
NS_A="dnt${TAG}a"; mk_netns "$NS_A"
start_upstream "$NS_A"
mkdir -p "$WORK/aardvark"
# /etc/netns/<ns>/resolv.conf: should aardvark ever read a resolv.conf, it finds only the fake upstream.
mkdir -p "/etc/netns/$NS_A"; at_exit "rm -rf /etc/netns/$NS_A"
printf 'nameserver %s\n' "$UP" >"/etc/netns/$NS_A/resolv.conf"
{
  echo "127.0.0.11 $UP"
  for n in "${!ADDR[@]}"; do printf '%064x %s  %s\n' "$((16#${n#c} + 4096))" "${ADDR[$n]}" "$n"; done
  # aardvark answers by the asker's address: the load generator (127.0.0.1) is a container of this network.
  printf '%064x 127.0.0.1  client\n' 1
} >"$WORK/aardvark/benchnet"
ip netns exec "$NS_A" taskset -c "$SERVER_CPU" "$AARDVARK" --config "$WORK/aardvark" -p 53 run >/dev/null 2>&1
AARD_PID=$(cat "$WORK/aardvark/aardvark.pid")
at_exit "stop_pid $AARD_PID"
taskset -a -p -c "$SERVER_CPU" "$AARD_PID" >/dev/null

log "dnsnet's aardvark-dns (the Podman drop-in) in netns dnt${TAG}p, on a copy of that config directory"
NS_P="dnt${TAG}p"; mk_netns "$NS_P"
start_upstream "$NS_P"
dn system podman install --dir "$WORK/pmbin" >/dev/null
mkdir -p "$WORK/pmdnsnet"
cp "$WORK/aardvark/benchnet" "$WORK/pmdnsnet/benchnet"
# Started as netavark starts it; it returns once 127.0.0.11:53 answers in NS_P. The daemon (host netns, pinned
# to SERVER_CPU) binds there through its socket helper and forwards from there.
ip netns exec "$NS_P" "$WORK/pmbin/aardvark-dns" --config "$WORK/pmdnsnet" -p 53 run >/dev/null 2>&1
PMD_PID=$(cat "$WORK/pmdnsnet/aardvark.pid")
at_exit "stop_pid $PMD_PID"

for ns in "$NS_M" "$NS_A" "$NS_P"; do
  ok=0
  for _ in $(seq 1 50); do
    if ip netns exec "$ns" dig +short +time=1 +tries=1 @127.0.0.11 c001 | grep -q . &&
      ip netns exec "$ns" dig +short +time=1 +tries=1 @127.0.0.11 x.fwd.dnt.test | grep -q 192.0.2.1; then ok=1; break; fi
    sleep 0.1
  done
  [ $ok = 1 ] || { echo "bench: server in $ns does not answer" >&2; exit 1; }
done

ns_of() { case $1 in dnsnet) echo "$DN_NS" ;; dnsmasq) echo "/run/netns/$NS_M" ;; aardvark) echo "/run/netns/$NS_A" ;; pmdnsnet) echo "/run/netns/$NS_P" ;; esac; }

# ---------- runs: servers interleaved within each round, so drift hits all alike ----------
echo -e "server\tworkload\tmode\trun\tqps\tlost\tp50_us\tp99_us\tp999_us\tnoerror_pct\tserver_cpu_pct\tload_cpu_pct" >"$OUT"
for r in $(seq 1 "$RUNS"); do
  for w in $WORKLOADS; do
    for s in $SERVERS; do
      lat=$(ping1 "$(ns_of "$s")" 127.0.0.11 "$Q/$w" "$LAT_SECS")
      high=$(perf "$(ns_of "$s")" 127.0.0.11 "$Q/$w" "$HIGH_SECS" "$HIGH_C" "$HIGH_Q")
      echo -e "$s\t$w\tc1\t$r\t${lat// /\\t}" >>"$OUT"
      echo -e "$s\t$w\tc$HIGH_Q\t$r\t${high// /\\t}" >>"$OUT"
      log "run $r $w $s: c1 [$lat]  c$HIGH_Q [$high]   (qps lost p50 p99 p99.9 noerror% [c64: server-core busy% load-core busy%])"
    done
  done
done
log "daemon RSS after the runs: $(($(rss_kb "$(dnsnet_pid)") / 1024)) MB"

/usr/bin/python3 "$BENCH_DIR/report.py" dns "$OUT"
