"""Runs external commands so that every one can be replayed by hand: each is logged as a shell line, saved
to a replayable .sh with its output in a log, and `dry_run` prints them without running anything.

Commands are argument lists, never shell strings: nothing from the matrix is ever parsed by a shell.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


def shell_line(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """The command as one line a person can paste into a shell."""
    prefix = "".join(f"{k}={shlex.quote(v)} " for k, v in (env or {}).items())
    line = prefix + shlex.join(argv)
    return f"(cd {shlex.quote(str(cwd))} && {line})" if cwd else line


class CommandFailed(Exception):
    def __init__(self, argv: Sequence[str], returncode: int, output: str = "") -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        super().__init__(f"command failed with exit code {returncode}: {shlex.join(argv)}")


@dataclass
class Runner:
    """Runs commands, or with dry_run only prints them; with a replay file, appends each one to it."""

    dry_run: bool = False
    replay: Path | None = None
    out: IO[str] = field(default_factory=lambda: sys.stdout)

    def __post_init__(self) -> None:
        if self.replay is not None:
            self.start_replay(self.replay)

    def start_replay(self, path: Path, root: Path | None = None) -> None:
        """From now on, append every command to `path`, a script that replays them from `root` (the project root
        builds run from; default: the current folder)."""
        self.replay = path
        if self.dry_run:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text("#!/usr/bin/env bash\n# Replays the commands of this epbuild run, from the project "
                            f"root.\nset -euxo pipefail\ncd {shlex.quote(str(root or Path.cwd()))}\n")
            path.chmod(0o755)

    def record(self, line: str) -> None:
        if self.dry_run:
            print(line, file=self.out)
            return
        log.info("$ %s", line)
        if self.replay is not None:
            with self.replay.open("a") as fh:
                fh.write(line + "\n")

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        capture: bool = False,
        check: bool = True,
        mutating: bool = True,
        stdin: str | bytes | None = None,
        record: bool = True,
        binary: bool = False,
        whole_env: bool = False,
    ) -> subprocess.CompletedProcess[Any]:
        """Runs argv. `mutating=False` marks a read-only query that also runs in a dry run (it changes nothing).
        `record=False` keeps a step out of the replay (a query, or a step recorded as an equivalent shell line).
        `stdin` is fed to the command and never recorded (it carries secrets such as a registry password).
        `binary`: stdin and captured output are bytes. `whole_env`: `env` is the command's entire environment
        (else it is added to this process's)."""
        argv = [str(a) for a in argv]
        if record:
            self.record(shell_line(argv, None if whole_env else env, cwd))
        elif not mutating or not self.dry_run:
            log.debug("$ %s", shell_line(argv, None if whole_env else env, cwd))
        if self.dry_run and mutating:
            return subprocess.CompletedProcess(argv, 0, b"" if binary else "", b"" if binary else "")
        full_env = dict(env or {}) if whole_env else {**os.environ, **(env or {})}
        proc = subprocess.run(argv, env=full_env, cwd=cwd, text=not binary, check=False,
                              capture_output=capture, input=stdin)
        if check and proc.returncode != 0:
            out = (proc.stdout or b"") + (proc.stderr or b"") if binary else (proc.stdout or "") + (proc.stderr or "")
            raise CommandFailed(argv, proc.returncode, out.decode(errors="replace") if binary else out)
        return proc

    def stream(self, argv: Sequence[str], *, cwd: Path | None = None, on_line: Callable[[str], None]) -> int:
        """Runs argv, recorded, handing each line of its output (stdout and stderr together) to `on_line` as it
        comes; returns the exit code."""
        self.record(shell_line(argv, cwd=cwd))
        if self.dry_run:
            return 0
        proc = subprocess.Popen(list(argv), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            on_line(line)
        return proc.wait()


def query(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
          whole_env: bool = False) -> subprocess.CompletedProcess[str]:
    """A read-only command whose answer is its output and exit code (`docker image inspect`, ...): never recorded,
    never raising, run in dry runs too."""
    return Runner().run(argv, env=env, capture=True, check=False, mutating=False, record=False, whole_env=whole_env)
