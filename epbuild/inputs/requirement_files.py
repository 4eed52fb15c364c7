"""Requirement files read as pip reads them: their lines, following `-r` includes, each with the file it came
from (the origin starts the chain a resolution error names: epbuild/inputs/wheelhouse.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from epbuild.inputs.base_python import canonical
from epbuild.util.errors import EpbuildError

NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


class WheelhouseError(EpbuildError):
    pass


@dataclass(frozen=True)
class Requirement:
    """One requirement line as pip reads it, and where it was read (a requirements file, pyproject.toml's
    `[build-system] requires`, setup.py's `setup_requires`): the origin starts the chain an error names."""

    line: str
    origin: str

    @property
    def name(self) -> str:
        match = NAME.match(self.line)
        return canonical(match.group(1)) if match else self.line


def _read(source: Path, files: Iterable[str], where: str) -> tuple[list[Requirement], list[str]]:
    """The requirement lines of `files` following `-r` (as pip and vLLM's own get_requirements do), and every file
    read, in order."""
    out: list[Requirement] = []
    read_files: list[str] = []
    seen: set[str] = set()

    def read(path: Path, chain: tuple[Path, ...]) -> None:
        if not path.is_file():
            raise WheelhouseError(f"{where}: requirements file {path.relative_to(source)} does not exist at the pin")
        origin = str(path.relative_to(source))
        if origin not in read_files:
            read_files.append(origin)
        if path.name == "pyproject.toml":
            # Named where a source has no requirements file of its own (NIXL): what it needs to build is its
            # `[build-system] requires`, which build_requires reads with every component's.
            return
        for raw in path.read_text().splitlines():
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(("-r ", "--requirement ")):
                target = (path.parent / line.split(None, 1)[1]).resolve()
                if target not in chain:
                    read(target, (*chain, target))
                continue
            if line.startswith("-"):
                continue  # index options
            if line not in seen:
                seen.add(line)
                out.append(Requirement(line, origin))

    source = source.resolve()
    for name in files:
        read(source / name, (source / name,))
    return out, read_files


def requirements(source: Path, files: Iterable[str], where: str) -> list[Requirement]:
    """The requirement lines of `files`, without pip options: the host's pip configuration (and the matrix's
    `python.find_links`) decide where wheels come from."""
    return _read(source, files, where)[0]


def requirement_files(source: Path, files: Iterable[str], where: str) -> list[str]:
    """`files` and every file they include with `-r`, relative to `source`."""
    return _read(source, files, where)[1]
