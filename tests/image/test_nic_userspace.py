"""The NIC's userspace: the vendor's packages at the pinned versions, the provider library rocSHMEM and MoRI load
resolving to the vendor's file, rocSHMEM's GDA backend for the NIC and MoRI's vendor link read from the built
libraries, and a consistent dpkg database."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from helpers import distribution, shared_libraries

# Which file rocSHMEM's dlopen sequence loads (the first name that loads wins), read from the process's mappings.
LOADED_BY_DLOPEN = """
import ctypes, json, os, sys
for name in sys.argv[1:]:
    try:
        ctypes.CDLL(name)
    except OSError:
        continue
    stem = os.path.basename(name).split(".so")[0]
    maps = {line.split()[-1] for line in open("/proc/self/maps") if line.split()[-1].startswith("/")}
    print(json.dumps({"name": name, "files": sorted(os.path.realpath(p) for p in maps
                                                     if os.path.basename(p).startswith(stem))}))
    break
else:
    print("null")
"""


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


@pytest.mark.vendor(True)
def test_pinned_vendor_packages_at_their_versions(host: Any, expected: dict[str, Any]) -> None:
    pins = expected["vendor"]["packages"]
    for package, version in pins.items():
        installed = host.run("dpkg-query -W -f='${Status} ${Version}' %s", package)
        assert installed.rc == 0, f"{package} is not installed"
        assert installed.stdout == f"install ok installed {version}", f"{package}: {installed.stdout}"
        changed = host.check_output("dpkg --verify %s", package)
        assert not changed, f"{package}'s files differ from what it installed (dpkg --verify):\n{changed}"


@pytest.mark.vendor(True)
def test_provider_library_resolves_from_the_pinned_package(host: Any, expected: dict[str, Any]) -> None:
    library = expected["vendor"]["library"]
    cache = host.check_output("ldconfig -p")
    entries = re.findall(rf"^\s*({re.escape(library)}[-.]\S*) \(.*\) => (\S+)$", cache, re.M)
    assert entries, f"ldconfig -p lists no {library} library"
    for _, path in entries:
        vendor_origin(host, path, expected["vendor"]["packages"])


@pytest.mark.vendor(True)
def test_rocshmem_dlopen_sequence_loads_the_vendor_library(host: Any, expected: dict[str, Any]) -> None:
    names = expected["vendor"]["dlopen"]
    result = host.run("python3 -c %s " + " ".join(["%s"] * len(names)), LOADED_BY_DLOPEN, *names)
    assert result.rc == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded is not None, f"none of {', '.join(names)} loads (rocSHMEM dlopens them in this order)"
    assert loaded["files"], f"dlopen({loaded['name']}) mapped no file of that name"
    for path in loaded["files"]:
        vendor_origin(host, path, expected["vendor"]["packages"])


def test_dpkg_database_is_consistent(host: Any) -> None:
    result = host.run("apt-get check")
    assert result.rc == 0, f"apt-get check: {result.stdout}{result.stderr}"


def test_rocshmem_carries_the_gda_backend_for_the_nic(host: Any, expected: dict[str, Any]) -> None:
    lib = f"{expected['rocshmem_prefix']}/lib/librocshmem.a"
    recorded = re.findall(r"backends=([A-Z0-9_,]*)", host.check_output("strings %s", lib))
    assert recorded, f"{lib} records no backends"
    backends = set(recorded[0].strip(",").split(","))
    assert expected["rocshmem_backend"] in backends, f"{lib} has {sorted(backends)}, no {expected['rocshmem_backend']}"


@pytest.mark.component("mori")
def test_mori_links_the_vendor_library_exactly_where_its_pin_compiles_it_in(host: Any,
                                                                           expected: dict[str, Any]) -> None:
    dist = distribution(host, "mori")
    assert dist is not None, "mori is not installed"
    wanted = expected["mori_vendor_library"]
    vendor_libs = ("libbnxt_re", "libionic")
    linked: dict[str, list[str]] = {}
    for lib in shared_libraries(dist):
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", host.check_output("readelf -d %s", lib))
        linked[lib] = [n for n in needed if n.startswith(vendor_libs)]
    found = sorted({n for names in linked.values() for n in names})
    if wanted is None:
        assert not found, f"MoRI links {found}, but its pin builds no vendor backend for this NIC"
        return
    assert any(n.startswith(wanted) for n in found), f"MoRI links no {wanted} (its vendor backend is off): {linked}"
    for lib, names in linked.items():
        for name in names:
            resolved = re.search(rf"^\s*{re.escape(name)} => (\S+)", host.check_output("ldd %s", lib), re.M)
            assert resolved, f"{lib}: {name} does not resolve"
            vendor_origin(host, resolved.group(1), expected["vendor"]["packages"])
