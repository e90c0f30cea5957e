#!/usr/bin/env bash
# Workload 8 (issue 18): overlay networks across hosts. Two "hosts" on this machine (netns, each with its own
# dnsnet daemon and state root), an underlay bridge in a third netns, and a 3-member etcd (Debian's etcd
# binary, data on tmpfs, never the packaged service) on that underlay; one overlay network `ov`.
#  1. start to answering across hosts: from just before `run -d` on host A to the first A answer for the new
#     name from a probe container on host B (bench/waitname.c in the probe's netns, asking 127.0.0.11 every
#     millisecond); the same for a start on host B itself (a local name), interleaved. STARTS starts each.
#  2. lookups of remote names against local ones: dnsperf from the probe on B, its 127.0.0.11, names of 20
#     containers on host A against 20 on host B (c=1 latency with dnsping, throughput at 64 in flight).
#  3. TCP throughput (bench/tcpbench.c bulk, one connection, SECS s): a container on A to one on B over the
#     overlay, against the same two containers on one bridge (both on host A's bridge network).
# Usage: bench/multihost.sh [OUT.tsv]    env: STARTS=50 SECS=5
# Safety: nothing leaves these namespaces; lib.sh's guard drops (and counts) any DNS packet bound off the machine.
source "$(dirname "$0")/lib.sh"
OUT=${1:-$BENCH_DIR/results/multihost.tsv}
STARTS=${STARTS:-50}
SECS=${SECS:-5}
ETCD=${ETCD:-/usr/bin/etcd}
[ -x "$ETCD" ] || { echo "bench: $ETCD missing (apt-get install etcd-server)" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
TCPB="$WORK/tcpbench"
gcc -O2 -pthread -o "$TCPB" "$BENCH_DIR/tcpbench.c"

# ---------- the underlay, etcd, two hosts ----------
UL="dnt${TAG}u"
NET="192.168.$((RANDOM % 100 + 150))"
mk_netns "$UL"
ip -n "$UL" link add br0 type bridge
for m in 1 2 3; do ip -n "$UL" addr add "$NET.20$m/24" dev br0; done
ip -n "$UL" link set br0 up
mkdir -p "$WORK/etcd"
mount -t tmpfs -o size=1g,mode=700 "dnt-etcd-$TAG" "$WORK/etcd"
at_exit "umount $WORK/etcd"
CLUSTER="m1=http://$NET.201:2380,m2=http://$NET.202:2380,m3=http://$NET.203:2380"
for m in 1 2 3; do
  nsenter --net="/run/netns/$UL" "$ETCD" --name="m$m" --data-dir="$WORK/etcd/m$m" \
    --listen-client-urls="http://$NET.20$m:2379" --advertise-client-urls="http://$NET.20$m:2379" \
    --listen-peer-urls="http://$NET.20$m:2380" --initial-advertise-peer-urls="http://$NET.20$m:2380" \
    --initial-cluster="$CLUSTER" --initial-cluster-token="dnt-$TAG" --initial-cluster-state=new \
    --heartbeat-interval=50 --election-timeout=500 --log-level=error >"$WORK/etcd/m$m.log" 2>&1 &
  at_exit "stop_pid $!"
done
for _ in $(seq 1 100); do
  ok=0
  for m in 1 2 3; do
    nsenter --net="/run/netns/$UL" "$NODE" -e "require('http').get('http://$NET.20$m:2379/health',r=>{let t='';r.on('data',c=>t+=c).on('end',()=>process.exit(/\"true\"/.test(t)?0:1))}).on('error',()=>process.exit(1))" && ok=$((ok + 1))
  done
  [ "$ok" = 3 ] && break
  sleep 0.2
done
[ "$ok" = 3 ] || { echo "bench: etcd did not come up: $(tail -3 "$WORK"/etcd/m*.log)" >&2; exit 1; }
log "etcd: 3 members on $NET.201-203 (netns $UL)"

# Two hosts: a netns each on the underlay, their own roots, a host resolv.conf naming nothing reachable.
HOSTS=(a b)
for i in 0 1; do
  h=${HOSTS[$i]}
  mk_netns "dnt${TAG}$h"
  ip -n "dnt${TAG}$h" link add eth0 type veth peer name "ul$h" netns "$UL"
  ip -n "dnt${TAG}$h" addr add "$NET.$((i + 1))/24" dev eth0
  ip -n "dnt${TAG}$h" link set eth0 up
  ip -n "$UL" link set dev "ul$h" master br0 up
  mkdir -p "$WORK/$h"
  printf 'nameserver 127.0.0.1\n' >"$WORK/$h/host-resolv.conf"
done
# on H CMD...: CMD as host H's dnsnet (its netns, its roots, the cluster's settings).
on() {
  local h=$1 i=0
  shift
  [ "$h" = b ] && i=1
  DNSNET_ROOT="$WORK/$h/state" DNSNET_RUN="$WORK/$h/run" DNSNET_HOST_RESOLV_CONF="$WORK/$h/host-resolv.conf" \
    DNSNET_SYSTEMD_RESOLV_CONF="$WORK/$h/systemd-resolv.conf" DNSNET_DEFAULT_BRIDGE="dnt${TAG}$h" \
    DNSNET_CLUSTER_STORE="etcd://$NET.201:2379,$NET.202:2379,$NET.203:2379" DNSNET_CLUSTER_ADVERTISE="$NET.$((i + 1))" \
    nsenter --net="/run/netns/dnt${TAG}$h" "$@"
}
dnh() { local h=$1; shift; on "$h" "$NODE" "$CLI" "$@"; }
host_teardown() {
  local h=$1 ids
  ids=$(dnh "$h" ps -aq 2>/dev/null || true)
  # shellcheck disable=SC2086
  [ -n "$ids" ] && dnh "$h" rm -f $ids >/dev/null 2>&1
  [ "$h" = a ] && dnh a network rm ov >/dev/null 2>&1
  dnh "$h" network prune >/dev/null 2>&1
  stop_pid "$(cat "$WORK/$h/run/dnsnet.pid" 2>/dev/null || true)"
}
at_exit "host_teardown b"
at_exit "host_teardown a"
for h in a b; do
  dnh "$h" network ls >/dev/null
  taskset -a -p -c "$SERVER_CPU" "$(cat "$WORK/$h/run/dnsnet.pid")" >/dev/null
done
dnh a network create -d overlay ov >/dev/null
for _ in $(seq 1 50); do dnh b network ls | grep -q ' ov ' && break; sleep 0.1; done
dnh b run -d --name probe --network ov -- sleep infinity >/dev/null
PROBE_NS="/run/netns/dnsnet-$(dnh b inspect probe | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].Id.slice(0,12)))')"
log "hosts a ($NET.1) and b ($NET.2), overlay network ov, probe on b"

echo -e "what\tserver\trun\tvalue\tunit" >"$OUT"

# ---------- 1. start to answering ----------
# start_one HOST NAME K: `run -d` on HOST, the probe on b waits for NAME.
start_one() {
  local t0 t1 t3 pfd ready sent
  settle || true
  exec {pfd}< <(exec nsenter --net="$PROBE_NS" "$WAITNAME" 127.0.0.11 "$2" 60000 1000)
  read -r -u "$pfd" ready
  [ "$ready" = ready ] || { echo "bench: waitname did not start" >&2; exit 1; }
  stamp t0
  dnh "$1" run -d --name "$2" --network ov -- sleep infinity >/dev/null
  stamp t1
  read -r -u "$pfd" t3 sent || true
  exec {pfd}<&-
  [ -n "$t3" ] || { echo "bench: $2 on host $1 never answered on host b" >&2; exit 1; }
  local who=remote
  [ "$1" = b ] && who=local
  echo -e "run -d returns\t$who\t$3\t$(us_ms $((t1 - t0)))\tms" >>"$OUT"
  echo -e "start to answering\t$who\t$3\t$(us_ms $((t3 - t0)))\tms" >>"$OUT"
}
us_ms() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }
wait_quiet
for i in $(seq 1 "$STARTS"); do
  if [ $((i % 2)) = 1 ]; then order=(a b); else order=(b a); fi
  for h in "${order[@]}"; do start_one "$h" "s$h$i" "$i"; done
