"""Published names and registry overrides, without a registry: the rules a wrong value must not slip past."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from epbuild.cli import project
from epbuild.registry.reads import familiar
from epbuild.render.tags import cell_tags
from epbuild.util.errors import EpbuildError

ROOT = Path(__file__).resolve().parents[2]


def test_immutable_and_moving_tags() -> None:
    rc = next(c for c in project.rendering().cells if c.cell.name == "gfx950-cx7")
    key = "0123456789ab" + "f" * 52
    tags = cell_tags(rc, key)
    assert tags.immutable == "ghcr.io/epbuild/rocm/vllm-ep:gfx950-cx7-0123456789ab"
    assert tags.moving == "ghcr.io/epbuild/rocm/vllm-ep:gfx950-cx7"
    assert cell_tags(rc, key, "127.0.0.1:5000/ci").moving == "127.0.0.1:5000/ci/rocm/vllm-ep:gfx950-cx7"


@pytest.mark.parametrize("bad", ["", "ghcr.io/Acme", "reg.example.org/x;rm -rf /", "https://ghcr.io"])
def test_a_bad_or_empty_registry_override_is_refused(bad: str) -> None:
    rc = project.rendering().cells[0]
    with pytest.raises(EpbuildError, match="is not a registry"):
        cell_tags(rc, "f" * 64, bad)


def test_empty_staging_registry_never_falls_back_to_production() -> None:
    proc = subprocess.run([sys.executable, "-m", "invoke", "publish", "--arch", "gfx950", "--nic", "cx7",
                           "--registry", "", "--dry-run"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "is not a registry" in proc.stderr and "ghcr.io" not in proc.stdout


def test_docker_hub_familiar_names() -> None:
    assert familiar("docker.io/library/ubuntu") == "ubuntu"
    assert familiar("docker.io/rocm/vllm-dev") == "rocm/vllm-dev"
    assert familiar("127.0.0.1:5000/epbuild/x") == "127.0.0.1:5000/epbuild/x"
