#!/usr/bin/python3
"""Checks deploy/compose.yaml and deploy/k8s/ against the code they deploy.

Neither Docker nor Kubernetes runs here, so what would only show at a user's
`docker compose up` or `kubectl apply` (a probe on a path the engine does not
serve, a Prometheus target on the wrong port, two instances on one state
directory, an advertised URL no other pod can resolve, a flag `kcqrs` does
not have) is checked by reading the files and the code side by side:

- the HTTP paths (probes, health checks, Prometheus' metrics_path, the pod's
  scrape annotations) are routes the engine registers (engine/serving/*.cc,
  `routes.Add("GET", "/healthz", ...)`);
- the ports agree: http.listen, the container port, probes, Services,
  Prometheus' targets, the advertised URL, the image's EXPOSE;
- each instance's application.state_dir lies on a volume of its own;
- the topology file each instance runs is mounted from a file that exists
  (compose) or a ConfigMap key (Kubernetes), and `kcqrs validate` accepts it
  with the instance's own --set overrides, when the binary is given;
- the command lines use only subcommands and options app/main.cc defines
  (and `kcqrs run --help` lists), and --set keys docs/topology.schema.json
  has;
- terminationGracePeriodSeconds covers the bounded steps of a clean stop, as
  the code bounds them.

Usage: check_deploy.py SOURCE_ROOT [KCQRS_BINARY]
       check_deploy.py --self-test SOURCE_ROOT [KCQRS_BINARY]
The self-test breaks a copy of deploy/ in one way at a time (a wrong probe
path, port, state volume, ...) and fails unless each is caught.
"""
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit

import yaml

# Written by the dashboards-and-alerts work of the same issue; they may be
# missing on a branch without it, but a reference to them must resolve
# once they exist.
OPTIONAL_FILES = {"grafana/kcqrs.json", "prometheus/alerts.yml"}


