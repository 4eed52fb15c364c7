"""`invoke gc` (epbuild/build/garbage.py) on a checkout laid out as the offline example's builds leave it: what the
matrix needs is kept (the expectation read from the committed bake file and the matrix file, not from gc's own
code), what old pins, dropped cells and unnamed repositories left goes, the bytes it reports freed are what `du`
sees go, and nothing goes while a build holds it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from epbuild.build import blobstore, buildlock, garbage, reproducible
from epbuild.cli import project
from epbuild.inputs.git_mirrors import GitMirrors
from epbuild.inputs.source_requests import requests_for
from epbuild.util.commands import Runner
from epbuild.util.errors import EpbuildError

OFFLINE = project.ROOT / "examples" / "offline"
OLD = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def rendering():  # type: ignore[no-untyped-def]
    return project.rendering(str(OFFLINE / "matrix.yaml"))


def bake_contexts() -> set[str]:
    bake = json.loads((OFFLINE / "images" / "docker-bake.json").read_text())
    return {path for target in bake["target"].values() for path in target["contexts"].values()}


def archive_downloads() -> set[str]:
    """Every archive the matrix file pins, as the build keeps its download (named by the full sha256)."""
    matrix = yaml.safe_load((OFFLINE / "matrix.yaml").read_text())
    return {f"build/archives/downloads/{value['sha256']}.tar" for pin in matrix["components"].values()
            for value in pin.values() if isinstance(value, dict) and "sha256" in value}


def du_bytes(folder: Path) -> int:
    return int(subprocess.run(["du", "-s", "--block-size=1", str(folder)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def put(path: Path, size: int = 5000, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def blob(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"sha256:{digest}"


def layout_with(layout: Path, layers: list[bytes], stale: list[bytes] = ()) -> None:  # type: ignore[assignment]
    """An OCI image layout naming one image of these layers, plus blobs of an earlier export it no longer names."""
    descriptors = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(layout, data),
                    "size": len(data)} for data in layers]
    config = b'{"architecture":"amd64"}' + os.urandom(8)
    manifest = json.dumps({"schemaVersion": 2, "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                                           "digest": blob(layout, config), "size": len(config)},
                           "layers": descriptors}).encode()
    digest = blob(layout, manifest)
    for data in stale:
        blob(layout, data)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(manifest)}]}))


@pytest.fixture
def checkout(tmp_path: Path, rendering) -> dict[str, set[Path]]:  # type: ignore[no-untyped-def]
    """A checkout with what the example needs and what an earlier matrix left; returns both, by path."""
    needed = {tmp_path / p for p in bake_contexts() | archive_downloads()}
    for path in needed:
        put(path / "data" if "/downloads/" not in str(path) else path)
    gone: set[Path] = set()
    # A pin the matrix moved away from: its export (with its record and lock), version, wheelhouses, crates.
    for rel in (f"build/sources/deepep-{OLD}", f"build/scm/vllm-{OLD}", f"build/wheelhouse/vllm-{OLD}-sid",
                f"build/crates/vllm-{OLD}", "build/archives/triton-kernels-00000000deadbeef",
                f"build/archives/downloads/{'0' * 64}.tar", "build/vendor/io-0000000000000000"):
        gone.add(put(tmp_path / rel / "f") .parent if not rel.endswith(".tar") else put(tmp_path / rel))
    for suffix in (".export.json", ".lock"):
        gone.add(put(tmp_path / f"build/sources/deepep-{OLD}{suffix}", 100))
    gone.add(put(tmp_path / f"build/wheelhouse/vllm-{OLD}-sid.stamp.json", 100))  # beside its folder (wheelhouse.py)
    # Not named after a pin: not gc's to judge.
    put(tmp_path / "build" / "sources" / "NOTES")
    put(tmp_path / "build" / "logs" / "run-1" / "bake.log")
    # Layouts: a current cell's (with a blob of an earlier export) and a dropped cell's, sharing the base layer.
    base, own, old = os.urandom(300_000), os.urandom(20_000), os.urandom(40_000)
    kept = reproducible.oci_layout(tmp_path, "gfx950-cx7-sid")
    dropped = reproducible.oci_layout(tmp_path, "gfx999-cx7-sid")
    layout_with(kept, [base], stale=[old])
    layout_with(dropped, [base, own])
    reproducible.layout_lock(tmp_path, "gfx999-cx7-sid").write_text("")
    store = blobstore.store_path(tmp_path)
    blobstore.share(store, kept)
    blobstore.share(store, dropped)
    gone.add(dropped)
    gone.add(kept / "blobs" / "sha256" / hashlib.sha256(old).hexdigest())
    # Mirrors: each repository the matrix names and a submodule one of its exports records are kept.
    mirrors = GitMirrors(tmp_path, Runner())
    vllm_url = requests_for(rendering.matrix, ["vllm"], {})[0].url
    vllm_export = next(p for p in needed if p.parent.name == "sources" and p.name.startswith("vllm-"))
    (vllm_export / ".gitmodules").write_text('[submodule "kernels"]\n\tpath = third_party/kernels\n'
                                             '\turl = ../kernels.git\n')
    for request in requests_for(rendering.matrix, list(rendering.matrix.model.components.pins()), {}):
        put(mirrors.mirror_for(request.url) / "HEAD", 30)
    submodule = mirrors.mirror_for(vllm_url.rsplit("/", 1)[0] + "/kernels.git")
    put(submodule / "HEAD", 30)
    stale_mirror = mirrors.mirror_for("https://example.com/dropped/repo.git")
    put(stale_mirror / "objects" / "pack" / "p.pack")
    gone |= {stale_mirror}
    return {"needed": needed | {submodule}, "gone": gone}


def listed(planned: garbage.Plan) -> set[Path]:
    return {item.path for item in planned.items if not item.blob} | {
        item.path for item in planned.items if item.blob and "oci-store" not in str(item.path)}


def test_the_plan_lists_what_nothing_current_needs(tmp_path: Path, checkout, rendering) -> None:  # type: ignore[no-untyped-def]
    planned = garbage.plan(tmp_path, garbage.needed([rendering], tmp_path))
    main_paths = listed(planned)
    # The export's record and lock go with it (sidecars), not as items of their own.
    expected = {p for p in checkout["gone"] if not p.name.endswith((".export.json", ".lock", ".stamp.json"))}
    assert main_paths == expected
    sidecars = {s for item in planned.items for s in item.sidecars}
    assert {tmp_path / f"build/sources/deepep-{OLD}{x}" for x in (".export.json", ".lock")} <= sidecars
    assert tmp_path / f"build/wheelhouse/vllm-{OLD}-sid.stamp.json" in sidecars
    # The dropped cell's own layer goes from the store; the base layer the kept cell still names stays.
    store_items = {item.path.name for item in planned.items if "oci-store" in str(item.path)}
    dropped = reproducible.oci_layout(tmp_path, "gfx999-cx7-sid")
    kept = reproducible.oci_layout(tmp_path, "gfx950-cx7-sid")
    dropped_only = {p.name for p in (dropped / "blobs" / "sha256").iterdir()} - {
        p.name for p in (kept / "blobs" / "sha256").iterdir()}
    stale_in_kept = {i.path.name for i in planned.items if i.blob and str(kept) in str(i.path)}
    assert store_items == dropped_only | stale_in_kept


def test_removing_frees_what_it_reports_and_keeps_every_need(tmp_path: Path, checkout, rendering) -> None:  # type: ignore[no-untyped-def]
    need = garbage.needed([rendering], tmp_path)
    planned = garbage.plan(tmp_path, need)
    before = du_bytes(tmp_path / "build")
    freed, held = garbage.collect(tmp_path, planned)
    after = du_bytes(tmp_path / "build")
    assert held == [] and freed == planned.freed and before - after == freed
    assert all(p.exists() for p in checkout["needed"])
    assert not any(os.path.lexists(p) for p in checkout["gone"])
    assert (tmp_path / "build" / "sources" / "NOTES").exists() and (tmp_path / "build" / "logs").is_dir()
    kept = reproducible.oci_layout(tmp_path, "gfx950-cx7-sid")
    assert reproducible.unreferenced_blobs(kept) == []
    for path in (kept / "blobs" / "sha256").iterdir():  # the kept image is whole, its blobs still in the store
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name and path.stat().st_nlink == 2
    assert garbage.plan(tmp_path, need).items == []  # a second run finds nothing


def test_keep_keeps_the_newest_leftovers_of_each_kind(tmp_path: Path, rendering) -> None:  # type: ignore[no-untyped-def]
    now = time.time()
    ages = {"a" * 40: 300, "b" * 40: 200, "c" * 40: 100}
    for commit, age in ages.items():
        put(tmp_path / f"build/wheelhouse/vllm-{commit}-sid/w.whl", mtime=now - age)
        os.utime(tmp_path / f"build/wheelhouse/vllm-{commit}-sid", (now - age, now - age))
    put(tmp_path / f"build/wheelhouse/vllm-{'d' * 40}-trixie/w.whl")
    planned = garbage.plan(tmp_path, garbage.needed([rendering], tmp_path), keep=1)
    names = {item.path.name for item in planned.items}
    # Newest of vllm-*-sid (c) and of vllm-*-trixie (d) are kept; the older two go.
    assert names == {f"vllm-{'a' * 40}-sid", f"vllm-{'b' * 40}-sid"}


def test_nothing_is_removed_while_a_build_runs(tmp_path: Path, checkout, rendering) -> None:  # type: ignore[no-untyped-def]
    planned = garbage.plan(tmp_path, garbage.needed([rendering], tmp_path))
    with buildlock.build_running(tmp_path):
        with pytest.raises(EpbuildError, match="a build from this checkout is running"):
            garbage.collect(tmp_path, planned)
    assert all(os.path.lexists(p) for p in checkout["gone"])


def test_a_layout_a_build_holds_is_kept(tmp_path: Path, checkout, rendering) -> None:  # type: ignore[no-untyped-def]
    planned = garbage.plan(tmp_path, garbage.needed([rendering], tmp_path))
    dropped = reproducible.oci_layout(tmp_path, "gfx999-cx7-sid")
    with reproducible.layouts_held(tmp_path, ["gfx999-cx7-sid"]):
        freed, held = garbage.collect(tmp_path, planned)
    assert [item.path for item in held] == [dropped] and dropped.is_dir()
    for path in (dropped / "blobs" / "sha256").iterdir():  # its blobs were not swept from under it
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name


def test_the_task_lists_by_default_and_rejects_a_negative_keep(tmp_path: Path, checkout, rendering) -> None:  # type: ignore[no-untyped-def]
    lines = garbage.run([rendering], tmp_path)
    assert lines[-1].startswith("would free ") and "invoke gc --yes" in lines[-1]
    assert any(f"build/sources/deepep-{OLD}" in line for line in lines)
    assert all(os.path.lexists(p) for p in checkout["gone"])
    with pytest.raises(EpbuildError, match="--keep"):
        garbage.run([rendering], tmp_path, keep=-1)


def test_mirrors_are_kept_while_an_export_to_read_submodules_from_is_missing(tmp_path: Path, checkout,  # type: ignore[no-untyped-def]
                                                                            rendering) -> None:
    import shutil

    export = next(p for p in checkout["needed"] if p.parent.name == "sources" and p.name.startswith("deepep-"))
    shutil.rmtree(export)
    planned = garbage.plan(tmp_path, garbage.needed([rendering], tmp_path))
    assert not any(item.path.name.endswith(".git") for item in planned.items)
    assert any("mirrors kept" in note and export.name in note for note in planned.notes)


def test_a_layout_whose_build_did_not_finish_goes_whole(tmp_path: Path, rendering) -> None:  # type: ignore[no-untyped-def]
    unfinished = reproducible.oci_layout(tmp_path, "gfx950-cx7-sid")
    torn = reproducible.oci_layout(tmp_path, "gfx950-io-sid")
    blob(unfinished, os.urandom(1000))
    blob(torn, os.urandom(1000))
    (torn / "index.json").write_text('{"schemaVersion":2,"manifests":[{"mediaT')
    planned = garbage.plan(tmp_path, garbage.needed([rendering], tmp_path))
    assert {item.path: item.why for item in planned.items} == {
        unfinished: "layout without an image (its build did not finish)",
        torn: "layout with a torn index (a killed build's)"}
