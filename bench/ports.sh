#!/usr/bin/env bash
# Published ports: connections per second and bulk throughput through a published port, against the container's
# own address, from a LAN client (a netns with a veth to the host) and from the host itself, interleaved:
#   direct-lan      LAN netns -> container address (routed by the host, no NAT)
#   published-lan   LAN netns -> host address:PORT (kernel DNAT)
#   direct-host     host -> container address
#   published-127   host -> 127.0.0.1:PORT (kernel DNAT + masquerade, route_localnet)
#   proxy-::1       host -> [::1]:PORT+4 (dnsnet's userland proxy in the daemon: what the kernel cannot DNAT)
#   docker-proxy-127 host -> 127.0.0.1:PORT+5 through Docker's own userland proxy (docker.io 20.10's docker-proxy),
#                   when DOCKER_PROXY names its binary or /usr/sbin/docker-proxy exists. Without installing Docker:
#                   apt-get download docker.io && dpkg-deb -x docker.io_*.deb /tmp/dk; DOCKER_PROXY=/tmp/dk/usr/sbin/docker-proxy
# Not measured: Podman's published port (Podman is not installed on this machine).
# Usage: bench/ports.sh [OUT.tsv]    env: SECS=3 CONC=8 ROUNDS=3
# Conntrack: every connection leaves a TIME_WAIT entry for 120 s; the host's nf_conntrack_tcp_timeout_time_wait
# is lowered to 1 s while this runs (restored at exit), so that later runs do not hit nf_conntrack_max.
# Each path has a container port of its own (80-84): paths that look alike to the server (the host's direct
# connections and its masqueraded 127.0.0.1 ones both come from the gateway) would otherwise meet the server's
# TIME_WAIT sockets of the other path with other TCP timestamps, and lose SYNs to PAWS (TcpExtPAWSTimewait).
source "$(dirname "$0")/lib.sh"
OUT=${1:-$BENCH_DIR/results/ports.tsv}
SECS=${SECS:-3}
CONC=${CONC:-8}
ROUNDS=${ROUNDS:-3}
mkdir -p "$(dirname "$OUT")"
TCPB="$WORK/tcpbench"
gcc -O2 -pthread -o "$TCPB" "$BENCH_DIR/tcpbench.c"

TW=/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait
if [ -f "$TW" ]; then
  TW_BEFORE=$(cat "$TW")
  at_exit "echo $TW_BEFORE > $TW"
  echo 1 >"$TW"
fi

dnsnet_env
dnsnet_start
dn network create portnet >/dev/null
PORT=$((20000 + RANDOM % 10000)) # below the kernel's ephemeral range, where client sockets come and go
# The server is pinned to SERVER_CPU (with the daemon), the clients to LOAD_CPU.
dn run -d --name srv --network portnet -p "$PORT:81" -p "$((PORT + 3)):83" -p "$((PORT + 4)):84" -- taskset -c "$SERVER_CPU" "$TCPB" serve 80 81 82 83 84 85 >/dev/null
CIP=$(dn inspect srv | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].NetworkSettings.Networks.portnet.IPAddress))')
SUBNET=$(dn network inspect portnet | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].IPAM.Config[0].Subnet))')

# The LAN: a netns with a veth to the host; it reaches the container's subnet through the host.
LAN="dnt${TAG}lan"
LINK="dnt${TAG}l"
HOSTIP="10.213.$((RANDOM % 100 + 120)).1"
LANIP="${HOSTIP%.1}.2"
mk_netns "$LAN"
ip link add "$LINK" type veth peer name eth0 netns "$LAN"
at_exit "ip link del $LINK"
ip addr add "$HOSTIP/24" dev "$LINK"
ip link set "$LINK" up
ip -n "$LAN" addr add "$LANIP/24" dev eth0
ip -n "$LAN" link set eth0 up
ip -n "$LAN" route add "$SUBNET" via "$HOSTIP"

