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
