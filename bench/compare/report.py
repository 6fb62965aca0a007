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


SYSTEMS = ["kcqrs", "kstreams-expert", "kstreams", "pipe", "pipe-fused"]
PEERS = ["kstreams-expert", "kstreams", "pipe", "pipe-fused"]  # kcqrs is compared with each


def win(r, k):
    """A figure of the run's steady-state window (run.py: 20% to 90% of the
    input committed), or None."""
    return (r.get("window") or {}).get(k)


def per_cpu(cpu_s_per_m):
    return 1e6 / cpu_s_per_m if cpu_s_per_m else None


def round_orders(rows, key="round"):
    """'Round n: a, b, c' per round, the order the systems ran in."""
    seen = {}
    for r in rows:
        if r.get("order") and r.get(key) is not None:
            seen.setdefault(r[key], r["order"])
    return [f"- round {n}: {', '.join(o)}" for n, o in sorted(seen.items())]


def void_lines(rows, label):
    void = [r for r in rows if not r.get("ok")]
    if not void:
        return []
    out = ["", f"Void runs (output check failed or run error): {len(void)}"]
    for r in void:
        reason = r.get("error") or json.dumps((r.get("check") or {}).get("mismatches", ""))
        out.append(f"- {label(r)}: {reason[:300]}")
    return out


