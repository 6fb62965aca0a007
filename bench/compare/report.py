#!/usr/bin/env python3
"""Turns bench/compare/run.py's results into report.md: per system, the
median of every measure with its min and max, runs that failed their output
check left out (and counted), and the ratios the issue asks for.

    bench/compare/report.py build/bench/results
"""

import json
import os
import statistics
import sys


def load(results, workload):
    path = os.path.join(results, f"{workload}.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def mmm(values, fmt="{:,.0f}"):
    """'median (min–max)' of the values, or '–'."""
    values = [v for v in values if v is not None]
    if not values:
        return "–", None
    med = statistics.median(values)
    text = fmt.format(med)
    if len(values) > 1:
        text += f" ({fmt.format(min(values))}–{fmt.format(max(values))})"
    return text, med


def ratio(a, b, fmt="{:.2f}x"):
    if a is None or b is None or b == 0:
        return "–"
    return fmt.format(a / b)


def throughput_table(rows, title, systems):
    out = [f"### {title}", "",
           "| system | guarantee | runs ok | records/s | CPU-s per 1M records | "
           "records per CPU-s | peak RSS MB |",
           "|---|---|---|---|---|---|---|"]
    med = {}
    for system in systems:
        for g in ("eos", "alos"):
            sel = [r for r in rows if r["system"] == system and r["guarantee"] == g]
            if not sel:
                continue
            good = [r for r in sel if r.get("ok")]
            tput, tput_m = mmm([r.get("records_per_s") for r in good])
            cpu, cpu_m = mmm([r.get("cpu_s_per_m") for r in good], "{:.2f}")
            per_cpu, per_cpu_m = mmm([r.get("records_per_cpu_s") for r in good])
            rss, rss_m = mmm([r.get("peak_rss_mb") for r in good])
            med[(system, g)] = {"tput": tput_m, "cpu": cpu_m, "per_cpu": per_cpu_m,
                                "rss": rss_m}
            out.append(f"| {system} | {g} | {len(good)}/{len(sel)} | {tput} | {cpu} | "
                       f"{per_cpu} | {rss} |")
    out.append("")

    def m(system, g, k):
        return med.get((system, g), {}).get(k)

    out.append("| ratio | exactly-once | at-least-once |")
    out.append("|---|---|---|")
    for other in ("kstreams", "pipe"):
        if not any(s == other for s, _ in med):
            continue
        out.append(f"| kcqrs / {other}, records/s | {ratio(m('kcqrs', 'eos', 'tput'), m(other, 'eos', 'tput'))} | "
                   f"{ratio(m('kcqrs', 'alos', 'tput'), m(other, 'alos', 'tput'))} |")
        out.append(f"| kcqrs / {other}, records per CPU-s | "
                   f"{ratio(m('kcqrs', 'eos', 'per_cpu'), m(other, 'eos', 'per_cpu'))} | "
                   f"{ratio(m('kcqrs', 'alos', 'per_cpu'), m(other, 'alos', 'per_cpu'))} |")
        out.append(f"| kcqrs / {other}, peak RSS | {ratio(m('kcqrs', 'eos', 'rss'), m(other, 'eos', 'rss'))} | "
                   f"{ratio(m('kcqrs', 'alos', 'rss'), m(other, 'alos', 'rss'))} |")
    out.append("")
    out.append("Exactly-once penalty (1 − EOS records/s ÷ ALOS records/s):")
    out.append("")
    for system in systems:
        e, a = m(system, "eos", "tput"), m(system, "alos", "tput")
        if e and a:
            out.append(f"- {system}: {100 * (1 - e / a):.1f}%")
    void = [r for r in rows if not r.get("ok")]
    if void:
        out.append("")
        out.append(f"Void runs (output check failed or run error): {len(void)}")
        for r in void:
            reason = r.get("error") or json.dumps(r.get("check", {}).get("mismatches", ""))[:300]
            out.append(f"- {r['run']}: {reason}")
    out.append("")
    return out


def latency_table(rows):
    out = ["### Latency: produce to outcome readable (read_committed), exactly-once", "",
           "| offered/s | system | runs ok | p50 ms | p99 ms | p99.9 ms | max ms | "
           "CPU-s per 1M | peak RSS MB |",
           "|---|---|---|---|---|---|---|---|---|"]
    med = {}
    for rate in sorted({r["rate"] for r in rows}):
        for system in ("kcqrs", "kstreams"):
            sel = [r for r in rows if r["rate"] == rate and r["system"] == system]
            if not sel:
                continue
            good = [r for r in sel if r.get("ok")]
            cells = []
            for k in ("p50", "p99", "p999", "max"):
                text, v = mmm([r["latency"].get(k) for r in good], "{:.1f}")
                cells.append(text)
                med[(rate, system, k)] = v
            n = rate * 1.0
            cpu, _ = mmm([r["cpu_s"] / (r["latency"].get("count", n) / 1e6) for r in good
                          if r["latency"].get("count")], "{:.1f}")
            rss, _ = mmm([r.get("peak_rss_mb") for r in good])
            out.append(f"| {rate:,} | {system} | {len(good)}/{len(sel)} | " +
                       " | ".join(cells) + f" | {cpu} | {rss} |")
    out.append("")
    for rate in sorted({r["rate"] for r in rows}):
        out.append(f"- {rate:,}/s: p99 kcqrs / Kafka Streams = "
                   f"{ratio(med.get((rate, 'kcqrs', 'p99')), med.get((rate, 'kstreams', 'p99')))}")
    out.append("")
    return out


def recovery_table(rows):
    out = ["### Recovery after kill -9 (exactly-once, 1M keys)", "",
           "| system | restarts ok | ready after restart, s | records restored | "
           "peak RSS MB after restart |",
           "|---|---|---|---|---|"]
    for system in ("kcqrs", "kstreams"):
        sel = [r for r in rows if r["system"] == system and r.get("phase") == "restart"]
        if not sel:
            continue
        good = [r for r in sel if r.get("ok")]
        ready, _ = mmm([r.get("ready_s") for r in good], "{:.2f}")
        restored, _ = mmm([r.get("restored") for r in good])
        rss, _ = mmm([r.get("peak_rss_mb") for r in good])
        out.append(f"| {system} | {len(good)}/{len(sel)} | {ready} | {restored} | {rss} |")
    out.append("")
    return out


def failover_table(rows):
    keys = max((r.get("keys", 0) for r in rows), default=0)
    out = [f"### Failover: kill -9 of one of two instances ({keys:,} keys, the dead one held "
           "about half), exactly-once", "",
           "| system | standbys | runs ok | every key answerable, s | every key from an active "
           "task, s | failed answers after the first 200 | longest such gap, s | records "
           "restored | restored, % of a full restore |",
           "|---|---|---|---|---|---|---|---|---|"]
    med = {}
    for system in ("kcqrs", "kstreams"):
        for standbys in (1, 0):
            sel = [r for r in rows if r["system"] == system and r["standbys"] == standbys]
            if not sel:
                continue
            good = [r for r in sel if r.get("ok")]
            cells = []
            for k, fmt in (("answerable_s", "{:.2f}"), ("active_s", "{:.2f}"),
                           ("gaps", "{:,.0f}"), ("longest_gap_s", "{:.2f}"),
                           ("restored", "{:,.0f}"),
                           ("restored_pct", "{:.2f}")):
                text, v = mmm([r.get(k) for r in good], fmt)
                cells.append(text)
                med[(system, standbys, k)] = v
            out.append(f"| {system} | {standbys} | {len(good)}/{len(sel)} | " +
                       " | ".join(cells) + " |")
    out.append("")
    for standbys in (1, 0):
        a = med.get(("kcqrs", standbys, "answerable_s"))
        b = med.get(("kstreams", standbys, "answerable_s"))
        if a is not None and b is not None:
            out.append(f"- {standbys} standby: every key answerable, kcqrs {a:.2f} s, "
                       f"Kafka Streams {b:.2f} s")
    void = [r for r in rows if not r.get("ok")]
    if void:
        out.append("")
        out.append(f"Void runs: {len(void)}")
        for r in void:
            out.append(f"- {r['system']} standbys={r['standbys']} round {r['round']}: "
                       f"{r.get('error', '')[:300]}")
    out.append("")
    return out


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else "build/bench/results"
    lines = ["# Comparison results", ""]
    rows = load(results, "stateless")
    if rows:
        lines += throughput_table(rows, "Stateless: filter and reshape, 2M records",
                                  ["kcqrs", "kstreams", "pipe"])
    rows = load(results, "orders")
    if rows:
        lines += throughput_table(rows, "CQRS orders: 1M commands, 100k orders",
                                  ["kcqrs", "kstreams", "pipe"])
    rows = load(results, "latency")
    if rows:
        lines += latency_table(rows)
    rows = load(results, "recovery")
    if rows:
        lines += recovery_table(rows)
    rows = load(results, "failover")
    if rows:
        lines += failover_table(rows)
    text = "\n".join(lines) + "\n"
    with open(os.path.join(results, "report.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
