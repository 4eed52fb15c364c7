"""Shared by the component checks: find a distribution's files in the image and read their device code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from epbuild.checks.offload import file_gpu_archs

DIST_FILES = """
import importlib.metadata as md, json, sys
names = sys.argv[1:]
for name in names:
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    files = [str(dist.locate_file(f)) for f in (dist.files or [])]
    print(json.dumps({"name": dist.metadata["Name"], "version": dist.version, "files": files}))
    break
else:
    print("null")
"""


def distribution(host: Any, *names: str) -> dict[str, Any] | None:
    """The first of `names` installed in the image, with its files; None if none is."""
    import json

    result = host.run("python3 -c %s " + " ".join(["%s"] * len(names)), DIST_FILES, *names)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def shared_libraries(dist: dict[str, Any]) -> list[str]:
    return sorted(f for f in dist["files"] if f.endswith(".so") or ".so." in Path(f).name)


def device_archs(copy_out: Callable[[str], Path], paths: list[str]) -> dict[str, set[str]]:
    """Device-code archs of each file (an empty set: a host-only library)."""
    return {path: file_gpu_archs(copy_out(path)) for path in paths}


def assert_exact_archs(archs_by_file: dict[str, set[str]], expected: list[str], what: str) -> None:
    hip = {path: archs for path, archs in archs_by_file.items() if archs}
    assert hip, f"{what}: no library carries GPU device code (expected {', '.join(expected)}); files: " + ", ".join(
        archs_by_file)
    for path, archs in hip.items():
        assert archs == set(expected), (
            f"{what}: {path} carries device code for {', '.join(sorted(archs))}; the cell needs exactly "
            f"{', '.join(expected)}")
