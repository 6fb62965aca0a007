#!/usr/bin/python3
"""The Grafana dashboard names only metrics that exist.

usage: check_dashboard.py SOURCE_ROOT [PROMTOOL]

Three sources must agree:
  - engine/metrics/metrics.cc: the families the engine registers (name, type,
    labels) and the process_* metrics it adds at each scrape;
  - docs/metrics.md: the tables users read (name, type, labels);
  - deploy/grafana/kcqrs.json: every PromQL expression of its panels and
    variables names documented metrics only (a histogram through its
    _bucket/_sum/_count series), groups by documented labels only, and
    reads the datasource from the dashboard's own variable.
With PROMTOOL, every expression must also parse as PromQL (Grafana's
variables replaced by plausible values), through `promtool check rules`.

Each check is also run on a broken copy (a metric that does not exist, a
documented metric the registry lacks, a label nobody has) and must fail
there, so that a check that silently passes everything is caught too.
Exit status 0 when everything agrees; 1 with one line per problem.
"""
import copy
import json
import os
import re
import subprocess
import sys
import tempfile

# Series Prometheus itself adds to every target.
PROMETHEUS_SERIES = {"up"}
# Labels every series has or gets (target labels, histogram buckets).
TARGET_LABELS = {"job", "instance", "le"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
    "bool", "and", "or", "unless", "inf", "nan", "atan2",
}


def registry_metrics(metrics_cc):
    """name -> (type, labels) from the Family declarations of metrics.cc."""
    text = open(metrics_cc, encoding="utf-8").read()
    out = {}
    decl = re.compile(
        r'(Counter|Gauge|Histogram)Family\s+\w+\s*\{\s*"(kcqrs_\w+)",'
        r'((?:\s*"(?:[^"\\]|\\.)*")+)\s*,\s*\{([^}]*)\}')
    for kind, name, _help, labels in decl.findall(text):
        out[name] = (kind.lower(), tuple(re.findall(r'"(\w+)"', labels)))
    proc = re.compile(r'AddProcessMetric\(&families,\s*"(process_\w+)",\s*'
                      r'(?:"(?:[^"\\]|\\.)*"\s*)+,\s*MetricType::(\w+)')
    for name, kind in proc.findall(text):
        out[name] = (kind.lower(), ())
    return out


def documented_metrics(metrics_md):
    """name -> (type, labels) from the tables of docs/metrics.md."""
    out = {}
    for line in open(metrics_md, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.fullmatch(r"`(kcqrs|process)_\w+`", cells[0]):
            continue
        name = cells[0].strip("`")
        kind = cells[1]
        labels = tuple(re.findall(r"`(\w+)`", cells[2])) if len(cells) >= 4 else ()
        out[name] = (kind, labels)
    return out


def compare_registry_and_docs(registry, docs):
    problems = []
    for name in sorted(set(registry) - set(docs)):
        problems.append(f"docs/metrics.md: {name} is registered in engine/metrics "
                        "but not documented")
    for name in sorted(set(docs) - set(registry)):
        problems.append(f"docs/metrics.md: {name} is documented but the engine "
                        "does not register it")
    for name in sorted(set(docs) & set(registry)):
        if docs[name][0] != registry[name][0]:
            problems.append(f"docs/metrics.md: {name} is documented as a {docs[name][0]}, "
                            f"registered as a {registry[name][0]}")
        if set(docs[name][1]) != set(registry[name][1]):
            problems.append(f"docs/metrics.md: {name} is documented with labels "
                            f"{sorted(docs[name][1])}, registered with {sorted(registry[name][1])}")
    return problems


def expressions(dashboard):
    """(where, PromQL) for every panel target and query variable."""
    out = []

    def panels(items, path):
        for p in items:
            title = p.get("title", "?")
            for t in p.get("targets", []):
                if "expr" in t:
                    out.append((f'{path}panel "{title}" target {t.get("refId", "?")}', t["expr"]))
            panels(p.get("panels", []), f'{path}row "{title}" / ')

    panels(dashboard.get("panels", []), "")
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        query = v.get("query")
        query = query.get("query", "") if isinstance(query, dict) else query or ""
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query)
        if m:
            out.append((f'variable "{v.get("name")}"', m.group(1)))
        elif query:
            out.append((f'variable "{v.get("name")}"', query))
    return out


def strip_balanced(expr, opener, closer):
    """expr without the text inside opener...closer (kept as a space)."""
    out, depth = [], 0
    for ch in expr:
        if ch == opener:
            depth += 1
        elif ch == closer and depth:
            depth -= 1
        elif depth == 0:
            out.append(ch)
            continue
        out.append(" ")
    return "".join(out)


