"""Each run's folder of logs and replayable commands: build/logs/<UTC time>-<kind>-<pid>/."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path


def new_run_dir(root: Path, kind: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return root / "build" / "logs" / f"{stamp}-{kind}-{os.getpid()}"
