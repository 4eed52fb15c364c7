"""The offline example's vendor repository server: a run whose port another run holds waits for it and then serves
itself (it never borrows the other run's server, which stops as soon as that run has fetched)."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from epbuild.offline.settings import OfflineError
from epbuild.offline.vendor_apt_repo import serve


def held_port() -> tuple[socket.socket, int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder, holder.getsockname()[1]


def test_waits_for_a_held_port_then_serves_its_own_folder(tmp_path: Path) -> None:
    (tmp_path / "Release").write_text("ours\n")
    holder, port = held_port()
    threading.Timer(1.5, holder.close).start()
    start = time.monotonic()
    with serve(tmp_path, port, wait=30) as url:
        waited = time.monotonic() - start
        with urllib.request.urlopen(f"{url}/Release", timeout=5) as response:
            assert response.read() == b"ours\n"
    assert waited >= 1.0


def test_a_port_held_past_the_wait_is_one_clear_error(tmp_path: Path) -> None:
    holder, port = held_port()
    try:
        with pytest.raises(OfflineError, match=rf"127\.0\.0\.1:{port}: Address already in use \(waited 1 s"):
            with serve(tmp_path, port, wait=1):
                pass
    finally:
        holder.close()
