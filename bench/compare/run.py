#!/usr/bin/env python3
"""kcqrs side by side with Kafka Streams and a raw librdkafka pipe (issue 5).

Starts its own Kafka broker (scripts/kafka), preloads each workload's input
once (bench/WORKLOADS.md), then runs the systems one after the other, never
together, round after round (alternating), and checks every run's output
against the expected outcome (bench/tools/kbench). A run whose output does not
check out is void: it is reported as such and left out of the medians.

    bench/compare/run.py                          # everything, 5 rounds
    bench/compare/run.py --workloads orders --runs 1 --orders 10000

Results: build/bench/results/<workload>.json (every run) and
build/bench/results/report.md (medians with min and max, ratios).
Needs `make bench-tools` (kcqrs, kbench, kbench_pipe, the Kafka Streams jar).
"""

import argparse
import json
import os
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
BIN = os.path.join(ROOT, "build", "bin")
KCQRS = os.path.join(BIN, "kcqrs")
KBENCH = os.path.join(BIN, "kbench")
PIPE = os.path.join(BIN, "kbench_pipe")
JAR = os.path.join(ROOT, "bench", "kstreams", "target", "kstreams-bench.jar")
CLK_TCK = os.sysconf("SC_CLK_TCK")
JAVA_OPTS = os.environ.get("KSTREAMS_JAVA_OPTS", "-Xms1g -Xmx1g").split()


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

    def __init__(self, argv, env=None, log_path=None):
        self.log_path = log_path
        self.log_file = open(log_path, "w") if log_path else subprocess.DEVNULL
        self.started = time.time()
        self.p = subprocess.Popen(argv, env=env, stdout=self.log_file,
                                  stderr=subprocess.STDOUT, start_new_session=True)

    def cpu_seconds(self):
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 (1-based) of the whole line.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

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

    # -- the broker --------------------------------------------------------
    def start_broker(self):
        log("starting the broker")
        out = subprocess.run([os.path.join(ROOT, "scripts", "kafka"), "start", "--dir",
                              self.kafka_dir, "--replace"], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError("scripts/kafka start failed: " + out.stderr)
        with open(os.path.join(self.kafka_dir, "bootstrap")) as f:
            self.bootstrap = f.read().strip()
        log("broker at", self.bootstrap)

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
                    log_path=os.path.join(self.work, f"{name}.log"))
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
        return Proc(argv, log_path=os.path.join(self.work, f"{name}.log"))

    def start_pipe(self, run, guarantee, input_topic, output_topic):
        argv = [PIPE, "--bootstrap", self.bootstrap, "--input", input_topic, "--output",
                output_topic, "--group", run, "--mode", guarantee, "--commit-ms", "100"]
        return Proc(argv, log_path=os.path.join(self.work, f"{run}.log"))

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
            elif system == "kstreams":
                m = re.findall(r"^KSTATE RUNNING (\d+)", proc.output(), re.M)
                if m:
                    return int(m[-1]) / 1000.0 - proc.started, None
            time.sleep(0.02)
        raise RuntimeError(f"{system} not ready after {timeout} s")

    # -- one throughput run ---------------------------------------------------
    def throughput_run(self, proc, group, topics, records):
        """Waits until the group has consumed every topic to its end; returns
        the measurements, then stops the process."""
        done, rc = kbench("wait-done", "--bootstrap", self.bootstrap, "--group", group,
                          "--topics", ",".join(topics), "--timeout", self.args.timeout,
                          "--poll-ms", 50, check=False, timeout=self.args.timeout + 60)
        alive = proc.alive()
        result = {"exit_early": not alive}
        if alive:
            result["cpu_s"] = proc.cpu_seconds()
            result["peak_rss_mb"] = proc.peak_rss_mb()
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
        for rnd in range(1, a.runs + 1):
            for system in systems:
                for guarantee in ("eos", "alos"):
                    run = f"sl{rnd}-{system[:2]}-{guarantee}"
                    out_topic = f"{run}.stateless.out"
                    if system == "kcqrs":
                        proc = self.start_kcqrs(run, "stateless",
                                                {"bench.stateless.out": out_topic}, guarantee)
                    elif system == "kstreams":
                        proc = self.start_kstreams(run, "stateless", guarantee,
                                                   "bench.stateless.in")
                    else:
                        proc = self.start_pipe(run, guarantee, "bench.stateless.in", out_topic)
                    row = {"round": rnd, "system": system, "guarantee": guarantee, "run": run}
                    row.update(self.throughput_run(proc, run, ["bench.stateless.in"],
                                                   a.records))
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
    def orders(self):
        a = self.args
        self.reset_results("orders")
        expected = os.path.join(self.work, "expected-orders.json")
        kbench("expect", "orders", "--orders", a.orders, "--out", expected)
        records = a.orders * 10
        log("preloading", records, "commands")
        gen, _ = kbench("gen", "orders", "--bootstrap", self.bootstrap, "--topic",
                        "bench.orders.commands", "--orders", a.orders)
        log("preloaded", gen)
        systems = self.systems(["kcqrs", "kstreams", "pipe"])
        for rnd in range(1, a.runs + 1):
            for system in systems:
                for guarantee in ("eos", "alos"):
                    run = f"or{rnd}-{system[:2]}-{guarantee}"
                    events, rejections = f"{run}.orders.events", f"{run}.orders.rejections"
                    if system == "kcqrs":
                        proc = self.start_kcqrs(run, "orders", {
                            "bench.orders.events": events,
                            "bench.orders.rejections": rejections}, guarantee)
                        topics = ["bench.orders.commands", events,
                                  f"{run}-product_totals-repartition"]
                    elif system == "kstreams":
                        proc = self.start_kstreams(run, "orders", guarantee,
                                                   "bench.orders.commands")
                        topics = ["bench.orders.commands", events,
                                  f"{run}-product_totals-repartition"]
                    else:
                        proc = self.start_pipe(run, guarantee, "bench.orders.commands", events)
                        topics = ["bench.orders.commands"]
                    row = {"round": rnd, "system": system, "guarantee": guarantee, "run": run}
                    row.update(self.throughput_run(proc, run, topics, records))
                    if "error" in row:
                        row["ok"] = False
                    elif system == "pipe":
                        row["ok"] = True  # a copy: its count is checked by wait-done
                    else:
                        check, rc = kbench("check", "orders", "--bootstrap", self.bootstrap,
                                           "--run", run, "--app-id", run, "--expected",
                                           expected, check=False)
                        row["check"] = check
                        row["ok"] = rc == 0
                    self.record("orders", row)
                    shutil.rmtree(os.path.join(self.work, "state", run), ignore_errors=True)

    # -- workload 3: latency ---------------------------------------------------
    def latency(self):
        a = self.args
        self.reset_results("latency")
        systems = self.systems(["kcqrs", "kstreams"])
        for rnd in range(1, a.runs + 1):
            for rate in a.rates:
                for system in systems:
                    run = f"la{rnd}-{system[:2]}-{rate}"
                    commands = f"{run}.commands"
                    events, rejections = f"{run}.orders.events", f"{run}.orders.rejections"
                    kbench("create-topic", "--bootstrap", self.bootstrap, "--topic", commands,
                           "--partitions", 4)
                    if system == "kcqrs":
                        proc = self.start_kcqrs(run, "orders", {
                            "bench.orders.commands": commands,
                            "bench.orders.events": events,
                            "bench.orders.rejections": rejections}, "eos")
                    else:
                        proc = self.start_kstreams(run, "orders", "eos", commands)
                    row = {"round": rnd, "system": system, "rate": rate, "run": run}
                    try:
                        self.wait_ready(proc, system)
                        # Warm up (the JVM's JIT, RocksDB, connections), then measure.
                        kbench("offer", "--bootstrap", self.bootstrap, "--topic", commands,
                               "--rate", rate, "--seconds", a.warmup, "--prefix", f"W{rnd}")
                        lat = subprocess.Popen(
                            [KBENCH, "latency", "--bootstrap", self.bootstrap, "--topics",
                             f"{events},{rejections}", "--from-now", "--seconds",
                             str(a.latency_seconds + 15),
                             "--expect", str(rate * a.latency_seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                        time.sleep(1.0)  # the latency consumer is assigned and positioned
                        offered, _ = kbench("offer", "--bootstrap", self.bootstrap, "--topic",
                                            commands, "--rate", rate, "--seconds",
                                            a.latency_seconds, "--prefix", f"M{rnd}")
                        out, err = lat.communicate(timeout=a.latency_seconds + 60)
                        lines = [l for l in out.splitlines() if l.startswith("{")]
                        row["offered"] = offered
                        row["latency"] = json.loads(lines[-1]) if lines else {"error": err}
                        row["cpu_s"] = proc.cpu_seconds()
                        row["peak_rss_mb"] = proc.peak_rss_mb()
                        got = row["latency"].get("count", 0)
                        row["ok"] = got >= rate * a.latency_seconds
                        if not row["ok"]:
                            row["error"] = (f"{got} outcomes read for "
                                            f"{rate * a.latency_seconds} commands offered")
                    except Exception as e:  # recorded, and the run is void
                        row["ok"] = False
                        row["error"] = str(e)
                    proc.stop()
                    self.record("latency", row)
                    shutil.rmtree(os.path.join(self.work, "state", run), ignore_errors=True)

    # -- workload 4: recovery --------------------------------------------------
    def recovery(self):
        a = self.args
        self.reset_results("recovery")
        log("preloading", a.recovery_keys, "CreateOrder commands")
        gen, _ = kbench("gen", "recovery", "--bootstrap", self.bootstrap, "--topic",
                        "bench.recovery.commands", "--orders", a.recovery_keys)
        log("preloaded", gen)
        for system in self.systems(["kcqrs", "kstreams"]):
            run = f"rc-{system[:2]}"
            state_dir = os.path.join(self.work, "state", run)
            events, rejections = f"{run}.orders.events", f"{run}.orders.rejections"

            def start():
                if system == "kcqrs":
                    return self.start_kcqrs(run, "orders", {
                        "bench.orders.commands": "bench.recovery.commands",
                        "bench.orders.events": events,
                        "bench.orders.rejections": rejections}, "eos", state_dir=state_dir)
                return self.start_kstreams(run, "orders", "eos", "bench.recovery.commands",
                                           state_dir=state_dir)

            proc = start()
            loaded = self.throughput_run_keep(proc, run, ["bench.recovery.commands", events])
            self.record("recovery", {"system": system, "phase": "load", **loaded})
            for rnd in range(1, a.runs + 1):
                # Commands keep arriving while the engine dies.
                trickle = subprocess.Popen(
                    [KBENCH, "offer", "--bootstrap", self.bootstrap, "--topic",
                     "bench.recovery.commands", "--rate", "1000", "--seconds", "4",
                     "--prefix", f"K{rnd}{system[:1]}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(2.0)
                proc.stop(sig=signal.SIGKILL)
                trickle.wait()
                proc = start()
                row = {"system": system, "phase": "restart", "round": rnd}
                try:
                    ready_s, detail = self.wait_ready(proc, system, timeout=600)
                    row["ready_s"] = ready_s
                    if system == "kcqrs":
                        row["restored"] = sum(t.get("restored", 0) for t in detail["tasks"])
                    else:
                        m = re.findall(r"^KRESTORED (\d+)", proc.output(), re.M)
                        row["restored"] = sum(int(x) for x in m)
                    row["peak_rss_mb"] = proc.peak_rss_mb()
                    row["ok"] = True
                except Exception as e:
                    row["ok"] = False
                    row["error"] = str(e)
                self.record("recovery", row)
                time.sleep(3.0)  # let it settle before the next kill
            proc.stop()
            shutil.rmtree(state_dir, ignore_errors=True)

    # -- workload 5: failover (failover.py) ----------------------------------------
    def failover(self):
        Failover(self, kbench, KBENCH, free_port, log).all()

    def throughput_run_keep(self, proc, group, topics):
        done, rc = kbench("wait-done", "--bootstrap", self.bootstrap, "--group", group,
                          "--topics", ",".join(topics), "--timeout", self.args.timeout,
                          "--poll-ms", 50, check=False, timeout=self.args.timeout + 60)
        return {"ok": rc == 0, "done": done, "cpu_s": proc.cpu_seconds(),
                "peak_rss_mb": proc.peak_rss_mb()}

    def systems(self, default):
        return [s for s in default if s in self.args.systems]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default="stateless,orders,latency,recovery,failover")
    p.add_argument("--systems", default="kcqrs,kstreams,pipe")
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
    p.add_argument("--seed", type=int, default=1, help="of the order of systems in a round")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "work"))
    p.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "results"))
    p.add_argument("--keep-broker", action="store_true")
    args = p.parse_args()
    args.systems = args.systems.split(",")
    args.rates = [int(r) for r in args.rates.split(",")]
    for path in (KCQRS, KBENCH, PIPE):
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} is missing: run make bench-tools")
    if "kstreams" in args.systems and not os.path.exists(JAR):
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
