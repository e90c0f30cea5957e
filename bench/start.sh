#!/usr/bin/env bash
# Workload 4: container start to resolvable, dnsnet vs Podman (netavark + aardvark-dns) vs Podman with dnsnet's
# aardvark-dns (`dnsnet system podman install`, through helper_binaries_dir), interleaved.
# From just before `run -d` to the first A answer for the new name, asked from another container on the same
# network (dnsnet: 127.0.0.11 from the probe's netns; Podman: aardvark-dns on the network's gateway, from the
# probe's netns), measured two ways (see start_one); STARTS starts per round and per system, ROUNDS rounds;
# medians, p95 per round.
# Usage: bench/start.sh [OUT.tsv]    env: STARTS=50 ROUNDS=1 PODMAN_BENCH=auto|0 PODMAN_DNSNET=1|0 PODMAN_STATIC_MAC=0|1
# Safety: lib.sh's guard drops (and counts) any DNS packet bound off the machine; Podman runs in a private mount
# namespace whose /etc/resolv.conf names only the fake upstream (see podman_env in lib.sh).
source "$(dirname "$0")/lib.sh"
OUT=${1:-$BENCH_DIR/results/start.tsv}
STARTS=${STARTS:-50}
ROUNDS=${ROUNDS:-1}
mkdir -p "$(dirname "$OUT")"
# The fake upstream logs every query it gets: the proof of where forwarded names went.
UPSTREAM_LOG="$WORK/upstream.log"

WITH_PODMAN=0 WITH_PMDNSNET=0
if [ "${PODMAN_BENCH:-auto}" != 0 ] && [ -x "$PODMAN" ] && [ -x "$AARDVARK" ]; then WITH_PODMAN=1; fi
if [ "$WITH_PODMAN" = 1 ] && [ "${PODMAN_DNSNET:-1}" != 0 ]; then WITH_PMDNSNET=1; fi

# check_forward NETNS_PATH SERVER WHO: an unknown name asked there must come back from the fake upstream
# (192.0.2.1) and be in its query log; the guard counter must still be 0.
check_forward() {
  local q="fwdcheck-$RANDOM.$TAG.dnt.test" a
  a=$(nsenter --net="$1" dig +short +time=2 +tries=2 "@$2" "$q" A 2>/dev/null || true)
  sleep 0.2
  [ "$a" = 192.0.2.1 ] && grep -q "query\[A\] $q from" "$UPSTREAM_LOG" ||
    { echo "bench: $3: unknown name $q did not reach the fake upstream (answer '$a')" >&2; exit 1; }
  [ "$(guard_drops)" = 0 ] || { echo "bench: $3: guard counter is $(guard_drops)" >&2; exit 1; }
  log "$3: unknown name $q forwarded to the fake upstream $UP (in its query log), guard counter 0"
}

log "fake upstream on $UP (query log $UPSTREAM_LOG)"
start_upstream
dnsnet_env
dnsnet_start
dn network create startnet >/dev/null
dn run -d --name probe --network startnet -- sleep infinity >/dev/null
DN_NS=$(dn_netns probe)
check_forward "$DN_NS" 127.0.0.11 dnsnet

