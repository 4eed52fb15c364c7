"""How the registry client reads an answer: only a 404 that says MANIFEST_UNKNOWN or NAME_UNKNOWN (or a bodiless
GET 404) is "absent"; a refusal, an unreachable or silent registry and any other error are each one line naming
the reference and the registry's own reason. The answers come from a small server on 127.0.0.1 speaking the
distribution spec's error format (docs/spec/api.md, "Errors"); tests/integration/test_registry_reads.py reads
the real docker-registry, and provokes the same cases there. Also: names read as docker reads them, Docker Hub's
included, and a blob redirected to another host gets no login."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from epbuild.registry import client, reads
from epbuild.registry.client import Reference
from epbuild.registry.errors import RegistryUnauthorised, RegistryUnreachable, RegistryUnreadable

from netservers import SilentServer

Answer = tuple[int, dict[str, str], bytes]


def errors(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


class CannedRegistry:
    """Answers each path with a set (status, headers, body); HEAD gets the headers without the body. With
    `authorization` set, a request without that header gets 401 and a Basic challenge. Records every request's
    method, path and Authorization header."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.authorization: str | None = None
        self.seen: list[tuple[str, str, str | None]] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, with_body: bool) -> None:
                canned.seen.append((self.command, self.path, self.headers.get("Authorization")))
                status, headers, body = canned.answers.get(self.path, (404, {}, errors("NOT_FOUND", "no route")))
                if canned.authorization and self.headers.get("Authorization") != canned.authorization:
                    status, headers = 401, {"WWW-Authenticate": 'Basic realm="test"'}
                    body = errors("UNAUTHORIZED", "authentication required")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer(True)

            def do_HEAD(self) -> None:
                self._answer(False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def canned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CannedRegistry]:
    (tmp_path / "docker").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    registry = CannedRegistry()
    yield registry
    registry.server.shutdown()


IMAGE_TYPE = "application/vnd.oci.image.manifest.v1+json"


def image(labels: dict[str, str]) -> tuple[bytes, bytes]:
    """An image manifest and the config it names."""
    config = json.dumps({"config": {"Labels": labels}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": IMAGE_TYPE, "layers": [], "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
        "digest": "sha256:" + hashlib.sha256(config).hexdigest()}}).encode()
    return manifest, config


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("answer", [
    (404, {}, errors("MANIFEST_UNKNOWN", "manifest unknown")),
    (404, {}, errors("NAME_UNKNOWN", "repository name not known to registry")),
    (404, {}, b""),
])
def test_only_the_registry_s_manifest_unknown_is_absent(canned: CannedRegistry, answer: Answer) -> None:
    canned.answers["/v2/t/small/manifests/nope"] = answer
    ref = f"{canned.host}/t/small:nope"
    assert reads.remote_image(ref) is None and reads.remote_digest(ref) is None and not reads.has_manifest(ref)


def test_a_404_that_is_not_the_registry_s_is_unreadable(canned: CannedRegistry) -> None:
    ref = f"{canned.host}/t/small:nope"
    for read in (reads.remote_image, reads.remote_digest, reads.has_manifest):
        with pytest.raises(RegistryUnreadable) as raised:
            read(ref)
        assert str(raised.value) == (f"cannot read {ref} from its registry: the registry did not give "
                                     f"{canned.host}/t/small:nope: NOT_FOUND: no route")


def test_a_registry_error_is_unreadable_with_its_reason(canned: CannedRegistry) -> None:
    canned.answers["/v2/t/small/manifests/v1"] = (500, {}, errors("UNKNOWN", "storage driver failed"))
    ref = f"{canned.host}/t/small:v1"
    for read in (reads.remote_image, reads.remote_digest):
        with pytest.raises(RegistryUnreadable, match="^cannot read .*: UNKNOWN: storage driver failed$"):
            read(ref)


def test_a_refusal_without_a_login_says_so(canned: CannedRegistry) -> None:
    canned.answers["/v2/t/small/manifests/v1"] = (401, {"WWW-Authenticate": 'Basic realm="test"'},
                                                  errors("UNAUTHORIZED", "authentication required"))
    ref = f"{canned.host}/t/small:v1"
    with pytest.raises(RegistryUnauthorised) as raised:
        reads.remote_digest(ref)
    assert str(raised.value) == (
        f"cannot read {ref}: the registry refused access to {canned.host}/v2/t/small/manifests/v1 (HEAD: "
        f"UNAUTHORIZED: authentication required); docker has no login for {canned.host}: log in (docker login, or "
        "EPBUILD_REGISTRY_USER/_PASSWORD)")
    # A HEAD first (no body, so no reason), then a GET for the registry's reason.
    assert [method for method, _, _ in canned.seen] == ["HEAD", "GET"]


def test_a_silent_registry_is_given_up_on_after_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docker").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("EPBUILD_REGISTRY_TIMEOUT", "1")
    server = SilentServer()
    try:
        ref = f"127.0.0.1:{server.port}/t/small:v1"
        with pytest.raises(RegistryUnreachable) as raised:
            reads.remote_digest(ref)
    finally:
        server.stop()
    assert str(raised.value) == (f"cannot read {ref} from its registry: `HEAD http://127.0.0.1:{server.port}/v2/t/"
                                 "small/manifests/v1` did not finish within 1 s and was stopped (raise it with "
                                 "EPBUILD_REGISTRY_TIMEOUT)")


