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
if (run / "tls-check.txt").exists():
    print("TLS session resumption check (`tls-check.txt`):")
    print()
    print("```")
    print((run / "tls-check.txt").read_text().strip())
    print("```")
    print()

NAMES = {"upstream": "upstream direct (nginx, no proxy)", "portico": "Portico", "nginx": "nginx",
         "haproxy": "HAProxy", "direct": "direct (no proxy)", "socat": "socat",
         "direct-udp": "direct (echo, no forwarder)", "socat-udp": "socat",
         "portico-tftp": "Portico", "dnsmasq": "dnsmasq"}
TITLES = {
    "keepalive": "HTTP/1.1 keep-alive, 1 KB responses (`wrk -t1 -c50 --latency`)",
    "close": "New connection per request, 1 KB responses (`wrk -t1 -c50 -H 'Connection: close'`)",
    "https": "HTTPS keep-alive, 1 KB responses (`wrk -t1 -c50 --latency https://...`, ECDSA P-256)",
    "handshake": "New TLS connection (full handshake) per request, 1 KB responses (`bench/tlsload.c`, 50 concurrent)",
    "h2": "HTTP/2 over TLS, 1 KB responses (`h2load -t1 -c10 -m10`, ALPN h2)",
    "big": "1 MiB responses, keep-alive (`wrk -t1 -c10 --latency .../1m`)",
    "idle": "Idle keep-alive connections (one request each, then idle): RSS per connection",
    "reload": "Reload under load (`wrk -t1 -c50`, 5 reloads during the run)",
    "tcp": "L4 TCP bulk: 1 GiB from the source through the forwarder to the sink (`bench/bulk.py`)",
    "udp": "L4 UDP request/response, 64-byte datagrams (`bench/udpbench.c`, 8 flows x 32 outstanding)",
    "tftp": "TFTP, 64 MiB file, blksize 1428, lockstep (`bench/tftpbench.c`, no windowsize asked)",
    "tftp-w8": "TFTP, 64 MiB file, blksize 1428, windowsize 8 asked (`bench/tftpbench.c`; dnsmasq grants none: lockstep)",
}
ORDER = ["keepalive", "close", "https", "handshake", "h2", "big", "idle", "reload", "tcp", "udp", "tftp", "tftp-w8"]

