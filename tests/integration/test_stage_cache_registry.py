"""The registry stage cache against a real engine and a real registry: a fresh dockerd of its own (bench/engines.py),
so its BuildKit cache can be emptied without touching the shared engine's, and Debian's docker-registry on
127.0.0.1. What was executed comes from BuildKit's own progress (summary.json); what was exported, from the
registry's access log."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import OFFLINE, ROOT, InvokeResult, invoke
from registry import Registry

sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "core")]
from bench.engines import FreshEngine, base_images, save_images  # noqa: E402

from dockerfile_stages import run_instructions, shared  # noqa: E402

pytestmark = pytest.mark.docker
SHARING = ["gfx950-cx7-sid", "gfx950-thor2-sid"]  # share aiter and vllm (same arch), not mori, rocshmem or deepep
# The fresh engine cannot make a base image (its containers have no network): it gets the matrix's, made on the
# shared engine by the prepare step.
BASES = base_images(str(ROOT / OFFLINE), SHARING)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("stage-cache-registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def engine(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshEngine]:
    cells = [arg for cell in SHARING for arg in ("--cell", cell)]
    invoke("sources", "--matrix", OFFLINE, *cells, check=True)  # also makes their base images on the shared engine
    folder = tmp_path_factory.mktemp("engine")
    fresh = FreshEngine(folder / "engine", 0)
    fresh.start()
    try:
        tar = save_images(BASES, folder / "bases.tar")
        fresh.load(tar, BASES)
        tar.unlink()
        yield fresh
    finally:
        fresh.stop()


def build(engine: FreshEngine, *args: str) -> InvokeResult:
    return invoke("build", "--matrix", OFFLINE, "--quiet", *args, check=True,
                  env={"DOCKER_HOST": engine.host})


def executed(result: InvokeResult) -> list[str]:
    return [f"{step['stage']}: {step['op'][:60]}" for step in result.summary["executed_run_steps"]]


@pytest.fixture(scope="module")
def shared_build(engine: FreshEngine, registry: Registry) -> tuple[InvokeResult, str]:
    repo = f"127.0.0.1:{registry.port}/epbuild/cache"
    return build(engine, "--cell", SHARING[0], "--cell", SHARING[1], "--cache", repo), repo


def test_two_cells_sharing_a_stage_export_it_once(shared_build: tuple[InvokeResult, str], registry: Registry) -> None:
    result, _ = shared_build
    puts = Counter(path.rsplit("/", 1)[1] for path in registry.requests("PUT", r"/v2/epbuild/cache/manifests/.+"))
    assert puts, "nothing was exported to the cache"
    assert all(count == 1 for count in puts.values()), f"a ref was written more than once: {puts}"
    # The same work in both cells, read from their Dockerfiles: one ref for it; each cell's own stages one each.
    dockerfiles = {cell: (ROOT / "examples/offline/images" / cell / "Dockerfile").read_text() for cell in SHARING}
    holders = shared(dockerfiles)
    both = {chain.split("\0")[0] for chain, cells in holders.items() if len(cells) == 2}
    assert both, "the two cells share no stage"
    expected = Counter(chain.split("\0")[0] for chain in holders) + Counter({"final": len(SHARING)})
    assert Counter(tag.rsplit("-", 1)[0] for tag in puts) == expected
    ran = Counter(step["stage"] for step in result.summary["executed_run_steps"])
    # A shared stage's RUN steps executed once in all: as many as it has RUN instructions, not one per cell.
    runs = run_instructions(dockerfiles[SHARING[0]])
    for stage in both - {chain.split("\0")[0] for chain, cells in holders.items() if len(cells) == 1}:
        assert ran[stage] == runs[stage], (stage, ran, runs)


def test_a_cell_rebuilds_from_the_cache_alone_with_no_run_step(shared_build: tuple[InvokeResult, str],
                                                               engine: FreshEngine) -> None:
    first, repo = shared_build
    cell = SHARING[1]
    assert any(step["target"] == cell or step["stage"] in {"deepep", "final"} for step in first.summary["executed_run_steps"])
    # The key the first build gave the cell (it covers the base image's digest, which the fresh engine keeps).
    key = next(c["content_key"] for c in first.summary["cells"] if c["cell"] == cell)
    engine.forget_builds(keep_images=BASES)
    assert engine.docker("buildx", "du").stdout.strip().splitlines()[-1].split()[-1] in {"0B", "0"}
    assert engine.docker("image", "inspect", f"epbuild-offline/stack:{cell}", check=False).returncode != 0
    again = build(engine, "--cell", cell, "--cache", repo)
    assert executed(again) == []
    labels = json.loads(engine.docker("image", "inspect", "--format", "{{json .Config.Labels}}",
                                      f"epbuild-offline/stack:{cell}").stdout)
    assert labels["io.epbuild.content-key"] == key


def test_a_builder_that_cannot_export_caches_fails_at_once(docker_engine: None, tmp_path: Path) -> None:
    classic = FreshEngine(tmp_path / "classic", 7, containerd_store=False)
    classic.start()
    try:
        proc = invoke("build", "--matrix", OFFLINE, "--cell", "gfx950-thor2-sid", "--cache", "127.0.0.1:1/x/cache",
                      env={"DOCKER_HOST": classic.host})
    finally:
        classic.stop()
    assert proc.code == 2, proc.out + proc.err
    message = proc.err.strip().splitlines()[-1]
    assert message.startswith("error: --cache needs a builder that exports BuildKit caches")
    assert "containerd-snapshotter" in message and "docker-container" in message
    assert "Traceback" not in proc.err and "docker buildx bake" not in proc.out + proc.err


def test_a_cell_step_stops_when_a_shared_stage_is_missing_from_the_cache(docker_engine: None,
                                                                        registry: Registry) -> None:
    """The fleet guard: a CI cell step (`--cache-export own`) whose shared stages have no ref yet stops before its
    bake, naming each such stage and its ref, instead of compiling them again itself."""
    repo = f"127.0.0.1:{registry.port}/epbuild/guard"
    cell = SHARING[1]
    proc = invoke("build", "--matrix", OFFLINE, "--cell", cell, "--cache", repo, "--cache-export", "own")
    assert proc.code == 2, proc.out + proc.err
    message = proc.err.strip().splitlines()[-1]
    assert message.startswith("error: --cache-export own builds only the cell's own stages"), message
    assert "Traceback" not in proc.err and "docker buildx bake" not in proc.out + proc.err
    # The stages the cell shares with another cell of the matrix, read from the rendered Dockerfiles alone.
    images = ROOT / "examples/offline/images"
    dockerfiles = {p.parent.name: p.read_text() for p in sorted(images.glob("*/Dockerfile"))}
    holders = shared(dockerfiles)
    expected = {chain.split("\0")[0] for chain, cells in holders.items() if cell in cells and len(cells) > 1}
    assert expected, "the cell shares no stage"
    named = dict(re.findall(rf"(\S+) of {cell} \(ref {re.escape(repo)}:(\S+) is missing\)", message))
    assert set(named) == expected, (named, expected)
    assert all(tag.startswith(f"{stage}-") for stage, tag in named.items())
    # Nothing was written to the cache: the step stopped before any build.
    assert registry.requests("PUT", r"/v2/epbuild/guard/.+") == []