def test_without_a_digest_header_the_digest_is_that_of_the_bytes(canned: CannedRegistry) -> None:
    manifest, config = image({"a": "b"})
    canned.answers["/v2/t/small/manifests/v1"] = (200, {"Content-Type": IMAGE_TYPE}, manifest)
    canned.answers[f"/v2/t/small/blobs/{sha256(config)}"] = (200, {}, config)
    assert reads.remote_digest(f"{canned.host}/t/small:v1") == sha256(manifest)
    assert [method for method, _, _ in canned.seen] == ["HEAD", "GET"]
    assert reads.remote_image(f"{canned.host}/t/small:v1") == reads.RemoteImage(sha256(manifest), {"a": "b"})


def test_bytes_that_are_not_the_digest_asked_for_are_unreadable(canned: CannedRegistry) -> None:
    manifest, _ = image({})
    wanted = "sha256:" + "1" * 64
    canned.answers[f"/v2/t/small/manifests/{wanted}"] = (200, {"Content-Type": IMAGE_TYPE}, manifest)
    with pytest.raises(RegistryUnreadable, match=f"bytes of another digest \\({sha256(manifest)}\\)"):
        reads.remote_image(f"{canned.host}/t/small@{wanted}")


def test_a_config_blob_redirected_elsewhere_gets_no_login(canned: CannedRegistry, tmp_path: Path) -> None:
    """Registries send blobs to a storage host (S3, a CDN) that has its own signature in the URL: our login goes
    to the registry only."""
    storage = CannedRegistry()
    try:
        manifest, config = image({"from": "storage"})
        auth = base64.b64encode(b"u:p").decode()
        (tmp_path / "docker" / "config.json").write_text(json.dumps({"auths": {canned.host: {"auth": auth}}}))
        canned.authorization = f"Basic {auth}"
        canned.answers["/v2/t/small/manifests/v1"] = (200, {"Content-Type": IMAGE_TYPE}, manifest)
        canned.answers[f"/v2/t/small/blobs/{sha256(config)}"] = (
            307, {"Location": f"http://{storage.host}/signed/config?sig=abc"}, b"")
        storage.answers["/signed/config?sig=abc"] = (200, {}, config)
        assert reads.remote_labels(f"{canned.host}/t/small:v1") == {"from": "storage"}
        assert storage.seen == [("GET", "/signed/config?sig=abc", None)]
        assert [who for _, path, who in canned.seen if "/blobs/" in path] == [f"Basic {auth}"]
    finally:
        storage.server.shutdown()


def test_an_index_without_an_image_for_this_machine_is_unreadable(canned: CannedRegistry,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reads.platform, "machine", lambda: "x86_64")
    index_type = "application/vnd.oci.image.index.v1+json"
    entries = [{"mediaType": IMAGE_TYPE, "digest": "sha256:" + c * 64, "size": 1,
                "platform": {"os": "linux", "architecture": arch}} for c, arch in (("1", "arm64"), ("2", "s390x"))]
    body = json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": entries}).encode()
    canned.answers["/v2/t/multi/manifests/v1"] = (200, {"Content-Type": index_type}, body)
    with pytest.raises(RegistryUnreadable, match=f"its index {sha256(body)} holds no image for linux/amd64$"):
        reads.remote_image(f"{canned.host}/t/multi:v1")


@pytest.mark.parametrize("ref, host, repository, reference", [
    # distribution/reference's normalisation (normalize.go, ParseNormalizedNamed), as docker applies it.
    ("ubuntu", "docker.io", "library/ubuntu", "latest"),
    ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04"),
    ("rocm/vllm-dev:base", "docker.io", "rocm/vllm-dev", "base"),
    ("docker.io/rocm/vllm-dev:base", "docker.io", "rocm/vllm-dev", "base"),
    ("docker.io/ubuntu", "docker.io", "library/ubuntu", "latest"),
    ("index.docker.io/library/ubuntu@sha256:" + "a" * 64, "docker.io", "library/ubuntu", "sha256:" + "a" * 64),
    ("ghcr.io/a/b:t@sha256:" + "b" * 64, "ghcr.io", "a/b", "sha256:" + "b" * 64),
    ("127.0.0.1:5000/team/stack:gfx942", "127.0.0.1:5000", "team/stack", "gfx942"),
    ("localhost/stack", "localhost", "stack", "latest"),
])
def test_names_read_as_docker_reads_them(ref: str, host: str, repository: str, reference: str) -> None:
    assert Reference.parse(ref) == Reference(host, repository, reference)


def test_docker_hub_is_asked_at_its_api_host_with_its_login(canned: CannedRegistry, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`ubuntu:22.04` is read from registry-1.docker.io (here: the canned server in its place) as
    library/ubuntu, with the login `docker login` keeps under https://index.docker.io/v1/."""
    assert client.base_url("docker.io") == "https://registry-1.docker.io"
    monkeypatch.setattr(client, "base_url", lambda host: f"http://{canned.host}" if host == "docker.io" else "")
    auth = base64.b64encode(b"hub-user:hub-token").decode()
    (tmp_path / "docker" / "config.json").write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {
        "auth": auth}}}))
    manifest, _ = image({})
    canned.answers["/v2/library/ubuntu/manifests/22.04"] = (200, {"Docker-Content-Digest": sha256(manifest)}, b"")
    assert reads.remote_digest("ubuntu:22.04") == sha256(manifest)
    assert canned.seen == [("HEAD", "/v2/library/ubuntu/manifests/22.04", None)]
    canned.answers["/v2/library/ubuntu/manifests/23.04"] = (401, {"WWW-Authenticate": 'Basic realm="hub"'}, b"")
    with pytest.raises(RegistryUnauthorised):
        reads.remote_digest("docker.io/ubuntu:23.04")
    assert canned.seen[-1][2] == f"Basic {auth}"
