"""epbuild's registry reads (epbuild/registry/reads.py, through the HTTP API client) against the real Debian
docker-registry on 127.0.0.1, through three doors to one storage: open, Basic (htpasswd) and Bearer (`auth: token`
with the token service of tests/integration/token_service.py, the scheme Docker Hub and ghcr.io use). The images
are written through the open door with the registry's own HTTP API (registry.put_image), and every expected
digest is the sha256 of the bytes the registry itself serves; the expected labels are those written.

Only one test needs the engine (`docker login`, for EPBUILD_REGISTRY_USER/_PASSWORD); the rest need only
docker-registry, which ci/setup.sh installs."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from epbuild.registry import reads
from epbuild.registry.api import copy_manifest
from epbuild.registry.credentials import PASSWORD_ENV, USER_ENV, registry_login
from epbuild.registry.errors import RegistryUnauthorised, RegistryUnreachable, RegistryUnreadable
from epbuild.util.commands import Runner

from netservers import closed_port
from registry import Registry, put_image
from token_service import TokenService

USER, PASSWORD = "epbuild-reader", "c0rrect-h0rse:battery"
OCI_INDEX, OCI_MANIFEST = "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json"
# The OCI architecture of this machine, as `uname -m` names it (what docker pulls from a multi-platform index).
THIS_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]
OTHER_ARCH = {"amd64": "arm64", "arm64": "amd64"}[THIS_ARCH]


@dataclass
class Doors:
    open: Registry
    basic: Registry
    token: Registry
    tokens: TokenService


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doors]:
    folder = tmp_path_factory.mktemp("registry-reads")
    for name in ("open", "basic", "token"):
        (folder / name).mkdir()
    tokens = TokenService(folder, USER, PASSWORD)
    started: list[Registry] = []
    try:
        started.append(Registry(folder / "open"))
        storage = started[0].storage
        started.append(Registry(folder / "basic", login=(USER, PASSWORD), storage=storage))
        started.append(Registry(folder / "token", storage=storage, token_auth=tokens.registry_settings))
        yield Doors(*started, tokens)
    finally:
        for reg in started:
            reg.stop()
        tokens.stop()


@pytest.fixture
def no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty docker config: reads go out without credentials."""
    folder = tmp_path / "docker"
    folder.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    for name in (USER_ENV, PASSWORD_ENV):
        monkeypatch.delenv(name, raising=False)
    return folder


def log_in(config: Path, host: str, password: str = PASSWORD) -> None:
    """What `docker login` writes without a credential store."""
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def served_digest(reg: Registry, repository: str, reference: str) -> str:
    """The digest of the bytes the registry serves for `repository:reference`."""
    return sha256(reg.manifest(repository, reference)[0])


def descriptor(reg: Registry, repository: str, tag: str, os_arch: str, **annotations: str) -> dict[str, object]:
    body, media_type = reg.manifest(repository, tag)
    os_name, arch = os_arch.split("/")
    entry: dict[str, object] = {"mediaType": media_type, "digest": sha256(body), "size": len(body),
                                "platform": {"os": os_name, "architecture": arch}}
    return {**entry, "annotations": annotations} if annotations else entry


def put_index(reg: Registry, repository: str, tag: str, entries: list[dict[str, object]]) -> str:
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    reg.put_manifest(repository, tag, body, OCI_INDEX)
    return sha256(body)


def test_a_tag_reads_as_the_digest_of_the_bytes_the_registry_serves(doors: Doors, no_login: Path) -> None:
    put_image(doors.open.address, "reads/plain", "v1", {"hello": b"world"}, {"io.example.colour": "green"})
    ref = f"{doors.open.address}/reads/plain:v1"
    expected = served_digest(doors.open, "reads/plain", "v1")
    assert reads.remote_digest(ref) == expected
    assert reads.remote_image(ref) == reads.RemoteImage(expected, {"io.example.colour": "green"})
    assert reads.has_manifest(ref) and reads.remote_image(f"{doors.open.address}/reads/plain@{expected}")


