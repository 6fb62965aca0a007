#!/usr/bin/env python3
"""Checkouts per second and per CPU-second: examples/shop on one broker.

The process-manager benchmark of issue 13. It starts a broker (scripts/kafka,
unless --bootstrap names one), runs `kcqrs run examples/shop/topology.yaml`
with its own application id and topics (--set), preloads stock and funds,
waits until they are in, then offers N PlaceOrders at once and waits until
every order is final (the order aggregate's accepted ConfirmOrder and
CancelOrder on /metrics reach N) and every checkout has ended (the process
manager's completed + compensated counter reaches N): a checkout normally
ends on its order's last event, but one that times out ends first and
cancels its order after. Each checkout is four aggregate commands
(PlaceOrder, ReserveStock, Charge, ConfirmOrder), four events through the
checkout's repartition topic and three projections.

    checkouts/s      = N / (wall time from the first PlaceOrder until both are N)
    checkouts/CPU-s  = N / (the kcqrs process's utime + stime over that time)

Then it reads the committed order events back (kcat, read_committed) and
checks that every order ended exactly once, confirmed or cancelled, so a
fast wrong run is not a result. Run on an otherwise idle machine (it
measures CPU and wall time); a build with -DCMAKE_BUILD_TYPE=Release:

    KCQRS_BENCH_BIN=build/rel/bin bench/shop/run.py --orders 50000

--orders 2000 checks that it works in a few seconds. The result is one JSON
line on stdout (and in --out when given).
"""
import argparse
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("KCQRS_BENCH_BIN", os.path.join(ROOT, "build", "bin"))
KCQRS = os.path.join(BIN, "kcqrs")
TOPOLOGY = os.path.join(ROOT, "examples", "shop", "topology.yaml")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def proc_cpu_seconds(pid):
    """utime + stime of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cents(c):
    return f"{c // 100}.{c % 100:02d}"


def produce(bootstrap, topic, lines):
    """key|value lines, partitioned as Java clients and kcqrs do."""
    out = subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-K", "|",
                          "-X", "partitioner=murmur2_random"],
                         input="".join(f"{k}|{v}\n" for k, v in lines), text=True,
                         capture_output=True)
    if out.returncode != 0:
        raise RuntimeError(f"kcat -P {topic}: {out.stderr}")


def consume(bootstrap, topic):
    """Every committed value of `topic`, from the start to its end now."""
    out = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-e", "-q",
                          "-X", "isolation.level=read_committed", "-f", "%s\n"],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"kcat -C {topic}: {out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def ended_checkouts(http):
    """Checkout instances ended so far (completed or compensated), from
    kcqrs_process_manager_ended_total{process_manager="checkout",outcome=...}."""
    with urllib.request.urlopen(http + "/metrics", timeout=2) as r:
        text = r.read().decode()
    return sum(float(m.group(1)) for m in re.finditer(
        r'^kcqrs_process_manager_ended_total\{[^}]*process_manager="checkout"[^}]*\} (\S+)$',
        text, re.M))


def final_orders(http):
    """Orders decided final so far: the order aggregate's accepted
    ConfirmOrder and CancelOrder commands (a checkout ends when it sends the
    last of them, before the order aggregate has decided it)."""
    with urllib.request.urlopen(http + "/metrics", timeout=2) as r:
        text = r.read().decode()
    total = 0.0
    for m in re.finditer(r'^kcqrs_commands_accepted_total\{([^}]*)\} (\S+)$', text, re.M):
        labels = m.group(1)
        if 'aggregate="order"' in labels and ('type="ConfirmOrder"' in labels
                                               or 'type="CancelOrder"' in labels):
            total += float(m.group(2))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=20000)
    ap.add_argument("--products", type=int, default=100)
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--short", type=float, default=0.05,
                    help="share of orders that find no stock or no funds (the compensating paths)")
    ap.add_argument("--deadline-ms", type=int, default=30000)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bootstrap", help="an existing broker (else one is started in --work)")
    ap.add_argument("--work", default="/tmp/kcqrs-bench-shop")
    ap.add_argument("--out", help="append the result line to this file")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()
    # A SIGTERM (timeout, CI) still stops kcqrs and the broker (finally:).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    os.makedirs(args.work, exist_ok=True)
    rng = random.Random(args.seed)
    started_broker = False
    broker_pids = []
    bootstrap = args.bootstrap
    if not bootstrap:
        kafka_dir = os.path.join(args.work, "kafka")
        log("starting the broker in", kafka_dir)
        out = subprocess.run([os.path.join(ROOT, "scripts", "kafka"), "start", "--dir", kafka_dir,
                              "--replace"], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit("scripts/kafka start failed: " + out.stderr)
        started_broker = True
        with open(os.path.join(kafka_dir, "bootstrap")) as f:
            bootstrap = f.read().strip()
        for path in sorted(glob.glob(os.path.join(kafka_dir, "node-*", "pid"))):
            with open(path) as f:
                broker_pids.append(int(f.read().strip()))

    def broker_cpu():
        try:
            return sum(proc_cpu_seconds(p) for p in broker_pids) if broker_pids else None
        except OSError:
            return None

    app = f"shopbench-{int(time.time())}-{os.getpid()}"
    t = {k: f"{app}.{k}" for k in ("orders", "inventory", "payments")}
    state_dir = os.path.join(args.work, "state", app)
    port = free_port()
    http = f"http://127.0.0.1:{port}"
    sets = [
        f"application.id={app}", f"application.state_dir={state_dir}",
        f"application.threads={args.threads}",
        f"kafka.bootstrap_servers={bootstrap}", f"http.listen=127.0.0.1:{port}",
        "topics={" + ", ".join(f"{t[k]}.commands: {{partitions: {args.partitions}}}" for k in t) + "}",
        f"process_managers.checkout.deadline_ms={args.deadline_ms}",
        f"process_managers.checkout.event_topics=[{t['orders']}.events, {t['inventory']}.events, "
        f"{t['payments']}.events]",
        f"projections.orders.event_topics=[{t['orders']}.events]",
        f"projections.stock.event_topics=[{t['inventory']}.events]",
        f"projections.wallets.event_topics=[{t['payments']}.events]",
    ]
    for agg, kind in (("order", "orders"), ("stock", "inventory"), ("wallet", "payments")):
        sets += [f"aggregates.{agg}.command_topics=[{t[kind]}.commands]",
                 f"aggregates.{agg}.event_topic={t[kind]}.events",
                 f"aggregates.{agg}.rejection_topic={t[kind]}.rejections"]
    argv = [KCQRS, "--log-level", "warn", "run", TOPOLOGY]
    for s in sets:
        argv += ["--set", s]
    log_path = os.path.join(args.work, app + ".log")
    log("starting", KCQRS, "log", log_path)
    with open(log_path, "w") as lf:
        proc = subprocess.Popen(argv, stdout=lf, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"kcqrs exited ({proc.returncode}): "
                                   + open(log_path).read()[-3000:])
            try:
                with urllib.request.urlopen(http + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except Exception:  # not listening yet, or 503 while starting
                pass
            if time.time() > deadline:
                raise RuntimeError("kcqrs not ready after 300 s")
            time.sleep(0.05)

        # The mix: orders of 1 to 3 items at 1.00 to 9.99; stock and funds
        # for all but about --short of them (those run out of stock or money).
        orders, need_q, need_c = [], {}, {}
        for i in range(args.orders):
            o = {"type": "PlaceOrder", "orderId": f"o-{i}",
                 "customerId": f"c-{rng.randrange(args.customers)}",
                 "product": f"p-{rng.randrange(args.products)}",
                 "quantity": rng.randint(1, 3), "unitPrice": None, "commandId": f"place-{i}"}
            price = rng.randint(100, 999)
            orders.append((o, price))
            # A short order is left out of the stock (half of them) or the
            # funds (the other half) that are added: some order of its
            # product or customer ends out of stock or declined.
            short = rng.random() < args.short
            if not (short and i % 2 == 0):
                need_q[o["product"]] = need_q.get(o["product"], 0) + o["quantity"]
            if not (short and i % 2 == 1):
                need_c[o["customerId"]] = need_c.get(o["customerId"], 0) + o["quantity"] * price
        stock = [(p, json.dumps({"type": "AddStock", "product": p, "quantity": q,
                                 "commandId": "add-" + p}))
                 for p, q in sorted(need_q.items())]
        funds = [(c, '{"type":"AddFunds","customerId":"%s","amount":%s,"commandId":"fund-%s"}'
                  % (c, cents(v), c)) for c, v in sorted(need_c.items())]
        produce(bootstrap, t["inventory"] + ".commands", stock)
        produce(bootstrap, t["payments"] + ".commands", funds)
        log(f"preloading {len(stock)} products and {len(funds)} wallets")
        while (len(consume(bootstrap, t["inventory"] + ".events")) < len(stock)
               or len(consume(bootstrap, t["payments"] + ".events")) < len(funds)):
            if proc.poll() is not None:
                raise RuntimeError("kcqrs exited while preloading")
            time.sleep(0.5)

        lines = []
        for o, price in orders:
            text = json.dumps(o).replace('"unitPrice": null', f'"unitPrice": {cents(price)}')
            lines.append((o["orderId"], text))
        base = final_orders(http)
        base_ended = ended_checkouts(http)
        log(f"offering {len(lines)} PlaceOrders")
        cpu0, bcpu0, t0 = proc_cpu_seconds(proc.pid), broker_cpu(), time.time()
        produce(bootstrap, t["orders"] + ".commands", lines)
        offered = time.time() - t0
        deadline = t0 + args.timeout
        ended = 0
        while True:
            # Done when every order is final and every checkout has ended:
            # the shop's checkout ends on the order's last event, but one
            # that times out ends first and cancels the order after.
            ended = min(final_orders(http) - base, ended_checkouts(http) - base_ended)
            if ended >= args.orders:
                break
            if proc.poll() is not None:
                raise RuntimeError("kcqrs exited during the run: " + open(log_path).read()[-3000:])
            if time.time() > deadline:
                raise RuntimeError(f"only {ended:.0f} of {args.orders} checkouts ended in time")
            time.sleep(0.05)
        wall = time.time() - t0
        cpu = proc_cpu_seconds(proc.pid) - cpu0
        bcpu = broker_cpu()
        rss_kb = int(re.search(r"VmHWM:\s+(\d+)", open(f"/proc/{proc.pid}/status").read()).group(1))

        # The check: every order ended exactly once, on the committed events
        # (the last decisions may wait for their commit: a few tries).
        for _ in range(30):
            events = consume(bootstrap, t["orders"] + ".events")
            if sum(e["type"] in ("OrderConfirmed", "OrderCancelled") for e in events) >= args.orders:
                break
            time.sleep(1)
        final = {}
        confirmed = cancelled = 0
        reasons = {}
        for e in events:
            if e["type"] in ("OrderConfirmed", "OrderCancelled"):
                final[e["orderId"]] = final.get(e["orderId"], 0) + 1
                if e["type"] == "OrderConfirmed":
                    confirmed += 1
                else:
                    cancelled += 1
                    reasons[e.get("reason")] = reasons.get(e.get("reason"), 0) + 1
        bad = [o for o, n in final.items() if n != 1]
        missing = args.orders - len(final)
        checkouts_ended = ended_checkouts(http) - base_ended

        ok = not bad and missing == 0 and checkouts_ended >= args.orders
        result = {
            "workload": "shop", "orders": args.orders, "products": args.products,
            "customers": args.customers, "partitions": args.partitions,
            "threads": args.threads, "deadline_ms": args.deadline_ms,
            "offer_s": round(offered, 3), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "checkouts_per_s": round(args.orders / wall, 1),
            "checkouts_per_cpu_s": round(args.orders / cpu, 1) if cpu > 0 else None,
            "broker_cpu_s": round(bcpu - bcpu0, 3) if bcpu is not None and bcpu0 is not None
            else None,
            "peak_rss_mb": round(rss_kb / 1024, 1),
            "confirmed": confirmed, "cancelled": cancelled, "reasons": reasons,
            "checkouts_ended": checkouts_ended,
            "checked": ok, "binary": KCQRS,
        }
        line = json.dumps(result, sort_keys=True)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
        if not ok:
            log(f"CHECK FAILED: {missing} orders never ended, {len(bad)} ended more than once "
                f"(e.g. {bad[:5]})")
            return 1
        return 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(state_dir, ignore_errors=True)
        if started_broker:
            subprocess.run([os.path.join(ROOT, "scripts", "kafka"), "stop", "--dir",
                            os.path.join(args.work, "kafka")], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
