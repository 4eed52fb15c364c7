"""The registry-side manifest copy against a registry that logs in through a token service (Bearer), the scheme
docker-registry's htpasswd set-up cannot show (the integration tests cover Basic against the real one): the login
docker wrote is sent to the token service with the repository's pull,push scope, the token to the registry, and
the tag gets the source's bytes and media type unchanged. And each failure says which it is."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from epbuild.registry.api import copy_manifest, main
from epbuild.registry.errors import RegistryAbsent, RegistryUnauthorised, RegistryUnreachable

from netservers import closed_port

USER, PASSWORD, TOKEN = "ci-bot", "s3cret:with-colon", "token-for-ci-bot"
REPO = "team/stack"
MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
# Odd spacing on purpose: any re-serialisation would change the digest.
MANIFEST = b'{"schemaVersion": 2,  "mediaType": "' + MEDIA_TYPE.encode() + b'", "config": {}, "layers": []}\n'
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


class TokenRegistry:
    """A registry answering 401 with a Bearer challenge; its token service takes only USER:PASSWORD."""

    def __init__(self) -> None:
        self.manifests: dict[str, tuple[bytes, str]] = {DIGEST: (MANIFEST, MEDIA_TYPE)}
        self.scopes: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                    return True
                challenge = (f'Bearer realm="http://127.0.0.1:{registry.port}/token",service="test-registry",'
                             f'scope="repository:{REPO}:pull"')
                error = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
                self._answer(401, json.dumps(error).encode(), {"WWW-Authenticate": challenge})
                return False

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/token":
                    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                    if self.headers.get("Authorization") != expected:
                        self._answer(401, b'{"errors": [{"code": "DENIED", "message": "bad login"}]}')
                        return
                    query = urllib.parse.parse_qs(url.query)
                    registry.scopes += query.get("scope", [])
                    self._answer(200, json.dumps({"token": TOKEN}).encode())
                    return
                if not self._authorised():
                    return
                reference = url.path.rsplit("/manifests/", 1)[-1]
                if reference not in registry.manifests:
                    self._answer(404, b'{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}')
                    return
                body, media_type = registry.manifests[reference]
                self._answer(200, body, {"Content-Type": media_type})

            def do_PUT(self) -> None:
                if not self._authorised():
                    return
                body = self.rfile.read(int(self.headers["Content-Length"]))
                tag = self.path.rsplit("/manifests/", 1)[-1]
                registry.manifests[tag] = (body, self.headers["Content-Type"])
                self._answer(201, b"", {"Docker-Content-Digest": "sha256:" + hashlib.sha256(body).hexdigest()})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def token_registry() -> Iterator[TokenRegistry]:
    registry = TokenRegistry()
    yield registry
    registry.server.shutdown()


def docker_login_config(folder: Path, host: str, password: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `docker login` writes without a credential store: base64 user:password under `auths`."""
    folder.mkdir()
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))


def test_the_tag_gets_the_source_bytes_through_a_bearer_login(token_registry: TokenRegistry, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    docker_login_config(tmp_path / "docker", token_registry.host, PASSWORD, monkeypatch)
    written = copy_manifest(f"{token_registry.host}/{REPO}@{DIGEST}", f"{token_registry.host}/{REPO}:moving")
    assert written == DIGEST
    assert token_registry.manifests["moving"] == (MANIFEST, MEDIA_TYPE)
    assert token_registry.scopes == [f"repository:{REPO}:pull,push"]


def test_a_refused_login_is_unauthorised(token_registry: TokenRegistry, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    docker_login_config(tmp_path / "docker", token_registry.host, "wrong", monkeypatch)
    with pytest.raises(RegistryUnauthorised, match="the token service of .* refused us: DENIED: bad login"):
        copy_manifest(f"{token_registry.host}/{REPO}@{DIGEST}", f"{token_registry.host}/{REPO}:moving")
    assert "moving" not in token_registry.manifests


def test_no_login_at_all_is_unauthorised(token_registry: TokenRegistry, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docker").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    with pytest.raises(RegistryUnauthorised, match="refused us"):
        copy_manifest(f"{token_registry.host}/{REPO}@{DIGEST}", f"{token_registry.host}/{REPO}:moving")


def test_an_absent_source_is_absent(token_registry: TokenRegistry, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    docker_login_config(tmp_path / "docker", token_registry.host, PASSWORD, monkeypatch)
    missing = "sha256:" + "0" * 64
    with pytest.raises(RegistryAbsent, match="MANIFEST_UNKNOWN: manifest unknown"):
        copy_manifest(f"{token_registry.host}/{REPO}@{missing}", f"{token_registry.host}/{REPO}:moving")


def test_an_unreachable_registry_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "docker").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    host = f"127.0.0.1:{closed_port()}"
    with pytest.raises(RegistryUnreachable, match="cannot reach the registry"):
        copy_manifest(f"{host}/{REPO}@{DIGEST}", f"{host}/{REPO}:moving")
    assert main([f"{host}/{REPO}@{DIGEST}", f"{host}/{REPO}:moving"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the registry") and err.count("\n") == 1
