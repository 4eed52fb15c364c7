"""How long a network or test command may run before it is stopped, so that a stalled registry, git server,
BuildKit or image check never makes a run wait forever. Each limit is read from its environment variable, so a
site with a slow link raises it without a code change."""

from __future__ import annotations

import os
from dataclasses import dataclass

from epbuild.util.errors import EpbuildError


@dataclass(frozen=True)
class Limit:
    env: str
    default: float
    what: str

    def seconds(self) -> float:
        raw = os.environ.get(self.env, "").strip()
        if not raw:
            return self.default
        try:
            value = float(raw)
        except ValueError:
            value = 0.0
        if value <= 0:
            raise EpbuildError(f"{self.env}={raw!r}: {self.what} must be a positive number of seconds")
        return value


PUSH = Limit("EPBUILD_PUSH_TIMEOUT", 3 * 3600, "the time limit of one `docker push`")
PULL = Limit("EPBUILD_PULL_TIMEOUT", 3 * 3600, "the time limit of one `docker pull`")
REGISTRY = Limit("EPBUILD_REGISTRY_TIMEOUT", 300, "the time limit of a registry query, login or tag move")
IMAGE_TESTS = Limit("EPBUILD_IMAGE_TEST_TIMEOUT", 3600, "the time limit of the in-image checks of one cell")
BAKE_SILENCE = Limit("EPBUILD_BAKE_SILENCE_TIMEOUT", 2 * 3600,
                     "how long a bake may print nothing before it is stopped")
GIT_LOW_SPEED = Limit("EPBUILD_GIT_LOW_SPEED_TIME", 120,
                      "how long a git transfer may stay under 1 KiB/s before it is stopped")
GIT_FETCH = Limit("EPBUILD_GIT_FETCH_TIMEOUT", 3 * 3600, "the time limit of one `git fetch`")
SSH_CONNECT = Limit("EPBUILD_SSH_CONNECT_TIMEOUT", 30,
                    "how long ssh may wait for a server to connect and greet it")
