#!/usr/bin/python3
"""The alerting rules are complete: what promtool does not check.

usage: check_alerts.py SOURCE_ROOT

For every alert of deploy/prometheus/alerts.yml:
  - a `severity` label, critical or warning, and `summary`, `description`
    and `runbook` annotations;
  - its expression names only metrics of docs/metrics.md (or `up`);
  - deploy/prometheus/alerts_test.yml tests it both ways: at least one
    evaluation where it fires and one where it does not;
  - deploy/README.md describes it.
Runs itself on broken copies too, so that it cannot pass everything.
"""
import copy
import os
import sys

import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_dashboard import HISTOGRAM_SUFFIXES, PROMETHEUS_SERIES, analyse, documented_metrics  # noqa: E402

SEVERITIES = {"critical", "warning"}
ANNOTATIONS = ("summary", "description", "runbook")


def check(rules, tests, readme, docs):
    problems = []
    alerts = [r for g in rules.get("groups", []) for r in g.get("rules", []) if "alert" in r]
    if not alerts:
        problems.append("alerts.yml: no alert")
    fires, silent = set(), set()
    for t in tests.get("tests", []):
        for case in t.get("alert_rule_test", []) or []:
            (fires if case.get("exp_alerts") else silent).add(case.get("alertname"))
    for r in alerts:
        name = r["alert"]
        severity = (r.get("labels") or {}).get("severity")
        if severity not in SEVERITIES:
            problems.append(f"alerts.yml: {name}: severity {severity!r} is not one of "
                            f"{sorted(SEVERITIES)}")
        for a in ANNOTATIONS:
            if not (r.get("annotations") or {}).get(a):
                problems.append(f"alerts.yml: {name}: no {a} annotation")
        names, _labels = analyse(r.get("expr", ""))
        for metric in sorted(names):
            base = next((metric[: -len(s)] for s in HISTOGRAM_SUFFIXES if metric.endswith(s)), None)
            if metric not in docs and metric not in PROMETHEUS_SERIES and base not in docs:
                problems.append(f"alerts.yml: {name}: {metric} is not a metric of docs/metrics.md")
        if name not in fires:
            problems.append(f"alerts_test.yml: {name} is never tested firing")
        if name not in silent:
            problems.append(f"alerts_test.yml: {name} is never tested staying silent")
        if f"`{name}`" not in readme:
            problems.append(f"deploy/README.md: {name} is not described")
    return problems


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    root = sys.argv[1]
    deploy = os.path.join(root, "deploy")
    rules = yaml.safe_load(open(os.path.join(deploy, "prometheus/alerts.yml"), encoding="utf-8"))
    tests = yaml.safe_load(open(os.path.join(deploy, "prometheus/alerts_test.yml"), encoding="utf-8"))
    readme = open(os.path.join(deploy, "README.md"), encoding="utf-8").read()
    docs = documented_metrics(os.path.join(root, "docs/metrics.md"))
    problems = check(rules, tests, readme, docs)

    # The check must be able to fail.
    broken = copy.deepcopy(rules)
    rule = broken["groups"][0]["rules"][0]
    rule["expr"] = "kcqrs_no_such_metric > 0"
    del rule["annotations"]["runbook"]
    rule["labels"]["severity"] = "page"
    broken["groups"][0]["rules"].append({"alert": "KcqrsUntested", "expr": "up == 0"})
    found = "\n".join(check(broken, tests, readme, docs))
    for expected in ("kcqrs_no_such_metric", "no runbook", "'page'",
                     "KcqrsUntested is never tested firing", "KcqrsUntested is not described"):
        if expected not in found:
            problems.append(f"self-test: a broken rule file passed ({expected!r} not reported)")

    for p in problems:
        print(p)
    if not problems:
        print(f"ok: {sum(1 for g in rules['groups'] for r in g['rules'] if 'alert' in r)} alerts, "
              "each labelled, annotated, documented and tested both ways")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