class Checker:
    def __init__(self, root, deploy, binary):
        self.root = root
        self.deploy = deploy
        self.binary = binary
        self.errors = []
        self.notes = []

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    # ---------------------------------------------------------------- the code

    def read(self, rel):
        with open(os.path.join(self.root, rel), encoding="utf-8") as f:
            return f.read()

    def load_code_facts(self):
        serving = os.path.join(self.root, "engine/serving")
        self.routes = set()
        for name in sorted(os.listdir(serving)):
            if name.endswith(".cc"):
                text = self.read(os.path.join("engine/serving", name))
                for m in re.finditer(r'\.Add\(\s*"([A-Z]+)"\s*,\s*"([^"]+)"', text):
                    self.routes.add((m.group(1), m.group(2)))
        if not self.routes:
            raise SystemExit("engine/serving/*.cc: found no routes.Add(\"GET\", \"/path\", ...); "
                             "the way routes are registered changed: update this check")
        self.get_paths = {p for (m, p) in self.routes if m == "GET"}

        main = self.read("app/main.cc")
        self.subcommands = {}
        for m in re.finditer(r'auto\*\s+(\w+)\s*=\s*app\.add_subcommand\(\s*"([\w-]+)"', main):
            self.subcommands[m.group(1)] = m.group(2)
        self.options = {name: set() for name in self.subcommands.values()}
        self.global_options = set()
        for m in re.finditer(r'(\w+)(->|\.)add_(?:option|flag)\(\s*"(--[\w-]+)', main):
            var, opt = m.group(1), m.group(3)
            if var == "app":
                self.global_options.add(opt)
            elif var in self.subcommands:
                self.options[self.subcommands[var]].add(opt)
        if "run" not in self.options or "--set" not in self.options["run"]:
            raise SystemExit("app/main.cc: found no `run` subcommand with --set; the command "
                             "line changed: update this check")

        self.schema = yaml.safe_load(self.read("docs/topology.schema.json"))

        dockerfile = self.read("Dockerfile")
        expose = re.findall(r"^EXPOSE\s+(\d+)", dockerfile, re.M)
        self.image_port = int(expose[-1]) if expose else None
        user = re.findall(r"^USER\s+(\d+)", dockerfile, re.M)
        self.image_uid = int(user[-1]) if user else None
        # What the runtime stage installs (after the last FROM).
        self.runtime_stage = dockerfile[dockerfile.rfind("\nFROM "):]
        # Directories the image creates for its user: a named volume mounted
        # on one starts with its owner; anywhere else it starts root's.
        self.owned_dirs = set(re.findall(r"install -d -o \S+(?: -g \S+)?(?: -m \d+)? (/\S+)",
                                         self.runtime_stage))
        entry = re.findall(r"^ENTRYPOINT\s+(\[.*\])", dockerfile, re.M)
        self.entrypoint = yaml.safe_load(entry[-1]) if entry else None

        # What a clean stop may take, step by step, as the code bounds it
        # (docs/architecture.md, "Process start", step 5).
        self.stop_bounds = {}
        m = re.search(r"kLeaveTimeout\{(\d+)\}", self.read("engine/runtime/stream_thread.cc"))
        if m:
            self.stop_bounds["leaving the group (kLeaveTimeout)"] = int(m.group(1)) / 1000
        m = re.search(r'"transaction\.timeout\.ms",\s*"(\d+)"',
                      self.read("engine/runtime/client_configs.cc"))
        if m:
            self.stop_bounds["the last commit (transaction.timeout.ms)"] = int(m.group(1)) / 1000
        m = re.search(r"value = std::nullopt\}\);\s*Status flushed = producer\.Flush\("
                      r"std::chrono::seconds\((\d+)\)", self.read("engine/runtime/instance_metadata.cc"))
        if m:
            self.stop_bounds["the instance's tombstone (Flush)"] = int(m.group(1))
        if len(self.stop_bounds) != 3:
            raise SystemExit("engine/runtime: could not find the bounds of a clean stop "
                             f"(found {sorted(self.stop_bounds)}); the code changed: update this "
                             "check and terminationGracePeriodSeconds")

    def schema_has(self, dotted):
        node = self.schema
        for part in dotted.split("."):
            while "$ref" in node:
                node = self.schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
            props = node.get("properties", {})
            if part in props:
                node = props[part]
            elif isinstance(node.get("additionalProperties"), dict):
                node = node["additionalProperties"]
            else:
                return False
        return True

    # ------------------------------------------------------------ an instance

    def check_command(self, where, args):
        """Checks `[--log-level L] run FILE --set k=v ...`, as CLI11 parses it
        (app/main.cc): the program's own options before the subcommand, the
        subcommand's after it. Returns (file, {key: value}) or None."""
        args = list(args)
        while args and args[0].startswith("--"):
            name, eq, _ = args.pop(0).partition("=")
            if name not in self.global_options:
                self.error(where, f"`kcqrs` has no option {name} before the subcommand "
                           f"(app/main.cc has {sorted(self.global_options)})")
            elif not eq and args:
                args.pop(0)
        if not args or args[0] != "run":
            self.error(where, f"expected the command `run FILE ...`, found {args}")
            return None
        file, sets, i = None, {}, 1
        while i < len(args):
            a = args[i]
            if a.startswith("--"):
                name, eq, value = a.partition("=")
                if name not in self.options["run"]:
                    hint = (" (it goes before `run`)" if name in self.global_options else "")
                    self.error(where, f"`kcqrs run` has no option {name}{hint} (app/main.cc has "
                               f"{sorted(self.options['run'])})")
                if name == "--set":
                    if not eq:
                        i += 1
                        value = args[i] if i < len(args) else ""
                    key, _, v = value.partition("=")
                    if not self.schema_has(key):
                        self.error(where, f"--set {key}: no such key in docs/topology.schema.json")
                    sets[key] = v
            elif file is None:
                file = a
            else:
                self.error(where, f"unexpected argument {a!r} after the topology file {file}")
            i += 1
        if file is None:
            self.error(where, "`run` without a topology file")
            return None
        return file, sets

    def listen_port(self, where, sets):
        listen = sets.get("http.listen")
        if listen is None:
            self.error(where, "http.listen is not set: the default 127.0.0.1:8080 serves no "
                       "other container or pod (--set http.listen=0.0.0.0:8080)")
            return None
        host, _, port = listen.rpartition(":")
        if host not in ("0.0.0.0", "[::]"):
            self.error(where, f"http.listen={listen}: other containers reach only 0.0.0.0 or [::]")
        if not port.isdigit():
            self.error(where, f"http.listen={listen}: expected host:port")
            return None
        if self.image_port is not None and int(port) != self.image_port:
            self.error(where, f"http.listen port {port} differs from the image's EXPOSE "
                       f"{self.image_port} (Dockerfile)")
        return int(port)

    def advertised(self, where, sets, port):
        url = sets.get("http.advertised_url")
        if url is None:
            self.error(where, "http.advertised_url is not set: the others would forward to this "
                       "container's hostname, which they may not resolve")
            return None
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or u.path not in ("", "/"):
            self.error(where, f"http.advertised_url={url}: expected http://host:port, no path")
        if u.port != port:
            self.error(where, f"http.advertised_url={url}: port {u.port}, but the instance "
                       f"listens on {port} (http.listen)")
        # Not u.hostname: that lowercases $(POD_NAME).
        return u.netloc.rpartition(":")[0] if u.port else u.netloc

    def validate(self, where, topology_path, sets):
        if not self.binary:
            return
        cmd = [self.binary, "validate", topology_path]
        for k, v in sets.items():
            cmd += ["--set", f"{k}={v}"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            self.error(where, f"`{' '.join(cmd)}` exited {r.returncode}:\n{r.stderr.strip()}")

    def check_path(self, where, path):
        if path not in self.get_paths:
            self.error(where, f"GET {path} is not a route the engine serves (engine/serving: "
                       f"{sorted(self.get_paths)})")

    def check_state_dir(self, where, sets, mounts):
        """mounts: {mount path: volume name}; returns the volume holding
        application.state_dir."""
        state_dir = sets.get("application.state_dir")
        if state_dir is None:
            self.error(where, "application.state_dir is not set: the topology's default is not on "
                       "a volume of the instance")
            return None
        for path, volume in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
            if state_dir == path or state_dir.startswith(path.rstrip("/") + "/"):
                return volume
        self.error(where, f"application.state_dir={state_dir} is on no volume (mounts: "
                   f"{sorted(mounts)}): the stores would be lost with the container")
        return None

    # ---------------------------------------------------------------- compose

    def check_compose(self):
        path = os.path.join(self.deploy, "compose.yaml")
        where = "deploy/compose.yaml"
        compose = yaml.safe_load(open(path, encoding="utf-8"))
        services = compose.get("services", {})
        volumes = compose.get("volumes") or {}
        kcqrs = {n: s for n, s in services.items()
                 if isinstance(s.get("build"), dict) or s.get("image", "").startswith("kcqrs")}
        if len(kcqrs) < 2:
            self.error(where, f"expected two kcqrs instances, found {sorted(kcqrs)}")

        # Every bind mount names a file that exists (beside deploy/).
        mounts_by_service = {}
        for name, s in services.items():
            mounts = {}
            for v in s.get("volumes", []):
                source, target = v.split(":")[:2]
                mounts[target] = source
                if source.startswith("."):
                    rel = os.path.normpath(source)
                    if not os.path.exists(os.path.join(self.deploy, source)):
                        if rel in OPTIONAL_FILES:
                            self.notes.append(f"{where}: {name} mounts {source}, not there yet "
                                              "(written by the dashboards-and-alerts work)")
                        else:
                            self.error(f"{where}: {name}", f"mounts {source}, which does not exist")
                elif source not in volumes:
                    self.error(f"{where}: {name}", f"volume {source} is not declared under volumes:")
            mounts_by_service[name] = mounts

        kafka = services.get("kafka")
        bootstrap = None
        if not kafka:
            self.error(where, "no kafka service")
        else:
            self.check_kafka(f"{where}: kafka", kafka)
            env = kafka.get("environment", {})
            for listener in str(env.get("KAFKA_ADVERTISED_LISTENERS", "")).split(","):
                lname, _, addr = listener.partition("://")
                if lname == env.get("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"):
                    bootstrap = addr

        state_volumes = {}
        ports = {}
        for name, s in sorted(kcqrs.items()):
            w = f"{where}: {name}"
            if self.entrypoint != ["kcqrs"]:
                self.error(w, f"the image's ENTRYPOINT is {self.entrypoint}, not [\"kcqrs\"]: the "
                           "command would not be kcqrs' arguments")
            build = s.get("build", {})
            context = os.path.join(self.deploy, build.get("context", "."))
            if not os.path.exists(os.path.join(context, build.get("dockerfile", "Dockerfile"))):
                self.error(w, f"no Dockerfile in the build context {build.get('context')}")
            parsed = self.check_command(w, s.get("command", []))
            if not parsed:
                continue
            file, sets = parsed
            port = self.listen_port(w, sets)
            ports[name] = port
            for mapping in s.get("ports", []):
                inside = str(mapping).rsplit(":", 1)[-1].split("/")[0]
                if port and inside != str(port):
                    self.error(w, f"publishes {mapping}, but the instance listens on {port}")
            host = self.advertised(w, sets, port)
            if host is not None and host not in (name, s.get("hostname")):
                self.error(w, f"http.advertised_url host {host} is not this service's name "
                           f"({name}) on the compose network")
            if bootstrap and sets.get("kafka.bootstrap_servers") != bootstrap:
                self.error(w, f"kafka.bootstrap_servers={sets.get('kafka.bootstrap_servers')}, but "
                           f"the broker advertises {bootstrap}")
            mounts = mounts_by_service[name]
            named = {t: src for t, src in mounts.items() if not src.startswith(".")}
            volume = self.check_state_dir(w, sets, named)
            target = next((t for t, v in named.items() if v == volume), None)
            if volume and self.image_uid and target not in self.owned_dirs:
                self.error(w, f"the state volume is mounted at {target}, which the image does not "
                           f"create for its user (Dockerfile: {sorted(self.owned_dirs)}): Docker "
                           "would create it owned by root, and kcqrs could not write its state")
            if volume:
                if volume in state_volumes:
                    self.error(w, f"shares the state volume {volume} with {state_volumes[volume]}: "
                               "each instance needs its own application.state_dir")
                state_volumes[volume] = name
            if file not in mounts:
                self.error(w, f"runs {file}, which no volume mounts")
            else:
                source = os.path.join(self.deploy, mounts[file])
                if os.path.isfile(source):
                    self.validate(w, source, sets)
            hc = s.get("healthcheck", {}).get("test", [])
            if hc[:1] == ["CMD"] and len(hc) > 1 and \
                    not re.search(r"\b%s\b" % re.escape(hc[1]), self.runtime_stage):
                self.error(f"{w}: healthcheck", f"runs {hc[1]}, which the image's runtime stage "
                           "does not install (Dockerfile)")
            urls = [a for a in hc if isinstance(a, str) and a.startswith("http")]
            if not urls:
                self.error(w, f"healthcheck {hc}: expected a URL of the engine's health endpoints")
            for url in urls:
                u = urlsplit(url)
                self.check_path(f"{w}: healthcheck", u.path)
                if u.port != port:
                    self.error(f"{w}: healthcheck", f"{url}: port {u.port}, but the instance "
                               f"listens on {port}")
            grace = s.get("stop_grace_period")
            self.check_grace(w + ": stop_grace_period", parse_duration(grace) if grace else 10)

        self.check_prometheus(where, services, ports, mounts_by_service.get("prometheus", {}))
        self.check_grafana(where, services, mounts_by_service.get("grafana", {}))

    def check_kafka(self, where, kafka):
        image = kafka.get("image", "")
        if not re.fullmatch(r"apache/kafka:4\.\d+\.\d+", image):
            self.error(where, f"image {image}: expected Apache Kafka's image pinned to a 4.x.y tag")
        # The broker the tests run (scripts/kafka's default), once that is a 4.x.
        m = re.search(r"<kafka\.version>\s*([\d.]+)\s*</kafka\.version>",
                      self.read("scripts/kafka-dist/pom.xml"))
        if m and m.group(1).startswith("4.") and image != f"apache/kafka:{m.group(1)}":
            self.error(where, f"image {image}, but the tests run Kafka {m.group(1)} "
                       "(scripts/kafka-dist/pom.xml): ship the version that is tested")
        env = kafka.get("environment", {})
        cluster_id = str(env.get("CLUSTER_ID", ""))
        try:
            ok = len(base64.urlsafe_b64decode(cluster_id + "==")) == 16 and len(cluster_id) == 22
        except ValueError:
            ok = False
        if not ok:
            self.error(where, f"CLUSTER_ID {cluster_id!r}: Kafka needs 16 bytes in base64url "
                       "(22 characters, kafka-storage.sh random-uuid)")
        for key in ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"):
            if str(env.get(key)) != "1":
                self.error(where, f"{key}={env.get(key)}: one broker holds one replica; exactly-once "
                           "needs the transaction and offsets topics")

    def check_prometheus(self, where, services, ports, mounts):
        if "prometheus" not in services:
            self.error(where, "no prometheus service")
            return
        target = next((t for t, src in mounts.items() if src.endswith("prometheus.yml")), None)
        path = os.path.join(self.deploy, "prometheus/prometheus.yml")
        command = services["prometheus"].get("command", [])
        if target is None or f"--config.file={target}" not in command:
            self.error(f"{where}: prometheus", "does not load deploy/prometheus/prometheus.yml "
                       "(mounted and named by --config.file)")
        w = "deploy/prometheus/prometheus.yml"
        config = yaml.safe_load(open(path, encoding="utf-8"))
        for rule in config.get("rule_files", []):
            if rule not in mounts:
                self.error(w, f"rule file {rule} is not mounted into the prometheus service")
        alerts = os.path.join(self.deploy, "prometheus/alerts.yml")
        if os.path.isfile(alerts):
            text = open(alerts, encoding="utf-8").read()
            yaml.safe_load(text)
            names = [j.get("job_name") for j in config.get("scrape_configs", [])]
            for op, sel in set(re.findall(r'\bjob\s*(=~|=)\s*"([^"]*)"', text)):
                if not any(n and (re.fullmatch(sel, n) if op == "=~" else n == sel) for n in names):
                    self.error(w, f"no scrape job matches job{op}\"{sel}\", which "
                               f"deploy/prometheus/alerts.yml selects (jobs: {names})")
        want = {f"{n}:{p}" for n, p in ports.items() if p}
        jobs = [j for j in config.get("scrape_configs", []) if j.get("job_name") == "kcqrs"]
        if not jobs:
            self.error(w, "no scrape job `kcqrs`")
            return
        job = jobs[0]
        self.check_path(f"{w}: metrics_path", job.get("metrics_path", "/metrics"))
        got = {t for sc in job.get("static_configs", []) for t in sc.get("targets", [])}
        if got != want:
            self.error(w, f"scrapes {sorted(got)}, but the instances listen at {sorted(want)}")

    def check_grafana(self, where, services, mounts):
        if "grafana" not in services:
            self.error(where, "no grafana service")
            return
        prov = next((t for t, src in mounts.items() if src.rstrip("/").endswith("provisioning")), None)
        if prov != "/etc/grafana/provisioning":
            self.error(f"{where}: grafana", "deploy/grafana/provisioning is not mounted at "
                       "/etc/grafana/provisioning")
        dash = next((t for t, src in mounts.items() if src.endswith("kcqrs.json")), None)
        w = "deploy/grafana/provisioning/dashboards/kcqrs.yml"
        providers = yaml.safe_load(open(os.path.join(self.deploy, "grafana/provisioning/dashboards/"
                                                     "kcqrs.yml"), encoding="utf-8"))["providers"]
        paths = {p.get("options", {}).get("path") for p in providers}
        if dash is None or os.path.dirname(dash) not in paths:
            self.error(w, f"the providers read {sorted(paths)}, but compose mounts the dashboard "
                       f"at {dash}")
        w = "deploy/grafana/provisioning/datasources/prometheus.yml"
        sources = yaml.safe_load(open(os.path.join(self.deploy, "grafana/provisioning/datasources/"
                                                   "prometheus.yml"), encoding="utf-8"))
        self.check_dashboard({ds.get("uid") for ds in sources.get("datasources", [])})
        for ds in sources.get("datasources", []):
            u = urlsplit(ds.get("url", ""))
            ports = services["prometheus"].get("ports", [])
            if u.hostname != "prometheus" or not any(str(p).endswith(f":{u.port}") for p in ports):
                self.error(w, f"data source {ds.get('url')}: not the prometheus service's port "
                           f"({ports})")

    def check_dashboard(self, uids):
        """A provisioned dashboard names data sources by a uid that is
        provisioned, or by a variable; Grafana's file provisioning does not
        fill the `__inputs` of a dashboard exported for sharing."""
        path = os.path.join(self.deploy, "grafana/kcqrs.json")
        if not os.path.isfile(path):
            return
        import json
        w = "deploy/grafana/kcqrs.json"
        try:
            dash = json.load(open(path, encoding="utf-8"))
        except ValueError as e:
            self.error(w, f"not JSON: {e}")
            return
        if dash.get("__inputs"):
            self.error(w, "has __inputs (exported for sharing): a provisioned dashboard gets no "
                       "import dialog to fill them; name the data source by a variable or uid")
        bad = set()

        def walk(node):
            if isinstance(node, dict):
                ds = node.get("datasource")
                if isinstance(ds, dict) and ds.get("uid") and not str(ds["uid"]).startswith("$") \
                        and ds["uid"] not in uids and ds.get("type") not in ("datasource", "grafana"):
                    bad.add(ds["uid"])
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(dash)
        if bad:
            self.error(w, f"names data source uid(s) {sorted(bad)}, but provisioning gives "
                       f"{sorted(uids)}")

    # ------------------------------------------------------------- Kubernetes

    def check_k8s(self):
        kdir = os.path.join(self.deploy, "k8s")
        docs = []
        for name in sorted(os.listdir(kdir)):
            if not name.endswith((".yaml", ".yml")) or name == "kustomization.yaml":
                continue
            for doc in yaml.safe_load_all(open(os.path.join(kdir, name), encoding="utf-8")):
                if doc:
                    for key in ("apiVersion", "kind", "metadata"):
                        if key not in doc:
                            self.error(f"deploy/k8s/{name}", f"a document without {key}")
                    docs.append((name, doc))
        kust = yaml.safe_load(open(os.path.join(kdir, "kustomization.yaml"), encoding="utf-8"))
        listed = set(kust.get("resources", []))
        for name in {n for n, _ in docs} ^ listed:
            self.error("deploy/k8s/kustomization.yaml",
                       f"{name}: " + ("not listed in resources" if name not in listed
                                      else "listed but not there"))

        def kind(k):
            return [(n, d) for n, d in docs if d.get("kind") == k]

        sets_ = kind("StatefulSet")
        if len(sets_) != 1:
            self.error("deploy/k8s", f"expected one StatefulSet, found {len(sets_)}")
            return
        fname, sts = sets_[0]
        w = f"deploy/k8s/{fname}"
        spec = sts["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"].get("labels", {})
        if not matches(spec["selector"].get("matchLabels", {}), labels):
            self.error(w, "the selector does not match the pod template's labels")
        containers = [c for c in pod["containers"] if c.get("image", "").startswith("kcqrs")]
        if len(containers) != 1:
            self.error(w, "expected one container of the kcqrs image")
            return
        c = containers[0]
        parsed = self.check_command(w, c.get("args", []))
        if not parsed:
            return
        file, sets = parsed
        env = {e["name"]: e for e in c.get("env", [])}
        for key, value in sets.items():
            for var in re.findall(r"\$\((\w+)\)", value):
                if var not in env:
                    self.error(w, f"--set {key}={value}: $({var}) is not in the container's env, "
                               "Kubernetes would pass it literally")
        port = self.listen_port(w, sets)
        if port is None:
            return
        named_ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        if port not in named_ports.values():
            self.error(w, f"the container declares ports {named_ports}, not {port} (http.listen)")

        def resolve(p):
            return named_ports.get(p) if isinstance(p, str) else p

        # Probes: the engine's own endpoints, on its port, each for what it means.
        probes = {}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = c.get(probe, {}).get("httpGet")
            if not get:
                self.error(w, f"no {probe} with httpGet")
                continue
            probes[probe] = get.get("path")
            self.check_path(f"{w}: {probe}", get.get("path"))
            if resolve(get.get("port")) != port:
                self.error(f"{w}: {probe}", f"port {get.get('port')} is not the HTTP port {port}")
        if probes.get("readinessProbe") not in (None, "/readyz"):
            self.error(f"{w}: readinessProbe", f"{probes['readinessProbe']}: readiness is GET "
                       "/readyz (restored, running, Kafka reachable)")
        for probe in ("startupProbe", "livenessProbe"):
            if probes.get(probe) == "/readyz":
                self.error(f"{w}: {probe}", "GET /readyz says 503 while state is restoring or "
                           "Kafka is away: as a liveness probe it would restart a healthy "
                           "instance mid-restore; use /healthz")

        ann = spec["template"]["metadata"].get("annotations", {})
        if "prometheus.io/path" in ann:
            self.check_path(f"{w}: prometheus.io/path", ann["prometheus.io/path"])
        if "prometheus.io/port" in ann and int(ann["prometheus.io/port"]) != port:
            self.error(w, f"prometheus.io/port {ann['prometheus.io/port']} is not the HTTP port "
                       f"{port}")

        # State on a volume per pod.
        claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        volume = self.check_state_dir(w, sets, mounts)
        if volume and volume not in claims:
            self.error(w, f"application.state_dir is on volume {volume}, not on a "
                       f"volumeClaimTemplate ({sorted(claims)}): pods would lose or share it")

        # The advertised URL is the pod's name under the headless Service.
        svcs = {d["metadata"]["name"]: d for _, d in kind("Service")}
        headless = svcs.get(spec.get("serviceName"))
        if headless is None:
            self.error(w, f"serviceName {spec.get('serviceName')}: no such Service")
        else:
            hs = headless["spec"]
            if hs.get("clusterIP") != "None":
                self.error(w, f"Service {spec['serviceName']} is not headless (clusterIP: None): "
                           "no per-pod DNS names")
            if not hs.get("publishNotReadyAddresses"):
                self.error(w, f"Service {spec['serviceName']}: publishNotReadyAddresses is off, so "
                           "an instance still restoring has no DNS name the others can forward to")
        host = self.advertised(w, sets, port)
        pod_name = env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if host is not None:
            first = host.split(".")
            if first[0] != "$(POD_NAME)" or pod_name != "metadata.name" or \
                    len(first) < 2 or first[1] != spec.get("serviceName"):
                self.error(w, f"http.advertised_url host {host}: expected $(POD_NAME)."
                           f"{spec.get('serviceName')}[.$(POD_NAMESPACE).svc...], with POD_NAME "
                           "from metadata.name")

        for name, svc in svcs.items():
            sw = f"Service {name}"
            if not matches(svc["spec"].get("selector", {}), labels):
                self.error(w, f"{sw}: its selector does not select the StatefulSet's pods")
            for p in svc["spec"].get("ports", []):
                if resolve(p.get("targetPort", p.get("port"))) != port:
                    self.error(w, f"{sw}: targetPort {p.get('targetPort')} is not the HTTP port {port}")

        pdbs = kind("PodDisruptionBudget")
        if not pdbs:
            self.error("deploy/k8s", "no PodDisruptionBudget")
        for n, pdb in pdbs:
            ps = pdb["spec"]
            if not matches(ps.get("selector", {}).get("matchLabels", {}), labels):
                self.error(f"deploy/k8s/{n}", "its selector does not select the StatefulSet's pods")
            replicas = spec.get("replicas", 1)
            if "minAvailable" in ps and int(ps["minAvailable"]) >= replicas:
                self.error(f"deploy/k8s/{n}", f"minAvailable {ps['minAvailable']} of {replicas} "
                           "replicas blocks every node drain")

        self.check_grace(f"{w}: terminationGracePeriodSeconds",
                         pod.get("terminationGracePeriodSeconds", 30))
        sc = pod.get("securityContext", {})
        if not sc.get("runAsNonRoot"):
            self.error(w, "securityContext.runAsNonRoot is not true")
        if self.image_uid is not None and sc.get("runAsUser") not in (None, self.image_uid):
            self.error(w, f"runAsUser {sc.get('runAsUser')} is not the image's user "
                       f"{self.image_uid}, which owns /var/lib/kcqrs")
        if "fsGroup" not in sc:
            self.error(w, "no securityContext.fsGroup: the state volume may not be writable")
        res = c.get("resources", {})
        for k in ("requests", "limits"):
            if not res.get(k, {}).get("memory"):
                self.error(w, f"no resources.{k}.memory")

        # The topology: a ConfigMap key mounted where `run` reads it.
        topo_mount = os.path.dirname(file)
        vol_name = mounts.get(topo_mount)
        vol = next((v for v in pod.get("volumes", []) if v["name"] == vol_name), None)
        if vol is None or "configMap" not in vol:
            self.error(w, f"runs {file}, but no ConfigMap is mounted at {topo_mount}")
            return
        cms = {d["metadata"]["name"]: (n, d) for n, d in kind("ConfigMap")}
        cm_name = vol["configMap"]["name"]
        if cm_name not in cms:
            self.error(w, f"mounts ConfigMap {cm_name}, which is not in deploy/k8s")
            return
        cn, cm = cms[cm_name]
        key = os.path.basename(file)
        for item in vol["configMap"].get("items", []):
            if item.get("path") == key:
                key = item["key"]
        text = cm.get("data", {}).get(key)
        if text is None:
            self.error(f"deploy/k8s/{cn}", f"no key {key}, which {w} runs as {file}")
            return
        example = self.read("examples/orders/topology.yaml")
        if text != example:
            self.error(f"deploy/k8s/{cn}", "data.topology.yaml is not examples/orders/topology.yaml "
                       "verbatim: copy it again (deploy/compose-and-k8s.md)")
        if self.binary:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, key)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
                values = {"POD_NAME": f"{sts['metadata']['name']}-0", "POD_NAMESPACE": "default"}
                for name, e in env.items():
                    if "value" in e:
                        values[name] = e["value"]
                concrete = {k: re.sub(r"\$\((\w+)\)", lambda m: values.get(m.group(1), m.group(0)), v)
                            for k, v in sets.items()}
                self.validate(f"{w} (with ConfigMap {cm_name})", path, concrete)

    def check_grace(self, where, seconds):
        need = sum(self.stop_bounds.values())
        if seconds < need:
            steps = ", ".join(f"{k} {v:g} s" for k, v in self.stop_bounds.items())
            self.error(where, f"{seconds} s is less than a clean stop may take: {steps}")

    def check_help(self):
        if not self.binary:
            return
        r = subprocess.run([self.binary, "run", "--help"], capture_output=True, text=True,
                           timeout=30)
        for opt in sorted(self.options["run"]):
            if opt not in r.stdout:
                self.error(self.binary, f"`kcqrs run --help` does not list {opt}, which "
                           "app/main.cc defines: this check reads the wrong source")

    def run(self):
        self.load_code_facts()
        self.check_help()
        self.check_compose()
        self.check_k8s()
        return self.errors


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def parse_duration(text):
    m = re.fullmatch(r"(\d+)(s|m)", str(text))
    if not m:
        return 0
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


