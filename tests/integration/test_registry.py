"""Publish and pull against a real registry on 127.0.0.1: publish -> remove -> pull -> test; republishing pushes
nothing; pulling an unpublished key explains itself; a publish killed between its two tag writes leaves the moving
tag on the old image; a build that re-tags the cell during a publish, or a wrong image under the immutable tag,
never puts a tag on an image with another content key."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

# Each pins stand-in commits through matrix_variant, which reads the stand-ins' commits.json.
pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("stand_in_repos")]

from epbuild.offline import matrix_variant
from epbuild.registry.reads import local_image, remote_digest, remote_image
from epbuild.render.manifest import KEY_LABEL

from harness import ROOT, InvokeResult, cells_json, invoke
from registry import Registry

CELL = "gfx950-cx7-sid"
IMAGE = "epbuild-registry-test/stack"


@pytest.fixture(scope="module")
def matrices(tmp_path_factory: pytest.TempPathFactory, docker_engine: None) -> dict[str, str]:
    """The offline matrix, and the same with vLLM moved, under an image name of these tests' own: another checkout
    building the example meanwhile never moves the local tags these tests use, nor these tests its tags."""
    out = {}
    for kind, moved in (("default", []), ("moved", ["vllm"])):
        path = matrix_variant(tmp_path_factory.mktemp(kind), moved=moved, image_name=IMAGE)
        invoke("render", "--matrix", str(path), check=True)
        out[kind] = str(path)
    return out


def build(matrix: str, cell: str = CELL) -> None:
    invoke("build", "--matrix", matrix, "--cell", cell, "--quiet", check=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, docker_engine: None) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry"))
    try:
        yield reg
    finally:
        reg.stop()


def names(reg: Registry, namespace: str, matrix: str) -> dict[str, str]:
    cell = cells_json(matrix)[CELL]
    repository = f"{reg.address}/{namespace}/{cell['image'].split(':')[0]}"
    return {"repository": repository, "path": repository.split("/", 1)[1], "key": cell["content_key"],
            "immutable": f"{repository}:{CELL}-{cell['content_key'][:12]}", "moving": f"{repository}:{CELL}",
            "local": cell["image"]}


@pytest.fixture(scope="module")
def published(registry: Registry, matrices: dict[str, str], offline_build: InvokeResult) -> dict[str, str]:
    build(matrices["default"])
    result = invoke("publish", "--matrix", matrices["default"], "--cell", CELL, "--registry",
                    f"{registry.address}/epbuild", check=True)
    assert " pushed (" in result.out
    found = names(registry, "epbuild", matrices["default"])
    digest = remote_digest(found["immutable"])
    assert digest and remote_digest(found["moving"]) == digest
    # The containerd image store (which setup-docker turns on) names an image by its index digest: the very
    # digest the registry now holds, so publishing by ID publishes that image and no other.
    assert local_image(found["local"]).id == digest
    return {**found, "digest": digest, "matrix": matrices["default"], "moved": matrices["moved"]}


def repo_digests(image: str) -> list[str]:
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", image],
                         capture_output=True, text=True, check=True).stdout
    return list(json.loads(out))


def start_publish(matrix: str, registry_address: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "invoke", "publish", "--matrix", matrix, "--cell", CELL,
                             "--registry", registry_address], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_hold(registry: Registry, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 1200
    while not registry.relay.held.wait(0.2):
        if process.poll() is not None:
            registry.relay.release(forward=False)
            raise AssertionError(f"the publish ended before writing {what}:\n"
                                 + (process.stdout.read().decode() if process.stdout else ""))
        assert time.monotonic() < deadline, f"the publish never wrote {what}"


def test_publish_remove_pull_and_check(registry: Registry, published: dict[str, str]) -> None:
    subprocess.run(["docker", "rmi", "--force", published["local"], published["immutable"], published["moving"]],
                   capture_output=True, check=True)
    assert subprocess.run(["docker", "image", "inspect", published["local"]], capture_output=True).returncode != 0
    pulled = invoke("pull", "--matrix", published["matrix"], "--cell", CELL, "--registry",
                    f"{registry.address}/epbuild", check=True)
    assert published["digest"] in pulled.out
    assert f"{published['repository']}@{published['digest']}" in repo_digests(published["local"])
    checked = invoke("test", "--matrix", published["matrix"], "--cell", CELL, "--quiet")
    assert checked.code == 0, checked.out + checked.err


def test_republishing_an_unchanged_cell_pushes_nothing(registry: Registry, published: dict[str, str]) -> None:
    again = invoke("publish", "--matrix", published["matrix"], "--cell", CELL, "--registry",
                   f"{registry.address}/epbuild", check=True)
    assert "nothing pushed" in again.out and "moving tags already there" in again.out
    replay = (again.run_dir / "replay.sh").read_text()
    assert "docker push" not in replay and "imagetools create" not in replay


def test_pulling_a_key_the_registry_lacks_says_so(registry: Registry, published: dict[str, str]) -> None:
    matrix = published["moved"]
    result = invoke("pull", "--matrix", matrix, "--cell", CELL, "--registry", f"{registry.address}/epbuild")
    assert result.code != 0
    assert "the registry has no image for this checkout's content key" in result.err
    assert f"The moving tag {published['moving']} exists" in result.err
    assert "differs from this checkout in 1 input(s): vllm:" in result.err


def test_a_publish_killed_between_the_tag_writes_leaves_the_moving_tag_on_the_old_image(
        registry: Registry, published: dict[str, str]) -> None:
    matrix = published["moved"]
    build(matrix)
    new = names(registry, "epbuild", matrix)
    # Stop the publish as it writes the moving tag: by then the immutable tag must be complete in the registry.
    # (A layer upload cannot tell the order: docker uploads every layer before either manifest.)
    registry.relay.hold(f"/v2/{new['path']}/manifests/{CELL}")
    publisher = start_publish(matrix, f"{registry.address}/epbuild")
    try:
        wait_for_hold(registry, publisher, new["moving"])
        written = remote_image(new["immutable"])
        assert written is not None, "the moving tag was written before the immutable one"
        assert written.labels[KEY_LABEL] == new["key"]
    finally:
        os.killpg(publisher.pid, signal.SIGKILL)
        publisher.wait()
        registry.relay.release(forward=False)
    assert remote_digest(published["moving"]) == published["digest"]
    pulled = subprocess.run(["docker", "pull", "--quiet", published["moving"]], capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stderr
    # The next publish finds the immutable tag and finishes the move, inside the registry.
    again = invoke("publish", "--matrix", matrix, "--cell", CELL, "--registry", f"{registry.address}/epbuild",
                   check=True)
    assert "nothing pushed" in again.out and f"moved {new['moving']}" in again.out
    assert remote_digest(new["moving"]) == written.digest
    # Put the default matrix's image back (local tag and moving tag) for whatever runs next.
    invoke("pull", "--matrix", published["matrix"], "--cell", CELL, "--registry", f"{registry.address}/epbuild",
           check=True)
    invoke("publish", "--matrix", published["matrix"], "--cell", CELL, "--registry", f"{registry.address}/epbuild",
           check=True)
    assert remote_digest(published["moving"]) == published["digest"]


def test_moving_tags_get_the_digest_the_registry_holds_not_the_local_one(
        registry: Registry, published: dict[str, str]) -> None:
    # The immutable tag holds the same image as another manifest (pushed from another machine, or a rebuild of
    # another digest): the moving tag must name that manifest, copied inside the registry.
    build(published["matrix"])
    ours = names(registry, "restated", published["matrix"])
    held = registry.restate(published["path"], published["digest"], ours["path"], ours["immutable"].rsplit(":", 1)[1])
    assert held != local_image(ours["local"]).id
    result = invoke("publish", "--matrix", published["matrix"], "--cell", CELL, "--registry",
                    f"{registry.address}/restated")
    assert result.code == 0, result.out + result.err
    assert "nothing pushed" in result.out and f"moved {ours['moving']}" in result.out
    body, _ = registry.manifest(ours["path"], CELL)
    assert "sha256:" + hashlib.sha256(body).hexdigest() == held == remote_digest(ours["moving"])
    assert registry.requests("PUT", rf"/v2/{ours['path']}/blobs/uploads/.*") == []
    assert "docker push" not in (result.run_dir / "replay.sh").read_text()


def keys_in_registry(registry: Registry, found: dict[str, str]) -> dict[str, str]:
    """Every tag of the repository, with the content key of the image the registry holds for it."""
    out = {}
    for tag in registry.tags(found["path"]):
        held = remote_image(f"{found['repository']}:{tag}")
        assert held is not None
        out[tag] = held.labels.get(KEY_LABEL, "(none)")
    return out


def test_a_build_that_retags_the_cell_during_publish_moves_no_tag_to_its_image(
        registry: Registry, published: dict[str, str]) -> None:
    default, moved = published["matrix"], published["moved"]
    build(moved)
    build(default)
    ours, theirs = names(registry, "race", default), names(registry, "race", moved)
    assert local_image(ours["local"]).labels[KEY_LABEL] == ours["key"]
    # Hold the publish right after its first use of the image (the immutable tag's manifest) while another
    # process builds the other matrix's cell, re-tagging the local image the publish started from.
    registry.relay.hold(f"/v2/{ours['path']}/manifests/{CELL}-{ours['key'][:12]}")
    publisher = start_publish(default, f"{registry.address}/race")
    try:
        wait_for_hold(registry, publisher, ours["immutable"])
        build(moved)
        assert local_image(ours["local"]).labels[KEY_LABEL] == theirs["key"], "the build did not re-tag the cell"
    finally:
        registry.relay.release(forward=True)
    output = publisher.communicate(timeout=1200)[0].decode()
    assert publisher.returncode == 0, output
    assert keys_in_registry(registry, ours) == {f"{CELL}-{ours['key'][:12]}": ours["key"], CELL: ours["key"]}
    invoke("pull", "--matrix", published["matrix"], "--cell", CELL, "--registry", f"{registry.address}/epbuild",
           check=True)


def test_a_wrong_image_under_the_immutable_tag_is_refused(registry: Registry, published: dict[str, str]) -> None:
    default, moved = published["matrix"], published["moved"]
    ours, theirs = names(registry, "wrong", default), names(registry, "wrong", moved)
    build(moved)
    other = local_image(theirs["local"])
    assert other is not None and other.labels[KEY_LABEL] == theirs["key"]
    subprocess.run(["docker", "tag", other.id, ours["immutable"]], check=True)
    subprocess.run(["docker", "push", "--quiet", ours["immutable"]], check=True, capture_output=True)
    invoke("pull", "--matrix", published["matrix"], "--cell", CELL, "--registry", f"{registry.address}/epbuild",
           check=True)
    result = invoke("publish", "--matrix", published["matrix"], "--cell", CELL, "--registry",
                    f"{registry.address}/wrong")
    assert result.code == 2, result.out + result.err
    assert f"carries content key {theirs['key'][:12]}, not {ours['key'][:12]}" in result.err
    assert registry.tags(ours["path"]) == [f"{CELL}-{ours['key'][:12]}"]
    pulled = invoke("pull", "--matrix", published["matrix"], "--cell", CELL, "--registry", f"{registry.address}/wrong")
    assert pulled.code == 2 and "nothing was pulled" in pulled.err, pulled.out + pulled.err
    assert local_image(ours["local"]).labels[KEY_LABEL] == ours["key"]


def test_a_broken_image_in_the_registry_is_not_an_absent_one(registry: Registry, published: dict[str, str]) -> None:
    broken = names(registry, "broken", published["matrix"])
    subprocess.run(["docker", "buildx", "imagetools", "create", "--tag", broken["immutable"],
                    f"{published['repository']}@{published['digest']}"], check=True, capture_output=True)
    index = json.loads(raw_manifest(broken["immutable"]))
    [image] = [m for m in index["manifests"] if m["platform"]["os"] == "linux"]
    config = json.loads(raw_manifest(f"{broken['repository']}@{image['digest']}"))["config"]["digest"]
    registry.forget_blob(broken["path"], config)
    result = invoke("pull", "--matrix", published["matrix"], "--cell", CELL, "--registry",
                    f"{registry.address}/broken", "--build")
    assert result.code == 2, result.out + result.err
    assert f"cannot read {broken['immutable']} from its registry" in result.err and config in result.err
    assert "building it instead" not in result.out


def raw_manifest(ref: str) -> str:
    return subprocess.run(["docker", "buildx", "imagetools", "inspect", "--raw", ref], capture_output=True, text=True,
                          check=True).stdout


def test_pull_build_builds_what_the_registry_lacks(registry: Registry, published: dict[str, str]) -> None:
    cell = "gfx942-thor2-sid"
    expected = cells_json(published["matrix"])[cell]
    build(published["matrix"], cell)
    # No image under the local tag, so only a real build can bring it back (BuildKit may reuse its cache).
    subprocess.run(["docker", "rmi", "--force", expected["image"]], capture_output=True, check=True)
    result = invoke("pull", "--matrix", published["matrix"], "--cell", cell, "--registry",
                    f"{registry.address}/nothing-here", "--build")
    assert result.code == 0, result.out + result.err
    assert "the registry has no image for this checkout's content key" in result.out
    assert "building it instead" in result.out and f"{cell}  ok" in result.out
    built = local_image(expected["image"])
    assert built is not None and built.labels[KEY_LABEL] == expected["content_key"]


def test_ci_publishes_the_digest_it_built_never_a_staging_image_with_the_right_key(
        registry: Registry, published: dict[str, str], tmp_path) -> None:
    """Issue #28: staging holds `<cell>-<key12>` with the right content key but another digest (what a branch, or
    a pull request, could have pushed first). CI's build step still pushes its own image and hands on its digest;
    the publish step pulls and publishes exactly that digest, and a production immutable tag naming another
    digest is refused."""
    ours = published["digest"]
    local = local_image(published["local"])
    assert local is not None and local.id == ours
    staging = names(registry, "staging", published["matrix"])
    tag = staging["immutable"].rsplit(":", 1)[1]
    planted = registry.restate(published["path"], ours, staging["path"], tag)
    assert planted != ours and remote_image(staging["immutable"]).labels[KEY_LABEL] == staging["key"]
    # The build step: `invoke publish --staging` pushes even though staging holds the tag.
    digest_file = tmp_path / "digest"
    pushed = invoke("publish", "--matrix", published["matrix"], "--cell", CELL, "--registry",
                    f"{registry.address}/staging", "--staging", "--digest-file", str(digest_file))
    assert pushed.code == 0, pushed.out + pushed.err
    assert digest_file.read_text().strip() == ours == remote_digest(staging["immutable"])
    assert registry.tags(staging["path"]) == [tag]  # staging gets no moving tag
    # Someone plants the other image again after the build step: the digest hand-off makes it irrelevant.
    assert registry.restate(published["path"], ours, staging["path"], tag) == planted
    pulled = invoke("pull", "--matrix", published["matrix"], "--cell", CELL, "--registry",
                    f"{registry.address}/staging", "--digest", ours)
    assert pulled.code == 0 and f"pulled {ours}" in pulled.out, pulled.out + pulled.err
    production = names(registry, "production", published["matrix"])
    result = invoke("publish", "--matrix", published["matrix"], "--cell", CELL, "--registry",
                    f"{registry.address}/production", "--digest", ours)
    assert result.code == 0, result.out + result.err
    assert remote_digest(production["immutable"]) == ours == remote_digest(production["moving"])
    body, _ = registry.manifest(production["path"], CELL)
    assert "sha256:" + hashlib.sha256(body).hexdigest() == ours != planted
    # A production immutable tag that names another digest is never overwritten nor followed.
    other = names(registry, "taken", published["matrix"])
    registry.restate(published["path"], ours, other["path"], tag)
    refused = invoke("publish", "--matrix", published["matrix"], "--cell", CELL, "--registry",
                     f"{registry.address}/taken", "--digest", ours)
    assert refused.code == 2, refused.out + refused.err
    assert f"names {planted}, not {ours}" in refused.err and "nothing was moved" in refused.err
    assert registry.tags(other["path"]) == [tag]


def test_a_digest_the_registry_lacks_or_a_foreign_image_is_not_pulled(registry: Registry,
                                                                      published: dict[str, str]) -> None:
    missing = "sha256:" + hashlib.sha256(b"no such image").hexdigest()
    result = invoke("pull", "--matrix", published["matrix"], "--cell", CELL, "--registry",
                    f"{registry.address}/epbuild", "--digest", missing)
    assert result.code == 2 and "docker pull" in result.err and "Traceback" not in result.err, result.err
    empty = invoke("pull", "--matrix", published["matrix"], "--cell", CELL, "--registry",
                   f"{registry.address}/epbuild", "--digest", "")
    assert empty.code == 2 and "is the variable that should hold it unset?" in empty.err
    # The image of the other matrix (vLLM moved) under its own digest: its labels show other pins.
    build(published["moved"])
    theirs = names(registry, "foreign", published["moved"])
    invoke("publish", "--matrix", published["moved"], "--cell", CELL, "--registry", f"{registry.address}/foreign",
           check=True)
    foreign = remote_digest(theirs["immutable"])
    result = invoke("pull", "--matrix", published["matrix"], "--cell", CELL, "--registry",
                    f"{registry.address}/foreign", "--digest", foreign)
    assert result.code == 2 and "was built from" in result.err, result.out + result.err
