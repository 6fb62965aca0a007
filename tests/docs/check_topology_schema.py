#!/usr/bin/python3
"""Checks docs/topology.schema.json against the example topologies.

Every example must validate, and a few broken variants must not, so that the
schema editors use stays true to what `kcqrs validate` accepts.
Usage: check_topology_schema.py SCHEMA EXAMPLE...
"""
import copy
import json
import re
import sys

import jsonschema
import yaml


class Yaml12Loader(yaml.SafeLoader):
    """Reads booleans as YAML 1.2 (and yaml-cpp, and editors) do: only true
    and false. PyYAML's YAML 1.1 would read a process manager's `on:` key,
    and values such as `no` or `off`, as booleans."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))


def main():
    schema = json.load(open(sys.argv[1]))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    failures = 0
    checked = 0
    for path in sys.argv[2:]:
        doc = yaml.load(open(path), Loader=Yaml12Loader)
        errors = list(validator.iter_errors(doc))
        for e in errors:
            print(f"{path}: {'/'.join(map(str, e.path))}: {e.message}")
        failures += len(errors)
        checked += 1
        broken = {
            "a misspelt key": lambda d: d["application"].update({"comit_interval_ms": 5}),
            "an unknown guarantee": lambda d: d["application"].update({"guarantee": "maybe"}),
            "an aggregate without commands": lambda d: [a.pop("commands") for a in d.get("aggregates", {}).values()],
            "a kcqrs-owned librdkafka property": lambda d: d["kafka"].update({"properties": {"group.id": "x"}}),
            "http.tls without key_file": lambda d: d.setdefault("http", {}).update(
                {"tls": {"cert_file": "a.crt"}}),
            "an unknown http.tls.client_auth": lambda d: d.setdefault("http", {}).update(
                {"tls": {"cert_file": "a.crt", "key_file": "a.key", "client_auth": "yes"}}),
        }
        good = copy.deepcopy(doc)
        good.setdefault("http", {}).update({"query_token": "${Q}", "tls": {
            "cert_file": "a.crt", "key_file": "a.key", "ca_file": "ca.crt", "client_auth": "required"}})
        for e in validator.iter_errors(good):
            print(f"{path} with http.tls: {'/'.join(map(str, e.path))}: {e.message}")
            failures += 1
        if doc.get("transforms"):
            broken["a transform without 'to'"] = lambda d: [t.pop("to") for t in d["transforms"].values()]
        if doc.get("process_managers"):
            def first_send(d):
                for pm in d["process_managers"].values():
                    for reactions in pm["on"].values():
                        for r in reactions if isinstance(reactions, list) else [reactions]:
                            if r.get("send"):
                                return r["send"][0]
                return None

            def first_reaction(d):
                pm = next(iter(d["process_managers"].values()))
                reactions = next(iter(pm["on"].values()))
                return reactions[0] if isinstance(reactions, list) else reactions

            if first_send(doc) is not None and "to" in first_send(doc):
                broken.update({
                    "a send with both 'to' and 'topic'":
                        lambda d: first_send(d).update({"topic": "t"}),
                    "a send to a topic without 'key'":
                        lambda d: (first_send(d).pop("to"), first_send(d).update({"topic": "t"})),
                })
            broken.update({
                "a reaction with 'lua' and 'send'":
                    lambda d: first_reaction(d).update({"lua": "return nil", "send": []}),
                "an unknown deadline": lambda d: first_reaction(d).update({"deadline": "later"}),
                "an unknown end": lambda d: first_reaction(d).update({"end": "done"}),
                "an unknown time": lambda d: [p.update({"time": "event_time"})
                                              for p in d["process_managers"].values()],
                "a deadline_ms of 0": lambda d: [p.update({"deadline_ms": 0})
                                                 for p in d["process_managers"].values()],
                "a process manager without 'id'": lambda d: [p.pop("id")
                                                            for p in d["process_managers"].values()],
            })
        if not doc.get("aggregates"):
            del broken["an aggregate without commands"]
        for what, change in broken.items():
            bad = copy.deepcopy(doc)
            change(bad)
            if validator.is_valid(bad):
                print(f"{path}: the schema accepts {what}")
                failures += 1
    print(f"topology schema: {checked} example(s) checked, {failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
