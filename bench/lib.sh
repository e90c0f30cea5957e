# Shared helpers of the bench scripts (sourced, bash): a hermetic dnsnet, a fake upstream on loopback,
# peers in throwaway namespaces, dnsperf runs with their statistics, and a teardown that always runs.
# Nothing here talks to anything but 127.0.0.0/8 or namespaces it created.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
CLI=${DNSNET_CLI:-"$REPO/dist/cli/main.js"}
NODE=${NODE:-$(command -v node)}
AARDVARK=${AARDVARK:-/usr/lib/podman/aardvark-dns}
SERVER_CPU=${SERVER_CPU:-0} # the server under test (dnsnet's daemon, dnsmasq, aardvark-dns)
LOAD_CPU=${LOAD_CPU:-1}     # dnsperf and the fake upstream
RUNS=${RUNS:-3}

[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
[ -f "$CLI" ] || { echo "bench: $CLI missing: run npm run build first" >&2; exit 1; }

TAG=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
WORK=$(mktemp -d "/tmp/dnt-bench-$TAG.XXXX")
# The fake upstream: a random 127.53.X.Y address; the only nameserver any server under test is given.
UP="127.53.$((RANDOM % 250 + 2)).$((RANDOM % 250 + 2))"
CLEANUPS=()
log() { printf '[bench] %s\n' "$*" >&2; }

on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  local i
  for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[$i]}" >/dev/null 2>&1; done
  rm -rf --one-file-system "$WORK"
  leak_check
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
at_exit() { CLEANUPS+=("$1"); }

# Anything of this run still in the kernel or the process table? (ours all carry $TAG)
leak_check() {
  local left
  local procs
  procs=$(pgrep -af "dnt-bench-$TAG|dnt$TAG" || true)
  left=$( { ip netns list; ip -o link show; nft list tables 2>/dev/null; echo "$procs"; } | grep -E "dnt$TAG|dnt-bench-$TAG|${DN_TABLE:-nothing-at-all}" || true)
  if [ -n "$left" ]; then echo "[bench] LEFT BEHIND:" >&2; echo "$left" >&2; else log "teardown clean (no netns, link, nft table or process of run $TAG left)"; fi
}

