# Shared helpers of the bench scripts (sourced, bash): a DNS egress guard, a hermetic dnsnet, a fake upstream
# on loopback, peers in throwaway namespaces, Podman in a private mount namespace, dnsperf runs with their
# statistics, and a teardown that always runs.
# Nothing here talks to anything but 127.0.0.0/8 or namespaces it created; the guard below makes that hold
# even if a server under test tries otherwise (sourcing this file installs it before anything starts).

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
CLI=${DNSNET_CLI:-"$REPO/dist/cli/dnsnet.cjs"}
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
  guard_remove || rc=3
  leak_check
  rm -rf --one-file-system "$WORK"
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
  # dnsnet's containers: their netns and veths carry no run tag, but the veths carry the root's owner tag
  # (alias dnsnet:<8 hex>, the table's hex), and a container process has the run's files mounted.
  local owner=nothing-at-all p
  [ -n "${DN_TABLE:-}" ] && owner="alias dnsnet:${DN_TABLE#dnsnet_}"
  for p in $(ls /proc | grep -E '^[0-9]+$'); do
    grep -qF "/$(basename "$WORK")/" "/proc/$p/mountinfo" 2>/dev/null && procs+=$'\n'"dnt$TAG container process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
  done
  left=$( { ip netns list; ip -o link show; nft list tables 2>/dev/null; echo "$procs"; } | grep -E "dnt$TAG|dnt-bench-$TAG|${DN_TABLE:-nothing-at-all}|$owner|$GUARD_TABLE|${PM_BRIDGE:-nothing-at-all}:" || true)
  local inst
  for inst in "${PM_INSTANCES[@]}"; do
    pm_load "$inst"
    [ -n "${PM_MNTNS:-}" ] && left+=$( { { pgrep -ax aardvark-dns; pgrep -ax conmon; pgrep -af 'dist/cli/aardvark-dns.js'; } | while read -r p rest; do [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$PM_MNTNS" ] && echo "podman process $p $rest"; done; iptables-save 2>/dev/null | grep -E "^-A.*NETAVARK|^:NETAVARK" | grep -vxFf <(cat "$PM"/ipt-before.* 2>/dev/null; echo nothing-at-all) || true; } )
    [ -n "${PM_BRIDGE:-}" ] && left+=$(ip -o link show | grep -F " ${PM_BRIDGE}:" || true)
  done
  if [ -n "$left" ]; then echo "[bench] LEFT BEHIND:" >&2; echo "$left" >&2; else log "teardown clean (no netns, link, nft table, iptables rule or process of run $TAG left)"; fi
}

# ---------- the DNS egress guard ----------
# An nftables table of this run, in place before anything starts and removed last: every UDP/TCP packet to
# port 53 or 853 that would leave the machine -- through an uplink (an interface carrying a default route,
# v4 or v6, in any routing table, or a NIC: an ethernet link of no kind, i.e. not a bridge, veth, dummy...)
# or to a non-loopback nameserver of the host's own resolv.conf, whatever the route -- is counted and dropped,
# in output, forward and postrouting (after any re-routing), at priority -500 (before any other table).
# Traffic to loopback, into namespaces or bridges never matches: other engineers' work on this host is
# untouched. Whatever leaves through lo stays on the machine: it is let through by the first rule, so the
# loopback traffic of a bench (dnsnet forwards from the host netns, the peers inside their own) does not
# pay for the rules after it. The counter must stay 0; the teardown prints it and fails the run loudly if it does not.
GUARD_TABLE="dnsnetbench_guard_$TAG"
guard_uplinks() {
  {
    { ip -o -4 route show table all default; ip -o -6 route show table all default; } 2>/dev/null |
      awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1)}'
    ip -d -j link show | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const l of JSON.parse(s)){if(l.ifname!=="lo"&&l.link_type==="ether"&&!(l.linkinfo&&l.linkinfo.info_kind))console.log(l.ifname)}})'
  } | sort -u
}
guard_install() {
  local ups res4 res6 r chain rules="" extra=""
  ups=$(guard_uplinks | awk '{printf "%s\"%s\"", (NR > 1 ? ", " : ""), $1}')
  [ -n "$ups" ] || { echo "bench: guard: no uplink found (no default route, no NIC): refusing to run" >&2; exit 1; }
  # The host's real nameservers (loopback ones excepted: those would be the host's own stub resolver).
  res4=$(awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ && $2 !~ /^127\./ {printf "%s%s", n++ ? ", " : "", $2}' /etc/resolv.conf 2>/dev/null || true)
  res6=$(awk '$1 == "nameserver" && $2 ~ /:/ && $2 != "::1" {sub(/%.*/, "", $2); printf "%s%s", n++ ? ", " : "", $2}' /etc/resolv.conf 2>/dev/null || true)
  r='meta l4proto { tcp, udp } th dport { 53, 853 }'
  [ -n "$res4" ] && extra+="    $r ip daddr { $res4 } counter name drops drop"$'\n'
  [ -n "$res6" ] && extra+="    $r ip6 daddr { $res6 } counter name drops drop"$'\n'
  for chain in guard_out:output guard_fwd:forward guard_post:postrouting; do
    rules+="  chain ${chain%%:*} {
    type filter hook ${chain#*:} priority -500; policy accept;
    oifname "lo" accept
    $r ip daddr != 127.0.0.0/8 oifname @uplinks counter name drops drop
    $r ip6 daddr != ::1 oifname @uplinks counter name drops drop
$extra  }
"
  done
  nft -f - <<EOF
table inet $GUARD_TABLE {
  counter drops { }
  set uplinks { type ifname; elements = { $ups } }
$rules}
EOF
  GUARD_ON=1
  log "guard: nft table inet $GUARD_TABLE drops DNS (53, 853) leaving via { $ups }${res4:+, or to $res4}${res6:+, or to $res6}"
}
guard_drops() { nft list counter inet "$GUARD_TABLE" drops 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1)}'; }
# Prints the counter and removes the table; returns 1 if anything was dropped (or the counter is unreadable).
guard_remove() {
  [ -n "${GUARD_ON:-}" ] || return 0
  local n
  n=$(guard_drops)
  nft delete table inet "$GUARD_TABLE" 2>/dev/null
  GUARD_ON=
  if [ "${n:-x}" = 0 ]; then
    log "guard: 0 DNS packets dropped on their way off the machine (counter of nft table inet $GUARD_TABLE; table removed)"
    return 0
  fi
  {
    echo "[bench] !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "[bench] !!! GUARD: ${n:-UNKNOWN (counter unreadable)} DNS packet(s) tried to LEAVE THE MACHINE and were dropped."
    echo "[bench] !!! Something asked a resolver outside loopback and our namespaces. Find out what. Do not trust this run."
    echo "[bench] !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  } >&2
  return 1
}
# Proves the guard drops, with packets that cannot reach any network: a veth pair of this run whose other end
# sits in a throwaway netns of this run (nothing listens there; no dummy driver on this kernel) gets host
# routes to TEST-NET-3 203.0.113.53 and 2001:db8::53 and joins the uplink set for the test; one UDP and one
# TCP query to each must be counted. (Not 192.0.2.x: that is this VM's real uplink subnet.) Nothing is sent
# unless `ip route get` says the veth. The counter is reset afterwards.
guard_selftest() {
  local g="dnt${TAG}g" ns="dnt${TAG}g" d n=0 before after dests=(203.0.113.53 2001:db8::53)
  mk_netns "$ns"
  ip link add "$g" type veth peer name "dnt${TAG}h" netns "$ns"
  at_exit "ip link del $g"
  ip link set "$g" up
  ip -n "$ns" link set "dnt${TAG}h" up
  ip route add 203.0.113.53/32 dev "$g"
  ip -6 route add 2001:db8::53/128 dev "$g" 2>/dev/null || dests=(203.0.113.53)
  for d in "${dests[@]}"; do
    ip route get "$d" | grep -q " dev $g " || { echo "bench: guard self-test: $d is not routed into $g: refusing to send" >&2; exit 1; }
  done
  nft add element inet "$GUARD_TABLE" uplinks "{ \"$g\" }"
  before=$(guard_drops)
  for d in "${dests[@]}"; do
    dig +time=1 +tries=1 "@$d" guard.selftest.invalid A >/dev/null 2>&1 || true
    dig +tcp +time=1 +tries=1 "@$d" guard.selftest.invalid A >/dev/null 2>&1 || true
    n=$((n + 2))
  done
  after=$(guard_drops)
  nft delete element inet "$GUARD_TABLE" uplinks "{ \"$g\" }"
  ip link del "$g"
  ip netns del "$ns"
  if [ $((after - before)) -lt "$n" ]; then
    echo "bench: guard self-test FAILED: counter went $before -> $after for $n test queries into veth $g" >&2
    exit 1
  fi
  log "guard self-test: $n test queries (UDP and TCP to ${dests[*]}, routed into veth $g) counted and dropped ($before -> $after)"
  nft reset counter inet "$GUARD_TABLE" drops >/dev/null
  [ "$(guard_drops)" = 0 ] || { echo "bench: guard: counter did not reset" >&2; exit 1; }
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

# The guard goes in first of all.
command -v nft >/dev/null || { echo "bench: nft missing (apt-get install nftables): the DNS guard needs it" >&2; exit 1; }
guard_install
guard_selftest

# ---------- the fake upstream ----------
# start_upstream [NETNS]: a server answering every A query with 192.0.2.1 (TTL 0), on $UP:53, pinned to LOAD_CPU.
# Peers run in their own netns and cannot reach the host's loopback: they get an identical copy on the same address.
# FAKE_UPSTREAM=dnsmasq (the default): dnsmasq; with UPSTREAM_LOG=FILE it logs every query it gets there
# (--log-queries), to prove what reaches it. FAKE_UPSTREAM=fast: bench/fakeup.c (UDP only, batched), for
# throughput runs, where dnsmasq as the upstream took half the load core; it prints how many it answered
# to $WORK/fakeup-<netns>.out when stopped.
FAKEUP="$WORK/fakeup"
gcc -O2 -o "$FAKEUP" "$BENCH_DIR/fakeup.c"
start_upstream() {
  local ns=${1:-} pre=() logq=(--log-facility=/dev/null) pid
  [ -n "$ns" ] && pre=(ip netns exec "$ns")
  if [ "${FAKE_UPSTREAM:-dnsmasq}" = fast ]; then
    [ -z "${UPSTREAM_LOG:-}" ] || { echo "bench: UPSTREAM_LOG needs FAKE_UPSTREAM=dnsmasq" >&2; exit 1; }
    "${pre[@]}" taskset -c "$LOAD_CPU" "$FAKEUP" "$UP" 53 >"$WORK/fakeup-${ns:-host}.out" 2>&1 &
  else
    [ -n "${UPSTREAM_LOG:-}" ] && logq=(--log-queries "--log-facility=$UPSTREAM_LOG")
    "${pre[@]}" taskset -c "$LOAD_CPU" dnsmasq --keep-in-foreground --no-resolv --no-hosts -C /dev/null \
      --address=/#/192.0.2.1 --listen-address="$UP" --bind-interfaces -p 53 --pid-file= --user=root \
      "${logq[@]}" >/dev/null 2>&1 &
  fi
  pid=$!
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
# The CLI as users run it: through its shebang (which, among other things, spares Node the
# NODE_EXTRA_CA_CERTS file at start). A build without the executable bit falls back to node CLI.
dn() { if [ -x "$CLI" ]; then "$CLI" "$@"; else "$NODE" "$CLI" "$@"; fi; }
dnsnet_pid() { cat "$DNSNET_RUN/dnsnet.pid" 2>/dev/null || true; }
# Start the daemon (on demand, via a harmless command) and pin all its threads to SERVER_CPU.
dnsnet_start() {
  dn network ls >/dev/null
  taskset -a -p -c "$SERVER_CPU" "$(dnsnet_pid)" >/dev/null
}
dnsnet_teardown() {
  [ -n "${DNSNET_ROOT:-}" ] || return 0
  # Also when no daemon runs any more (a script stopped it, or it died): the CLI starts one on the same
  # state root, which re-adopts the containers, so they can be removed. Without this a stopped daemon
  # left its containers' netns, veths and processes behind.
  if [ -S "$DNSNET_RUN/dnsnet.sock" ] || [ -f "$DNSNET_RUN/dnsnet.pid" ] || [ -d "$DNSNET_ROOT/containers" ]; then
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

# ---------- Podman, private ----------
# Rootful Podman 4.3 + netavark + aardvark-dns, changing nothing of the host's Podman setup and unable to ask
# the host's resolver anything:
# - every podman command (and so netavark, the aardvark-dns it spawns, conmon, runc, the exit-command cleanups)
#   runs in one private mount namespace of this run (kept by a bind mount on $PM/nsdir/mnt, entered with
#   nsenter), where /etc/resolv.conf is a bind mount of a file naming only the fake upstream ($UP), and /run
#   and /dev/shm are fresh tmpfs: /run/containers/networks (netavark's ipam db, aardvark's config and pid file:
#   fixed paths for rootful Podman), /run/netns, /run/runc, /run/libpod and the shm locks are this run's alone;
# - CONTAINERS_CONF / CONTAINERS_STORAGE_CONF name files of this run (temp graphroot, runroot, tmp_dir,
#   network_config_dir, events file), so /etc/containers and /var/lib/containers are never read or written;
# - runc (crun refuses this host's hybrid cgroups), cgroupfs, lowered default_ulimits (no CAP_SYS_RESOURCE),
#   containers run `--rootfs /:O` (an overlay of the host's /): no image, no registry.
# Not private: netavark's iptables rules (iptables-nft, host netns) and its bridge; both are removed with the
# network, and the bench checks what is left.
PODMAN=${PODMAN:-/usr/bin/podman}
PM="$WORK/podman"
PM_NET="dntpm$TAG"
# Two Podman instances may run side by side ("a": Podman's own aardvark-dns; "d": dnsnet's, through
# helper_binaries_dir): each its own mount namespace, files and network. The functions below work on the
# current one; pm_save NAME / pm_load NAME switch.
PM_INST=a
PM_HELPER_DIR=
PM_VARS=(PM PM_NET PM_INST PM_HELPER_DIR PM_MNTNS PM_BRIDGE PM_GW PM_AARD_PID PM_SUBNET PM_PROBE_NS)
PM_INSTANCES=()
pm_save() { local v; for v in "${PM_VARS[@]}"; do printf -v "PMI_${1}_$v" '%s' "${!v:-}"; done; [[ " ${PM_INSTANCES[*]} " == *" $1 "* ]] || PM_INSTANCES+=("$1"); }
pm_load() { local v n; for v in "${PM_VARS[@]}"; do n="PMI_${1}_$v"; printf -v "$v" '%s' "${!n:-}"; done; }
pm_ns() { nsenter --mount="$PM/nsdir/mnt" "$@"; }
pm() { pm_ns env CONTAINERS_CONF="$PM/containers.conf" CONTAINERS_STORAGE_CONF="$PM/storage.conf" "$PODMAN" "$@"; }
pm_timeout() { timeout "$1" nsenter --mount="$PM/nsdir/mnt" env CONTAINERS_CONF="$PM/containers.conf" CONTAINERS_STORAGE_CONF="$PM/storage.conf" "$PODMAN" "${@:2}"; }
podman_env() {
  local other=
  # A foreign aardvark-dns could answer for a network of ours: refuse to start next to one (the second
  # instance starts next to the first's, which is ours).
  [ "$PM_INST" = a ] && other=$(pgrep -ax aardvark-dns || true)
  if [ -n "$other" ]; then
    echo "bench: an aardvark-dns is already running, not started by this run: stopping (not touching it):" >&2
    echo "$other" >&2
    exit 1
  fi
  if [ -L /etc/resolv.conf ]; then echo "bench: /etc/resolv.conf is a symlink: the private bind mount would not cover it" >&2; exit 1; fi
  mkdir -p "$PM"/{root,runroot,tmp,netconf,nsdir}
  # netavark's iptables rules land in the host's (iptables-nft) tables: remember what was there.
  local t
  for t in filter nat; do
    if nft list table ip "$t" >/dev/null 2>&1; then iptables-save -t "$t" >"$PM/ipt-before.$t"; else : >"$PM/ipt-before.$t"; fi
  done
  printf 'nameserver %s\n' "$UP" >"$PM/resolv.conf"
  cat >"$PM/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
log_driver = "k8s-file"

[network]
network_backend = "netavark"
network_config_dir = "$PM/netconf"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PM/events.log"
runtime = "runc"
tmp_dir = "$PM/tmp"
static_dir = "$PM/root/libpod"
volume_path = "$PM/root/volumes"
${PM_HELPER_DIR:+helper_binaries_dir = [\"$PM_HELPER_DIR\", \"/usr/lib/podman\"]}
EOF
  cat >"$PM/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PM/root"
runroot = "$PM/runroot"
EOF
  # A mount namespace is kept alive by binding its nsfs file somewhere not shared: a private bind of nsdir.
  mount --bind "$PM/nsdir" "$PM/nsdir"
  mount --make-private "$PM/nsdir"
  touch "$PM/nsdir/mnt"
  at_exit "umount $PM/nsdir/mnt; umount $PM/nsdir"
  unshare --mount="$PM/nsdir/mnt" --propagation private sh -ec '
    mount -t tmpfs -o mode=755 dnt-bench-run /run
    mount -t tmpfs -o mode=1777 dnt-bench-shm /dev/shm
    mount --bind "$1" /etc/resolv.conf' sh "$PM/resolv.conf"
  PM_MNTNS=$(pm_ns readlink /proc/self/ns/mnt)
  pm_save "$PM_INST"
  at_exit "pm_load $PM_INST; podman_teardown"
  [ "$PM_MNTNS" != "$(readlink /proc/self/ns/mnt)" ] || { echo "bench: podman: no private mount namespace" >&2; exit 1; }
  [ "$(pm_ns cat /etc/resolv.conf)" = "nameserver $UP" ] || { echo "bench: podman: private /etc/resolv.conf not in place" >&2; exit 1; }
  log "podman: private mount namespace $PM_MNTNS, its /etc/resolv.conf: nameserver $UP (fake upstream only)"
}
# podman_network SUBNET: a user-defined network with DNS (aardvark-dns); sets PM_BRIDGE and PM_GW.
podman_network() {
  pm network create --subnet "$1" "$PM_NET" >/dev/null
  [ "$(pm network inspect "$PM_NET" --format '{{.DNSEnabled}}')" = true ] || { echo "bench: podman: $PM_NET has no DNS" >&2; exit 1; }
  PM_BRIDGE=$(pm network inspect "$PM_NET" --format '{{.NetworkInterface}}')
  PM_GW=$(pm network inspect "$PM_NET" --format '{{range .Subnets}}{{.Gateway}}{{end}}')
}
pm_run() { pm run -d --name "$1" --network "$PM_NET" --rootfs /:O sleep infinity; }
pm_netns() { echo "/proc/$(pm inspect --format '{{.State.Pid}}' "$1")/ns/net"; }
# The aardvark-dns netavark started for this run: the pid from its private pid file, checked to be an
# aardvark-dns in this run's mount namespace, that sees only the fake upstream in its /etc/resolv.conf.
podman_aardvark() {
  local pid
  pid=$(pm_ns cat /run/containers/networks/aardvark-dns/aardvark.pid)
  [ "$(readlink "/proc/$pid/exe")" = "$AARDVARK" ] && [ "$(readlink "/proc/$pid/ns/mnt")" = "$PM_MNTNS" ] ||
    { echo "bench: podman: pid $pid is not this run's aardvark-dns" >&2; exit 1; }
  [ "$(cat "/proc/$pid/root/etc/resolv.conf")" = "nameserver $UP" ] ||
    { echo "bench: podman: aardvark-dns $pid sees another resolv.conf" >&2; exit 1; }
  PM_AARD_PID=$pid
}
# The same for dnsnet's aardvark-dns (PM_HELPER_DIR): the pid names our server (node, dist/cli/aardvark-dns.js).
podman_dnsnet_server() {
  local pid
  pid=$(pm_ns cat /run/containers/networks/aardvark-dns/aardvark.pid)
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'dist/cli/aardvark-dns.js' && [ "$(readlink "/proc/$pid/ns/mnt")" = "$PM_MNTNS" ] ||
    { echo "bench: podman: pid $pid is not this run's dnsnet aardvark-dns" >&2; exit 1; }
  PM_AARD_PID=$pid
}
podman_teardown() {
  [ -n "${PM_MNTNS:-}" ] || return 0
  pm_timeout 180 rm -f -a -t 0 >/dev/null 2>&1
  pm_timeout 60 network rm -f "$PM_NET" >/dev/null 2>&1
  # What is still alive in the private namespace was started by this run (aardvark-dns, dnsnet's, a stray
  # conmon): stop those, by pid, after checking their mount namespace.
  local pid
  for pid in ${PM_AARD_PID:-} $(pgrep -x conmon) $(pgrep -x aardvark-dns) $(pgrep -f 'dist/cli/aardvark-dns.js'); do
    [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$PM_MNTNS" ] && stop_pid "$pid"
  done
  [ -n "${PM_BRIDGE:-}" ] && ip link show "$PM_BRIDGE" >/dev/null 2>&1 && ip link delete "$PM_BRIDGE"
  podman_fw_cleanup
  return 0
}
# netavark 1.4 leaves its generic chains (NETAVARK_FORWARD, NETAVARK-HOSTPORT-*) and their jumps behind after
# the last network goes: remove the NETAVARK rules and chains this run added (not those in the snapshot taken
# before), then the iptables-nft table itself if this run created it and it is now empty.
podman_fw_cleanup() {
  local t line chain
  for t in filter nat; do
    [ -f "$PM/ipt-before.$t" ] || continue
    nft list table ip "$t" >/dev/null 2>&1 || continue
    iptables-save -t "$t" | grep -E '^-A .*NETAVARK' | while IFS= read -r line; do
      grep -qxF -- "$line" "$PM/ipt-before.$t" || eval "iptables -t $t -D ${line#-A }"
    done
    for chain in $(iptables-save -t "$t" | awk '/^:NETAVARK/{print substr($1, 2)}'); do
      grep -q "^:$chain " "$PM/ipt-before.$t" || iptables -t "$t" -F "$chain"
    done
    for chain in $(iptables-save -t "$t" | awk '/^:NETAVARK/{print substr($1, 2)}'); do
      grep -q "^:$chain " "$PM/ipt-before.$t" || iptables -t "$t" -X "$chain"
    done
    if [ ! -s "$PM/ipt-before.$t" ] && ! iptables-save -t "$t" | grep -qE '^-A|^:[^ ]+ - '; then nft delete table ip "$t"; fi
  done
}

# ---------- a quiet machine ----------
# Other work on the host skews every figure: before a measurement, wait (at most QUIET_WAIT s) until
# the last 0.5 s used less than QUIET_PCT % of the CPUs. Returns anyway; the wait is logged.
# cpu_busy_pct [SECS]: how busy all CPUs were over the next SECS (default 0.5), in %.
cpu_busy_pct() {
  local a b
  a=($(head -1 /proc/stat)); sleep "${1:-0.5}"; b=($(head -1 /proc/stat))
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
WAITNAME="$WORK/waitname"
gcc -O2 -o "$WAITNAME" "$BENCH_DIR/waitname.c"

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
  local before after
  before=$(cpu_ticks)
  nsenter --net="$nsp" taskset -c "$LOAD_CPU" dnsperf -s "$server" -d "$qf" -l "$secs" -c "$clients" -q "$outst" -t 2 >"$out" 2>&1 || true
  after=$(cpu_ticks)
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
  echo "${qps:-0} $(( ${lost:-0} + ${lost2:-0} )) ${p50:-0} ${p99:-0} ${p999:-0} $(awk -v o="$ok" -v n="$n" 'BEGIN{printf "%.2f", n ? 100*o/n : 0}') $(busy_pct "$before" "$after")"
  rm -f "$out" "$sorted"
}

# "busy idle" jiffies of SERVER_CPU then LOAD_CPU, from /proc/stat (idle = idle + iowait).
cpu_ticks() {
  awk -v s="cpu$SERVER_CPU" -v l="cpu$LOAD_CPU" '$1==s{sb=$2+$3+$4+$7+$8+$9; si=$5+$6} $1==l{lb=$2+$3+$4+$7+$8+$9; li=$5+$6} END{print sb, si, lb, li}' /proc/stat
}
# busy_pct BEFORE AFTER -> "server_core_busy_pct load_core_busy_pct" over the interval: tells whether the
# server or the load generator ran out of CPU (a server below ~95 % was not the limit).
busy_pct() {
  awk -v b="$1" -v a="$2" 'BEGIN{split(b,x," "); split(a,y," "); sb=y[1]-x[1]; si=y[2]-x[2]; lb=y[3]-x[3]; li=y[4]-x[4];
    printf "%.0f %.0f", (sb+si) ? 100*sb/(sb+si) : 0, (lb+li) ? 100*lb/(lb+li) : 0}'
}

# med_range VALUES... -> "median (min-max)"; med VALUES... -> median
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
mn() { printf '%s\n' "$@" | sort -g | head -1; }
mx() { printf '%s\n' "$@" | sort -g | tail -1; }

# ---------- timing and polling, shared by the start and reload benches ----------
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# stamp VAR: the wall clock in µs since the epoch, into VAR, without a fork (`$(now_ms)` forks a subshell
# and `date`, ~2 ms here, at the very moment being measured).
stamp() { printf -v "$1" '%s' "${EPOCHREALTIME/./}"; }

# settle: wait (at most SETTLE_MAX_S, default 3) until the machine was less than QUIET_PCT % busy
# (default 15) over 100 ms, so a timed start does not share the CPU with the previous start's
# after-work (dnsnet refilling its spare netns; Podman's conmon and container start). 1 if it timed out.
settle() {
  local end=$((SECONDS + ${SETTLE_MAX_S:-3}))
  while [ "$SECONDS" -le "$end" ]; do
    [ "$(cpu_busy_pct 0.1)" -lt "${QUIET_PCT:-15}" ] && return 0
  done
  return 1
}

# wait_name NETNS_PATH SERVER NAME: poll until NAME has an A record of a container (the fake upstream
# answers 192.0.2.1 for every name it is asked: that does not count); at most 4000 tries; 1 on failure.
wait_name() {
  local i
  for i in $(seq 1 4000); do
    nsenter --net="$1" dig +short +time=1 +tries=1 "@$2" "$3" A 2>/dev/null | grep -v '^192\.0\.2\.1$' | grep -q '^[0-9]' && return 0
  done
  return 1
}
