"""A real Debian docker-registry on 127.0.0.1, started for the tests (optionally requiring a login, through
htpasswd), behind a relay that can hold the request that writes one tag: so a publish can be stopped, or killed,
at exactly that step."""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HoldingRelay:
    """Forwards 127.0.0.1:port to the registry. `hold(path)` stops the requests that write the manifest `path`
    (`/v2/<repository>/manifests/<tag>`) before the registry sees them, until `release` forwards them (or, after
    the client was killed, drops them)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.held = threading.Event()
        self._hold: bytes | None = None
        self._release = threading.Event()
        self._forward = True
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self, path: str) -> None:
        self.held.clear()
        self._release.clear()
        self._hold = f"PUT {path} ".encode()

    def release(self, forward: bool) -> None:
        self._forward = forward
        self._hold = None
        self._release.set()

    def _held_here(self, chunk: bytes) -> bool:
        """Every request for the held path waits (a client may retry on another connection)."""
        if self._hold is None or not chunk.startswith(self._hold):
            return False
        self.held.set()
        self._release.wait()
        return not self._forward

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upload: bool) -> None:
        try:
            while chunk := src.recv(65536):
                if upload and self._held_here(chunk):
                    return
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._server.close()


class Registry:
    def __init__(self, folder: Path, login: tuple[str, str] | None = None, *, read_only: bool = False,
                 storage: Path | None = None, token_auth: str = "") -> None:
        """With `login` (user, password), the registry answers only that account (HTTP basic auth); `read_only`
        puts it in maintenance mode, in which it serves pulls and refuses every upload. `storage`: serve another
        registry's storage folder (a second door to the same content); `token_auth`: the registry's `auth: token`
        settings (YAML flow mapping), see tests/integration/token_service.py."""
        self.login = login
        binary = shutil.which("docker-registry")
        assert binary, "Debian's docker-registry is missing (ci/setup.sh installs it)"
        self.port = free_port()
        self.storage = storage or folder / "data"
        config = folder / "config.yml"
        auth = ""
        if login:
            # docker-registry's htpasswd file takes bcrypt hashes only.
            hashed = bcrypt.hashpw(login[1].encode(), bcrypt.gensalt()).decode()
            (folder / "htpasswd").write_text(f"{login[0]}:{hashed}\n")
            auth = f"auth: {{htpasswd: {{realm: epbuild-test, path: {folder / 'htpasswd'}}}}}\n"
        if token_auth:
            auth = f"auth: {{token: {token_auth}}}\n"
        config.write_text(
            "version: 0.1\nlog: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.storage}}}, delete: {{enabled: true}}"
            + (", maintenance: {readonly: {enabled: true}}" if read_only else "") + "}\n"
            f"http: {{addr: 127.0.0.1:{self.port}}}\n" + auth
        )
        self.access_log = folder / "access.log"
        """The registry's own record of every request it served (its access log goes to standard output)."""
        self.process = subprocess.Popen([binary, "serve", str(config)], stdout=open(self.access_log, "w"),
                                        stderr=open(folder / "registry.log", "w"))
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:  # 401: up, and asking for the login
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"docker-registry did not answer; see {folder / 'registry.log'}")
        self.relay = HoldingRelay(self.port)

    @property
    def address(self) -> str:
        """What clients use: the relay (docker treats any 127.0.0.1 port as a plain-HTTP registry)."""
        return f"127.0.0.1:{self.relay.port}"

    def requests(self, method: str, path_pattern: str) -> list[str]:
        """Paths of the requests served with `method` whose path matches `path_pattern` (a regex), in order."""
        found = re.findall(rf'"{method} (\S+) HTTP/[0-9.]+" ([0-9]+)', self.access_log.read_text())
        return [path for path, status in found if re.fullmatch(path_pattern, path) and status.startswith("2")]

    def tags(self, repository: str) -> list[str]:
        """The tags the registry itself lists for `repository` (its path, without the host)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/{repository}/tags/list", timeout=10) as r:
            return sorted(json.load(r)["tags"] or [])

    def _request(self, method: str, path: str, data: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[bytes, str]:
        """Straight to the registry (not the relay), with the registry's login if it has one."""
        sent = dict(headers or {})
        if self.login:
            sent["Authorization"] = "Basic " + base64.b64encode(":".join(self.login).encode()).decode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/v2/{path}", data=data, method=method,
                                         headers=sent)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.read(), answer.headers.get("Content-Type", "")

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        """The manifest's bytes as the registry stores them, and their media type."""
        return self._request("GET", f"{repository}/manifests/{reference}", headers={"Accept": ", ".join((
            "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json"))})

    def put_manifest(self, repository: str, tag: str, body: bytes, media_type: str) -> None:
        self._request("PUT", f"{repository}/manifests/{tag}", body, {"Content-Type": media_type})

    def restate(self, repository: str, reference: str, into: str, tag: str) -> str:
        """Writes the image manifest `repository:reference` under `into:tag` re-serialised (same config and
        layers, other bytes: what another machine's push of the same image may hold), and returns its digest."""
        body, media_type = self.manifest(repository, reference)
        document = json.loads(body)
        for blob in [document["config"], *document["layers"]]:
            self._request("POST", f"{into}/blobs/uploads/?mount={blob['digest']}&from={repository}", b"")
        restated = json.dumps(document, separators=(",", ":")).encode()
        assert restated != body, "the manifest is compact JSON already: restate it another way"
        self.put_manifest(into, tag, restated, media_type)
        return _digest(restated)

    def forget_blob(self, repository: str, digest: str) -> None:
        """Breaks `repository`: it no longer serves the blob `digest` (other repositories still do)."""
        algorithm, hexdigest = digest.split(":")
        link = self.storage / "docker/registry/v2/repositories" / repository / "_layers" / algorithm / hexdigest
        shutil.rmtree(link)

    def blob_path(self, digest: str) -> Path:
        """Where the registry keeps a blob on disk (distribution's filesystem driver layout)."""
        hex_digest = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"

    def stop(self) -> None:
        """Stops the registry and removes the local tags that name it (the images stay under their other tags)."""
        listed = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                                capture_output=True, text=True).stdout.split() if shutil.which("docker") else []
        ours = [ref for ref in listed if ref.startswith(f"{self.address}/")]
        if ours:
            subprocess.run(["docker", "image", "rm", *ours], capture_output=True)
        self.relay.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def put_image(address: str, name: str, tag: str, files: dict[str, bytes], labels: dict[str, str] | None = None) -> str:
    """Uploads a one-layer image straight through the registry's HTTP API (so the local engine never holds its
    layer), and returns the layer's digest."""
    import gzip
    import io
    import json
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": labels or {}},
                         "rootfs": {"type": "layers", "diff_ids": [_digest(raw.getvalue())]}}).encode()
    for blob in (layer, config):
        start = urllib.request.urlopen(urllib.request.Request(f"http://{address}/v2/{name}/blobs/uploads/",
                                                              method="POST"), timeout=10)
        location = start.headers["Location"]
        location = location if location.startswith("http") else f"http://{address}{location}"
        sep = "&" if "?" in location else "?"
        # (A form content type, urllib's default, would make the registry read the body as a form.)
        urllib.request.urlopen(urllib.request.Request(f"{location}{sep}digest={_digest(blob)}", data=blob,
                                                      method="PUT",
                                                      headers={"Content-Type": "application/octet-stream"}),
                               timeout=10)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                   "digest": _digest(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer),
                    "digest": _digest(layer)}],
    }).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"http://{address}/v2/{name}/manifests/{tag}", data=manifest, method="PUT",
        headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"}), timeout=10)
    return _digest(layer)


def _digest(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()
