#!/usr/bin/python3
"""Checks docs/topology.schema.json against the example topologies.

Every example must validate, and a few broken variants must not, so that the
schema editors use stays true to what `kcqrs validate` accepts.
Usage: check_topology_schema.py SCHEMA EXAMPLE...
"""
import copy
import json
import sys

import jsonschema
import yaml


def main():
    schema = json.load(open(sys.argv[1]))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    failures = 0
    checked = 0
    for path in sys.argv[2:]:
        doc = yaml.safe_load(open(path))
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
        }
        if doc.get("transforms"):
            broken["a transform without 'to'"] = lambda d: [t.pop("to") for t in d["transforms"].values()]
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
