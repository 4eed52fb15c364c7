"""apt stays healthy: replacing the distribution's verbs libraries (rdma-core stage) must not leave dpkg with unmet
dependencies (openmpi in the reference base, perftest in the offline one, depends on libibverbs1), or every later
`apt-get install` in or on top of the image fails."""

from __future__ import annotations

from typing import Any


def test_apt_get_check_passes(host: Any) -> None:
    result = host.run("apt-get check")
    assert result.rc == 0, f"apt-get check: {result.stdout}{result.stderr}"


def test_dpkg_audit_finds_nothing(host: Any) -> None:
    result = host.run("dpkg --audit")
    assert result.rc == 0 and not result.stdout.strip(), f"dpkg --audit: {result.stdout}{result.stderr}"
