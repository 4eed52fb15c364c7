"""The pytest plugin of the in-image checks (`invoke test` loads it with `-p imagecheck`, for epbuild/checks/image and for
each component folder's test_*.py): one container per image, a testinfra host on it, and the cell's record
(written by `invoke test`). Checks that do not apply to the cell are deselected, not skipped."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import testinfra

from epbuild.checks.expectations import EXPECTED_ENV


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "component(name): runs only in cells that build this component")
    config.addinivalue_line("markers", "cell(**facts): runs only in cells whose record has these values, e.g. "
                                       "cell(rdma_core='source')")


def load_expected() -> dict[str, Any]:
    """The cell's record, with the image under test, the labels it must carry and where each pin's source history
    is on this host (`sources`: the checks read the source at the pin themselves), and where each source archive a
    stage read was downloaded (`archives`: the checks verify and read it themselves)."""
    path = os.environ.get(EXPECTED_ENV)
    if not path:
        raise pytest.UsageError(f"the image checks need {EXPECTED_ENV}: run them through `invoke test`")
    data = json.loads(Path(path).read_text())
    return {**data["record"], **data.get("nic_userspace", {}), "image": data["image"], "labels": data["labels"],
            "record": data["record"], "sources": data["sources"], "archives": data.get("archives", {})}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    expected = load_expected()
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        applies = all(m.args[0] in expected["components"] for m in item.iter_markers("component")) and all(
            expected.get(k) == v for m in item.iter_markers("cell") for k, v in m.kwargs.items())
        (keep if applies else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    return load_expected()


def _start(image: str) -> str:
    name = f"epbuild-check-{uuid.uuid4().hex[:12]}"
    # No network: the checks must hold on an air-gapped host, as vLLM's own smoke test runs them.
    subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "--network", "none", "--entrypoint", "sleep",
                    image, "infinity"], check=True, capture_output=True, text=True)
    return name


@pytest.fixture(scope="session")
def container(expected: dict[str, Any]) -> Iterator[str]:
    name = _start(expected["image"])
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


@pytest.fixture(scope="session")
def host(container: str) -> Any:
    return testinfra.get_host(f"docker://{container}")


@pytest.fixture(scope="session")
def image_config(expected: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(["docker", "image", "inspect", expected["image"]], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)[0]["Config"]


@pytest.fixture(scope="session")
def copy_out(container: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Copies a file out of the container (following links), for reading it with the host's tools."""
    folder = tmp_path_factory.mktemp("from-image")

    def copy(path: str) -> Path:
        dest = folder / path.strip("/").replace("/", "__")
        subprocess.run(["docker", "cp", "--follow-link", f"{container}:{path}", str(dest)], check=True,
                       capture_output=True)
        return dest

    return copy


@pytest.fixture(scope="session")
def python(host: Any) -> Callable[[str], Any]:
    """Runs a Python snippet in the image and returns its JSON output."""

    def run(code: str) -> Any:
        result = host.run("python3 -c %s", code)
        assert result.rc == 0, result.stderr
        return json.loads(result.stdout)

    return run


@pytest.fixture(scope="session")
def has_torch(host: Any) -> bool:
    return host.run("python3 -c 'import torch'").rc == 0
