"""Brings the loopback interface up when the tests run in a fresh network namespace (`unshare -n`), where the
kernel creates `lo` down. The suite's servers listen on 127.0.0.1 only; with `lo` down every connection to them
fails with "Network is unreachable", which says nothing about the code under test. An air-gapped host has its
loopback up, so this restores the host the offline run stands for; on a host whose `lo` is up it does nothing."""

from __future__ import annotations

import fcntl
import socket
import struct

SIOCGIFFLAGS = 0x8913  # linux/sockios.h
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1  # linux/if.h


def ensure_loopback_up() -> bool:
    """True if `lo` was down and is now up. Raises OSError if it is down and cannot be brought up."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request))[1]
        if flags & IFF_UP:
            return False
        fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))
        return True