def test_an_index_reads_as_its_own_digest_with_the_labels_of_this_machine_s_image(doors: Doors,
                                                                                   no_login: Path) -> None:
    """A multi-platform index beside a BuildKit-style attestation: the index's digest (what `docker pull
    ref@digest` takes) and the labels of the image for this machine's architecture."""
    for arch in ("amd64", "arm64"):
        put_image(doors.open.address, "reads/multi", arch, {"arch": arch.encode()}, {"arch": arch})
    put_image(doors.open.address, "reads/multi", "provenance", {"in-toto": b"{}"}, {"kind": "attestation"})
    entries = [descriptor(doors.open, "reads/multi", OTHER_ARCH, f"linux/{OTHER_ARCH}"),
               descriptor(doors.open, "reads/multi", THIS_ARCH, f"linux/{THIS_ARCH}"),
               descriptor(doors.open, "reads/multi", "provenance", "unknown/unknown",
                          **{"vnd.docker.reference.type": "attestation-manifest"})]
    written = put_index(doors.open, "reads/multi", "index", entries)
    assert served_digest(doors.open, "reads/multi", "index") == written
    held = reads.remote_image(f"{doors.open.address}/reads/multi:index")
    assert held == reads.RemoteImage(written, {"arch": THIS_ARCH})
    assert reads.remote_digest(f"{doors.open.address}/reads/multi:index") == written


def test_an_index_of_one_image_reads_as_that_image_whatever_its_platform(doors: Doors, no_login: Path) -> None:
    """What a single-platform BuildKit push holds: one image and its attestation (as `imagetools inspect` did)."""
    put_image(doors.open.address, "reads/single", "image", {"a": b"b"}, {"only": "one"})
    put_image(doors.open.address, "reads/single", "provenance", {"in-toto": b"[]"}, {"kind": "attestation"})
    written = put_index(doors.open, "reads/single", "index", [
        descriptor(doors.open, "reads/single", "image", f"linux/{OTHER_ARCH}"),
        descriptor(doors.open, "reads/single", "provenance", "unknown/unknown",
                   **{"vnd.docker.reference.type": "attestation-manifest"})])
    assert reads.remote_image(f"{doors.open.address}/reads/single:index") == reads.RemoteImage(written,
                                                                                               {"only": "one"})


def test_a_missing_tag_or_repository_is_absent(doors: Doors, no_login: Path) -> None:
    put_image(doors.open.address, "reads/present", "v1", {"x": b"y"})
    for ref in (f"{doors.open.address}/reads/present:v2", f"{doors.open.address}/reads/never-pushed:v1",
                f"{doors.open.address}/reads/present@sha256:{'0' * 64}"):
        assert reads.remote_image(ref) is None and reads.remote_digest(ref) is None
        assert reads.remote_labels(ref) is None and not reads.has_manifest(ref)


def test_a_manifest_whose_config_is_gone_is_unreadable_not_absent(doors: Doors, no_login: Path) -> None:
    put_image(doors.open.address, "reads/broken", "v1", {"x": b"broken"}, {"a": "b"})
    config = json.loads(doors.open.manifest("reads/broken", "v1")[0])["config"]["digest"]
    doors.open.forget_blob("reads/broken", config)
    ref = f"{doors.open.address}/reads/broken:v1"
    with pytest.raises(RegistryUnreadable) as raised:
        reads.remote_image(ref)
    assert str(raised.value).startswith(f"cannot read {ref} from its registry: its config {config}: BLOB_UNKNOWN")
    assert reads.remote_digest(ref) == served_digest(doors.open, "reads/broken", "v1")  # the manifest is there


def test_nothing_listening_is_unreachable(no_login: Path) -> None:
    ref = f"127.0.0.1:{closed_port()}/reads/plain:v1"
    with pytest.raises(RegistryUnreachable, match=f"cannot read {ref} from its registry: cannot reach the registry"):
        reads.remote_digest(ref)


