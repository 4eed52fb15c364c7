"""Every shared library the stack ships (the wheels' distributions and the paths `final` copies) resolves all its dependencies (ldd shows nothing 'not found')."""

from __future__ import annotations

import json
from typing import Any

LIST_LIBRARIES = """
import importlib.metadata as md, json, sys
paths = []
for name in sys.argv[1:]:
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    paths += [str(dist.locate_file(f)) for f in (dist.files or []) if str(f).endswith(".so") or ".so." in str(f)]
print(json.dumps(paths))
"""


def test_no_missing_shared_library_dependencies(host: Any, expected: dict[str, Any]) -> None:
    dists = expected["distributions"]
    out = host.run("python3 -c %s " + " ".join(["%s"] * len(dists)), LIST_LIBRARIES, *dists)
    assert out.rc == 0, out.stderr
    libraries = json.loads(out.stdout)
    copied = [path for entry in expected["components"].values() for path in entry.get("copies", [])]
    native = host.run("find " + " ".join(["%s"] * (len(copied) + 1)) + " -name '*.so*' -type f",
                      *copied, "/usr/lib/x86_64-linux-gnu/libibverbs").stdout.split()
    libraries += native
    assert libraries, "found no shared library to check"
    missing = {}
    for lib in libraries:
        result = host.run("ldd %s", lib)
        lost = [line.strip() for line in result.stdout.splitlines() if "not found" in line]
        if lost:
            missing[lib] = lost
    assert not missing, "unresolved dependencies: " + json.dumps(missing, indent=1)