client() { taskset -c "$LOAD_CPU" "$@"; }
lan() { ip netns exec "$LAN" taskset -c "$LOAD_CPU" "$@"; }
declare -A TARGET=(
  [direct-lan]="lan $CIP 80" [published-lan]="lan $HOSTIP $PORT"
  [direct-host]="client $CIP 82" [published-127]="client 127.0.0.1 $((PORT + 3))" [proxy-::1]="client ::1 $((PORT + 4))"
)
PATHS=(direct-lan published-lan direct-host published-127 proxy-::1)
DOCKER_PROXY=${DOCKER_PROXY:-/usr/sbin/docker-proxy}
if [ -x "$DOCKER_PROXY" ]; then
  taskset -c "$SERVER_CPU" "$DOCKER_PROXY" -proto tcp -host-ip 127.0.0.1 -host-port "$((PORT + 5))" -container-ip "$CIP" -container-port 85 3>/dev/null & # it reports readiness on fd 3, as dockerd expects
  at_exit "stop_pid $!"
  TARGET[docker-proxy-127]="client 127.0.0.1 $((PORT + 5))"
  PATHS+=(docker-proxy-127)
else
  log "no docker-proxy (DOCKER_PROXY=$DOCKER_PROXY): Docker's userland proxy not measured"
fi

# Everything answers before anything is measured.
sleep 0.5
for p in "${PATHS[@]}"; do
  read -r how host port <<<"${TARGET[$p]}"
  r=$($how "$TCPB" cps "$host" "$port" 0.2 1)
  [ "${r#* }" = 0 ] && [ "${r% *}" != 0 ] || { echo "bench: $p ($host:$port) does not answer: $r" >&2; exit 1; }
done
log "server in container srv ($CIP:80-84), published on $PORT (81), $((PORT + 3)) (83), $((PORT + 4)) (84); LAN netns $LAN ($LANIP) -> host $HOSTIP"

printf 'round\tpath\tconn_per_s\tfailed\tbulk_MBps\n' >"$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for p in "${PATHS[@]}"; do
    read -r how host port <<<"${TARGET[$p]}"
    sleep 1.2 # the last run's TIME_WAIT entries expire
    read -r cps failed < <($how "$TCPB" cps "$host" "$port" "$SECS" "$CONC")
    bulk=$($how "$TCPB" bulk "$host" "$port" "$SECS")
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$p" "$cps" "$failed" "$bulk" | tee -a "$OUT" >&2
  done
done

# Medians and the ratios the issue asks for.
median_of() { awk -F'\t' -v p="$1" -v c="$2" 'NR > 1 && $2 == p {print $c}' "$OUT" | sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
{
  printf '\n%-15s %12s %12s\n' path 'conn/s' 'bulk MB/s'
  for p in "${PATHS[@]}"; do printf '%-15s %12s %12s\n' "$p" "$(median_of "$p" 3)" "$(median_of "$p" 5)"; done
  ratio() { awk -v a="$(median_of "$1" "$3")" -v b="$(median_of "$2" "$3")" 'BEGIN{printf "%.3f", a / b}'; }
  printf '\npublished-lan / direct-lan:  conn/s %s  bulk %s   (target >= 0.95)\n' "$(ratio published-lan direct-lan 3)" "$(ratio published-lan direct-lan 5)"
  printf 'published-127 / direct-host: conn/s %s  bulk %s   (target >= 0.95)\n' "$(ratio published-127 direct-host 3)" "$(ratio published-127 direct-host 5)"
  printf 'published-127 / proxy-::1:   conn/s %s  bulk %s   (kernel path ahead of dnsnet'"'"'s userland proxy: > 1)\n' "$(ratio published-127 proxy-::1 3)" "$(ratio published-127 proxy-::1 5)"
  if [[ " ${PATHS[*]} " == *" docker-proxy-127 "* ]]; then
    printf 'published-127 / docker-proxy-127: conn/s %s  bulk %s   (kernel path ahead of Docker'"'"'s docker-proxy: > 1)\n' "$(ratio published-127 docker-proxy-127 3)" "$(ratio published-127 docker-proxy-127 5)"
  fi
} | tee "$OUT.summary" >&2
