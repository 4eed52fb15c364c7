"""The NIC's userspace: the vendor's packages at the pinned versions, the provider library rocSHMEM and MoRI load
resolving to the vendor's file, rocSHMEM's GDA backend for the NIC and MoRI's vendor link read from the built
libraries. (dpkg's consistency: tests/image/test_apt.py, for every cell.)"""

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

