"""Runs external commands so that every one can be replayed by hand: each is logged as a shell line, saved
to a replayable .sh with its output in a log, and `dry_run` prints them without running anything.

Commands are argument lists, never shell strings: nothing from the matrix is ever parsed by a shell.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from epbuild.util import atomicfs
from epbuild.util.errors import EpbuildError

log = logging.getLogger(__name__)

NOISE = re.compile(
    # ssh's advice after every failure, which hides the reason printed before it; docker's usage hints; push and
    # pull progress lines.
    r"^(Please make sure you have the correct access rights|and the repository exists\.|See '.*--help'\.|"
    r"Usage: |Run '.*' for more information|The push refers to repository|Using default tag|"
    r"[0-9a-f]{12}: (Preparing|Waiting|Pushing|Pushed|Layer already exists|Pulling fs layer|Downloading|"
    r"Verifying Checksum|Download complete|Extracting|Pull complete|Already exists))"
)


def shell_line(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """The command as one line a person can paste into a shell."""
    prefix = "".join(f"{k}={shlex.quote(v)} " for k, v in (env or {}).items())
    line = prefix + shlex.join(argv)
    return f"(cd {shlex.quote(str(cwd))} && {line})" if cwd else line


def failure_reason(output: str, lines: int = 3, limit: int = 500) -> str:
    """The part of a command's output that says why it failed: its last few lines that are not progress or
    boilerplate, joined into one line."""
    kept = [line.strip() for line in output.splitlines() if line.strip() and not NOISE.match(line.strip())]
    reason = "; ".join(kept[-lines:])
    return reason if len(reason) <= limit else "..." + reason[-limit:]


def brief(argv: Sequence[str], limit: int = 160) -> str:
    line = shlex.join(argv)
    return line if len(line) <= limit else line[:limit] + " ..."


class CommandFailed(EpbuildError):
    """A command exited non-zero; the message carries the command's own reason."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str = "", message: str | None = None) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        self.reason = failure_reason(output)
        super().__init__(message or
                         f"`{brief(argv)}` failed (exit {returncode}): {self.reason or 'it printed no reason'}")


class ToolMissing(CommandFailed):
    """The program itself is not installed (not on PATH)."""

    def __init__(self, argv: Sequence[str]) -> None:
        super().__init__(argv, 127, message=f"`{argv[0]}` is not installed or not on PATH (needed to run "
                                            f"`{brief(argv, 80)}`)")


class CommandTimedOut(CommandFailed):
    """A command ran past its time limit and was stopped, so a stalled network never blocks forever."""

    def __init__(self, argv: Sequence[str], timeout: float, output: str = "", setting: str = "") -> None:
        how = f" (raise it with {setting})" if setting else ""
        reason = failure_reason(output)
        said = f"; its last words: {reason}" if reason else ""
        super().__init__(argv, -9, output,
                         message=f"`{brief(argv)}` did not finish within {timeout:g} s and was stopped{how}{said}")


class CommandStalled(CommandFailed):
    """A command printed nothing for longer than its silence limit and was stopped."""

    def __init__(self, argv: Sequence[str], silence: float, setting: str, last_line: str) -> None:
        self.silence = silence
        how = f" (raise the limit with {setting})" if setting else ""
        super().__init__(argv, -2, last_line, message=f"`{brief(argv)}` printed nothing for {silence:g} s and was "
                                                      f"stopped{how}; its last line: {last_line.strip() or '(none)'}")


def _text(data: str | bytes | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


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
            atomicfs.write_text(path, "#!/usr/bin/env bash\n# Replays the commands of this epbuild run, from the "
                                f"project root.\nset -euxo pipefail\ncd {shlex.quote(str(root or Path.cwd()))}\n",
                                mode=0o755)

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
        timeout: float | None = None,
        timeout_setting: str = "",
    ) -> subprocess.CompletedProcess[Any]:
        """Runs argv. `mutating=False` marks a read-only query that also runs in a dry run (it changes nothing).
        `record=False` keeps a step out of the replay (a query, or a step recorded as an equivalent shell line).
        `stdin` is fed to the command and never recorded (it carries secrets such as a registry password).
        `binary`: stdin and captured output are bytes. `whole_env`: `env` is the command's entire environment
        (else it is added to this process's). `timeout` stops the command after that many seconds
        (`timeout_setting` names how to change it). Standard error is always read, so that a failure can say
        why; without `capture` it is shown as well."""
        argv = [str(a) for a in argv]
        if record:
            self.record(shell_line(argv, None if whole_env else env, cwd))
        elif not mutating or not self.dry_run:
            log.debug("$ %s", shell_line(argv, None if whole_env else env, cwd))
        if self.dry_run and mutating:
            return subprocess.CompletedProcess(argv, 0, b"" if binary else "", b"" if binary else "")
        full_env = dict(env or {}) if whole_env else {**os.environ, **(env or {})}
        try:
            proc = subprocess.run(argv, env=full_env, cwd=cwd, text=not binary, check=False, input=stdin,
                                  stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE,
                                  timeout=timeout)
        except FileNotFoundError as exc:
            if cwd is not None and exc.filename == str(cwd):
                raise
            raise ToolMissing(argv) from None
        except subprocess.TimeoutExpired as exc:
            raise CommandTimedOut(argv, timeout or 0, _text(exc.stdout) + _text(exc.stderr),
                                  timeout_setting) from None
        if not capture and proc.stderr:
            sys.stderr.write(_text(proc.stderr))
        if check and proc.returncode != 0:
            raise CommandFailed(argv, proc.returncode, _text(proc.stdout) + _text(proc.stderr))
        return proc

    def stream(self, argv: Sequence[str], *, cwd: Path | None = None, on_line: Callable[[str], object],
               silence: float | None = None, silence_setting: str = "") -> int:
        """Runs argv, recorded, handing each line of its output (stdout and stderr together) to `on_line` as it
        comes; returns the exit code. A command that prints nothing for `silence` seconds is interrupted (as
        Ctrl-C would), then killed if it hangs on, and CommandStalled is raised."""
        self.record(shell_line(argv, cwd=cwd))
        if self.dry_run:
            return 0
        try:
            proc = subprocess.Popen(list(argv), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, bufsize=1)
        except FileNotFoundError:
            raise ToolMissing(argv) from None
        assert proc.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        last = ""
        while True:
            try:
                line = lines.get(timeout=silence)
            except queue.Empty:
                _interrupt(proc)
                raise CommandStalled(argv, silence or 0, silence_setting, last) from None
            if line is None:
                return proc.wait()
            last = line
            on_line(line)


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _interrupt(proc: subprocess.Popen[str], grace: float = 30.0) -> None:
    """Interrupts a command as Ctrl-C would (buildx then cancels its solve in BuildKit); kills it if that hangs."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def query(argv: Sequence[str], *, env: Mapping[str, str] | None = None, whole_env: bool = False,
          timeout: float | None = None, setting: str = "") -> subprocess.CompletedProcess[str]:
    """A read-only command whose answer is its output and exit code (`docker image inspect`, ...): never recorded,
    run in dry runs too; a non-zero exit is the caller's to read, but a missing program or a run past `timeout`
    (`setting` names how to change it) is an error the user can act on."""
    return Runner().run(argv, env=env, capture=True, check=False, mutating=False, record=False, whole_env=whole_env,
                        timeout=timeout, timeout_setting=setting)
