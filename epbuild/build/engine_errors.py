"""Tells the engine's own failures from the build's.

A bake can fail because the engine did: dockerd's socket dropped mid-solve, a gRPC call to BuildKit timed out,
or a cache ref was held by another solve. Such an error says nothing about the Dockerfile, and building the cell
again usually succeeds; a build's own failure (a RUN step's exit code, a missing file) fails the same way again.
Only the first kind is worth one more build.
"""

from __future__ import annotations

import re

# Each is the engine's wording, as BuildKit or the docker client prints it at the end of an ERROR line.
ENGINE_FAILURES = tuple(re.compile(p) for p in (
    # The docker client lost dockerd's socket mid-solve (stop 16's CI: "write: error reading from server: read
    # unix /var/run/docker.sock->@: read: connection reset by peer: unavailable").
    r"connection reset by peer",
    r"error reading from server",
    r"transport is closing",
    # A gRPC call into BuildKit ran past its deadline (seen on a loaded 2-core machine).
    r"\bDeadlineExceeded\b",
    # Another solve held a cache ref this one needed: BuildKit's "ref <id> locked".
    r"\bref \S+ locked\b",
))

# A step's own failure: BuildKit reports the process's exit code. Whatever else the line says (a RUN command may
# print anything), this is the build's failure.
BUILD_FAILURE = re.compile(r"did not complete successfully: exit code: \d+")


def engine_failure(message: str) -> bool:
    """True when `message` (a failed vertex's error, or bake's final ERROR line) is the engine's own failure."""
    if not message or BUILD_FAILURE.search(message):
        return False
    return any(p.search(message) for p in ENGINE_FAILURES)
