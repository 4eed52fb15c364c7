"""Where a file in the image comes from: the vendor package (and version) that owns it, or of which it is a
byte-identical copy (a vendor's post-install copy); shared by the NIC userspace checks."""

from __future__ import annotations

from typing import Any


def owner(host: Any, path: str) -> tuple[str, str] | None:
    """(package, installed version) owning `path`, or None for a file no package owns."""
    found = host.run("dpkg -S %s", path)
    if found.rc != 0:
        return None
    package = found.stdout.split(":", 1)[0].strip()
    version = host.check_output("dpkg-query -W -f='${Version}' %s", package)
    return package, version


def vendor_origin(host: Any, path: str, pins: dict[str, str]) -> str:
    """Which pinned package `path` (resolved) comes from: owned by it at the pinned version, or a byte-identical
    copy of a file it owns (the vendor's post-install copy, e.g. Broadcom's into /usr/local/lib)."""
    real = host.check_output("readlink -f %s", path)
    found = owner(host, real)
    if found is None:
        digest = host.check_output("sha256sum %s", real).split()[0]
        for package in pins:
            for file in host.check_output("dpkg -L %s", package).splitlines():
                if host.file(file).is_file and not host.file(file).is_symlink and \
                        host.check_output("sha256sum %s", file).split()[0] == digest:
                    found = owner(host, file)
                    break
            if found:
                break
    assert found is not None, f"{path} ({real}) comes from no package of the matrix's {', '.join(pins)}"
    package, version = found
    assert package in pins, f"{path} ({real}) belongs to {package}, not to the vendor's {', '.join(pins)}"
    assert version == pins[package], f"{path} comes from {package} {version}; the matrix pins {pins[package]}"
    return package
