"""pyproject.toml installs every component folder (an installed `epbuild` finds components by their folders)."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_every_component_folder_is_an_installed_package_with_its_files() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {p.name for p in (ROOT / "epbuild" / "components").iterdir() if (p / "__init__.py").is_file()}
    listed = {name.rsplit(".", 1)[1] for name in config["packages"] if name.startswith("epbuild.components.")}
    assert listed == folders
    for name in folders:
        assert "stage.Dockerfile.j2" in config["package-data"][f"epbuild.components.{name}"]
