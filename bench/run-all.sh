#!/usr/bin/env bash
# Run every bench in turn (about 20 minutes on 2 cores with STARTS=50 ROUNDS=3, as for RESULTS.md), then the
# tables and the chart into bench/results/.
# Usage (root, after npm run build): bench/run-all.sh
set -euo pipefail
B=$(cd "$(dirname "$0")" && pwd)
R="$B/results"
mkdir -p "$R"
{
  echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "# node $(node --version), dnsmasq $(dnsmasq --version | awk 'NR==1{print $3}'), $(/usr/lib/podman/aardvark-dns --version), dnsperf $(dnsperf -h 2>&1 | awk '/Version/{print $2}')"
  if command -v podman >/dev/null; then echo "# podman $(podman --version | awk '{print $3}'), netavark $(/usr/lib/podman/netavark --version | awk '{print $2}'), $(runc --version | head -1)"; fi
} >"$R/machine.txt"
bash "$B/dns.sh" "$R/dns.tsv" | tee "$R/dns.md"
bash "$B/start.sh" "$R/start.tsv" | tee "$R/start.md"
bash "$B/scale.sh" "$R/scale.tsv" | tee "$R/scale.md"
bash "$B/reload.sh" "$R/reload.tsv" | tee "$R/reload.md"
bash "$B/multihost.sh" "$R/multihost.tsv"
/usr/bin/python3 "$B/report.py" chart "$R/dns.tsv" "$B/dns-chart.png"