for scenario in ORDER:
    srows = [r for r in rows if r["scenario"] == scenario]
    if not srows:
        continue
    targets = list(dict.fromkeys(r["target"] for r in srows))
    stats = {}
    for t in targets:
        tr = [r for r in srows if r["target"] == t]

        def per_cpu(r):
            cpu = f(r["cpu_s"])
            if not cpu:
                return None
            if scenario in ("tcp", "tftp", "tftp-w8"):
                return f(r["bytes"]) / 1048576 / cpu
            if scenario == "big":
                return f(r["requests"]) / cpu  # MiB per CPU-second (1 MiB per response)
            return f(r["requests"]) / cpu

        # Idle: against the RSS before the first idle round. Closed connections do not give
        # their memory back to the system (allocators keep it), so later rounds start high.
        baseline = f(tr[0]["rss_before_kb"]) if scenario == "idle" else None
        per_conn = [((f(r["rss_kb"]) or 0) - (baseline or 0)) / f(r["requests"])
                    for r in tr if scenario == "idle" and f(r["requests"])]
        stats[t] = {
            "n": len(tr),
            "rate": med(f(r["rps"]) for r in tr),
            "p50": med(f(r["p50_ms"]) for r in tr),
            "p99": med(f(r["p99_ms"]) for r in tr),
            "cpu": med(f(r["cpu_s"]) for r in tr),
            "per_cpu": med(per_cpu(r) for r in tr),
            "rss": max((f(r["rss_kb"]) or 0) for r in tr) / 1024,
            "rss_before": f(tr[0]["rss_before_kb"]) if tr[0].get("rss_before_kb") else None,
            "rss_after": med(f(r["rss_kb"]) for r in tr),
            "per_conn": med(per_conn),
            "open": med(f(r["requests"]) for r in tr),
            "requests": sum(int(f(r["requests"]) or 0) for r in tr),
            "errors": sum(int(f(r["errors"]) or 0) for r in tr),
            "conns": med(f(r.get("upstream_conns")) for r in tr),
            "load": ", ".join(r["loadavg"].split()[0] for r in tr),
            "notes": "; ".join(dict.fromkeys(r.get("note") or "" for r in tr if r.get("note"))),
        }
    print(f"#### {TITLES[scenario]}")
    print()
    if scenario == "tcp":
        print("| target | rounds | MiB/s (median) | CPU s (median) | MiB per CPU-second | peak RSS MiB | failed | load avg (1 min) before each round |")
        print("|---|---|---|---|---|---|---|---|")
        for t in targets:
            s = stats[t]
            print(f"| {NAMES.get(t, t)} | {s['n']} | {fmt(s['rate'])} | {fmt(s['cpu'], 2)} | {fmt(s['per_cpu'])} | {fmt(s['rss'], 1)} | {s['errors']} | {s['load']} |")
    elif scenario.startswith("tftp"):
        print("| target | rounds | MiB/s (median) | MiB/s per round | CPU s (median) | MiB per CPU-second | windowsize granted | failed | notes | load avg (1 min) before each round |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for t in targets:
            s = stats[t]
            tr = [r for r in srows if r["target"] == t]
            per_round = ", ".join(fmt(f(r["mibps"]), 1) for r in tr)
            notes = [dict(kv.split("=", 1) for kv in (r.get("note") or "").split() if "=" in kv) for r in tr]
            granted = ", ".join(sorted(set(n.get("windowsize", "?") for n in notes)))
            client = ", ".join(n.get("client_cpu_s", "?") for n in notes)
            retries = sum(int(n.get("timeouts", 0) or 0) + int(n.get("resyncs", 0) or 0) for n in notes)
            print(f"| {NAMES.get(t, t)} | {s['n']} | {fmt(s['rate'], 1)} | {per_round} | {fmt(s['cpu'], 2)} | {fmt(s['per_cpu'])} | {granted} | {s['errors']} | client CPU s {client}; client timeouts + resyncs {retries} | {s['load']} |")
    elif scenario == "idle":
        print("| target | rounds | connections open | RSS before the first round MiB | RSS with them open MiB (median) | KiB per connection (median) | failed | load avg (1 min) |")
        print("|---|---|---|---|---|---|---|---|")
        for t in targets:
            s = stats[t]
            print(f"| {NAMES.get(t, t)} | {s['n']} | {fmt(s['open'])} | {fmt((s['rss_before'] or 0) / 1024, 1)} | {fmt((s['rss_after'] or 0) / 1024, 1)} | {fmt(s['per_conn'], 2)} | {s['errors']} | {s['load']} |")
    elif scenario == "reload":
        print("| target | rounds | requests (all rounds) | failed: socket errors + non-2xx/3xx (all rounds) | requests/s (median) | p99 ms | reloads seen | load avg (1 min) |")
        print("|---|---|---|---|---|---|---|---|")
        for t in targets:
            s = stats[t]
            print(f"| {NAMES.get(t, t)} | {s['n']} | {s['requests']:,} | {s['errors']:,} | {fmt(s['rate'])} | {fmt(s['p99'], 3)} | {s['notes']} | {s['load']} |")
    elif scenario == "udp":
        print("| target | rounds | requests/s (median) | p50 ms | p99 ms | CPU s (median) | requests per CPU-second | peak RSS MiB | refills (lost windows x 32) | load avg (1 min) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for t in targets:
            s = stats[t]
            print(f"| {NAMES.get(t, t)} | {s['n']} | {fmt(s['rate'])} | {fmt(s['p50'], 3)} | {fmt(s['p99'], 3)} | {fmt(s['cpu'], 2)} | {fmt(s['per_cpu'])} | {fmt(s['rss'], 1)} | {s['errors']} | {s['load']} |")
    else:
        unit = "MiB/s = responses/s" if scenario == "big" else "requests/s"
        per = "MiB per CPU-second" if scenario == "big" else "requests per CPU-second"
        extra = " | notes" if scenario in ("handshake", "h2") else ""
        print(f"| target | rounds | {unit} (median) | p50 ms | p99 ms | CPU s (median) | {per} | upstream connections opened | peak RSS MiB | errors | load avg (1 min) before each round{extra} |")
        print("|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if extra else ""))
        for t in targets:
            s = stats[t]
            notes = f" | {s['notes']}" if extra else ""
            print(f"| {NAMES.get(t, t)} | {s['n']} | {fmt(s['rate'])} | {fmt(s['p50'], 3)} | {fmt(s['p99'], 3)} | {fmt(s['cpu'], 2)} | {fmt(s['per_cpu'])} | {fmt(s['conns'])} | {fmt(s['rss'], 1)} | {s['errors']} | {s['load']}{notes} |")
    print()
    p = stats.get("portico") or stats.get("portico-tftp")
    if not p:
        continue
    peers = [t for t in ("nginx", "haproxy", "socat", "socat-udp", "dnsmasq") if t in stats]
    if scenario == "tcp" or scenario.startswith("tftp"):
        print("| Portico / peer | MiB/s | MiB per CPU-second |")
        print("|---|---|---|")
        for t in peers:
            print(f"| Portico / {NAMES[t]} | {ratio(p['rate'], stats[t]['rate'])} | {ratio(p['per_cpu'], stats[t]['per_cpu'])} |")
    elif scenario == "idle":
        print("| Portico / peer | KiB per connection |")
        print("|---|---|")
        for t in peers:
            print(f"| Portico / {NAMES[t]} | {ratio(p['per_conn'], stats[t]['per_conn'], 1)} |")
    elif scenario == "reload":
        continue
    else:
        print(f"| Portico / peer | {'MiB/s' if scenario == 'big' else 'requests/s'} | p50 | p99 | {'MiB' if scenario == 'big' else 'requests'} per CPU-second | peak RSS |")
        print("|---|---|---|---|---|---|")
        for t in peers:
            q = stats[t]
            print(f"| Portico / {NAMES[t]} | {ratio(p['rate'], q['rate'])} | {ratio(p['p50'], q['p50'])} | {ratio(p['p99'], q['p99'])} | {ratio(p['per_cpu'], q['per_cpu'])} | {ratio(p['rss'], q['rss'], 1)} |")
    print()