done
for h in a b; do
  # shellcheck disable=SC2046
  dnh "$h" rm -f $(seq -f "s${h}%g" 1 "$STARTS") >/dev/null
done
log "starts done"

# ---------- 2. lookups: remote names against local ones ----------
for h in a b; do
  for i in $(seq 1 20); do dnh "$h" run -d --name "q$h$i" --network ov -- sleep infinity >/dev/null; done
  : >"$WORK/names-$h.txt"
  for i in $(seq 1 20); do echo "q$h$i A" >>"$WORK/names-$h.txt"; done
done
for _ in $(seq 1 50); do nsenter --net="$PROBE_NS" dig +short +time=1 +tries=1 @127.0.0.11 qa20 | grep -q . && break; sleep 0.1; done
for r in $(seq 1 "$RUNS"); do
  for h in a b; do
    who=remote
    [ "$h" = b ] && who=local
    read -r qps lost p50 p99 _ ok _ < <(ping1 "$PROBE_NS" 127.0.0.11 "$WORK/names-$h.txt" 3)
    echo -e "c=1 p50\t$who\t$r\t$p50\tus" >>"$OUT"
    echo -e "c=1 p99\t$who\t$r\t$p99\tus" >>"$OUT"
    read -r qps lost p50 p99 _ ok _ < <(perf "$PROBE_NS" 127.0.0.11 "$WORK/names-$h.txt" 5 4 64)
    echo -e "c64 qps\t$who\t$r\t$qps\tq/s" >>"$OUT"
    echo -e "c64 p99\t$who\t$r\t$p99\tus" >>"$OUT"
    echo -e "c64 lost\t$who\t$r\t$lost\tqueries" >>"$OUT"
    echo -e "c64 noerror\t$who\t$r\t$ok\t%" >>"$OUT"
  done
