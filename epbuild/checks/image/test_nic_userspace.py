"""The NIC's userspace: the vendor's packages at the pinned versions, the provider library rocSHMEM and MoRI load
resolving to the vendor's file, rocSHMEM's GDA backend for the NIC and MoRI's vendor link read from the built
libraries (dpkg's consistency: epbuild/checks/image/test_apt.py, for every cell). Where the vendor's packages are the verbs provider
(vendor.provides_provider), the image holds one provider library, theirs, and the plugin libibverbs loads for the
NIC maps the same file as rocSHMEM's dlopen."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from vendor_files import vendor_origin

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


# Which files of the provider library (`stem`, e.g. libionic) loading the first loadable of the given names maps,
# read from the process's mappings (the kernel names the file itself, whatever link was opened).
MAPPED_BY_LOADING = """
import ctypes, json, os, sys
stem, names = sys.argv[1], sys.argv[2:]
for name in names:
    try:
        ctypes.CDLL(name)
    except OSError:
        continue
    maps = {line.split()[-1] for line in open("/proc/self/maps") if line.split()[-1].startswith("/")}
    mine = [p for p in maps if os.path.basename(p) == stem or os.path.basename(p).startswith((stem + ".", stem + "-"))]
    print(json.dumps({"name": name, "files": sorted({os.path.realpath(p) for p in mine})}))
    break
else:
    print("null")
"""

# The provider ABI of the installed libibverbs: it exports its private symbols under IBVERBS_PRIVATE_<PABI> and
# loads only plugins named lib<provider>-rdmav<PABI>.so (rdma-core libibverbs/libibverbs.map.in,
# buildlib/config.h.in VERBS_PROVIDER_SUFFIX).
LIBIBVERBS_PABI = """
import os, re, sys
data = open(os.path.realpath(sys.argv[1]), "rb").read()
print(" ".join(sorted({m.decode() for m in re.findall(rb"IBVERBS_PRIVATE_([0-9]+)", data)})))
"""
LIBDIR = "/usr/lib/x86_64-linux-gnu"
VERBS_PROVIDER_DIR = f"{LIBDIR}/libibverbs"
"""libibverbs' plugin folder for an install with prefix /usr (rdma-core CMakeLists.txt: VERBS_PROVIDER_DIR)."""


def verbs_plugin(host: Any, provider: str) -> str:
    """The file libibverbs opens for `provider`, as its loader names it (rdma-core libibverbs/dynamic_driver.c,
    load_driver): `driver NAME` in /etc/libibverbs.d/<provider>.driver; an absolute NAME is opened as
    NAME-rdmav<PABI>.so, any other as VERBS_PROVIDER_DIR/libNAME-rdmav<PABI>.so."""
    driver = host.file(f"/etc/libibverbs.d/{provider}.driver")
    assert driver.exists, f"/etc/libibverbs.d/{provider}.driver is missing: libibverbs knows no {provider} provider"
    names = re.findall(r"^\s*driver\s+(\S+)\s*$", driver.content_string, re.M)
    assert len(names) == 1, f"/etc/libibverbs.d/{provider}.driver names {names or 'no driver'}, not one"
    abis = host.check_output("python3 -c %s %s", LIBIBVERBS_PABI, f"{LIBDIR}/libibverbs.so.1").split()
    assert len(abis) == 1, f"libibverbs.so.1 exports the private ABIs {abis}, not one"
    name, suffix = names[0], f"-rdmav{abis[0]}.so"
    return f"{name}{suffix}" if name.startswith("/") else f"{VERBS_PROVIDER_DIR}/lib{name}{suffix}"


def mapped_by_loading(host: Any, stem: str, names: list[str]) -> dict[str, Any] | None:
    result = host.run("python3 -c %s %s " + " ".join(["%s"] * len(names)), MAPPED_BY_LOADING, stem, *names)
    assert result.rc == 0, result.stderr
    loaded: dict[str, Any] | None = json.loads(result.stdout)
    return loaded


