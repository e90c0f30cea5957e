#!/usr/bin/python3
"""Turn the bench TSVs into markdown tables (medians with min-max, dnsnet's ratio to each peer) and the chart.

  report.py dns results/dns.tsv          table of workloads 1-3
  report.py kv results/start.tsv         table of a key/value bench (start, scale, reload)
  report.py chart results/dns.tsv OUT.png
"""
import csv
import statistics
import sys
from collections import defaultdict


def load(path):
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def fmt(v):
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.1f}" if v != int(v) else f"{v:.0f}"


def cell(vals):
    if not vals:
        return "-"
    m = statistics.median(vals)
    return f"{fmt(m)} ({fmt(min(vals))}-{fmt(max(vals))})"


def dns_table(path):
    rows = load(path)
    servers = list(dict.fromkeys(r["server"] for r in rows))
    peers = [s for s in servers if s != "dnsnet"]
    data = defaultdict(list)
    for r in rows:
        for k in ("qps", "lost", "p50_us", "p99_us", "p999_us", "noerror_pct", "server_cpu_pct", "load_cpu_pct"):
            if r.get(k) not in (None, ""):
                data[(r["server"], r["workload"], r["mode"], k)].append(float(r[k]))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    high = [m for m in modes if m != "c1"][0]
    metrics = [
        ("c1", "p50_us", "latency p50 at c=1 (µs)", False),
        ("c1", "p99_us", "latency p99 at c=1 (µs)", False),
        ("c1", "p999_us", "latency p99.9 at c=1 (µs)", False),
        (high, "qps", f"throughput at {high} (queries/s)", True),
        (high, "p99_us", f"latency p99 at {high} (µs)", False),
        (high, "lost", f"lost at {high} (queries)", False),
        (high, "server_cpu_pct", f"server core busy at {high} (%)", None),
        (high, "load_cpu_pct", f"load core busy at {high} (%)", None),
    ]
    out = []
    # dnsnet against each peer, and Podman + dnsnet (pmdnsnet) against Podman + aardvark-dns.
    pairs = [("dnsnet", p) for p in peers] + ([("pmdnsnet", "aardvark")] if "pmdnsnet" in servers and "aardvark" in servers else [])
    head = ["workload", "metric"] + servers + [f"{a} / {b}" for a, b in pairs]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for w in dict.fromkeys(r["workload"] for r in rows):
        for mode, key, label, higher in metrics:
            vals = {s: data[(s, w, mode, key)] for s in servers}
            ratios = []
            for x, p in pairs:
                a, b = vals.get(x), vals[p]
                if higher is not None and a and b and statistics.median(b) > 0:
                    ratios.append(f"{statistics.median(a) / statistics.median(b):.2f}x")
                else:
                    ratios.append("-")
            if not any(vals.values()):
                continue  # a column older TSVs do not have
            out.append("| " + " | ".join([w, label] + [cell(vals[s]) for s in servers] + ratios) + " |")
    ok = {s: min(min(data[(s, w, m, "noerror_pct")] or [100]) for w in dict.fromkeys(r["workload"] for r in rows) for m in modes) for s in servers}
    out.append("")
    out.append("NOERROR share of answers, worst run: " + ", ".join(f"{s} {v:.2f} %" for s, v in ok.items()))
    print("\n".join(out))


def kv_table(path):
    """TSV with columns: what, server, run, value, unit."""
    rows = load(path)
    data = defaultdict(list)
    units = {}
    for r in rows:
        data[(r["what"], r["server"])].append(float(r["value"]))
        units[r["what"]] = r["unit"]
    whats = list(dict.fromkeys(r["what"] for r in rows))
    servers = list(dict.fromkeys(r["server"] for r in rows))
    head = ["measure", "unit"] + servers
    # Ratios: dnsnet against each peer, and Podman with dnsnet's aardvark-dns against Podman with its own.
    pairs = [("dnsnet", p) for p in servers if p != "dnsnet"] if "dnsnet" in servers else []
    if "podman" in servers and "podman+dnsnet" in servers:
        pairs.append(("podman+dnsnet", "podman"))
    head += [f"{a} / {b}" for a, b in pairs]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w in whats:
        line = [w, units[w]] + [cell(data.get((w, s), [])) for s in servers]
        for x, y in pairs:
            a, b = data.get((w, x)), data.get((w, y))
            line.append(f"{statistics.median(a) / statistics.median(b):.2f}x" if a and b and statistics.median(b) else "-")
        out.append("| " + " | ".join(line) + " |")
    print("\n".join(out))


def chart(path, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = load(path)
    servers = list(dict.fromkeys(r["server"] for r in rows))
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    high = [m for m in modes if m != "c1"][0]
    get = defaultdict(list)
    for r in rows:
        get[(r["server"], r["workload"], r["mode"])].append(r)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    width = 0.8 / len(servers)
    colors = {"dnsnet": "#2b7bba", "dnsmasq": "#e07b39", "aardvark": "#6aa84f", "pmdnsnet": "#8e6bb8"}
    panels = [
        (axes[0], high, "qps", f"throughput at {high} (kq/s, higher is better)", 1e-3),
        (axes[1], "c1", "p50_us", "latency p50 at c=1 (µs, lower is better)", 1),
        (axes[2], high, "p99_us", f"latency p99 at {high} (µs, lower is better)", 1),
    ]
    for ax, mode, key, title, scale in panels:
        for i, s in enumerate(servers):
            meds, lo, hi = [], [], []
            for w in workloads:
                v = [float(r[key]) * scale for r in get[(s, w, mode)]] or [0]
                m = statistics.median(v)
                meds.append(m)
                lo.append(m - min(v))
                hi.append(max(v) - m)
            xs = [j + (i - (len(servers) - 1) / 2) * width for j in range(len(workloads))]
            ax.bar(xs, meds, width, yerr=[lo, hi], capsize=3, label=s, color=colors.get(s))
        ax.set_xticks(range(len(workloads)))
        ax.set_xticklabels(workloads)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend()
    fig.suptitle("dnsnet vs dnsmasq vs aardvark-dns: medians of the runs, bars = min-max (server on 1 core, dnsperf on the other)", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "dns":
        dns_table(sys.argv[2])
    elif cmd == "kv":
        kv_table(sys.argv[2])
    elif cmd == "chart":
        chart(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
