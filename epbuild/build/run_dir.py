"""Each run's folder of logs and replayable commands: build/logs/<UTC time>-<kind>-<pid>/."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from epbuild.util.commands import Runner


def new_run_dir(root: Path, kind: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return root / "build" / "logs" / f"{stamp}-{kind}-{os.getpid()}"


def replaying_runner(root: Path, kind: str) -> tuple[Runner, Path]:
    """A runner that saves every command it runs to a new run folder's replay.sh, and that folder."""
    run_dir = new_run_dir(root, kind)
    runner = Runner()
    runner.start_replay(run_dir / "replay.sh", root)
    return runner, run_dir
