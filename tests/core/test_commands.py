"""Runner's failures are user errors that say why: a non-zero exit carries the command's own reason, a missing
program is named, and a command past its time limit is stopped (all with real programs)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from epbuild.util.commands import CommandFailed, CommandTimedOut, Runner, ToolMissing, query
from epbuild.util.errors import EpbuildError


def test_a_failed_command_carries_its_reason_not_its_boilerplate(tmp_path: Path) -> None:
    with pytest.raises(CommandFailed) as err:
        Runner().run(["git", "-C", str(tmp_path), "rev-parse", "--verify", "no-such-ref"], capture=True)
    assert isinstance(err.value, EpbuildError)  # so tasks.py prints it as one line, exit 2
    message = str(err.value)
    assert "\n" not in message and "git -C" in message and "(exit 128)" in message
    assert "fatal:" in message, message  # git's own words


def test_a_missing_program_is_named(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match="`epbuild-no-such-tool` is not installed or not on PATH"):
        Runner().run(["epbuild-no-such-tool", "--version"])
    with pytest.raises(ToolMissing):
        query(["epbuild-no-such-tool"])


def test_a_command_past_its_limit_is_stopped() -> None:
    start = time.monotonic()
    with pytest.raises(CommandTimedOut, match=r"did not finish within 0.5 s and was stopped \(raise it with X_LIMIT\)"):
        Runner().run(["sleep", "30"], timeout=0.5, timeout_setting="X_LIMIT")
    assert time.monotonic() - start < 10