def analyse(expr):
    """(metric names, grouping labels) of one PromQL expression."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    labels = set()
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text):
        labels.update(re.findall(r"\w+", m.group(1)))
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = strip_balanced(text, "{", "}")
    text = strip_balanced(text, "[", "]")
    names = set()
    for m in re.finditer(r"[A-Za-z_:][\w:]*", text):
        word = m.group(0)
        if word.lower() in PROMQL_KEYWORDS:
            continue
        if text[m.end():].lstrip().startswith("("):
            continue  # a function
        if m.start() > 0 and (text[m.start() - 1].isdigit() or text[m.start() - 1] == "."):
            continue  # a number's exponent or a duration's unit
        names.add(word)
    return names, labels


def check_dashboard(dashboard, docs):
    problems = []
    known_labels = set(TARGET_LABELS)
    for _kind, ls in docs.values():
        known_labels.update(ls)
    exprs = expressions(dashboard)
    if not exprs:
        problems.append("kcqrs.json: no PromQL expression found")
    for where, expr in exprs:
        names, labels = analyse(expr)
        if not names:
            problems.append(f"kcqrs.json: {where}: names no metric: {expr}")
        for name in sorted(names):
            if name in PROMETHEUS_SERIES or name in docs:
                continue
            base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
            if base in docs and docs[base][0] == "histogram":
                continue
            problems.append(f"kcqrs.json: {where}: {name} is not a metric of docs/metrics.md")
        for label in sorted(labels - known_labels):
            problems.append(f"kcqrs.json: {where}: no metric has the label {label}")

    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append('kcqrs.json: no "datasource" variable of type datasource (prometheus)')
    for name in ("job", "instance"):
        if name not in variables:
            problems.append(f'kcqrs.json: no "{name}" variable')
    ids = []

    def walk(items):
        for p in items:
            ids.append(p.get("id"))
            if p.get("type") != "row":
                uid = (p.get("datasource") or {}).get("uid")
                if uid != "${datasource}":
                    problems.append(f'kcqrs.json: panel "{p.get("title")}" does not read '
                                    f"the ${{datasource}} variable (uid {uid!r})")
                for t in p.get("targets", []):
                    if (t.get("datasource") or {}).get("uid") not in (None, "${datasource}"):
                        problems.append(f'kcqrs.json: panel "{p.get("title")}" has a target '
                                        "with another datasource")
            walk(p.get("panels", []))

    walk(dashboard.get("panels", []))
    if len(ids) != len(set(ids)):
        problems.append("kcqrs.json: panel ids are not unique")
    return problems


def check_promql(dashboard, promtool):
    """Every expression parses: promtool checks them as recording rules."""
    exprs = expressions(dashboard)
    rules = []
    for i, (_where, expr) in enumerate(exprs):
        e = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
        e = re.sub(r"\$\{?\w+\}?", ".*", e)
        rules.append({"record": f"kcqrs:dashboard_expr_{i}", "expr": e})
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)  # JSON is YAML
        path = f.name
    try:
        r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
    except OSError as e:
        return [f"{promtool}: cannot run it ({e}); scripts/setup installs it "
                "(Debian's prometheus package)"]
    finally:
        os.unlink(path)
    if r.returncode == 0:
        return []
    out = (r.stdout + r.stderr).strip()
    problems = []
    for m in re.finditer(r"group \"dashboard\", rule (\d+)[^\n]*", out):
        where, expr = exprs[int(m.group(1)) - 1]
        problems.append(f"kcqrs.json: {where}: not valid PromQL: {expr}")
    return problems or [f"kcqrs.json: promtool refuses the expressions:\n{out}"]


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    root = sys.argv[1]
    promtool = sys.argv[2] if len(sys.argv) == 3 else None
    registry = registry_metrics(os.path.join(root, "engine/metrics/metrics.cc"))
    docs = documented_metrics(os.path.join(root, "docs/metrics.md"))
    dashboard_path = os.path.join(root, "deploy/grafana/kcqrs.json")
    try:
        dashboard = json.load(open(dashboard_path, encoding="utf-8"))
    except ValueError as e:
        print(f"{dashboard_path}: not JSON: {e}")
        return 1

    problems = []
    if len(registry) < 20:
        problems.append(f"engine/metrics/metrics.cc: found only {len(registry)} metric "
                        "families; has the way they are declared changed?")
    problems += compare_registry_and_docs(registry, docs)
    problems += check_dashboard(dashboard, docs)
    if promtool:
        problems += check_promql(dashboard, promtool)

    # The checks must be able to fail.
    broken = copy.deepcopy(dashboard)
    target = next(p for p in broken["panels"] if p.get("targets"))["targets"][0]
    target["expr"] = 'sum(rate(kcqrs_no_such_metric_total{job=~"$job"}[5m]))'
    if not any("kcqrs_no_such_metric_total" in p for p in check_dashboard(broken, docs)):
        problems.append("self-test: a dashboard naming kcqrs_no_such_metric_total passed")
    target["expr"] = "sum by (no_such_label) (kcqrs_ready)"
    if not any("no_such_label" in p for p in check_dashboard(broken, docs)):
        problems.append("self-test: a dashboard grouping by no_such_label passed")
    target["expr"] = "histogram_quantile(0.9, rate(kcqrs_ready_bucket[5m]))"
    if not any("kcqrs_ready_bucket" in p for p in check_dashboard(broken, docs)):
        problems.append("self-test: _bucket of a gauge passed")
    if promtool:
        target["expr"] = "sum(rate(kcqrs_ready[5m])"
        if not check_promql(broken, promtool):
            problems.append("self-test: an unbalanced PromQL expression passed promtool")
    fake_docs = dict(docs, kcqrs_imaginary_total=("counter", ()))
    if not compare_registry_and_docs(registry, fake_docs):
        problems.append("self-test: a documented metric the engine lacks passed")

    for p in problems:
        print(p)
    if not problems:
        print(f"ok: {len(registry)} metrics registered and documented alike; "
              f"{len(expressions(dashboard))} dashboard expressions name only them")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