done
log "lookups done"

# ---------- 3. TCP throughput: overlay across hosts vs one bridge ----------
dnh a network create tcpbr >/dev/null
dnh a run -d --name srv --network ov -- "$TCPB" serve 5201 >/dev/null
dnh a network connect tcpbr srv
dnh b run -d --name cl-ov --network ov -- sleep infinity >/dev/null
dnh a run -d --name cl-br --network tcpbr -- sleep infinity >/dev/null
ns_of() { echo "/run/netns/dnsnet-$(dnh "$1" inspect "$2" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].Id.slice(0,12)))')"; }
ip_of() { dnh "$1" inspect "$2" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].NetworkSettings.Networks[process.argv[1]].IPAddress))' "$3"; }
SRV_OV=$(ip_of a srv ov)
SRV_BR=$(ip_of a srv tcpbr)
NS_OV=$(ns_of b cl-ov)
NS_BR=$(ns_of a cl-br)
sleep 0.5
for r in $(seq 1 "$RUNS"); do
  wait_quiet
  v=$(nsenter --net="$NS_OV" "$TCPB" bulk "$SRV_OV" 5201 "$SECS")
  echo -e "tcp bulk\toverlay\t$r\t$v\tMB/s" >>"$OUT"
  wait_quiet
  v=$(nsenter --net="$NS_BR" "$TCPB" bulk "$SRV_BR" 5201 "$SECS")
  echo -e "tcp bulk\tbridge\t$r\t$v\tMB/s" >>"$OUT"
done
dnh a rm -f srv cl-br >/dev/null
dnh b rm -f cl-ov >/dev/null
dnh a network rm tcpbr >/dev/null
log "tcp done"

# ---------- summary ----------
summary() {
  local what=$1 who=$2 stat=$3
  awk -F'\t' -v w="$what" -v s="$who" '$1==w && $2==s {print $4}' "$OUT" | sort -g | awk -v st="$stat" '{a[NR]=$1} END{
    if (NR==0) {print "-"; exit}
    if (st=="p50") i=int((NR+1)/2); else if (st=="p99") i=int(NR*0.99+0.999); else i=NR
    if (i<1) i=1; print a[i]}'
}
{
  echo "start to answering on host b (ms, $STARTS starts each): remote p50 $(summary 'start to answering' remote p50) p99 $(summary 'start to answering' remote p99) | local p50 $(summary 'start to answering' local p50) p99 $(summary 'start to answering' local p99)"
  echo "run -d returns (ms): remote p50 $(summary 'run -d returns' remote p50) | local p50 $(summary 'run -d returns' local p50)"
  echo "lookups c=1 p50 (us): remote $(summary 'c=1 p50' remote p50) | local $(summary 'c=1 p50' local p50); c64 q/s: remote $(summary 'c64 qps' remote p50) | local $(summary 'c64 qps' local p50)"
  echo "tcp bulk (MB/s, median of $RUNS): overlay $(summary 'tcp bulk' overlay p50) | bridge $(summary 'tcp bulk' bridge p50)"
} | tee "${OUT%.tsv}.summary.txt" >&2
