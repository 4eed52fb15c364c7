"""The markers tell the truth: the selection the pipelines' check job runs, `-m "not docker and not gpu"`, passes
on a host with no Docker engine and no network. It runs here in a fresh network namespace (`unshare -n`: only a
loopback, which tests/loopback.py brings up) with DOCKER_HOST pointing at a socket that does not exist, so a test
that needs either and is not marked fails this one. (This test is deselected inside, or it would run itself.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SELF = "tests/core/test_offline_selection.py::test_the_unmarked_tests_pass_with_no_engine_and_no_network"


def test_the_unmarked_tests_pass_with_no_engine_and_no_network() -> None:
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is missing: the offline selection cannot be proven"
    # Not root: a user namespace maps us to root in it, which a new network namespace needs.
    isolate = [unshare, "-n"] if os.geteuid() == 0 else [unshare, "-r", "-n"]
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    env.pop("DOCKER_CONTEXT", None)
    # A short temp root: gpg's agent socket path under it must stay within the 108 bytes a socket path allows.
    basetemp = tempfile.mkdtemp(prefix="epb-offline-")
    proc = subprocess.run([*isolate, sys.executable, "-m", "pytest", "-m", "not docker and not gpu", "-q", "-x",
                           "-p", "no:cacheprovider", "--deselect", SELF, "--basetemp", basetemp],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    shutil.rmtree(basetemp, ignore_errors=True)
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, f"the offline selection failed (a test needs an engine or the network):\n{tail}"
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    # An isolation that did not isolate proves nothing: the engine must be unreachable in there.
    probe = subprocess.run([*isolate, "docker", "info"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0, "docker info worked inside the isolation"
    reach = "import socket; socket.create_connection(('1.1.1.1', 443), timeout=5)"
    probe = subprocess.run([*isolate, sys.executable, "-c", reach], capture_output=True, text=True)
    assert probe.returncode != 0 and "unreachable" in probe.stderr, "another host was reachable inside the isolation"