# podman_setup WHO PROBE: the current instance's network (a /24 no route covers yet) and probe container.
podman_setup() {
  local who=$1 probe=$2 _ mac
  podman_env
  for _ in $(seq 1 50); do
    PM_SUBNET="10.$((RANDOM % 50 + 200)).$((RANDOM % 250 + 1))"
    ip route get "$PM_SUBNET.1" | grep -q ' via ' && ! ip -o route | grep -q "^$PM_SUBNET\." && break
  done
  podman_network "$PM_SUBNET.0/24"
  log "$who: network $PM_NET $PM_SUBNET.0/24, bridge $PM_BRIDGE, DNS server on $PM_GW"
  pm_run "$probe" >/dev/null
  if [ "${PODMAN_STATIC_MAC:-0}" = 1 ]; then
    # netavark 1.4 leaves the bridge's MAC to the kernel, which takes the lowest MAC of its ports: when a new
    # container's veth has a lower one, the bridge's MAC changes, and containers that already have the
    # gateway (aardvark-dns's address) in their ARP cache send into the void until that entry is re-probed,
    # 20-30 s here. Later netavark sets a static MAC on the bridge (containers/netavark#833); this emulates it.
    mac=$(printf '0a:58:%02x:%02x:%02x:%02x' ${PM_GW//./ })
    ip link set "$PM_BRIDGE" address "$mac"
    log "$who: bridge $PM_BRIDGE given the static MAC $mac (PODMAN_STATIC_MAC=1: what netavark >= #833 does)"
  fi
}

if [ "$WITH_PODMAN" = 1 ]; then
  log "podman $("$PODMAN" --version | awk '{print $3}'), netavark $(/usr/lib/podman/netavark --version | awk '{print $2}'), $("$AARDVARK" --version)"
  podman_setup podman pprobe
  podman_aardvark
  n_aard=$(pgrep -cx aardvark-dns || true)
  [ "$n_aard" = 1 ] || { echo "bench: podman: $n_aard aardvark-dns processes, expected only ours ($PM_AARD_PID)" >&2; exit 1; }
  taskset -a -p -c "$SERVER_CPU" "$PM_AARD_PID" >/dev/null
  log "podman: aardvark-dns pid $PM_AARD_PID, in the private mount namespace, sees: $(tr '\n' ' ' <"/proc/$PM_AARD_PID/root/etc/resolv.conf")"
  PM_PROBE_NS=$(pm_netns pprobe)
  check_forward "$PM_PROBE_NS" "$PM_GW" podman
  pm_save a
fi

if [ "$WITH_PMDNSNET" = 1 ]; then
  # The same Podman, a second private instance, with dnsnet's aardvark-dns first in helper_binaries_dir; it
  # carries this run's state root, so this run's daemon (pinned like the others) serves its network.
  dn system podman install --dir "$WORK/pmbin" >/dev/null
  PM="$WORK/podman-dnsnet" PM_NET="dntpd$TAG" PM_INST=d PM_HELPER_DIR="$WORK/pmbin"
  PM_MNTNS= PM_BRIDGE= PM_GW= PM_AARD_PID= PM_SUBNET= PM_PROBE_NS=
  podman_setup podman+dnsnet pdprobe
  podman_dnsnet_server
  log "podman+dnsnet: dnsnet's aardvark-dns pid $PM_AARD_PID (served by the daemon, pid $(dnsnet_pid))"
  PM_PROBE_NS=$(pm_netns pdprobe)
  check_forward "$PM_PROBE_NS" "$PM_GW" podman+dnsnet
  pm_save d
fi

# start_one SERVER NAME SAMPLE: one timed start, three rows. Each start waits first until the machine is
# quiet (settle: under 15 % busy for 100 ms), so it is not slowed by the previous start's after-work
# (either system's); the clock is bash's EPOCHREALTIME (µs, no fork) and waitname's CLOCK_REALTIME.
# - "start to answering": bench/waitname.c, started (and ready) in the probe's netns before t0, asks for the
#   name every millisecond and reports the wall-clock time of the first answer with the container's address.
# - "start to resolvable": the older measure, kept for comparison: after `run -d` returns, `dig` is run from
#   the probe's netns until it answers; each try costs a process and an nsenter (~50 ms here), which pads
#   both systems alike and caps how small a ratio can get.
start_one() {
  local t0 t1 t2 t3 pfd ready sent ns srv
  case $1 in
    dnsnet) ns=$DN_NS srv=127.0.0.11 ;;
    podman) pm_load a; ns=$PM_PROBE_NS srv=$PM_GW ;;
    podman+dnsnet) pm_load d; ns=$PM_PROBE_NS srv=$PM_GW ;;
  esac
  settle || UNSETTLED=$((UNSETTLED + 1))
  exec {pfd}< <(exec nsenter --net="$ns" "$WAITNAME" "$srv" "$2" 60000 1000)
  read -r -u "$pfd" ready
  [ "$ready" = ready ] || { echo "bench: waitname did not start" >&2; exit 1; }
  stamp t0
  if [ "$1" = dnsnet ]; then
    dn run -d --name "$2" --network startnet -- sleep infinity >/dev/null
  else
    pm_run "$2" >/dev/null
  fi
  stamp t1
  wait_name "$ns" "$srv" "$2" || { echo "bench: $1: $2 never resolved" >&2; exit 1; }
  stamp t2
  read -r -u "$pfd" t3 sent || true
  exec {pfd}<&-
  [ -n "$t3" ] || { echo "bench: $1: waitname never saw $2" >&2; exit 1; }
  echo -e "run -d returns\t$1\t$3\t$(us_ms $((t1 - t0)))\tms" >>"$OUT"
  echo -e "start to answering\t$1\t$3\t$(us_ms $((t3 - t0)))\tms" >>"$OUT"
  echo -e "start to resolvable\t$1\t$3\t$(us_ms $((t2 - t0)))\tms" >>"$OUT"
}
us_ms() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }
UNSETTLED=0