def throughput_table(rows, title, systems=SYSTEMS):
    out = [f"### {title}", "",
           "Whole run: from the first committed progress to the end (cold: JIT, caches, "
           "group join included). Window: steady state, from 20% to 90% of the input "
           "committed (bench/WORKLOADS.md). Broker: the broker's CPU over the same span. "
           "Median (min–max) of the runs that checked out.", "",
           "| system | guarantee | runs ok | records/s whole | records/s window | "
           "CPU-s per 1M whole | CPU-s per 1M window | broker CPU-s per 1M whole | "
           "broker CPU-s per 1M window | records per CPU-s window | peak RSS MB |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    med = {}
    for system in systems:
        for g in ("eos", "alos"):
            sel = [r for r in rows if r["system"] == system and r["guarantee"] == g]
            if not sel:
                continue
            good = [r for r in sel if r.get("ok")]
            cells, m = [], {}
            for k, fmt, get in (
                    ("tput", "{:,.0f}", lambda r: r.get("records_per_s")),
                    ("wtput", "{:,.0f}", lambda r: win(r, "records_per_s")),
                    ("cpu", "{:.2f}", lambda r: r.get("cpu_s_per_m")),
                    ("wcpu", "{:.2f}", lambda r: win(r, "cpu_s_per_m")),
                    ("bcpu", "{:.2f}", lambda r: r.get("broker_cpu_s_per_m")),
                    ("wbcpu", "{:.2f}", lambda r: win(r, "broker_cpu_s_per_m")),
                    ("wper_cpu", "{:,.0f}", lambda r: per_cpu(win(r, "cpu_s_per_m"))),
                    ("rss", "{:,.0f}", lambda r: r.get("peak_rss_mb"))):
                text, m[k] = mmm([get(r) for r in good], fmt)
                cells.append(text)
            m["per_cpu"] = per_cpu(m["cpu"])
            med[(system, g)] = m
            out.append(f"| {system} | {g} | {len(good)}/{len(sel)} | " + " | ".join(cells) + " |")
    out.append("")

    def m(system, g, k):
        return med.get((system, g), {}).get(k)

    out.append("| ratio (of medians) | exactly-once | at-least-once |")
    out.append("|---|---|---|")
    for other in PEERS:
        if not any(s == other for s, _ in med):
            continue
        for label, k in (("records/s, window", "wtput"), ("records/s, whole", "tput"),
                         ("records per CPU-s, window", "wper_cpu"),
                         ("records per CPU-s, whole", "per_cpu"),
                         ("broker CPU per record, window", "wbcpu"),
                         ("peak RSS", "rss")):
            out.append(f"| kcqrs / {other}, {label} | "
                       f"{ratio(m('kcqrs', 'eos', k), m(other, 'eos', k))} | "
                       f"{ratio(m('kcqrs', 'alos', k), m(other, 'alos', k))} |")
    out.append("")
    out.append("Exactly-once penalty (1 − EOS records/s ÷ ALOS records/s, window):")
    out.append("")
    for system in systems:
        e, a = m(system, "eos", "wtput"), m(system, "alos", "wtput")
        if e and a:
            out.append(f"- {system}: {100 * (1 - e / a):.1f}%")
    out += ["", "Order of the runs in each round:", ""] + round_orders(rows)
    out += void_lines(rows, lambda r: r["run"])
    out.append("")
    return out


def latency_table(rows):
    out = ["### Latency: produce to outcome readable (read_committed), exactly-once", "",
           "Outcomes of the measured commands only (after the warm-up); every run's "
           "commands, warm-up and measured, checked to have exactly one outcome each.", "",
           "| offered/s | system | runs ok | p50 ms | p99 ms | p99.9 ms | max ms | "
           "CPU-s per 1M | peak RSS MB |",
           "|---|---|---|---|---|---|---|---|---|"]
    med = {}
    for rate in sorted({r["rate"] for r in rows}):
        for system in SYSTEMS:
            sel = [r for r in rows if r["rate"] == rate and r["system"] == system]
            if not sel:
                continue
            good = [r for r in sel if r.get("ok")]
            cells = []
            for k in ("p50", "p99", "p999", "max"):
                text, v = mmm([r["latency"].get(k) for r in good], "{:.1f}")
                cells.append(text)
                med[(rate, system, k)] = v
            # The engine's CPU over the whole run, warm-up included.
            cpu, _ = mmm([r["cpu_s"] / ((r["offered"]["sent"] + r["warmup"]["sent"]) / 1e6)
                          for r in good if r.get("warmup")], "{:.1f}")
            rss, _ = mmm([r.get("peak_rss_mb") for r in good])
            out.append(f"| {rate:,} | {system} | {len(good)}/{len(sel)} | " +
                       " | ".join(cells) + f" | {cpu} | {rss} |")
    out.append("")
    for rate in sorted({r["rate"] for r in rows}):
        for other in ("kstreams-expert", "kstreams"):
            if med.get((rate, other, "p99")) is not None:
                out.append(f"- {rate:,}/s: p99 kcqrs / {other} = "
                           f"{ratio(med.get((rate, 'kcqrs', 'p99')), med.get((rate, other, 'p99')))}")
    out += ["", "Order of the runs in each round:", ""] + round_orders(rows)
    out += void_lines(rows, lambda r: r["run"])
    out.append("")
    return out


def recovery_table(rows):
    out = ["### Recovery after kill -9 (exactly-once)", "",
           "Every restart checked: each command of the input so far has exactly one "
           "outcome and the stores match.", "",
           "| system | restarts ok | ready after restart, s | records restored | "
           "peak RSS MB after restart |",
           "|---|---|---|---|---|"]
    for system in SYSTEMS:
        sel = [r for r in rows if r["system"] == system and r.get("phase") == "restart"]
        if not sel:
            continue
        good = [r for r in sel if r.get("ok")]
        ready, _ = mmm([r.get("ready_s") for r in good], "{:.2f}")
        restored, _ = mmm([r.get("restored") for r in good])
        rss, _ = mmm([r.get("peak_rss_mb") for r in good])
        out.append(f"| {system} | {len(good)}/{len(sel)} | {ready} | {restored} | {rss} |")
    loads = [r for r in rows if r.get("phase") == "load"]
    bad_loads = [r for r in loads if not r.get("ok")]
    if loads:
        out += ["", f"Loads checked: {len(loads) - len(bad_loads)}/{len(loads)} ok."]
    out += ["", "Order of the restarts in each round:", ""]
    out += round_orders([r for r in rows if r.get("phase") == "restart"])
    out += void_lines(rows, lambda r: f"{r['system']} {r.get('phase')} round {r.get('round', 0)}")
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
        lines += throughput_table(rows, "Stateless: filter and reshape")
    rows = load(results, "orders")
    if rows:
        lines += throughput_table(rows, "CQRS orders (pipe: the floor, --shape orders)")
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
