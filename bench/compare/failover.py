"""Workload 5, failover (bench/WORKLOADS.md §5): two instances of one
application share the orders workload's keys; one of them, the owner of half
of them, is killed with SIGKILL while commands flow, and the survivor is
asked for a key of every partition until each answers again.

Measured per run, from the kill: `answerable_s`, when every partition's key
answered 200 on the survivor (from any copy the engine serves: kcqrs falls
back to a standby copy on its own, the Kafka Streams peer reads
`enableStaleStores()` when the active task is not here); `active_s`, when
every one answered from an active task (writes are taken again, read-your-
writes holds); `gaps`, answers other than 200 after a partition's first 200;
the records the survivor restored, also as a share of a full restore (the
offsets of the changelog partitions of the dead instance's tasks at the
kill). A run is void unless every probe key answered before the kill and,
afterwards, the survivor's orders store holds exactly every order created
(the preloaded ones and those of the commands offered around the kill).

Used by run.py (`--workloads failover`); one fresh application (id, input
topic, state) per run, so that every run starts from the same place.
"""

import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

PARTITIONS = 4
# The stores of the Kafka Streams peer's sub-topologies (bench/kstreams/README.md);
# kcqrs says its own through GET /topology.
KSTREAMS_STORES = {"0": ["orders"], "1": ["product_totals"], "2": ["order-aggregates"]}
OFFERED_RATE, OFFERED_SECONDS = 1000, 4
SETTLE_S = 3.0


