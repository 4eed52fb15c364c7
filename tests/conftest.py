from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from epbuild.model.yamlfile import dump_yaml

from loopback import ensure_loopback_up

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    try:
        ensure_loopback_up()
    except OSError as exc:
        config.issue_config_time_warning(pytest.PytestWarning(
            f"the loopback interface is down and cannot be brought up ({exc}): tests serving on 127.0.0.1 will fail"),
            stacklevel=2)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden/ from the current render.")


@pytest.fixture(scope="session")
def default_matrix_data() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "matrix.yaml").read_text())


@pytest.fixture
def write_matrix(tmp_path: Path, default_matrix_data: dict[str, Any]) -> Callable[..., Path]:
    """Writes a variant of the default matrix to a temp folder: `edit` mutates a deep copy of its data."""

    def write(edit: Callable[[dict[str, Any]], None] | None = None, *, text: str | None = None) -> Path:
        path = tmp_path / "matrix.yaml"
        if text is None:
            data = copy.deepcopy(default_matrix_data)
            if edit:
                edit(data)
            text = dump_yaml(data)
        path.write_text(text)
        return path

    return write
