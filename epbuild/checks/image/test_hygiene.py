"""Nothing of the build reaches the final image: no source trees, .git folders, build folders or compiler caches.
Anything the base image already carried is not ours to judge, so it is left out. (ccache itself is a build
package of `base`, so only its caches count, not the tool.)"""

from __future__ import annotations

import subprocess
from typing import Any

FIND = (
    "find / -xdev \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o "
    "\\( -name .git -o -name CMakeCache.txt -o -name CMakeFiles -o -name build.ninja -o -name .ninja_log "
    "-o -path '*/.cache/ccache' -o -name .ccache -o -name __pycache__ -prune -false "
    "-o -path /src -o -path /wheels -o -path /install -o -path '/tmp/*' \\) -print"
)


def leftovers(run: Any) -> set[str]:
    return {line for line in run(FIND).splitlines() if line}


def test_no_build_leftovers(host: Any, expected: dict[str, Any]) -> None:
    found = leftovers(lambda cmd: host.run(cmd).stdout)
    if found:
        base = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh",
                               expected["base_image"], "-c", FIND], capture_output=True, text=True)
        found -= leftovers(lambda _cmd: base.stdout)
    assert not found, "build leftovers in the final image: " + ", ".join(sorted(found)[:20])


# The flags word of a .pyc header (PEP 552): 0b11 is hash-based and checked against the source at import.
PYC_FLAGS = """
import importlib.metadata as md, json, pathlib, struct
found, other = 0, []
for dist in md.distributions():
    if "file:///install/" not in (dist.read_text("direct_url.json") or ""):
        continue  # not one of the wheels the final stage installed
    for file in dist.files or []:
        if file.suffix == ".pyc":
            found += 1
            flags = struct.unpack("<I", pathlib.Path(dist.locate_file(file)).read_bytes()[4:8])[0]
            if flags != 0b11:
                other.append(f"{file} ({flags:#b})")
print(json.dumps([found, other[:10]]))
"""


def test_compiled_python_is_checked_hash(host: Any) -> None:
    """Hash-based .pyc files (no install time in them, so the layer repeats), checked ones: an edited .py is
    honoured, never shadowed by its old bytecode (templates/stages/final.Dockerfile.j2 says why not unchecked)."""
    import json

    result = host.run("python3 -c %s", PYC_FLAGS)
    assert result.rc == 0, result.stderr
    found, other = json.loads(result.stdout)
    assert found, "the installed wheels have no compiled Python"
    assert not other, "not checked-hash: " + ", ".join(other)