SERVERS=(dnsnet)
[ "$WITH_PODMAN" = 1 ] && SERVERS+=(podman)
[ "$WITH_PMDNSNET" = 1 ] && SERVERS+=(podman+dnsnet)
echo -e "what\tserver\trun\tvalue\tunit" >"$OUT"
for r in $(seq 1 "$ROUNDS"); do
  wait_quiet
  for i in $(seq 1 "$STARTS"); do
    k=$(( (r - 1) * STARTS + i ))
    # Interleaved, and the order alternates, so neither system always goes first after the other's start.
    if [ $((i % 2)) = 1 ]; then order=("${SERVERS[@]}"); else order=($(printf '%s\n' "${SERVERS[@]}" | tac)); fi
    for s in "${order[@]}"; do
      case $s in
        dnsnet) start_one dnsnet "$(printf 's%d%03d' "$r" "$i")" "$k" ;;
        podman) start_one podman "$(printf 'p%d%03d' "$r" "$i")" "$k" ;;
        podman+dnsnet) start_one podman+dnsnet "$(printf 'd%d%03d' "$r" "$i")" "$k" ;;
      esac
    done
    [ $((i % 10)) = 0 ] && log "round $r: $i starts each"
  done
  # p95 of this round's samples, one row per round and system (the table shows their median and range).
  /usr/bin/python3 - "$OUT" "$r" "$STARTS" <<'EOF'
import csv, sys
path, rnd, starts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = list(csv.DictReader(open(path), delimiter="\t"))
lo, hi = (rnd - 1) * starts, rnd * starts
for s in dict.fromkeys(r["server"] for r in rows):
    for what in ("start to answering", "start to resolvable"):
        v = sorted(float(r["value"]) for r in rows if r["server"] == s and r["what"] == what and lo < int(r["run"]) <= hi)
        if v:
            p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
            with open(path, "a") as f:
                f.write(f"{what} p95\t{s}\t{rnd}\t{p95}\tms\n")
EOF
  log "round $r done; guard counter $(guard_drops); starts that began on a busy machine (settle timed out): $UNSETTLED"
  if [ "$r" -lt "$ROUNDS" ]; then
    # Each round starts from the same state: the round's containers go (untimed).
    # shellcheck disable=SC2046
    dn rm -f $(for i in $(seq 1 "$STARTS"); do printf 's%d%03d ' "$r" "$i"; done) >/dev/null
    # shellcheck disable=SC2046
    [ "$WITH_PODMAN" = 1 ] && pm_load a && pm rm -f -t 0 $(for i in $(seq 1 "$STARTS"); do printf 'p%d%03d ' "$r" "$i"; done) >/dev/null
    # shellcheck disable=SC2046
    [ "$WITH_PMDNSNET" = 1 ] && pm_load d && pm rm -f -t 0 $(for i in $(seq 1 "$STARTS"); do printf 'd%d%03d ' "$r" "$i"; done) >/dev/null
  fi
done
log "the fake upstream got $(grep -c 'query\[' "$UPSTREAM_LOG") queries in all (unknown names forwarded by the servers, plus its own probe)"
[ "$WITH_PODMAN" = 1 ] || log "podman not measured (PODMAN_BENCH=0, or $PODMAN / $AARDVARK missing)"
/usr/bin/python3 "$BENCH_DIR/report.py" kv "$OUT"
