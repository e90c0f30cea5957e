#!/usr/bin/env bash
# Issue 19: what the resolver's metrics cost on its hot path. Two builds of dnsnet, A (before: no per-type /
# rcode counters, no latency histograms) and B (after), each served by bench/dns.sh's `dnsnet` server alone
# (a real container, dnsperf in its netns, the daemon pinned to SERVER_CPU), local and forwarded workloads,
# the builds interleaved A B B A A B ... for ROUNDS rounds so both see the same noise; medians and B / A of
# the throughput, and of the daemon's CPU time per answered query at 64 in flight (server core busy % / q/s:
# steadier than q/s when the load core, not the server, sets the pace).
# Usage: CLI_A=/path/to/before/dist/cli/dnsnet.cjs [CLI_B=dist/cli/dnsnet.cjs] bench/metrics-cost.sh [OUT.tsv]
#        env: ROUNDS=4, and dns.sh's (HIGH_SECS, LAT_SECS, ...)
set -euo pipefail
B=$(cd "$(dirname "$0")" && pwd)
CLI_A=${CLI_A:?CLI_A: the build before the metrics (dist/cli/dnsnet.cjs)}
CLI_B=${CLI_B:-$B/../dist/cli/dnsnet.cjs}
ROUNDS=${ROUNDS:-4}
OUT=${1:-$B/results/metrics-cost.tsv}
TMP=$(mktemp -d /tmp/dnt-metrics-cost.XXXX)
trap 'rm -rf "$TMP"' EXIT
echo -e "build\tworkload\tmode\tround\tqps\tp50_us\tp99_us\tserver_cpu_pct\tcpu_us_per_query" >"$OUT"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order=(A B); else order=(B A); fi
  for side in "${order[@]}"; do
    cli=$CLI_A
    [ "$side" = B ] && cli=$CLI_B
    DNSNET_CLI=$cli SERVERS=dnsnet WORKLOADS="local forwarded" RUNS=1 bash "$B/dns.sh" "$TMP/$side-$r.tsv" >/dev/null 2>"$TMP/$side-$r.log" ||
      { echo "bench: dns.sh failed for build $side: $(tail -3 "$TMP/$side-$r.log")" >&2; exit 1; }
    awk -F'\t' -v b="$side" -v r="$r" 'NR > 1 {cpu = ($11 != "" && $5 > 0) ? sprintf("%.3f", $11 / 100 / $5 * 1e6) : ""; print b "\t" $2 "\t" $3 "\t" r "\t" $5 "\t" $7 "\t" $8 "\t" $11 "\t" cpu}' "$TMP/$side-$r.tsv" >>"$OUT"
  done
done
# Medians per build, workload and mode, then B / A.
awk -F'\t' 'NR > 1 {k = $2 " " $3; v[$1 " " k] = v[$1 " " k] " " $5; keys[k] = 1; if ($9 != "") { c[$1 " " k] = c[$1 " " k] " " $9; ck[k] = 1 } }
  function med(s,  a, n, i, j, t) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  END { for (k in keys) { a = med(v["A " k]); b = med(v["B " k]); printf "%-16s q/s before %10.0f  after %10.0f  after/before %.3f\n", k, a, b, b / a }
        for (k in ck) { a = med(c["A " k]); b = med(c["B " k]); printf "%-16s server CPU us/query before %.3f  after %.3f  after/before %.3f\n", k, a, b, b / a } }' "$OUT" | sort | tee "${OUT%.tsv}.summary.txt"
