#!/usr/bin/env python3
"""Reads RUN_DIR/results.tsv (written by bench/run) and prints markdown tables of medians."""
import csv
import statistics
import sys
from pathlib import Path

run = Path(sys.argv[1])
rows = list(csv.DictReader(open(run / "results.tsv"), delimiter="\t"))


def f(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def ratio(a, b, digits=2):
    if a is None or not b:
        return "-"
    return f"{a / b:.{digits}f}x"


machine = (run / "machine.txt").read_text().strip().splitlines() if (run / "machine.txt").exists() else []
print(f"Run `{run.name}`: " + "; ".join(machine))
print()

NAMES = {"upstream": "upstream direct (nginx, no proxy)", "portico": "Portico", "nginx": "nginx",
         "haproxy": "HAProxy", "direct": "direct (no proxy)", "socat": "socat"}
TITLES = {"keepalive": "HTTP/1.1 keep-alive, 1 KB responses (`wrk -t1 -c50 --latency`)",
          "close": "New connection per request, 1 KB responses (`wrk -t1 -c50 -H 'Connection: close'`)",
          "tcp": "L4 TCP bulk: 1 GiB from the source through the forwarder to `socat | dd`"}

for scenario in ["keepalive", "close", "tcp"]:
    srows = [r for r in rows if r["scenario"] == scenario]
    if not srows:
        continue
    targets = list(dict.fromkeys(r["target"] for r in srows))
    stats = {}
    for t in targets:
        tr = [r for r in srows if r["target"] == t]
        per_cpu = [f(r["rps"]) * f(r["seconds"]) / f(r["cpu_s"]) if f(r["cpu_s"]) else None for r in tr] \
            if scenario != "tcp" else [f(r["bytes"]) / 1048576 / f(r["cpu_s"]) if f(r["cpu_s"]) else None for r in tr]
        stats[t] = {
            "n": len(tr),
            "rate": med(f(r["rps"]) for r in tr),
            "p50": med(f(r["p50_ms"]) for r in tr),
            "p99": med(f(r["p99_ms"]) for r in tr),
            "cpu": med(f(r["cpu_s"]) for r in tr),
            "per_cpu": med(per_cpu),
            "rss": max((f(r["rss_kb"]) or 0) for r in tr) / 1024,
            "errors": sum(int(f(r["errors"]) or 0) for r in tr),
            "conns": med(f(r.get("upstream_conns")) for r in tr),
            "load": ", ".join(r["loadavg"].split()[0] for r in tr),
        }
    print(f"#### {TITLES[scenario]}")
    print()
    if scenario == "tcp":
        print("| target | rounds | MiB/s (median) | CPU s (median) | MiB per CPU-second | peak RSS MiB | failed | load avg (1 min) before each round |")
        print("|---|---|---|---|---|---|---|---|")
        for t in targets:
            s = stats[t]
            print(f"| {NAMES.get(t, t)} | {s['n']} | {fmt(s['rate'])} | {fmt(s['cpu'], 2)} | {fmt(s['per_cpu'])} | {fmt(s['rss'], 1)} | {s['errors']} | {s['load']} |")
    else:
        print("| target | rounds | requests/s (median) | p50 ms | p99 ms | CPU s (median) | requests per CPU-second | upstream connections opened | peak RSS MiB | errors | load avg (1 min) before each round |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for t in targets:
            s = stats[t]
            print(f"| {NAMES.get(t, t)} | {s['n']} | {fmt(s['rate'])} | {fmt(s['p50'], 3)} | {fmt(s['p99'], 3)} | {fmt(s['cpu'], 2)} | {fmt(s['per_cpu'])} | {fmt(s['conns'])} | {fmt(s['rss'], 1)} | {s['errors']} | {s['load']} |")
    print()
    if "portico" in stats:
        p = stats["portico"]
        peers = [t for t in ("nginx", "haproxy", "socat") if t in stats]
        if scenario == "tcp":
            print("| Portico / peer | MiB/s | MiB per CPU-second |")
            print("|---|---|---|")
            for t in peers:
                print(f"| Portico / {NAMES[t]} | {ratio(p['rate'], stats[t]['rate'])} | {ratio(p['per_cpu'], stats[t]['per_cpu'])} |")
        else:
            print("| Portico / peer | requests/s | p50 | p99 | requests per CPU-second | peak RSS |")
            print("|---|---|---|---|---|---|")
            for t in peers:
                q = stats[t]
                print(f"| Portico / {NAMES[t]} | {ratio(p['rate'], q['rate'])} | {ratio(p['p50'], q['p50'])} | {ratio(p['p99'], q['p99'])} | {ratio(p['per_cpu'], q['per_cpu'])} | {ratio(p['rss'], q['rss'], 1)} |")
        print()
