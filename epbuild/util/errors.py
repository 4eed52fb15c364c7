"""Errors a user can act on: each says which file, which key, the bad value and what is allowed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class EpbuildError(Exception):
    """An error meant for the user: its message is the whole story, no traceback needed."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an input file."""

    key: str
    message: str
    line: int | None = None

    def render(self, file: Path) -> str:
        where = f"{file}:{self.line}" if self.line else str(file)
        return f"{where}: {self.key or '(top level)'}: {self.message}"


class MatrixError(EpbuildError):
    """The build matrix is invalid; nothing was written."""

    def __init__(self, file: Path, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        lines = [p.render(file) for p in problems]
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"invalid build matrix {file} ({len(problems)} {noun}); nothing was written.\n  "
            + "\n  ".join(lines)
        )
