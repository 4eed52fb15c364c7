"""The login line replay.sh gets: run by a real bash, it hands docker the password from the variable it names, on
standard input, with a throw-away DOCKER_CONFIG; the script itself never holds a secret."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from epbuild.registry.credentials import login_line, registry_login
from epbuild.util.commands import Runner
from epbuild.util.errors import EpbuildError

FAKE_DOCKER = """#!/usr/bin/env bash
# Records what `docker login` was given, where the real one would write its config.
printf '%s\\n' "$DOCKER_CONFIG" > "$RECORD/config-dir"
printf '%s\\n' "$@" > "$RECORD/args"
cat > "$RECORD/stdin"
"""


def test_the_replayed_login_reads_the_password_from_the_environment(tmp_path: Path) -> None:
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    script = tmp_path / "replay.sh"
    # replay.sh's own header: -x prints every command as run.
    script.write_text("set -euxo pipefail\n" + login_line("registry.example.org:5000") + "\n")
    assert "hunter2" not in script.read_text()
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(record), "HOME": str(tmp_path),
           "EPBUILD_REGISTRY_USER": "ci-bot", "EPBUILD_REGISTRY_PASSWORD": "hunter2"}
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout
    assert (record / "stdin").read_text().strip() == "hunter2"
    assert (record / "args").read_text().split() == ["login", "registry.example.org:5000", "--username", "ci-bot",
                                                     "--password-stdin"]
    used = Path((record / "config-dir").read_text().strip())
    assert used.parent == Path("/tmp") or str(used).startswith(os.environ.get("TMPDIR", "/tmp"))
    assert not used.exists(), "the replay's throw-away DOCKER_CONFIG is left behind"
    missing = subprocess.run(["bash", str(script)], env={**env, "EPBUILD_REGISTRY_PASSWORD": ""},
                             capture_output=True, text=True)
    assert missing.returncode != 0


@pytest.mark.parametrize("given", ["EPBUILD_REGISTRY_USER", "EPBUILD_REGISTRY_PASSWORD"])
def test_half_a_login_is_refused(given: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EPBUILD_REGISTRY_USER", raising=False)
    monkeypatch.delenv("EPBUILD_REGISTRY_PASSWORD", raising=False)
    monkeypatch.setenv(given, "x")
    with pytest.raises(EpbuildError, match="is set but"):
        with registry_login("registry.example.org", Runner(dry_run=True)):
            pass
