#!/usr/bin/env python3
"""kcqrs side by side with Kafka Streams and a raw librdkafka pipe (issue 5).

Starts its own Kafka broker (scripts/kafka), preloads each workload's input
once (bench/WORKLOADS.md), then runs the systems one after the other, never
together, round after round, in an order shuffled in every round (--seed),
and checks every run's output against the expected outcome
(bench/tools/kbench). A run whose output does not check out is void: it is
reported as such and left out of the medians. Throughput runs are measured
whole and over a steady-state window (20% to 90% of the input committed), the
broker's CPU as well as the engine's.

    bench/compare/run.py                          # everything, 5 rounds
    bench/compare/run.py --workloads orders --runs 1 --orders 10000

Results: build/bench/results/<workload>.json (every run) and
build/bench/results/report.md (medians with min and max, ratios).
Needs `make bench-tools` (kcqrs, kbench, kbench_pipe, the Kafka Streams jar).
"""

import argparse
import json
import glob
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from failover import Failover  # noqa: E402  (beside this script)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# KCQRS_BENCH_BIN: another build's bin directory (e.g. build/rel/bin).
BIN = os.environ.get("KCQRS_BENCH_BIN", os.path.join(ROOT, "build", "bin"))
KCQRS = os.path.join(BIN, "kcqrs")
KBENCH = os.path.join(BIN, "kbench")
PIPE = os.path.join(BIN, "kbench_pipe")
JAR = os.path.join(ROOT, "bench", "kstreams", "target", "kstreams-bench.jar")
CLK_TCK = os.sysconf("SC_CLK_TCK")
JAVA_OPTS = os.environ.get("KSTREAMS_JAVA_OPTS", "-Xms1g -Xmx1g").split()

# The short names in run ids, and the Kafka Streams peer's app per workload.
SHORT = {"kcqrs": "kc", "kstreams": "ks", "kstreams-expert": "kx", "pipe": "pi",
         "pipe-fused": "pf"}
KSTREAMS_APPS = {"kstreams": {"orders": "orders", "stateless": "stateless"},
                 "kstreams-expert": {"orders": "orders-expert"}}
ALL_SYSTEMS = "kcqrs,kstreams,kstreams-expert,pipe,pipe-fused"

# The steady-state window of a throughput run: from the poll at which this
# share of the run's work is committed to the one at which that share is. The
# work is the sum of the group's committed offsets over every topic it
# consumes (the input and, for orders, the events and repartition topics),
# so a first stage running ahead of the later ones does not count as done.
WINDOW = (0.2, 0.9)


def is_kstreams(system):
    return system in KSTREAMS_APPS


