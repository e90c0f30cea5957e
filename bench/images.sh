#!/usr/bin/env bash
# Images: pull and start times of a small image (the demo's: busybox-static, one 2 MB layer), against a
# registry on a loopback address (bench/registry.mjs serving the image as `dnsnet save` writes it).
#   pull-cold    `dnsnet pull` with nothing of the image here (rmi before each): manifest, config, layer, extract
#   pull-warm    `dnsnet pull` of the same tag again: the manifest only
#   run-image    `run -d --network imgnet IMAGE sleep` until it returns (its overlay is mounted by the container)
#   run-host     `run -d --network imgnet sleep` (a host command), interleaved with run-image
#   rm-image / rm-host: `run --rm --network none ... echo` end to end (start, exit, removal)
# Podman is not installed on this machine: its pull and start are not measured here.
# Usage: bench/images.sh [OUT.tsv]    env: PULLS=10 STARTS=30
source "$(dirname "$0")/lib.sh"
OUT=${1:-$BENCH_DIR/results/images.tsv}
PULLS=${PULLS:-10}
STARTS=${STARTS:-30}
mkdir -p "$(dirname "$OUT")"
[ -x /bin/busybox ] || { echo "bench: /bin/busybox missing (apt-get install busybox-static)" >&2; exit 1; }

dnsnet_env
dnsnet_start
TAR=$("$NODE" -e 'import(process.argv[1]).then((m) => m.buildDemoImage(process.argv[2], "bench/busybox:v1")).then((f) => console.log(f))' "$REPO/dist/demo/image.js" "$WORK")
dn load -i "$TAR" >/dev/null
dn save -o "$WORK/layout.tar" bench/busybox:v1
mkdir -p "$WORK/layout"
tar -xf "$WORK/layout.tar" -C "$WORK/layout"
dn rmi bench/busybox:v1 >/dev/null
REG_IP="127.55.$((RANDOM % 250 + 2)).$((RANDOM % 250 + 2))"
REG_PORT=$((20000 + RANDOM % 10000))
taskset -c "$LOAD_CPU" "$NODE" "$BENCH_DIR/registry.mjs" "$WORK/layout" "$REG_IP" "$REG_PORT" >"$WORK/registry.out" 2>&1 &
at_exit "stop_pid $!"
for _ in $(seq 1 50); do grep -q ready "$WORK/registry.out" 2>/dev/null && break; sleep 0.1; done
IMAGE="$REG_IP:$REG_PORT/bench/busybox:v1"
log "registry on $REG_IP:$REG_PORT serving $(du -sh "$WORK/layout" | cut -f1) (the demo's busybox image)"

ms_since() { local now; stamp now; echo $(((now - $1) / 1000)); }
printf 'measure\trun\tms\n' >"$OUT"
for i in $(seq 1 "$PULLS"); do
  dn rmi "$IMAGE" >/dev/null 2>&1 || true
  stamp t0; dn pull --tls-verify=false "$IMAGE" >/dev/null; printf 'pull-cold\t%s\t%s\n' "$i" "$(ms_since "$t0")" >>"$OUT"
  stamp t0; dn pull --tls-verify=false "$IMAGE" >/dev/null; printf 'pull-warm\t%s\t%s\n' "$i" "$(ms_since "$t0")" >>"$OUT"
done
dn network create imgnet >/dev/null
for i in $(seq 1 "$STARTS"); do
  settle || true
  stamp t0; dn run -d --network imgnet --name "img$i" "$IMAGE" sleep 1000 >/dev/null; printf 'run-image\t%s\t%s\n' "$i" "$(ms_since "$t0")" >>"$OUT"
  settle || true
  stamp t0; dn run -d --network imgnet --name "host$i" sleep 1000 >/dev/null; printf 'run-host\t%s\t%s\n' "$i" "$(ms_since "$t0")" >>"$OUT"
  dn rm -f "img$i" "host$i" >/dev/null
  stamp t0; dn run --rm --network none "$IMAGE" echo >/dev/null; printf 'rm-image\t%s\t%s\n' "$i" "$(ms_since "$t0")" >>"$OUT"
  stamp t0; dn run --rm --network none echo >/dev/null; printf 'rm-host\t%s\t%s\n' "$i" "$(ms_since "$t0")" >>"$OUT"
done
{
  printf '\n%-10s %10s %10s %10s\n' measure median min max
  for m in pull-cold pull-warm run-image run-host rm-image rm-host; do
    mapfile -t v < <(awk -F'\t' -v m="$m" '$1 == m {print $3}' "$OUT")
    printf '%-10s %10s %10s %10s\n' "$m" "$(med "${v[@]}")" "$(mn "${v[@]}")" "$(mx "${v[@]}")"
  done
} | tee "$OUT.summary" >&2
