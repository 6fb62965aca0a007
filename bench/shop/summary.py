#!/usr/bin/env python3
"""Medians (min-max) of bench/shop/run.py result lines, for docs/benchmarks.md.

Usage: bench/shop/summary.py RESULTS.jsonl. Runs that did not check out
(every order ended exactly once) are void and left out, and counted.
"""
import json
import statistics
import sys


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    good = [r for r in rows if r.get("checked")]
    print(f"runs: {len(rows)}, checked: {len(good)}, void: {len(rows) - len(good)}")
    if not good:
        return 1
    for key in ("checkouts_per_s", "checkouts_per_cpu_s", "cpu_s", "broker_cpu_s", "wall_s",
                "peak_rss_mb"):
        values = [r[key] for r in good if r.get(key) is not None]
        if values:
            print(f"{key}: {statistics.median(values):g} ({min(values):g}-{max(values):g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
