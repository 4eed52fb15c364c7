"""The offline example's own Python distributions: small stand-ins for what vLLM's requirements pull from PyPI
(a serving stack, a model library that depends on torch), built from examples/offline/python/<name>/ into
pure-Python wheels under build/offline/wheels, which the example's matrix names in `python.find_links`.

Built here, byte for byte the same on every machine (fixed times, sorted entries), rather than taken from PyPI: the
example's resolution stays deterministic, and their names exist on no index, so nothing else can answer for them.
Each folder holds a pyproject.toml with a PEP 621 `[project]` table (name, version, dependencies, scripts) and the
package folder(s) it ships.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from pathlib import Path

import tomllib

from epbuild.offline.settings import REPO_ROOT, OfflineError
from epbuild.util import atomicfs
from epbuild.util.resources import resource

SOURCES_DIR = resource("examples/offline/python")
WHEELS_DIR = REPO_ROOT / "build" / "offline" / "wheels"
_DATE = (1980, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _metadata(project: dict) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}"]
    if "description" in project:
        lines.append(f"Summary: {project['description']}")
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    return "\n".join(lines) + "\n"


def wheel_bytes(folder: Path) -> tuple[str, bytes]:
    """The wheel's file name and bytes for the stand-in distribution at `folder`."""
    try:
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        name, version = project["name"], project["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise OfflineError(f"{folder / 'pyproject.toml'}: needs a [project] table with name and version ({exc})") from None
    dist = re.sub(r"[-_.]+", "_", name)
    info = f"{dist}-{version}.dist-info"
    files: dict[str, bytes] = {}
    for source in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix == ".py"):
        files[source.relative_to(folder).as_posix()] = source.read_bytes()
    files[f"{info}/METADATA"] = _metadata(project).encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: epbuild\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    scripts = project.get("scripts", {})
    if scripts:
        files[f"{info}/entry_points.txt"] = ("[console_scripts]\n" + "".join(
            f"{script} = {target}\n" for script, target in sorted(scripts.items()))).encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            entry = zipfile.ZipInfo(path, _DATE)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, data)
    return f"{dist}-{version}-py3-none-any.whl", buffer.getvalue()


def ensure_wheels(dest: Path = WHEELS_DIR, sources: Path = SOURCES_DIR) -> list[Path]:
    """Writes every stand-in distribution's wheel into `dest` (unchanged files are left alone)."""
    out = []
    for folder in sorted(p for p in sources.iterdir() if (p / "pyproject.toml").is_file()):
        name, data = wheel_bytes(folder)
        path = dest / name
        if not path.is_file() or path.read_bytes() != data:
            atomicfs.write_bytes(path, data)
        out.append(path)
    return out
