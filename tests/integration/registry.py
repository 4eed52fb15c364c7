"""A real Debian docker-registry on 127.0.0.1, started for the tests, behind a relay that can slow uploads down
so a push can be caught and killed midway."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
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
    def __init__(self, folder: Path) -> None:
        binary = shutil.which("docker-registry")
        assert binary, "Debian's docker-registry is missing (ci/setup.sh installs it)"
        self.port = free_port()
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\nlog: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: 127.0.0.1:{self.port}}}\n"
        )
        self.access_log = folder / "access.log"
        """The registry's own record of every request it served (its access log goes to standard output)."""
        self.process = subprocess.Popen([binary, "serve", str(config)], stdout=open(self.access_log, "w"),
                                        stderr=open(folder / "registry.log", "w"))
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"docker-registry did not answer; see {folder / 'registry.log'}")
        self.relay = ThrottlingRelay(self.port)

    @property
    def address(self) -> str:
        """What clients use: the relay (docker treats any 127.0.0.1 port as a plain-HTTP registry)."""
        return f"127.0.0.1:{self.relay.port}"

    def requests(self, method: str, path_pattern: str) -> list[str]:
        """Paths of the requests served with `method` whose path matches `path_pattern` (a regex), in order."""
        found = re.findall(rf'"{method} (\S+) HTTP/[0-9.]+" ([0-9]+)', self.access_log.read_text())
        return [path for path, status in found if re.fullmatch(path_pattern, path) and status.startswith("2")]

    def stop(self) -> None:
        self.relay.close()
        self.process.terminate()
        self.process.wait(timeout=10)