@pytest.mark.cell(vendor_userspace=True)
def test_pinned_vendor_packages_at_their_versions(host: Any, expected: dict[str, Any]) -> None:
    pins = expected["vendor"]["packages"]
    for package, version in pins.items():
        installed = host.run("dpkg-query -W -f='${Status} ${Version}' %s", package)
        assert installed.rc == 0, f"{package} is not installed"
        assert installed.stdout == f"install ok installed {version}", f"{package}: {installed.stdout}"
        changed = host.check_output("dpkg --verify %s", package)
        assert not changed, f"{package}'s files differ from what it installed (dpkg --verify):\n{changed}"


@pytest.mark.cell(vendor_userspace=True)
def test_provider_library_resolves_from_the_pinned_package(host: Any, expected: dict[str, Any]) -> None:
    library = expected["vendor"]["library"]
    cache = host.check_output("ldconfig -p")
    entries = re.findall(rf"^\s*({re.escape(library)}[-.]\S*) \(.*\) => (\S+)$", cache, re.M)
    assert entries, f"ldconfig -p lists no {library} library"
    for _, path in entries:
        vendor_origin(host, path, expected["vendor"]["packages"])


@pytest.mark.cell(vendor_userspace=True)
def test_rocshmem_dlopen_sequence_loads_the_vendor_library(host: Any, expected: dict[str, Any]) -> None:
    names = expected["vendor"]["dlopen"]
    result = host.run("python3 -c %s " + " ".join(["%s"] * len(names)), LOADED_BY_DLOPEN, *names)
    assert result.rc == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded is not None, f"none of {', '.join(names)} loads (rocSHMEM dlopens them in this order)"
    assert loaded["files"], f"dlopen({loaded['name']}) mapped no file of that name"
    for path in loaded["files"]:
        vendor_origin(host, path, expected["vendor"]["packages"])


@pytest.mark.cell(vendor_provider=True)
def test_verbs_and_rocshmem_dlopen_load_the_same_vendor_library(host: Any, expected: dict[str, Any]) -> None:
    """One process (rocSHMEM's GDA backend opens the device through verbs, then dlopens the provider library for
    its direct-verbs calls) must not map two copies of the provider."""
    library = expected["vendor"]["library"]
    plugin = verbs_plugin(host, expected["provider"])
    assert host.file(plugin).exists, (
        f"libibverbs loads {plugin} for {expected['provider']}, which does not exist: the provider in the image "
        "is built for another libibverbs provider ABI")
    by_verbs = mapped_by_loading(host, library, [plugin])
    assert by_verbs is not None, f"{plugin} does not load"
    by_dlopen = mapped_by_loading(host, library, expected["vendor"]["dlopen"])
    assert by_dlopen is not None, f"none of {', '.join(expected['vendor']['dlopen'])} loads"
    assert len(by_verbs["files"]) == 1, f"verbs' plugin {plugin} maps {by_verbs['files']}, not one {library}"
    assert by_verbs["files"] == by_dlopen["files"], (
        f"verbs' plugin {plugin} maps {by_verbs['files']}, rocSHMEM's dlopen({by_dlopen['name']}) maps "
        f"{by_dlopen['files']}: one process would load both")
    vendor_origin(host, by_verbs["files"][0], expected["vendor"]["packages"])


@pytest.mark.cell(vendor_provider=True)
def test_one_provider_library_in_the_image_owned_by_the_vendor(host: Any, expected: dict[str, Any]) -> None:
    library = expected["vendor"]["library"]
    found = host.check_output("find / -xdev -type f -name %s", f"{library}.so*").split()
    assert len(found) == 1, f"the image holds {len(found)} {library} libraries: {', '.join(found) or 'none'}"
    vendor_origin(host, found[0], expected["vendor"]["packages"])
