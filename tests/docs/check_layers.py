#!/usr/bin/python3
"""The module layering of docs/architecture.md, checked on every #include.

CMake enforces the layering for symbols (a layer links only the layers below
it); this check also catches an include of a header-only part of a higher
layer, and a third-party header outside the one module that owns it.
Usage: check_layers.py <repository root>. Prints every violation with
file:line and exits 1 if there is any.
"""
import os
import re
import sys

# Module -> the modules its files may include ("kcqrs" is include/kcqrs/).
BASE = {"kcqrs", "util", "json", "decimal"}
ALLOWED = {
    "util": {"util"},
    "json": {"json"},
    "decimal": {"kcqrs", "json", "decimal"},
    "config": BASE | {"config", "topology"},
    "topology": BASE | {"topology"},
    "state": BASE | {"state"},
    "engine/kafka": BASE | {"engine/kafka"},
    "engine/http": BASE | {"engine/http"},
    "engine/lua": BASE | {"engine/lua"},
    "engine/metrics": BASE | {"engine/metrics"},
    "engine/codec": BASE | {"engine/codec"},
    "engine/graph": BASE | {"engine/graph", "engine/codec", "topology"},
    "engine/processors": BASE | {"engine/processors", "engine/graph", "engine/codec",
                                 "engine/lua", "engine/metrics", "topology"},
    "engine/serving": BASE | {"engine/serving", "engine/graph", "engine/codec",
                              "engine/http", "engine/kafka", "engine/metrics", "topology"},
    "engine/runtime": BASE | {"engine/runtime", "engine/processors", "engine/serving",
                              "engine/graph", "engine/codec", "engine/kafka", "engine/http",
                              "engine/lua", "engine/metrics", "topology", "state"},
    "engine/testing": BASE | {"engine/testing", "engine/runtime", "engine/processors",
                              "engine/graph", "engine/codec", "engine/lua", "topology", "state"},
    "app": BASE | {"app", "config", "topology", "engine/runtime", "engine/graph",
                   "engine/codec", "engine/http"},
}

# Third-party header prefix -> the only module that may include it.
THIRD_PARTY = {
    "librdkafka/": "engine/kafka",
    "boost/": "engine/http",
    "openssl/": "engine/http",
    "lua.hpp": "engine/lua",
    "lua.h": "engine/lua",
    "lauxlib.h": "engine/lua",
    "lualib.h": "engine/lua",
    "prometheus/": "engine/metrics",
    "rocksdb/": "state",
    "yaml-cpp/": "config",
    "CLI/": "app",
    "mpdecimal.h": "decimal",
    "nlohmann/": "json",
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def module_of(path):
    """The module a repository path belongs to ("engine/graph", "state", ...)."""
    parts = path.split("/")
    if parts[0] == "include":
        return "kcqrs"
    if parts[0] == "engine" and len(parts) > 2:
        return "engine/" + parts[1]
    return parts[0]


def main(root):
    violations = []
    for dirpath, _, files in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir.split(os.sep)[0] not in ("engine", "config", "topology", "state", "util", "app",
                                                "json", "decimal"):
            continue
        for name in sorted(files):
            if not name.endswith((".h", ".cc")):
                continue
            rel = os.path.join(rel_dir, name).replace(os.sep, "/")
            mod = module_of(rel)
            if mod not in ALLOWED:
                violations.append(f"{rel}: module {mod} has no place in the layering")
                continue
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = m.group(2)
                    for prefix, owner in THIRD_PARTY.items():
                        if (target == prefix or target.startswith(prefix)) and mod != owner:
                            violations.append(f"{rel}:{lineno}: includes <{target}>, "
                                              f"which only {owner} may include")
                    if m.group(1) != '"':
                        continue
                    dep = module_of(target)
                    if dep not in ALLOWED[mod]:
                        violations.append(f"{rel}:{lineno}: {mod} includes {target} "
                                          f"({dep} is not below {mod})")
    for v in violations:
        print(v)
    if violations:
        return 1
    print("layering: every include follows docs/architecture.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