def proc_cpu_seconds(pid):
    """utime + stime of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 (1-based) of the whole line.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def window(samples, records, total):
    """Records/s and CPU-s per 1M input records between the first samples at
    which WINDOW[0] and WINDOW[1] of the run's work (`total`: the committed
    offsets of every consumed topic when done) is committed, or None when the
    run was too short for two distinct samples. Work is converted to input
    records by records / total."""
    if not total or not records:
        return None
    lo = next((s for s in samples if s["all"] >= WINDOW[0] * total), None)
    hi = next((s for s in samples if s["all"] >= WINDOW[1] * total), None)
    if lo is None or hi is None or hi["all"] <= lo["all"] or hi["ms"] <= lo["ms"]:
        return None
    n = (hi["all"] - lo["all"]) * records / total
    seconds = (hi["ms"] - lo["ms"]) / 1000.0
    out = {"from_share": lo["all"] / total, "to_share": hi["all"] / total,
           "input_committed": [lo["committed"], hi["committed"]],
           "records": n, "seconds": seconds, "samples": samples.index(hi) - samples.index(lo),
           "records_per_s": n / seconds,
           "cpu_s_per_m": (hi["cpu"] - lo["cpu"]) / (n / 1e6)}
    if lo.get("broker_cpu") is not None and hi.get("broker_cpu") is not None:
        out["broker_cpu_s_per_m"] = (hi["broker_cpu"] - lo["broker_cpu"]) / (n / 1e6)
    return out


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kbench(*args, check=True, timeout=1800):
    out = subprocess.run([KBENCH, *map(str, args)], capture_output=True, text=True,
                         timeout=timeout)
    if check and out.returncode != 0:
        raise RuntimeError(f"kbench {' '.join(map(str, args))} failed ({out.returncode}): "
                           f"{out.stderr.strip()[-2000:]} {out.stdout.strip()[-2000:]}")
    lines = [l for l in out.stdout.splitlines() if l.strip().startswith("{")]
    return json.loads(lines[-1]) if lines else {}, out.returncode


class Proc:
    """A system under test: its process, CPU time and peak RSS from /proc."""

    def __init__(self, argv, env=None, log_path=None, broker_cpu=None):
        # The broker's CPU when this started: a run's share of the broker.
        self.broker_cpu0 = broker_cpu() if broker_cpu else None
        self.log_path = log_path
        self.log_file = open(log_path, "w") if log_path else subprocess.DEVNULL
        self.started = time.time()
        self.p = subprocess.Popen(argv, env=env, stdout=self.log_file,
                                  stderr=subprocess.STDOUT, start_new_session=True)

    def cpu_seconds(self):
        return proc_cpu_seconds(self.p.pid)

    def peak_rss_mb(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        return float("nan")

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.alive():
            os.killpg(self.p.pid, sig)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        if self.log_file is not subprocess.DEVNULL:
            self.log_file.close()

    def output(self):
        if not self.log_path:
            return ""
        with open(self.log_path) as f:
            return f.read()


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = args.work
        os.makedirs(self.work, exist_ok=True)
        self.kafka_dir = os.path.join(self.work, "kafka")
        self.results_dir = args.out
        os.makedirs(self.results_dir, exist_ok=True)
        self.bootstrap = None
        self.broker_pids = []

    # -- the broker --------------------------------------------------------
    def start_broker(self):
        log("starting the broker")
        out = subprocess.run([os.path.join(ROOT, "scripts", "kafka"), "start", "--dir",
                              self.kafka_dir, "--replace"], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError("scripts/kafka start failed: " + out.stderr)
        with open(os.path.join(self.kafka_dir, "bootstrap")) as f:
            self.bootstrap = f.read().strip()
        # A fresh broker makes every local state from an earlier call stale
        # (a run stopped before its cleanup left it): an engine would take
        # its checkpoints for state the new topics never had.
        shutil.rmtree(os.path.join(self.work, "state"), ignore_errors=True)
        # scripts/kafka writes each node's pid to <dir>/node-I/pid.
        for path in sorted(glob.glob(os.path.join(self.kafka_dir, "node-*", "pid"))):
            with open(path) as f:
                self.broker_pids.append(int(f.read().strip()))
        if not self.broker_pids:
            raise RuntimeError(f"no broker pid file under {self.kafka_dir}/node-*/pid")
        log("broker at", self.bootstrap, "pids", self.broker_pids)

    def broker_cpu(self):
        """CPU seconds of the broker's processes so far (None if one is gone)."""
        try:
            return sum(proc_cpu_seconds(pid) for pid in self.broker_pids)
        except OSError:
            return None

    def rng(self, workload):
        """The order of systems in each round of `workload`: from --seed, so a
        rerun with the same seed runs them in the same orders."""
        return random.Random(f"{self.args.seed}:{workload}")

    def stop_broker(self):
        subprocess.run([os.path.join(ROOT, "scripts", "kafka"), "stop", "--dir", self.kafka_dir],
                       capture_output=True)

    # -- starting the systems ------------------------------------------------
    def kcqrs_topology(self, template, replacements, run):
        with open(os.path.join(ROOT, "bench", template, "topology.yaml")) as f:
            text = f.read()
        for old, new in replacements.items():
            text = text.replace(old, new)
        path = os.path.join(self.work, f"{run}.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_kcqrs(self, run, template, replacements, guarantee, state_dir=None, name=None,
                    extra_env=None):
        """`run` is the application id; `name` (default `run`) names this
        instance's log when several instances run one application."""
        name = name or run
        port = free_port()
        state_dir = state_dir or os.path.join(self.work, "state", run)
        env = dict(os.environ, KCQRS_BOOTSTRAP=self.bootstrap, KCQRS_APPLICATION_ID=run,
                   KCQRS_GUARANTEE="exactly_once" if guarantee == "eos" else "at_least_once",
                   KCQRS_STATE_DIR=state_dir, KCQRS_HTTP_LISTEN=f"127.0.0.1:{port}",
                   KCQRS_THREADS=str(self.args.threads), **(extra_env or {}))
        topology = self.kcqrs_topology(template, replacements, run)
        proc = Proc([KCQRS, "--log-level", "warn", "run", topology], env=env,
                    log_path=os.path.join(self.work, f"{name}.log"),
                    broker_cpu=self.broker_cpu)
        proc.http = f"http://127.0.0.1:{port}"
        return proc

    def start_kstreams(self, run, app, guarantee, input_topic, state_dir=None, name=None,
                       extra=()):
        name = name or run
        state_dir = state_dir or os.path.join(self.work, "state", run)
        argv = ["java", *JAVA_OPTS, "-jar", JAR, app, "--bootstrap", self.bootstrap,
                "--app-id", run, "--run", run, "--guarantee", guarantee, "--state-dir",
                state_dir, "--input", input_topic, "--threads", str(self.args.threads),
                *extra]
        return Proc(argv, log_path=os.path.join(self.work, f"{name}.log"),
                    broker_cpu=self.broker_cpu)

    def start_system(self, system, workload, run, guarantee, input_topic, replacements,
                     state_dir=None):
        """kcqrs (bench/<workload>/topology.yaml with `replacements`) or a
        Kafka Streams peer (its app for the workload)."""
        if system == "kcqrs":
            return self.start_kcqrs(run, workload, replacements, guarantee,
                                    state_dir=state_dir)
        return self.start_kstreams(run, KSTREAMS_APPS[system][workload], guarantee,
                                   input_topic, state_dir=state_dir)

    def start_pipe(self, run, guarantee, input_topic, output_topic=None, shape=None):
        """The copy pipe (`output_topic`), or with shape="orders" the floor of
        the orders workload: its topics are <run>.floor.*."""
        argv = [PIPE, "--bootstrap", self.bootstrap, "--input", input_topic, "--group", run,
                "--mode", guarantee, "--commit-ms", "100"]
        if shape:
            argv += ["--shape", shape, "--run", run]
        else:
            argv += ["--output", output_topic]
        return Proc(argv, log_path=os.path.join(self.work, f"{run}.log"),
                    broker_cpu=self.broker_cpu)

    def wait_ready(self, proc, system, timeout=300):
        """Seconds from the process start until it is ready to process."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{system} exited ({proc.p.returncode}): "
                                   f"{proc.output()[-3000:]}")
            if system == "kcqrs":
                try:
                    with urllib.request.urlopen(proc.http + "/readyz", timeout=1) as r:
                        if r.status == 200:
                            return time.time() - proc.started, json.loads(r.read())
                except Exception:  # not listening yet, or 503 while restoring
                    pass
            elif is_kstreams(system):
                m = re.findall(r"^KSTATE RUNNING (\d+)", proc.output(), re.M)
                if m:
                    return int(m[-1]) / 1000.0 - proc.started, None
            time.sleep(0.02)
        raise RuntimeError(f"{system} not ready after {timeout} s")

    # -- one throughput run ---------------------------------------------------
    def wait_done_sampled(self, proc, group, topics):
        """kbench wait-done --progress, the engine's and the broker's CPU read
        at each of its polls (~every 100 ms). Returns (final JSON, rc,
        samples)."""
        waiter = subprocess.Popen(
            [KBENCH, "wait-done", "--bootstrap", self.bootstrap, "--group", group,
             "--topics", ",".join(topics), "--timeout", str(self.args.timeout),
             "--poll-ms", "100", "--progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples, final = [], {}
        for line in waiter.stdout:
            if not line.startswith("{"):
                continue
            j = json.loads(line)
            if not j.get("progress"):
                final = j
                continue
            if not proc.alive():
                # The engine exited: nothing will commit any more, so do not
                # wait for wait-done's timeout.
                waiter.kill()
                break
            cpu = proc.cpu_seconds()
            samples.append({"ms": j["ms"], "committed": j["committed"],
                            "all": j.get("all_committed", j["committed"]), "cpu": cpu,
                            "broker_cpu": self.broker_cpu()})
        err = waiter.stderr.read()
        rc = waiter.wait()
        if rc != 0 and not final:
            final = {"error": err.strip()[-2000:]}
        return final, rc, samples

    def throughput_run(self, proc, group, topics, records):
        """Waits until the group has consumed every topic to its end; returns
        the measurements, whole run and steady-state window, then stops the
        process."""
        done, rc, samples = self.wait_done_sampled(proc, group, topics)
        alive = proc.alive()
        result = {"exit_early": not alive}
        if alive:
            result["cpu_s"] = proc.cpu_seconds()
            result["peak_rss_mb"] = proc.peak_rss_mb()
        broker = self.broker_cpu()
        if broker is not None and proc.broker_cpu0 is not None:
            result["broker_cpu_s"] = broker - proc.broker_cpu0
        proc.stop()
        if rc != 0 or not alive:
            result["error"] = (f"wait-done rc={rc} {done}; process alive={alive}; "
                               f"log tail: {proc.output()[-1500:]}")
            return result
        elapsed = (done["done_ms"] - done["first_progress_ms"]) / 1000.0
        counted = records - done.get("first_committed", 0)
        result.update({
            "wall_s": done["done_ms"] / 1000.0 - proc.started,
            "elapsed_s": elapsed,
            "records_per_s": counted / elapsed if elapsed > 0 else float("nan"),
            "cpu_s_per_m": result["cpu_s"] / (records / 1e6),
            "records_per_cpu_s": records / result["cpu_s"],
        })
        if "broker_cpu_s" in result:
            result["broker_cpu_s_per_m"] = result["broker_cpu_s"] / (records / 1e6)
        result["window"] = window(samples, done.get("records", records),
                                  done.get("all_committed"))
        result["samples"] = len(samples)
        return result

    def record(self, workload, row):
        path = os.path.join(self.results_dir, f"{workload}.json")
        rows = []
        if os.path.exists(path):
            with open(path) as f:
                rows = json.load(f)
        rows.append(row)
        with open(path, "w") as f:
            json.dump(rows, f, indent=1)
        log(workload, json.dumps(row))

    def reset_results(self, workload):
        path = os.path.join(self.results_dir, f"{workload}.json")
        if os.path.exists(path):
            os.remove(path)

    # -- rounds ----------------------------------------------------------------
    def rounds(self, workload, configs, count=None):
        """Yields (round, position, config, order) for every round: `configs`
        (tuples whose first item is the system) shuffled anew in each round;
        `order` lists the round's run order as text, for the row."""
        rng = self.rng(workload)
        for rnd in range(1, (count or self.args.runs) + 1):
            order = list(configs)
            rng.shuffle(order)
            names = ["/".join(map(str, c)) for c in order]
            log(workload, "round", rnd, "order:", ", ".join(names))
            for pos, config in enumerate(order, 1):
                yield rnd, pos, config, names

    def expect_orders(self, name, orders=0, recovery=0, offered=()):
        """kbench expect orders of an input made of these commands; returns
        the path of the expected outcome."""
        path = os.path.join(self.work, f"expected-{name}.json")
        args = ["expect", "orders", "--orders", orders, "--recovery", recovery, "--out", path]
        if offered:
            args += ["--offered", ",".join(f"{p}:{n}" for p, n in offered)]
        kbench(*args)
        return path

    def check_orders(self, run, expected):
        """kbench check orders of the run's outputs: (ok, the check's JSON)."""
        check, rc = kbench("check", "orders", "--bootstrap", self.bootstrap, "--run", run,
                           "--app-id", run, "--expected", expected, check=False)
        return rc == 0, check

    # -- workload 1: stateless -------------------------------------------------
    def stateless(self):
        a = self.args
        self.reset_results("stateless")
        expected = os.path.join(self.work, "expected-stateless.json")
        kbench("expect", "stateless", "--records", a.records, "--out", expected)
        log("preloading", a.records, "stateless records")
        gen, _ = kbench("gen", "stateless", "--bootstrap", self.bootstrap, "--topic",
                        "bench.stateless.in", "--records", a.records, "--partitions", 4)
        log("preloaded", gen)
        systems = self.systems(["pipe", "kcqrs", "kstreams"])
        configs = [(s, g) for s in systems for g in ("eos", "alos")]
        for rnd, pos, (system, guarantee), order in self.rounds("stateless", configs):
            run = f"sl{rnd}-{SHORT[system]}-{guarantee}"
            out_topic = f"{run}.stateless.out"
            if system == "pipe":
                proc = self.start_pipe(run, guarantee, "bench.stateless.in", out_topic)
            else:
                proc = self.start_system(system, "stateless", run, guarantee,
                                         "bench.stateless.in",
                                         {"bench.stateless.out": out_topic})
            row = {"round": rnd, "position": pos, "order": order, "system": system,
                   "guarantee": guarantee, "run": run}
            row.update(self.throughput_run(proc, run, ["bench.stateless.in"], a.records))
            if "error" not in row:
                extra = ["--copy"] if system == "pipe" else []
                check, rc = kbench("check", "stateless", "--bootstrap", self.bootstrap,
                                   "--topic", out_topic, "--expected", expected,
                                   *extra, check=False)
                row["check"] = check
                row["ok"] = rc == 0
            else:
                row["ok"] = False
            self.record("stateless", row)
            shutil.rmtree(os.path.join(self.work, "state", run), ignore_errors=True)

    # -- workload 2: orders ----------------------------------------------------
    FLOOR_TOPICS = ("events", "aggregates-changelog", "orders-changelog", "repartition",
                    "totals-changelog")

    def orders(self):
        a = self.args
        self.reset_results("orders")
        expected = self.expect_orders("orders", orders=a.orders)
        records = a.orders * 10
        log("preloading", records, "commands")
        gen, _ = kbench("gen", "orders", "--bootstrap", self.bootstrap, "--topic",
                        "bench.orders.commands", "--orders", a.orders)
        log("preloaded", gen)
        systems = self.systems(["kcqrs", "kstreams", "kstreams-expert", "pipe", "pipe-fused"])
        configs = [(s, g) for s in systems for g in ("eos", "alos")]
        for rnd, pos, (system, guarantee), order in self.rounds("orders", configs):
            run = f"or{rnd}-{SHORT[system]}-{guarantee}"
            events, rejections = f"{run}.orders.events", f"{run}.orders.rejections"
            if system == "pipe":
                # The floor: the orders topology's Kafka record operations per
                # command, no rules (WORKLOADS.md §2, the floor).
                proc = self.start_pipe(run, guarantee, "bench.orders.commands", shape="orders")
                topics = ["bench.orders.commands", f"{run}.floor.events",
                          f"{run}.floor.repartition"]
            elif system == "pipe-fused":
                # The same records with the projections fused into the
                # aggregate's step: the events are not read back.
                proc = self.start_pipe(run, guarantee, "bench.orders.commands",
                                       shape="orders-fused")
                topics = ["bench.orders.commands", f"{run}.floor.repartition"]
            else:
                proc = self.start_system(system, "orders", run, guarantee,
                                         "bench.orders.commands", {
                                             "bench.orders.events": events,
                                             "bench.orders.rejections": rejections})
                topics = ["bench.orders.commands", events, f"{run}-product_totals-repartition"]
            row = {"round": rnd, "position": pos, "order": order, "system": system,
                   "guarantee": guarantee, "run": run}
            row.update(self.throughput_run(proc, run, topics, records))
            if "error" in row:
                row["ok"] = False
            elif system in ("pipe", "pipe-fused"):
                check, rc = kbench("count", "--bootstrap", self.bootstrap, "--topics",
                                   ",".join(f"{run}.floor.{t}" for t in self.FLOOR_TOPICS),
                                   "--expect", records, check=False)
                row["check"] = check
                row["ok"] = rc == 0
            else:
                row["ok"], row["check"] = self.check_orders(run, expected)
            self.record("orders", row)
            shutil.rmtree(os.path.join(self.work, "state", run), ignore_errors=True)

    # -- workload 3: latency ---------------------------------------------------
    def latency(self):
        a = self.args
        self.reset_results("latency")
        systems = self.systems(["kcqrs", "kstreams", "kstreams-expert"])
        configs = [(s, rate) for rate in a.rates for s in systems]
        for rnd, pos, (system, rate), order in self.rounds("latency", configs):
            run = f"la{rnd}-{SHORT[system]}-{rate}"
            commands = f"{run}.commands"
            events, rejections = f"{run}.orders.events", f"{run}.orders.rejections"
            kbench("create-topic", "--bootstrap", self.bootstrap, "--topic", commands,
                   "--partitions", 4)
            proc = self.start_system(system, "orders", run, "eos", commands, {
                "bench.orders.commands": commands,
                "bench.orders.events": events,
                "bench.orders.rejections": rejections})
            row = {"round": rnd, "position": pos, "order": order, "system": system,
                   "rate": rate, "run": run}
            try:
                self.wait_ready(proc, system)
                # Warm up (the JVM's JIT, RocksDB, connections), then measure.
                warm, _ = kbench("offer", "--bootstrap", self.bootstrap, "--topic", commands,
                                 "--rate", rate, "--seconds", a.warmup, "--prefix", f"W{rnd}")
                measured = rate * a.latency_seconds
                # Only the measured commands' outcomes (orders o-M<round>-…)
                # count: the warm-up's tail may still be committing.
                lat = subprocess.Popen(
                    [KBENCH, "latency", "--bootstrap", self.bootstrap, "--topics",
                     f"{events},{rejections}", "--from-now", "--seconds",
                     str(a.latency_seconds + 15), "--prefix", f"M{rnd}",
                     "--expect", str(measured)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                time.sleep(1.0)  # the latency consumer is assigned and positioned
                offered, _ = kbench("offer", "--bootstrap", self.bootstrap, "--topic",
                                    commands, "--rate", rate, "--seconds",
                                    a.latency_seconds, "--prefix", f"M{rnd}")
                out, err = lat.communicate(timeout=a.latency_seconds + 60)
                lines = [l for l in out.splitlines() if l.startswith("{")]
                row["warmup"] = warm
                row["offered"] = offered
                row["latency"] = json.loads(lines[-1]) if lines else {"error": err}
                row["cpu_s"] = proc.cpu_seconds()
                row["peak_rss_mb"] = proc.peak_rss_mb()
                got = row["latency"].get("count", 0)
                errors = []
                if offered.get("sent") != measured:
                    errors.append(f"{offered.get('sent')} measured commands offered, "
                                  f"{measured} meant")
                if got != offered.get("sent"):
                    errors.append(f"{got} measured outcomes read for {offered.get('sent')} "
                                  "measured commands")
                # Then every command, warm-up and measured, has exactly one
                # outcome and the stores are right: the whole run checked.
                done, rc = kbench("wait-done", "--bootstrap", self.bootstrap, "--group", run,
                                  "--topics", f"{commands},{events},"
                                  f"{run}-product_totals-repartition",
                                  "--timeout", 120, check=False, timeout=180)
                if rc != 0:
                    errors.append(f"not caught up: {done}")
                else:
                    expected = self.expect_orders(run, offered=[
                        (f"W{rnd}", warm["sent"]), (f"M{rnd}", offered["sent"])])
                    ok, row["check"] = self.check_orders(run, expected)
                    if not ok:
                        errors.append("check: " + "; ".join(row["check"].get("mismatches", [])))
                row["ok"] = not errors
                if errors:
                    row["error"] = "; ".join(errors)[:3000]
            except Exception as e:  # recorded, and the run is void
                row["ok"] = False
                row["error"] = str(e)
            proc.stop()
            self.record("latency", row)
            shutil.rmtree(os.path.join(self.work, "state", run), ignore_errors=True)

    # -- workload 4: recovery --------------------------------------------------
    def recovery(self):
        """Each system loads the keys once; then in every round, in a shuffled
        order, each system is started on its own state, catches up, is killed
        with SIGKILL while commands arrive, restarted (measured) and checked:
        every command of the input so far has exactly one outcome and the
        stores are right. Between its rounds a system is stopped cleanly, so
        only one runs at a time; its state dir and group stay."""
        a = self.args
        self.reset_results("recovery")
        log("preloading", a.recovery_keys, "CreateOrder commands")
        gen, _ = kbench("gen", "recovery", "--bootstrap", self.bootstrap, "--topic",
                        "bench.recovery.commands", "--orders", a.recovery_keys)
        log("preloaded", gen)
        systems = self.systems(["kcqrs", "kstreams", "kstreams-expert"])
        offered = []  # (prefix, sent) of every trickle into the shared input so far

        def names(system):
            run = f"rc-{SHORT[system]}"
            return run, f"{run}.orders.events", f"{run}.orders.rejections"

        def start(system):
            run, events, rejections = names(system)
            return self.start_system(system, "orders", run, "eos", "bench.recovery.commands", {
                "bench.orders.commands": "bench.recovery.commands",
                "bench.orders.events": events,
                "bench.orders.rejections": rejections},
                state_dir=os.path.join(self.work, "state", run))

        def catch_up_and_check(system, proc):
            """Waits until the system processed the whole input, then checks
            it: (ok, details)."""
            run, events, _ = names(system)
            done, rc = kbench("wait-done", "--bootstrap", self.bootstrap, "--group", run,
                              "--topics", f"bench.recovery.commands,{events},"
                              f"{run}-product_totals-repartition",
                              "--timeout", a.timeout, check=False, timeout=a.timeout + 60)
            if rc != 0 or not proc.alive():
                return False, {"error": f"not caught up (alive={proc.alive()}): {done}; "
                                        f"log tail: {proc.output()[-1500:]}"}
            expected = self.expect_orders(f"recovery-{len(offered)}",
                                          recovery=a.recovery_keys, offered=offered)
            ok, check = self.check_orders(run, expected)
            return ok, {"check": check, "caught_up": done}

        for system in systems:
            shutil.rmtree(os.path.join(self.work, "state", names(system)[0]), ignore_errors=True)
        # Round 0: the load, in a shuffled order too.
        for _, pos, (system,), order in self.rounds("recovery-load", [(s,) for s in systems],
                                                    count=1):
            proc = start(system)
            row = {"system": system, "phase": "load", "position": pos, "order": order}
            done, rc, samples = self.wait_done_sampled(
                proc, names(system)[0], ["bench.recovery.commands", names(system)[1],
                                         f"{names(system)[0]}-product_totals-repartition"])
            row.update({"done": done, "cpu_s": proc.cpu_seconds() if proc.alive() else None,
                        "peak_rss_mb": proc.peak_rss_mb() if proc.alive() else None,
                        "window": window(samples, done.get("records", 0),
                                         done.get("all_committed"))})
            row["ok"], details = catch_up_and_check(system, proc) if rc == 0 else (
                False, {"error": f"load not done: {done}"})
            row.update(details)
            proc.stop()
            self.record("recovery", row)

        for rnd, pos, (system,), order in self.rounds("recovery", [(s,) for s in systems]):
            run, _, _ = names(system)
            row = {"system": system, "phase": "restart", "round": rnd, "position": pos,
                   "order": order, "run": run}
            proc = start(system)
            try:
                self.wait_ready(proc, system, timeout=600)
                ok, details = catch_up_and_check(system, proc)
                if not ok:
                    raise RuntimeError(f"before the kill: {json.dumps(details)[:2000]}")
                # Commands keep arriving while the engine dies.
                prefix = f"K{rnd}{SHORT[system]}"
                trickle = subprocess.Popen(
                    [KBENCH, "offer", "--bootstrap", self.bootstrap, "--topic",
                     "bench.recovery.commands", "--rate", "1000", "--seconds", "4",
                     "--prefix", prefix], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    text=True)
                time.sleep(2.0)
                proc.stop(sig=signal.SIGKILL)
                out, _ = trickle.communicate()
                lines = [l for l in out.splitlines() if l.startswith("{")]
                sent = json.loads(lines[-1])["sent"] if lines else None
                if sent is None:
                    raise RuntimeError("kbench offer printed no summary")
                offered.append((prefix, sent))
                row["offered"] = sent
                proc = start(system)
                ready_s, detail = self.wait_ready(proc, system, timeout=600)
                row["ready_s"] = ready_s
                if system == "kcqrs":
                    row["restored"] = sum(t.get("restored", 0) for t in detail["tasks"])
                else:
                    m = re.findall(r"^KRESTORED (\d+)", proc.output(), re.M)
                    row["restored"] = sum(int(x) for x in m)
                row["peak_rss_mb"] = proc.peak_rss_mb()
                # Exactly once across the kill: every command so far, one
                # outcome each, and the stores right.
                ok, details = catch_up_and_check(system, proc)
                row.update(details)
                row["ok"] = ok
                if not ok and "error" not in row:
                    row["error"] = "; ".join(details.get("check", {}).get("mismatches", []))
            except Exception as e:
                row["ok"] = False
                row["error"] = str(e)
            proc.stop()
            self.record("recovery", row)
        for system in systems:
            shutil.rmtree(os.path.join(self.work, "state", names(system)[0]), ignore_errors=True)

    # -- workload 5: failover (failover.py) ----------------------------------------
    def failover(self):
        Failover(self, kbench, KBENCH, free_port, log).all()

    def systems(self, default):
        return [s for s in default if s in self.args.systems]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default="stateless,orders,latency,recovery,failover")
    p.add_argument("--systems", default=ALL_SYSTEMS,
                   help="of " + ALL_SYSTEMS + " (failover: kcqrs and kstreams only; "
                        "pipe-fused, the orders floor with the projections fused into "
                        "the aggregate's step: orders only)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--records", type=int, default=2_000_000)
    p.add_argument("--orders", type=int, default=100_000)
    p.add_argument("--rates", default="5000,20000")
    p.add_argument("--latency-seconds", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--recovery-keys", type=int, default=1_000_000)
    p.add_argument("--failover-keys", type=int, default=2_000_000,
                   help="orders of the failover workload; the killed instance holds half")
    p.add_argument("--failover-timeout", type=int, default=180,
                   help="seconds after the kill within which every key must answer")
    p.add_argument("--seed", type=int, default=1,
                   help="of the order of systems in every round of every workload")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "work"))
    p.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "results"))
    p.add_argument("--keep-broker", action="store_true")
    args = p.parse_args()
    args.systems = args.systems.split(",")
    unknown = [s for s in args.systems if s not in SHORT]
    if unknown:
        sys.exit(f"--systems: unknown {', '.join(unknown)} (known: {ALL_SYSTEMS})")
    args.rates = [int(r) for r in args.rates.split(",")]
    for path in (KCQRS, KBENCH) + ((PIPE,) if "pipe" in args.systems else ()):
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} is missing: run make bench-tools")
    if any(is_kstreams(s) for s in args.systems) and not os.path.exists(JAR):
        sys.exit(f"{JAR} is missing: run make bench-tools")
    bench = Bench(args)
    bench.start_broker()
    try:
        for w in args.workloads.split(","):
            getattr(bench, w)()
    finally:
        if not args.keep_broker:
            bench.stop_broker()
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "compare", "report.py"),
                    args.out], check=False)


if __name__ == "__main__":
    main()