def test_basic_login_from_the_docker_config(doors: Doors, no_login: Path) -> None:
    put_image(doors.open.address, "reads/locked", "v1", {"x": b"locked"}, {"locked": "yes"})
    ref = f"{doors.basic.address}/reads/locked:v1"
    with pytest.raises(RegistryUnauthorised) as anonymous:
        reads.remote_image(ref)
    # docker-registry's own reason for a request without credentials.
    assert f"cannot read {ref}: the registry refused access" in str(anonymous.value)
    assert "UNAUTHORIZED: authentication required" in str(anonymous.value)
    log_in(no_login, doors.basic.address, "wrong")
    with pytest.raises(RegistryUnauthorised, match="UNAUTHORIZED: authentication required"):
        reads.remote_digest(ref)
    log_in(no_login, doors.basic.address)
    expected = served_digest(doors.open, "reads/locked", "v1")
    assert reads.remote_image(ref) == reads.RemoteImage(expected, {"locked": "yes"})


@pytest.mark.docker
def test_basic_login_from_the_epbuild_variables(doors: Doors, no_login: Path, monkeypatch: pytest.MonkeyPatch,
                                                docker_engine: None) -> None:
    """EPBUILD_REGISTRY_USER/_PASSWORD reach the reads the way publish and pull hand them to docker (the
    throw-away config's credential helper, epbuild/registry/credentials.py)."""
    put_image(doors.open.address, "reads/by-variables", "v1", {"x": b"vars"}, {"by": "variables"})
    ref = f"{doors.basic.address}/reads/by-variables:v1"
    monkeypatch.setenv(USER_ENV, USER)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    with registry_login(doors.basic.address, Runner()):
        held = reads.remote_image(ref)
    assert held == reads.RemoteImage(served_digest(doors.open, "reads/by-variables", "v1"), {"by": "variables"})
    with pytest.raises(RegistryUnauthorised):  # the login ended with the block
        reads.remote_image(ref)


def test_bearer_anonymous_reads_what_the_token_service_grants_anyone(doors: Doors, no_login: Path) -> None:
    put_image(doors.open.address, "public/small", "v1", {"x": b"public"}, {"open": "to all"})
    put_image(doors.open.address, "private/small", "v1", {"x": b"private"}, {"open": "to one"})
    seen = len(doors.tokens.requests)
    ref = f"{doors.token.address}/public/small:v1"
    assert reads.remote_image(ref) == reads.RemoteImage(served_digest(doors.open, "public/small", "v1"),
                                                        {"open": "to all"})
    assert reads.has_manifest(ref) and not reads.has_manifest(f"{doors.token.address}/public/small:v2")
    asked = doors.tokens.requests[seen:]
    assert asked and all(r["login"] is None and r["scopes"] == ["repository:public/small:pull"] for r in asked)
    private = f"{doors.token.address}/private/small:v1"
    with pytest.raises(RegistryUnauthorised) as raised:
        reads.remote_image(private)
    # The registry's own reason: the anonymous token grants nothing on private/.
    assert f"cannot read {private}: the registry refused access" in str(raised.value)
    assert "UNAUTHORIZED: authentication required" in str(raised.value)


def test_bearer_with_the_docker_login_reads_and_copies(doors: Doors, no_login: Path) -> None:
    put_image(doors.open.address, "private/copied", "v1", {"x": b"copied"}, {"copied": "yes"})
    log_in(no_login, doors.token.address)
    source_digest = served_digest(doors.open, "private/copied", "v1")
    seen = len(doors.tokens.requests)
    assert reads.remote_digest(f"{doors.token.address}/private/copied:v1") == source_digest
    written = copy_manifest(f"{doors.token.address}/private/copied@{source_digest}",
                            f"{doors.token.address}/private/copied:moved")
    assert written == source_digest == served_digest(doors.open, "private/copied", "moved")
    asked = doors.tokens.requests[seen:]
    assert [r["scopes"] for r in asked] == [["repository:private/copied:pull"], ["repository:private/copied:pull,push"]]
    assert all(r["login"] == USER for r in asked)


def test_bearer_with_a_wrong_password_is_refused_by_the_token_service(doors: Doors, no_login: Path) -> None:
    put_image(doors.open.address, "private/refused", "v1", {"x": b"refused"})
    log_in(no_login, doors.token.address, "wrong")
    ref = f"{doors.token.address}/private/refused:v1"
    with pytest.raises(RegistryUnauthorised) as raised:
        reads.remote_digest(ref)
    assert str(raised.value) == (f"cannot read {ref}: the token service of {doors.token.address} refused us: "
                                 f"UNAUTHORIZED: wrong password for {USER}")