# A copy of deploy/ broken in one way each, and what the check must say.
MUTATIONS = [
    ("k8s/statefulset.yaml", "path: /readyz", "path: /ready", "GET /ready is not a route"),
    ("k8s/statefulset.yaml", "path: /healthz\n              port: http\n            periodSeconds: 10",
     "path: /readyz\n              port: http\n            periodSeconds: 10",
     "as a liveness probe"),
    ("k8s/statefulset.yaml", "containerPort: 8080", "containerPort: 9090", "declares ports"),
    ("k8s/statefulset.yaml", "application.state_dir=/var/lib/kcqrs/state",
     "application.state_dir=/data/state", "is on no volume"),
    ("k8s/statefulset.yaml", "$(POD_NAME).kcqrs-headless", "$(POD_NAME).kcqrs",
     "http.advertised_url host"),
    ("k8s/statefulset.yaml", "terminationGracePeriodSeconds: 30",
     "terminationGracePeriodSeconds: 10", "less than a clean stop may take"),
    ("k8s/statefulset.yaml", "http.listen=0.0.0.0:8080", "http.listen=127.0.0.1:8080",
     "other containers reach only"),
    ("k8s/statefulset.yaml", "- --set\n            - http.listen", "- --sett\n            - http.listen",
     "has no option --sett"),
    ("k8s/statefulset.yaml", "- --set\n            - http.listen",
     "- --log-level=debug\n            - --set\n            - http.listen",
     "has no option --log-level (it goes before `run`)"),
    ("k8s/statefulset.yaml", "http.advertised_url=http://$(POD_NAME)",
     "http.advertised_uri=http://$(POD_NAME)", "no such key"),
    ("k8s/services.yaml", "publishNotReadyAddresses: true", "publishNotReadyAddresses: false",
     "publishNotReadyAddresses is off"),
    ("k8s/services.yaml", "targetPort: http\n---", "targetPort: 8081\n---", "targetPort 8081"),
    ("k8s/pdb.yaml", "maxUnavailable: 1", "minAvailable: 2", "blocks every node drain"),
    ("k8s/topology-configmap.yaml", "partitions: 3}", "partitions: 4}", "verbatim"),
    # A known key with a value `kcqrs validate` refuses (with the binary only).
    ("compose.yaml", "- application.state_dir=/var/lib/kcqrs/state\n    ports:\n      - \"8082",
     "- application.state_dir=/var/lib/kcqrs/state\n      - --set\n      - application.threads=many"
     "\n    ports:\n      - \"8082", "kcqrs-2: `"),
    ("compose.yaml", "http://127.0.0.1:8080/readyz", "http://127.0.0.1:8080/ready",
     "GET /ready is not a route"),
    ("compose.yaml", "http://127.0.0.1:8080/readyz", "http://127.0.0.1:8081/readyz",
     "but the instance listens on 8080"),
    ("compose.yaml", '"8082:8080"', '"8082:8082"', "publishes 8082:8082"),
    ("compose.yaml", '["CMD", "curl",', '["CMD", "wget",', "runs wget, which the image"),
    ("compose.yaml", "kcqrs-2-state:/var/lib/kcqrs",
     "kcqrs-2-state:/var/lib", "the image does not create for its user"),
    ("compose.yaml", "kcqrs-2-state:/var/lib/kcqrs", "kcqrs-1-state:/var/lib/kcqrs",
     "shares the state volume"),
    ("compose.yaml", "http.advertised_url=http://kcqrs-2:8080", "http.advertised_url=http://kcqrs-1:8080",
     "is not this service's name"),
    ("compose.yaml", "../examples/orders/topology.yaml:/etc/kcqrs/topology.yaml:ro\n      - kcqrs-2",
     "../examples/orders/topolgy.yaml:/etc/kcqrs/topology.yaml:ro\n      - kcqrs-2",
     "kcqrs-2: mounts ../examples/orders/topolgy.yaml, which does not exist"),
    ("compose.yaml", "image: apache/kafka:4.", "image: apache/kafka:latest#", "pinned to a 4.x.y"),
    ("prometheus/prometheus.yml", "kcqrs-2:8080", "kcqrs-2:9100", "but the instances listen at"),
    ("prometheus/prometheus.yml", "metrics_path: /metrics", "metrics_path: /prometheus",
     "GET /prometheus is not a route"),
    ("grafana/provisioning/dashboards/kcqrs.yml", "path: /etc/grafana/dashboards",
     "path: /var/lib/grafana/dashboards", "the providers read"),
    # The files of the dashboards-and-alerts work, written here (old None)
    # wrong: a panel on a data source that is not provisioned, an alert on a
    # job that is not scraped.
    ("grafana/kcqrs.json", None,
     '{"panels": [{"datasource": {"type": "prometheus", "uid": "prom-1"}}]}',
     "names data source uid(s) ['prom-1']"),
    ("prometheus/alerts.yml", None,
     'groups: [{name: g, rules: [{alert: Down, expr: \'up{job="orders"} == 0\'}]}]',
     'no scrape job matches job="orders"'),
]


