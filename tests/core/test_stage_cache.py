"""The stage cache's plan, read from the bake file it lays over the rendered one: one ref per distinct stage, each
written by one target only, refs that follow the pins, and CI's cell steps leaving shared stages to their steps.
Expectations come from the rendered Dockerfiles and the stage graph the README draws, not from the planner."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from epbuild.build.stage_cache import plan
from epbuild.model.matrix import load_matrix
from epbuild.render.dockerfiles import Rendering, render_matrix
from epbuild.util.errors import EpbuildError

from dockerfile_stages import shared, stage_chains

ROOT = Path(__file__).resolve().parents[2]
REPO = "registry.example.com/epbuild/cache"


def rendering(path: Path = ROOT / "matrix.yaml") -> Rendering:
    return render_matrix(load_matrix(path), ROOT)


def overlay(r: Rendering, cells: list[str] | None = None, **options: Any) -> dict[str, Any]:
    chosen = [rc for rc in r.cells if cells is None or rc.cell.name in cells]
    outputs = {rc.cell.name: {"output": ["type=docker"]} for rc in chosen}
    doc: dict[str, Any] = json.loads(plan(REPO, chosen, r.cells, **options).overlay(context_root="images",
                                                                                   cell_outputs=outputs))
    return doc["target"]


def writes(targets: dict[str, Any]) -> list[str]:
    return [entry.split(",")[1].removeprefix("ref=") for t in targets.values() for entry in t.get("cache-to", [])]


def test_every_distinct_stage_has_one_ref_written_by_one_target() -> None:
    r = rendering()
    refs = writes(overlay(r))
    assert len(refs) == len(set(refs)), [ref for ref, n in Counter(refs).items() if n > 1]
    finals = [ref for ref in refs if ref.split(":")[-1].startswith("final-")]
    assert len(finals) == len(r.cells)
    assert len(refs) - len(finals) == len(shared({rc.cell.name: rc.dockerfile for rc in r.cells}))


def test_a_cell_imports_a_ref_for_every_stage_it_builds() -> None:
    r = rendering()
    targets = overlay(r)
    for rc in r.cells:
        imported = {entry.split(":")[-1].rsplit("-", 1)[0] for entry in targets[rc.cell.name]["cache-from"]}
        in_file = set(re.findall(r"^FROM \S+ AS (\S+)\n(?:(?!^FROM ).*\n)*?^(?:RUN|COPY) ", rc.dockerfile, re.M))
        assert imported == in_file, rc.cell.name


def test_a_moved_vllm_pin_gives_new_refs_to_vllms_stages_and_final_only(write_matrix: Callable[..., Path]) -> None:
    def move(data: dict[str, Any]) -> None:
        data["components"]["vllm"]["commit"] = "0" * 40

    before, after = set(writes(overlay(rendering()))), set(writes(overlay(rendering(write_matrix(move)))))
    changed = {ref.split(":")[-1].rsplit("-", 1)[0] for ref in before ^ after}
    # vLLM's requirements stage installs the wheelhouse resolved from the pin's requirement files: it moves too.
    assert changed == {"vllm-requirements", "vllm", "final"}


def test_a_moved_ucx_pin_gives_new_refs_to_ucx_nixl_and_final_only(write_matrix: Callable[..., Path]) -> None:
    # Issue 23: "A UCX pin move rebuilds only ucx, nixl and final". NIXL builds FROM ucx, so its requirements stage
    # (the wheelhouse installed on top of UCX) moves with it.
    def move(data: dict[str, Any]) -> None:
        data["components"]["ucx"]["commit"] = "0" * 40

    before, after = set(writes(overlay(rendering()))), set(writes(overlay(rendering(write_matrix(move)))))
    changed = {ref.split(":")[-1].rsplit("-", 1)[0] for ref in before ^ after}
    assert changed == {"ucx", "nixl-requirements", "nixl", "final"}


def test_cell_steps_export_only_what_no_other_cell_shares() -> None:
    r = rendering()
    holders = shared({rc.cell.name: rc.dockerfile for rc in r.cells})
    own = {stage for stage, chain in stage_chains(r.cells[0].dockerfile).items() if len(holders[chain]) == 1}
    targets = overlay(r, [r.cells[0].cell.name], export="own")
    stages = sorted(ref.split(":")[-1].rsplit("-", 1)[0] for ref in writes(targets))
    assert stages == sorted(own | {"final"})


def test_a_stage_step_builds_that_stage_only_into_the_cache() -> None:
    targets = overlay(rendering(), ["gfx950-cx7"], only_stage="vllm")
    [(name, target)] = targets.items()
    assert target["target"] == "vllm" and target["output"] == ["type=cacheonly"]
    assert [ref.split(":")[-1].rsplit("-", 1)[0] for ref in writes(targets)] == ["vllm"]
    assert target["contexts"]["src-vllm"].endswith(rendering().cells[0].plan.pins["vllm"].commit)


@pytest.mark.parametrize("bad", ["", "registry.example.com", "Registry.example.com/x", "host/x;rm -rf /"])
def test_a_cache_that_is_not_registry_slash_repo_is_refused(bad: str) -> None:
    r = rendering()
    with pytest.raises(EpbuildError, match="expected REGISTRY/REPO"):
        plan(bad, r.cells, r.cells)


def test_a_stage_the_cells_lack_is_refused_naming_those_they_have() -> None:
    r = rendering()
    thor2 = [rc for rc in r.cells if rc.cell.nic == "thor2"]
    with pytest.raises(EpbuildError, match="rdma-core.*they have: .*vllm"):
        plan(REPO, thor2, r.cells, only_stage="rdma-core")


def test_a_reader_without_push_rights_imports_and_writes_nothing() -> None:
    targets = overlay(rendering(), ["gfx950-cx7"], export="none")
    assert writes(targets) == [] and list(targets) == ["gfx950-cx7"]
    assert len(targets["gfx950-cx7"]["cache-from"]) == len(overlay(rendering(), ["gfx950-cx7"])["gfx950-cx7"]["cache-from"])


def test_push_goes_through_the_reproducible_layout_under_the_immutable_tag(tmp_path: Path) -> None:
    import json

    from epbuild.build import records, reproducible
    from epbuild.build.bake_command import BuildOptions, bake_command
    from epbuild.inputs.resolve import Resolved
    from epbuild.render.content_key import content_key

    r = rendering()
    [rc] = [rc for rc in r.cells if rc.cell.name == "gfx950-cx7"]
    layout_file = tmp_path / reproducible.OVERRIDE_FILE
    layout_file.write_text(reproducible.bake_override([rc], {}, ROOT))
    argv = bake_command(r, ROOT, ["gfx950-cx7"], BuildOptions(push="reg.example.com/staging"),
                        reproducible_file=layout_file)
    assert "--load" not in argv and "--set" not in argv
    # The engine's exporter cannot push with rewrite-timestamp (it always unpacks): the cell goes to its layout.
    [output] = json.loads(layout_file.read_text())["target"]["gfx950-cx7"]["output"]
    assert output.startswith("type=oci,") and "rewrite-timestamp=true" in output
    # The tag carries the content key, known once the build resolved its inputs: the run's resolved bake file.
    resolved = Resolved(base_digests={rc.cell.base: "sha256:" + "1" * 64},
                        commits={name: pin.commit.ljust(40, "0") for name, pin in rc.plan.pins.items()})
    override, keys = records.write(tmp_path, [rc], resolved, push="reg.example.com/staging")
    name = r.matrix.model.image.name
    assert keys["gfx950-cx7"] == content_key(rc, resolved)
    assert json.loads(override.read_text())["target"]["gfx950-cx7"]["tags"] == [
        f"reg.example.com/staging/{name}:gfx950-cx7-{keys['gfx950-cx7'][:12]}"]


def test_a_cache_ref_not_yet_in_the_registry_fails_no_cell() -> None:
    from epbuild.build.buildreport import failed_targets
    from epbuild.build.progress import Progress

    r = rendering()
    cells = [rc for rc in r.cells if rc.cell.name in ("gfx950-cx7", "gfx950-thor2")]
    progress = Progress()
    invocation = progress.start(["gfx950-cx7", "gfx950-thor2"])
    # As BuildKit prints a cold --cache build whose thor2 deepep step then fails (lines from a real bake.log).
    for line in [
        "#33 [gfx950-cx7] importing cache manifest from 127.0.0.1:57841/fleet/cache:aiter-2cd8e460e9e7c81ef60d3e59",
        "#33 ERROR: failed to configure registry cache importer: 127.0.0.1:57841/fleet/cache:aiter-2cd8: not found",
        "#40 [gfx950-thor2 deepep 1/1] RUN --mount=type=bind,from=src-deepep,target=/src/deepep,rw cd /src/deepep",
        "#40 ERROR: process \"/bin/sh -c cd /src/deepep\" did not complete successfully: exit code: 1",
    ]:
        progress.feed(line, invocation)
    failed = failed_targets(progress, invocation, ["gfx950-cx7", "gfx950-thor2"], cells)
    assert list(failed) == ["gfx950-thor2"]


def test_steps_fetched_from_an_imported_cache_do_not_count_as_executed() -> None:
    """Vertices of a real bake.log (a cell step importing the stage cache on a fresh engine): rocshmem (#35) was
    printed CACHED then fetched, deepep (#45) only fetched; final's pip install (#50) really ran."""
    from epbuild.build.progress import Progress

    progress = Progress()
    # A cell step: the cell and the stage-cache targets of its stages, so BuildKit prefixes every vertex.
    invocation = progress.start(["gfx950-thor2", "stage-rocshmem-a2857143b12e", "stage-deepep-358bf5618810"])
    for line in (Path(__file__).parent / "data" / "registry-cache-bake.log").read_text().splitlines():
        progress.feed(line, invocation)
    assert {v.id: v.status for v in progress.runs()} == {35: "DONE", 45: "DONE", 50: "DONE"}
    assert [(v.id, v.stage) for v in progress.executed_runs()] == [(50, "final")]


def test_the_stage_caches_targets_get_the_epochs_of_the_cell_they_are_built_from() -> None:
    """A stage target built without the epochs its cell passes would be another build of the stage (its RUN
    steps read them), so its cache ref would never serve the reproducible cell."""
    from epbuild.build import reproducible

    r = rendering()
    cells = [rc for rc in r.cells if rc.cell.name in ("gfx950-cx7", "gfx950-thor2")]
    cache = plan("reg.example.com/cache", cells, r.cells)
    epochs = {name: 1_700_000_000 + i for i, name in enumerate(sorted({n for rc in cells for n in rc.plan.pins}))}
    targets = json.loads(reproducible.bake_override(
        cells, epochs, ROOT, {t: s.cell for t, s in cache.stage_targets.items()}))["target"]
    assert cache.stage_targets
    for target, stage in cache.stage_targets.items():
        assert targets[target] == {"args": targets[stage.cell.cell.name]["args"]}, target
    for rc in cells:
        assert "SOURCE_DATE_EPOCH_VLLM" in targets[rc.cell.name]["args"]
