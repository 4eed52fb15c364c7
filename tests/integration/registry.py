"""A real Debian docker-registry on 127.0.0.1, started for the tests, behind a relay that can slow uploads down
so a push can be caught and killed midway."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrottlingRelay:
    """Forwards 127.0.0.1:port to the registry; with `throttle` on, uploads crawl at `bytes_per_second`."""

    def __init__(self, upstream_port: int, bytes_per_second: int = 4 * 1024) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.rate = bytes_per_second
        self.throttle = False
        self.uploaded = 0
        self.layer_bytes = 0
        """Bytes sent after the first PATCH of a blob upload: a layer is on its way."""
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

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
            while chunk := src.recv(4096):
                if upload:
                    self.uploaded += len(chunk)
                    if self.layer_bytes or (b"PATCH /v2/" in chunk and b"/blobs/uploads/" in chunk):
                        self.layer_bytes += len(chunk)
                    if self.throttle:
                        time.sleep(len(chunk) / self.rate)
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
    """`users` turns on htpasswd (basic) authentication; `read_only` puts the registry in maintenance mode, in
    which it serves pulls and refuses every upload."""

    def __init__(self, folder: Path, *, users: dict[str, str] | None = None, read_only: bool = False) -> None:
        binary = shutil.which("docker-registry")
        assert binary, "Debian's docker-registry is missing (ci/setup.sh installs it)"
        self.port = free_port()
        self.data = folder / "data"
        config = folder / "config.yml"
        maintenance = "  maintenance: {readonly: {enabled: true}}\n" if read_only else ""
        auth = ""
        if users:
            import bcrypt

            (folder / "htpasswd").write_text("".join(
                f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()}\n"
                for user, password in users.items()))
            auth = f"auth: {{htpasswd: {{realm: epbuild-test, path: {folder / 'htpasswd'}}}}}\n"
        config.write_text(
            "version: 0.1\nlog: {level: warn}\n"
            f"storage:\n  filesystem: {{rootdirectory: {self.data}}}\n  delete: {{enabled: true}}\n{maintenance}"
            f"http: {{addr: 127.0.0.1:{self.port}}}\n{auth}"
        )
        self.process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=open(folder / "registry.log", "w"))
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # it answers, asking for credentials
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"docker-registry did not answer; see {folder / 'registry.log'}")
        self.relay = ThrottlingRelay(self.port)

    def blob_path(self, digest: str) -> Path:
        """Where the registry keeps a blob on disk (distribution's filesystem driver layout)."""
        hex_digest = digest.split(":", 1)[1]
        return self.data / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex_digest[:2] / hex_digest / "data"

    @property
    def address(self) -> str:
        """What clients use: the relay (docker treats any 127.0.0.1 port as a plain-HTTP registry)."""
        return f"127.0.0.1:{self.relay.port}"

    def stop(self) -> None:
        self.relay.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def put_image(address: str, name: str, tag: str, files: dict[str, bytes]) -> str:
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
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
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
