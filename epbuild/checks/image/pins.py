"""Reads a component's source at its pin straight from the git history the build fetched (not from anything
epbuild wrote): the fixture revision a stand-in compiles into its device code, and the version setuptools-scm
itself computes in a checkout of the pin."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REVISION = re.compile(rb'#define EPB_FIXTURE_REV "([A-Za-z0-9._-]+)"')
# The distribution each wheel-built component installs (its setup.py's `name`).
DISTRIBUTIONS = {"deepep": "deep_ep", "mori": "mori", "aiter": "amd-aiter", "vllm": "vllm"}
# Components whose version comes from setuptools-scm (setup.py: use_scm_version=True).
SCM_VERSIONED = ("mori", "aiter", "vllm")


def git(source: dict[str, str], *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", source["git_dir"], *args], check=True, capture_output=True).stdout


def fixture_revision(source: dict[str, str]) -> str | None:
    """The revision string the source at the pin compiles into its device code; None for a real upstream tree."""
    names = git(source, "ls-tree", "-r", "--name-only", source["commit"]).decode().splitlines()
    found = [n for n in names if n.endswith("/fixture_rev.h") or n == "fixture_rev.h"]
    if not found:
        return None
    match = REVISION.search(git(source, "show", f"{source['commit']}:{found[0]}"))
    assert match, f"{found[0]} at {source['commit']} defines no EPB_FIXTURE_REV"
    return match.group(1).decode()


def versioned_history(source: dict[str, str]) -> str:
    """The bare repository the build computed the version from, as the build recorded it (`scm_history`). The
    version depends on the tags that history holds, so recomputing it from any other history (this checkout's
    mirror of the pin's URL, say, when build/ came from another checkout) checks nothing: without the record, or
    with the recorded history gone or lacking the pin, this fails saying it cannot check."""
    record_path = Path(source.get("scm_history", ""))
    if not source.get("scm_history") or not record_path.is_file():
        raise AssertionError(f"cannot check the version of {source['commit'][:12]}: the build left no record of the "
                             f"history it computed it from ({record_path}); build the cell again with this epbuild")
    record = json.loads(record_path.read_text())
    git_dir = Path(record["git_dir"])
    if record.get("commit") != source["commit"] or not (git_dir / "HEAD").is_file():
        raise AssertionError(f"cannot check the version of {source['commit'][:12]}: {record_path} names "
                             f"{record.get('commit')} in {git_dir}, which is not the pin or no longer exists")
    if subprocess.run(["git", "--git-dir", str(git_dir), "cat-file", "-e", f"{source['commit']}^{{commit}}"],
                      capture_output=True).returncode != 0:
        raise AssertionError(f"cannot check the version of {source['commit'][:12]}: the recorded history {git_dir} "
                             "no longer holds the pin")
    return str(git_dir)


def setuptools_scm_version(source: dict[str, str]) -> str:
    """What setuptools-scm prints in a fresh checkout of the pin (its own pyproject settings included), cloned from
    the history the build versioned it from."""
    history = versioned_history(source)
    with tempfile.TemporaryDirectory(prefix="epbuild-scm-check-") as tmp:
        work = Path(tmp) / "checkout"
        subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", history, str(work)], check=True,
                       capture_output=True)
        subprocess.run(["git", "-C", str(work), "checkout", "-q", "--detach", source["commit"]], check=True,
                       capture_output=True)
        out = subprocess.run([sys.executable, "-m", "setuptools_scm", "--root", str(work)], cwd=work, check=True,
                             capture_output=True, text=True)
        return out.stdout.strip().splitlines()[-1]


def revisions_in(data: bytes, component: str) -> set[str]:
    return {m.decode() for m in re.findall(rb"%s-fixture-rev-[A-Za-z0-9]+" % re.escape(component.encode()), data)}


def installed_version(host: Any, distribution: str) -> str:
    result = host.run("python3 -c %s %s", "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))",
                      distribution)
    assert result.rc == 0, f"{distribution} is not installed: {result.stderr}"
    return result.stdout.strip()


# vLLM's setup.py (get_vllm_version) appends the ROCm release it was built with to the setuptools-scm version:
# "+rocm<first three digits>" ("." instead of "+" when the version already has a local part), the release read
# from librocm-core's getROCmVersion, else torch.version.hip. Read here from the image itself.
_ROCM_RELEASE = r"""
import ctypes, os, pathlib, torch
lib = pathlib.Path(os.environ.get("ROCM_PATH", "/opt/rocm")) / "lib" / "librocm-core.so"
release = None
if lib.is_file():
    core = ctypes.CDLL(str(lib)); v = [ctypes.c_uint32() for _ in range(3)]
    if core.getROCmVersion(*map(ctypes.byref, v)) == 0:
        release = ".".join(str(x.value) for x in v)
print(release or torch.version.hip or "")
"""


def rocm_suffixed(host: Any, version: str) -> str:
    result = host.run("python3 -c %s", _ROCM_RELEASE)
    assert result.rc == 0, f"cannot read the image's ROCm release: {result.stderr}"
    release = result.stdout.strip()
    assert release, "the image has neither librocm-core nor a torch built for ROCm (torch.version.hip is None)"
    return f"{version}{'.' if '+' in version else '+'}rocm{release.replace('.', '')[:3]}"