def murmur2(data):
    """Kafka's default partitioner hash (Utils.murmur2), as an unsigned int."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail, extra = length - length % 4, length % 4
    if extra == 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_of(key):
    return (murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS


def order_id(k):
    """The order of the k-th recovery command (bench/tools/workloads.h)."""
    return f"o-R{k:07d}"


class Prober:
    """One kept-alive HTTP connection to the survivor."""

    def __init__(self, base_url):
        u = urllib.parse.urlparse(base_url)
        self.host, self.port = u.hostname, u.port
        self.conn = None

    def get(self, path, timeout=2.0):
        """(status, body, answered from a standby copy); status 0 when the
        request itself failed."""
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                body = r.read()
                standby = (r.getheader("Kcqrs-Standby") or "").lower() == "true"
                return r.status, body, standby
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    return 0, b"", False
        return 0, b"", False


class Failover:
    def __init__(self, bench, kbench, kbench_path, free_port, log):
        self.b = bench
        self.kbench = kbench
        self.kbench_path = kbench_path
        self.free_port = free_port
        self.log = log
        self.keys_per_partition = None

    # -- the keys --------------------------------------------------------------
    def count_keys(self, keys):
        """Orders per partition of the preloaded keys (the dead instance's
        share of them is what it held)."""
        counts = [0] * PARTITIONS
        for k in range(keys):
            counts[partition_of(order_id(k))] += 1
        return counts

    def probe_keys(self):
        """The first preloaded order of each partition."""
        found = {}
        k = 0
        while len(found) < PARTITIONS:
            found.setdefault(partition_of(order_id(k)), order_id(k))
            k += 1
        return found

    # -- the systems -------------------------------------------------------------
    def start(self, system, app, name, topic, standbys):
        b = self.b
        state_dir = os.path.join(b.work, "state", name)
        if system == "kcqrs":
            return b.start_kcqrs(app, "orders", {
                "bench.orders.commands": topic,
                "bench.orders.events": f"{app}.orders.events",
                "bench.orders.rejections": f"{app}.orders.rejections"}, "eos",
                state_dir=state_dir, name=name, extra_env={
                    "KCQRS_STANDBY_REPLICAS": str(standbys)})
        port = self.free_port()
        proc = b.start_kstreams(app, "orders", "eos", topic, state_dir=state_dir, name=name,
                                extra=["--instance-id", name, "--standby-replicas",
                                       str(standbys), "--http-port", str(port)])
        proc.http = f"http://127.0.0.1:{port}"
        return proc

    def tasks(self, system, procs):
        """{instance index: (active tasks, standby tasks)} as each says now,
        or None while some instance has not said yet."""
        out = {}
        if system == "kcqrs":
            try:
                with urllib.request.urlopen(procs[0].http + "/instances", timeout=2) as r:
                    listed = json.loads(r.read())["instances"]
            except Exception:  # not up yet
                return None
            by_url = {i.get("url", "").rstrip("/"): i for i in listed}
            for n, p in enumerate(procs):
                i = by_url.get(p.http)
                if i is None:
                    return None
                out[n] = (sorted(i.get("active_tasks", [])), sorted(i.get("standby_tasks", [])))
            return out
        for n, p in enumerate(procs):
            lines = re.findall(r"^KTASKS active=(\S*) standby=(\S*)", p.output(), re.M)
            if not lines:
                return None
            a, s = lines[-1]
            out[n] = (sorted(filter(None, a.split(","))), sorted(filter(None, s.split(","))))
        return out

    def changelogs(self, system, app, proc):
        """{sub-topology id: [the changelog topics of its stores]}."""
        if system != "kcqrs":
            return {sub: [f"{app}-{s}-changelog" for s in stores]
                    for sub, stores in KSTREAMS_STORES.items()}
        with urllib.request.urlopen(proc.http + "/topology", timeout=5) as r:
            doc = json.loads(r.read())
        changelog = {s["name"]: s["changelog"] for s in doc["stores"]}
        return {str(s["id"]): [changelog[n] for n in s["stores"]] for s in doc["subtopologies"]}

    def full_restore(self, system, app, proc, tasks):
        """Offsets a restore of `tasks` from nothing would read."""
        changelogs = self.changelogs(system, app, proc)
        topics = sorted({t for ts in changelogs.values() for t in ts})
        offsets, _ = self.kbench("offsets", "--bootstrap", self.b.bootstrap, "--topics",
                                 ",".join(topics))
        total = 0
        for task in tasks:
            sub, part = task.split("_")
            for topic in changelogs.get(sub, []):
                w = offsets["topics"][topic][int(part)]
                total += w["high"] - w["low"]
        return total

    def orders_created(self, orders):
        """How many of `orders` orders of the orders workload are created
        (some CreateOrders are invalid by design, WORKLOADS.md §2)."""
        path = os.path.join(self.b.work, "offered-expected.json")
        self.kbench("expect", "orders", "--orders", orders, "--out", path)
        with open(path) as f:
            return json.load(f)["stores"]["orders"]["keys"]

    def wait_balanced(self, system, procs, standbys, timeout=180):
        """Until both instances run active tasks (and standbys, when asked
        for) and every task is active somewhere."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            for p in procs:
                if not p.alive():
                    raise RuntimeError(f"{system} exited: {p.output()[-2000:]}")
            last = self.tasks(system, procs)
            if last and all(a for a, _ in last.values()) and \
                    (standbys == 0 or all(s for _, s in last.values())):
                active = [t for a, _ in last.values() for t in a]
                if len(active) == len(set(active)) and all(self.ready(system, p) for p in procs):
                    return last
            time.sleep(0.2)
        raise RuntimeError(f"{system}: instances not balanced after {timeout} s: {last}")

    def ready(self, system, proc):
        if system == "kcqrs":
            try:
                with urllib.request.urlopen(proc.http + "/readyz", timeout=1) as r:
                    return r.status == 200
            except Exception:
                return False
        states = re.findall(r"^KSTATE (\S+)", proc.output(), re.M)
        return bool(states) and states[-1] == "RUNNING"

    def lookup_path(self, system, key):
        q = "" if system == "kcqrs" else "?stale=true"
        return f"/stores/orders/keys/{urllib.parse.quote(key)}{q}"

    def count_orders(self, system, proc):
        """Every key of the survivor's orders store, counted."""
        prober = Prober(proc.http)
        if system == "kstreams":
            status, body, _ = prober.get("/stores/orders/count", timeout=120)
            if status != 200:
                raise RuntimeError(f"count: {status} {body[:300]}")
            return json.loads(body)["count"]
        n, cursor = 0, None
        while True:
            path = "/stores/orders/keys?limit=1000"
            if cursor:
                path += "&cursor=" + urllib.parse.quote(cursor)
            status, body, _ = prober.get(path, timeout=30)
            if status != 200:
                raise RuntimeError(f"scan: {status} {body[:300]}")
            page = json.loads(body)
            n += len(page["items"])
            cursor = page.get("next")
            if not cursor:
                return n

    def restored(self, system, proc):
        if system == "kcqrs":
            with urllib.request.urlopen(proc.http + "/stats", timeout=5) as r:
                return json.loads(r.read())["totals"]["restored_records"]
        m = re.findall(r"^KRESTORED (\d+)", proc.output(), re.M)
        return int(m[-1]) if m else 0

    # -- one run -------------------------------------------------------------------
    def run(self, system, standbys, rnd, keys, row):
        b, a = self.b, self.b.args
        app = f"fo-{system[:2]}-s{standbys}-r{rnd}"
        topic = f"{app}.commands"
        self.kbench("create-topic", "--bootstrap", b.bootstrap, "--topic", topic,
                    "--partitions", PARTITIONS)
        procs = [self.start(system, app, f"{app}-{n}", topic, standbys) for n in "ab"]
        try:
            self.wait_balanced(system, procs, standbys)
            gen, _ = self.kbench("gen", "recovery", "--bootstrap", b.bootstrap, "--topic", topic,
                                 "--orders", keys)
            done, rc = self.kbench("wait-done", "--bootstrap", b.bootstrap, "--group", app,
                                   "--topics", f"{topic},{app}.orders.events", "--timeout",
                                   a.timeout, "--poll-ms", 100, check=False,
                                   timeout=a.timeout + 60)
            if rc != 0:
                raise RuntimeError(f"the load did not finish: {done}")
            holds = self.wait_balanced(system, procs, standbys, timeout=60)
            victim, survivor = procs
            victim_parts = {int(t.split("_")[1]) for t in holds[0][0]}
            row.update({"victim_active": holds[0][0], "survivor_standby": holds[1][1],
                        "victim_keys": sum(self.keys_per_partition[p] for p in victim_parts)})
            restored_before = self.restored(system, survivor)

            # Every key answers before the kill, from one instance or the other
            # (the Kafka Streams peer does not forward; kcqrs does).
            probes = self.probe_keys()
            prober = Prober(survivor.http)
            for p, key in probes.items():
                answers = [Prober(i.http).get(self.lookup_path(system, key)) for i in procs]
                if not any(status == 200 for status, _, _ in answers):
                    raise RuntimeError(f"before the kill, {key} (partition {p}) answered "
                                       f"{[(s, body[:200]) for s, body, _ in answers]}")

            # Commands keep arriving while the owner dies (orders of their own).
            trickle = subprocess.Popen(
                [self.kbench_path, "offer", "--bootstrap", b.bootstrap, "--topic", topic,
                 "--rate", str(OFFERED_RATE), "--seconds", str(OFFERED_SECONDS), "--prefix", f"F{rnd}"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(2.0)
            full = self.full_restore(system, app, survivor, holds[0][0])
            killed = time.time()
            victim.stop(sig=signal.SIGKILL)
            answerable, active, gaps, gap_s, gap_samples = {}, {}, 0, 0.0, []
            failing_since = {}
            deadline = killed + a.failover_timeout
            # Every partition is asked until all have answered from an active
            # task and SETTLE_S more: the survivor's own partitions too, which a
            # rebalance may also move (an eager one revokes them all).
            settled = None
            while time.time() < deadline and (settled is None or time.time() < settled):
                for p, key in probes.items():
                    status, body, standby = prober.get(self.lookup_path(system, key))
                    now = time.time() - killed
                    if status == 200:
                        answerable.setdefault(p, now)
                        if not standby:
                            active.setdefault(p, now)
                        if p in failing_since:
                            gap_s = max(gap_s, now - failing_since.pop(p))
                    elif p in answerable:
                        gaps += 1
                        failing_since.setdefault(p, now)
                        if len(gap_samples) < 3:
                            gap_samples.append(f"{now:.3f} s p{p}: {status} {body[:160]!r}")
                if settled is None and len(active) == PARTITIONS:
                    settled = time.time() + SETTLE_S
                time.sleep(0.005)
            offered = trickle.communicate()[0]
            if len(active) < PARTITIONS:
                raise RuntimeError(f"partitions {sorted(set(probes) - set(active))} not "
                                   f"answered from an active task {a.failover_timeout} s "
                                   f"after the kill")
            row.update({"answerable_s": round(max(answerable.values()), 3),
                        "active_s": round(max(active.values()), 3), "gaps": gaps,
                        "longest_gap_s": round(gap_s, 3), "gap_samples": gap_samples})

            done, rc = self.kbench("wait-done", "--bootstrap", b.bootstrap, "--group", app,
                                   "--topics", f"{topic},{app}.orders.events", "--timeout",
                                   a.timeout, "--poll-ms", 100, check=False,
                                   timeout=a.timeout + 60)
            if rc != 0:
                raise RuntimeError(f"the commands offered around the kill were not all "
                                   f"processed: {done}")
            restored = self.restored(system, survivor) - restored_before
            row.update({"restored": restored, "full_restore": full,
                        "restored_pct": round(100.0 * restored / full, 3) if full else None})
            sent = json.loads(offered.strip().splitlines()[-1])["sent"]
            if sent % 1000:  # offer sends blocks of 100 orders x 10 commands
                raise RuntimeError(f"offer sent {sent} commands, not whole blocks")
            expected = keys + self.orders_created(sent // 10)
            counted = self.count_orders(system, survivor)
            row.update({"orders_expected": expected, "orders_counted": counted})
            if counted != expected:
                raise RuntimeError(f"the survivor's orders store holds {counted} orders, "
                                   f"not {expected}")
            row["ok"] = True
        finally:
            for p in procs:
                p.stop()
            for n in "ab":
                shutil.rmtree(os.path.join(b.work, "state", f"{app}-{n}"), ignore_errors=True)

    def all(self):
        b, a = self.b, self.b.args
        b.reset_results("failover")
        keys = a.failover_keys
        self.log("counting the preloaded keys per partition")
        self.keys_per_partition = self.count_keys(keys)
        combos = [(s, n) for s in b.systems(["kcqrs", "kstreams"]) for n in (1, 0)]
        rng = random.Random(a.seed)
        for rnd in range(1, a.runs + 1):
            order = combos[:]
            rng.shuffle(order)
            for system, standbys in order:
                row = {"system": system, "standbys": standbys, "round": rnd, "keys": keys,
                       "ok": False}
                started = time.time()
                try:
                    self.run(system, standbys, rnd, keys, row)
                except Exception as e:  # the run is void; say why and go on
                    row["error"] = str(e)[-3000:]
                row["run_s"] = round(time.time() - started, 1)
                b.record("failover", row)