def broken_copy(root, tmp, rel=None, old=None, new=None):
    """A copy of deploy/ beside links to the rest of the source tree (the
    compose file's ../examples and build context), with `old` replaced by
    `new` in `rel`; None when `old` is not there."""
    for name in os.listdir(root):
        if name != "deploy":
            os.symlink(os.path.join(os.path.abspath(root), name), os.path.join(tmp, name))
    copy = os.path.join(tmp, "deploy")
    shutil.copytree(os.path.join(root, "deploy"), copy, symlinks=True)
    if rel and old is None:
        with open(os.path.join(copy, rel), "w", encoding="utf-8") as f:
            f.write(new)
    elif rel:
        path = os.path.join(copy, rel)
        text = open(path, encoding="utf-8").read()
        if old not in text:
            return None
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new, 1))
    return tmp


def self_test(root, binary):
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        base = Checker(broken_copy(root, tmp), os.path.join(tmp, "deploy"), None).run()
    if base:
        print("self-test: the unbroken copy of deploy/ fails:\n  " + "\n  ".join(base))
        return 1
    for rel, old, new, expected in MUTATIONS:
        with tempfile.TemporaryDirectory() as tmp:
            if not broken_copy(root, tmp, rel, old, new):
                print(f"self-test: {rel} no longer contains {old!r}: update MUTATIONS")
                failures += 1
                continue
            # Only a value of the wrong type needs `kcqrs validate` to tell;
            # the rest are caught by reading, and skip the binary for speed.
            needs = binary if expected.endswith("`") else None
            if needs is None and expected.endswith("`"):
                continue
            errors = Checker(tmp, os.path.join(tmp, "deploy"), needs).run()
            if not any(expected in e for e in errors):
                print(f"self-test: {rel}: {old!r} -> {new!r} was not caught as {expected!r}; "
                      f"errors: {errors}")
                failures += 1
    tried = sum(1 for m in MUTATIONS if binary or not m[3].endswith("`"))
    print(f"self-test: {tried - failures} of {tried} broken copies caught"
          + ("" if binary else " (without the kcqrs binary: its case not tried)"))
    return 1 if failures else 0


def main(argv):
    if argv[1:2] == ["--self-test"]:
        root = argv[2]
        binary = argv[3] if len(argv) > 3 else None
        return self_test(root, binary)
    root = argv[1]
    binary = argv[2] if len(argv) > 2 else None
    checker = Checker(root, os.path.join(root, "deploy"), binary)
    errors = checker.run()
    for note in checker.notes:
        print(f"note: {note}")
    for e in errors:
        print(e)
    if errors:
        print(f"{len(errors)} problem(s) in deploy/")
        return 1
    print("deploy/: compose.yaml, prometheus/, grafana/provisioning/ and k8s/ agree with the code"
          + (f" (and `{binary} validate`)" if binary else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