# Kill a process by pid and wait for it (never by name).
stop_pid() {
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# ---------- namespaces ----------
# mk_netns NAME: a netns with lo up, removed at exit.
mk_netns() {
  ip netns add "$1"
  at_exit "ip netns del $1"
  ip -n "$1" link set lo up
}

# ---------- the fake upstream ----------
# start_upstream [NETNS]: dnsmasq answering every A query with 192.0.2.1 (TTL 0), on $UP:53, pinned to LOAD_CPU.
# Peers run in their own netns and cannot reach the host's loopback: they get an identical copy on the same address.
start_upstream() {
  local ns=${1:-} pre=()
  [ -n "$ns" ] && pre=(ip netns exec "$ns")
  "${pre[@]}" taskset -c "$LOAD_CPU" dnsmasq --keep-in-foreground --no-resolv --no-hosts -C /dev/null \
    --address=/#/192.0.2.1 --listen-address="$UP" --bind-interfaces -p 53 --pid-file= --user=root \
    --log-facility=/dev/null >/dev/null 2>&1 &
  local pid=$!
  at_exit "stop_pid $pid"
  for _ in $(seq 1 50); do
    "${pre[@]}" dig +short +time=1 +tries=1 "@$UP" probe.upstream.test A 2>/dev/null | grep -q 192.0.2.1 && return 0
    sleep 0.1
  done
  echo "bench: fake upstream on $UP did not come up" >&2
  return 1
}

# ---------- dnsnet, hermetic ----------
dnsnet_env() {
  export DNSNET_ROOT="$WORK/dnsnet/state" DNSNET_RUN="$WORK/dnsnet/run"
  export DNSNET_HOST_RESOLV_CONF="$WORK/dnsnet/host-resolv.conf" DNSNET_SYSTEMD_RESOLV_CONF="$WORK/dnsnet/systemd-resolv.conf"
  export DNSNET_DEFAULT_BRIDGE="dnt${TAG}b"
  mkdir -p "$WORK/dnsnet"
  # Only the fake upstream: forwarded queries never leave the machine.
  printf 'nameserver %s\n' "$UP" >"$DNSNET_HOST_RESOLV_CONF"
  DN_TABLE=$("$NODE" -e 'const c=require("crypto");const p=require("path");console.log("dnsnet_"+c.createHash("sha256").update(p.resolve(process.argv[1])).digest("hex").slice(0,8))' "$DNSNET_ROOT")
  at_exit dnsnet_teardown
}
dn() { "$NODE" "$CLI" "$@"; }
dnsnet_pid() { cat "$DNSNET_RUN/dnsnet.pid" 2>/dev/null || true; }
# Start the daemon (on demand, via a harmless command) and pin all its threads to SERVER_CPU.
dnsnet_start() {
  dn network ls >/dev/null
  taskset -a -p -c "$SERVER_CPU" "$(dnsnet_pid)" >/dev/null
}
dnsnet_teardown() {
  [ -n "${DNSNET_ROOT:-}" ] || return 0
  if [ -S "$DNSNET_RUN/dnsnet.sock" ] || [ -f "$DNSNET_RUN/dnsnet.pid" ]; then
    local ids
    ids=$(timeout 120 "$NODE" "$CLI" ps -a -q 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -n "$ids" ] && timeout 300 "$NODE" "$CLI" rm -f $ids >/dev/null 2>&1
    timeout 60 "$NODE" "$CLI" network prune >/dev/null 2>&1
    stop_pid "$(dnsnet_pid)"
  fi
  ip link delete "$DNSNET_DEFAULT_BRIDGE" 2>/dev/null
  nft delete table inet "$DN_TABLE" 2>/dev/null
  return 0
}
# The netns path of a dnsnet container.
dn_netns() { echo "/run/netns/dnsnet-$(dn inspect "$1" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log((Array.isArray(j)?j[0]:j).Id.slice(0,12))})')"; }
# Pids of the daemon's children (helpers are short-lived; containers are not pinned: they sleep).
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---------- a quiet machine ----------
# Other work on the host skews every figure: before a measurement, wait (at most QUIET_WAIT s) until
# the last 0.5 s used less than QUIET_PCT % of the CPUs. Returns anyway; the wait is logged.
cpu_busy_pct() {
  local a b
  a=($(head -1 /proc/stat)); sleep 0.5; b=($(head -1 /proc/stat))
  local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}
wait_quiet() {
  local t0=$SECONDS busy
  while :; do
    busy=$(cpu_busy_pct)
    [ "$busy" -lt "${QUIET_PCT:-10}" ] && return 0
    if [ $((SECONDS - t0)) -ge "${QUIET_WAIT:-10}" ]; then log "machine still ${busy} % busy after ${QUIET_WAIT:-10} s: measuring anyway"; return 0; fi
  done
}

# ---------- load generators ----------
# The c=1 latency probe (dnsperf at -q 1 sleeps between queries): compiled once per run.
DNSPING="$WORK/dnsping"
gcc -O2 -o "$DNSPING" "$BENCH_DIR/dnsping.c"

# ping1 NETNS_PATH SERVER QUERYFILE SECONDS -> "qps lost p50_us p99_us p999_us noerror_pct" (one query in flight)
ping1() {
  local r
  wait_quiet
  r=$(nsenter --net="$1" taskset -c "$LOAD_CPU" "$DNSPING" "$2" "$3" "$4")
  awk '{print $6, $2, $3, $4, $5, $7}' <<<"$r"
}

# perf NETNS_PATH SERVER QUERYFILE SECONDS CLIENTS OUTSTANDING -> "qps lost p50_us p99_us p999_us noerror_pct"
# Two dnsperf passes: throughput without -v (printing costs dnsperf ~25 % of its rate), then a shorter
# pass with -v, one line per response with its latency, for the percentiles.
perf() {
  local nsp=$1 server=$2 qf=$3 secs=$4 clients=$5 outst=$6 out sorted
  wait_quiet
  out="$WORK/perf.$RANDOM.txt"
  sorted="$out.sorted"
  nsenter --net="$nsp" taskset -c "$LOAD_CPU" dnsperf -s "$server" -d "$qf" -l "$secs" -c "$clients" -q "$outst" -t 2 >"$out" 2>&1 || true
  local qps lost lost2 ok n p50 p99 p999
  qps=$(awk '/Queries per second:/{print $4}' "$out")
  lost=$(awk '/Queries lost:/{print $3}' "$out")
  nsenter --net="$nsp" taskset -c "$LOAD_CPU" dnsperf -s "$server" -d "$qf" -l "${LATPASS_SECS:-2}" -c "$clients" -q "$outst" -t 2 -v >"$out" 2>&1 || true
  awk '/^> /{printf "%.1f\n", $NF*1e6}' "$out" | sort -n >"$sorted"
  lost2=$(awk '/Queries lost:/{print $3}' "$out")
  ok=$(awk '/^> NOERROR/{c++} END{print c+0}' "$out")
  n=$(wc -l <"$sorted")
  if [ "$n" -gt 0 ]; then
    p50=$(sed -n "$(( (n * 50 + 99) / 100 ))p" "$sorted")
    p99=$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$sorted")
    p999=$(sed -n "$(( (n * 999 + 999) / 1000 ))p" "$sorted")
  else p50=0 p99=0 p999=0; fi
  echo "${qps:-0} $(( ${lost:-0} + ${lost2:-0} )) ${p50:-0} ${p99:-0} ${p999:-0} $(awk -v o="$ok" -v n="$n" 'BEGIN{printf "%.2f", n ? 100*o/n : 0}')"
  rm -f "$out" "$sorted"
}

# med_range VALUES... -> "median (min-max)"; med VALUES... -> median
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
mn() { printf '%s\n' "$@" | sort -g | head -1; }
mx() { printf '%s\n' "$@" | sort -g | tail -1; }
