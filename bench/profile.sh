#!/usr/bin/env bash
# Profile the daemon's query path: the daemon runs in the foreground under `node --cpu-prof`, pinned to
# SERVER_CPU; dnsperf drives WORKLOAD (local|forwarded|mixed) from a container for SECS; prints the top
# self-time functions. Usage: bench/profile.sh [local] [SECS]   (profile kept in $PROF_OUT, default /tmp)
source "$(dirname "$0")/lib.sh"
WORKLOAD=${1:-local}
SECS=${2:-5}
start_upstream
dnsnet_env
mkdir -p "$DNSNET_RUN" "$WORK/prof"
taskset -c "$SERVER_CPU" "$NODE" --cpu-prof --cpu-prof-dir="$WORK/prof" "$CLI" daemon 2>"$WORK/daemon.log" &
DPID=$!
at_exit "stop_pid $DPID"
for _ in $(seq 1 100); do [ -S "$DNSNET_RUN/dnsnet.sock" ] && break; sleep 0.1; done
dn network create profnet >/dev/null
for i in $(seq 1 10); do dn run -d --name "c$(printf %03d "$i")" --network profnet -- sleep infinity >/dev/null; done
dn run -d --name client --network profnet -- sleep infinity >/dev/null
NS=$(dn_netns client)
case $WORKLOAD in
  local) for i in $(seq 1 10); do printf 'c%03d A\n' "$i"; done >"$WORK/q" ;;
  forwarded) seq 1 100000 | awk '{printf "p%d.fwd.dnt.test A\n", $1}' >"$WORK/q" ;;
  mixed) awk '{ for (j = 1; j <= 9; j++) printf "c%03d A\n", (NR + j) % 10 + 1; printf "m%d.fwd.dnt.test A\n", NR }' <(seq 1 20000) >"$WORK/q" ;;
esac
nsenter --net="$NS" taskset -c "$LOAD_CPU" dnsperf -s 127.0.0.11 -d "$WORK/q" -l "$SECS" -c 8 -q 64 -t 2 2>&1 | grep -E "per second|lost"
ids=$(dn ps -a -q); dn rm -f $ids >/dev/null; dn network prune >/dev/null
stop_pid "$DPID"
prof=$(ls "$WORK"/prof/*.cpuprofile | head -1)
cp "$prof" "${PROF_OUT:-/tmp}/dnsnet-daemon-$WORKLOAD.cpuprofile"; log "profile: ${PROF_OUT:-/tmp}/dnsnet-daemon-$WORKLOAD.cpuprofile (open in Chrome DevTools)"
"$NODE" -e '
const p = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const self = new Map(); const dt = p.timeDeltas; const byId = new Map(p.nodes.map(n => [n.id, n]));
for (let i = 0; i < p.samples.length; i++) { const n = byId.get(p.samples[i]); const f = n.callFrame;
  const k = `${f.functionName || "(anon)"} ${(f.url || "").split("/").slice(-2).join("/")}:${f.lineNumber + 1}`; self.set(k, (self.get(k) || 0) + (dt[i] || 0)); }
const total = [...self.values()].reduce((a, b) => a + b, 0);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log((100 * v / total).toFixed(1).padStart(5) + " %  " + k);
' "$prof"
