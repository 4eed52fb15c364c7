"""Runs bake invocations and follows their progress: all output to the run's bake.log, each line to its cell's log,
each built image's ID from bake's metadata file, and a bake that prints nothing for too long stopped."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from epbuild.build.buildreport import CellResult
from epbuild.build.progress import Progress
from epbuild.util import timeouts
from epbuild.util.commands import CommandStalled, Runner, query, shell_line
from epbuild.util.errors import EpbuildError


class BakeStalled(EpbuildError):
    """Bake printed nothing for longer than its silence limit, so it was stopped rather than waited on."""


class Bakes:
    """Runs bake invocations (several at once, each in a thread), saving all output to bake.log, sorting each
    line to its cell's log, and reading each built image's ID from bake's metadata file (the image this run
    built, whatever the shared tag names by the time anyone looks)."""

    def __init__(self, command: Callable[[list[str]], list[str]], expanded: Callable[[list[str]], list[str]],
                 aliases: dict[str, str], root: Path, quiet: bool, run_dir: Path, progress: Progress, runner: Runner,
                 names: list[str]) -> None:
        # The bake command for some cells, the bake targets they amount to (with the stage cache's), and the cell
        # each stage-cache target belongs to.
        self.command, self.expanded, self.aliases = command, expanded, aliases
        self.root, self.quiet, self.run_dir, self.progress, self.runner = root, quiet, run_dir, progress, runner
        self.invocations: list[int] = []
        self.cell_lines: dict[str, list[str]] = {name: [] for name in names}
        self.image_ids: dict[str, str] = {}
        self.bake_errors: dict[int, list[str]] = {}
        """Per invocation, bake's own ERROR lines (outside any vertex): why it failed when no vertex says."""
        self._output = threading.Lock()

    def run(self, groups: list[list[str]]) -> list[int]:
        """One bake per group of targets, all at once; their exit codes in order."""
        invocations = [self.progress.start(self.expanded(targets)) for targets in groups]
        self.invocations += invocations
        with (self.run_dir / "bake.log").open("a", buffering=1) as full:  # line by line: a kill loses nothing
            if len(groups) == 1:
                return [self._bake(groups[0], invocations[0], full, prefix="")]
            codes: list[int] = [0] * len(groups)
            errors: list[BaseException] = []

            def one(i: int) -> None:
                try:
                    codes[i] = self._bake(groups[i], invocations[i], full, prefix=f"{groups[i][0]} | ")
                except BaseException as exc:  # re-raised below, in the caller's thread
                    errors.append(exc)

            threads = [threading.Thread(target=one, args=(i,)) for i in range(len(groups))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]
        return codes

    def _bake(self, targets: list[str], invocation: int, full: IO[str], prefix: str) -> int:
        metadata = self.run_dir / f"metadata-{invocation}.json"
        argv = self.command(targets)
        bake_targets = len(self.expanded(targets))
        argv[-bake_targets:-bake_targets] = ["--metadata-file", str(metadata)]
        with self._output:
            full.write(f"{prefix}$ {shell_line(argv)}\n")
        alone = targets[0] if bake_targets == 1 else None

        def on_line(line: str) -> None:
            vertex = self.progress.feed(line, invocation)
            if vertex is not None and vertex.target in self.aliases:  # a stage-cache target: its vertices are its cell's
                vertex.target = self.aliases[vertex.target]
            with self._output:
                full.write(prefix + line)
                if not self.quiet:
                    sys.stdout.write(prefix + line)
            # A bake of one target prints everything about that target (its errors too, outside any vertex).
            owner = alone or (vertex.target if vertex is not None else None)
            if owner in self.cell_lines:
                self.cell_lines[owner].append(line)
            if line.startswith("ERROR:"):
                self.bake_errors.setdefault(invocation, []).append(line.strip())

        try:
            code = self.runner.stream(argv, cwd=self.root, on_line=on_line,
                                      silence=timeouts.BAKE_SILENCE.seconds(), silence_setting=timeouts.BAKE_SILENCE.env)
        except CommandStalled as exc:
            running = [f"[{v.target}{' ' + v.stage if v.stage else ''}] {v.op[:120]}"
                       for (number, _), v in self.progress.vertices.items()
                       if number == invocation and v.status == "RUNNING"]
            message = (f"bake printed nothing for {exc.silence:g} s and was stopped (raise the limit with "
                       f"{timeouts.BAKE_SILENCE.env}); " + (f"still running: {'; '.join(running)}" if running
                                                             else f"its last line: {exc.reason or '(none)'}"))
            with self._output:
                full.write(f"{prefix}epbuild: {message}\n")
            raise BakeStalled(message) from None
        self._read_image_ids(metadata, targets)
        return code

    def _read_image_ids(self, metadata: Path, targets: list[str]) -> None:
        try:
            doc = json.loads(metadata.read_text())
        except (OSError, ValueError):
            return
        for name in targets:
            entry = doc.get(name) if isinstance(doc, dict) else None
            if isinstance(entry, dict):
                # The containerd image store names an image by its manifest digest, the classic one by its config's.
                for key in ("containerimage.digest", "containerimage.config.digest"):
                    if isinstance(entry.get(key), str) and _image_id(entry[key]) == entry[key]:
                        self.image_ids[name] = entry[key]
                        break

    def bake_error(self, invocation: int) -> str:
        """The last ERROR line bake printed for the invocation, outside any vertex ("" if none)."""
        return (self.bake_errors.get(invocation) or [""])[-1]

    def cell_log(self, name: str, results: dict[str, CellResult]) -> list[str]:
        """The cell's lines, plus those of the vertex that failed it when BuildKit printed that vertex under
        another cell (a shared stage)."""
        lines = self.cell_lines[name]
        vertex = results[name].failed_vertex
        if vertex is not None and vertex.target != name:
            lines = [*lines, f"# the failing stage, printed under {vertex.target}:\n", *vertex.lines]
        return lines


def _image_id(tag: str) -> str | None:
    proc = query(["docker", "image", "inspect", "--format", "{{.Id}}", tag])
    return proc.stdout.strip() if proc.returncode == 0 else None
