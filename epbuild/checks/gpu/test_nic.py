"""The NIC smoke test, for agents that have the cell's NIC: with /dev/infiniband passed in, `ibv_devices` in the
image lists the host's devices of the cell's provider, and the libraries rocSHMEM and MoRI load open them
(rocSHMEM's GDA backends dlopen "libibverbs.so" and the provider's "<lib>.so", epbuild/checks/image/test_nic_userspace.py).
An agent without that NIC reports the test "not run" (its skip reason says so), never a pass."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from epbuild.checks.detect import rdma_vendors

pytestmark = pytest.mark.gpu

# What rocSHMEM's GDA backend does first: dlopen the verbs library and the provider's library, list the devices,
# open each one.
OPEN_DEVICES = """
import ctypes, json, sys
verbs = ctypes.CDLL("libibverbs.so")
ctypes.CDLL(sys.argv[1])
verbs.ibv_get_device_list.restype = ctypes.POINTER(ctypes.c_void_p)
verbs.ibv_get_device_name.restype = ctypes.c_char_p
verbs.ibv_get_device_name.argtypes = [ctypes.c_void_p]
verbs.ibv_open_device.restype = ctypes.c_void_p
verbs.ibv_open_device.argtypes = [ctypes.c_void_p]
verbs.ibv_close_device.argtypes = [ctypes.c_void_p]
count = ctypes.c_int(0)
devices = verbs.ibv_get_device_list(ctypes.byref(count))
opened = {}
for i in range(count.value):
    name = verbs.ibv_get_device_name(devices[i]).decode()
    context = verbs.ibv_open_device(devices[i])
    opened[name] = bool(context)
    if context:
        verbs.ibv_close_device(context)
print(json.dumps(opened))
"""


@pytest.fixture(scope="module")
def host_devices(expected: dict[str, Any]) -> list[str]:
    """This host's RDMA devices of the cell's NIC kind; a host without one does not run the test."""
    sysfs = Path(os.environ.get("EPBUILD_SYSFS_ROOT", "/sys"))
    devices = sorted(d for d, vendor in rdma_vendors(sysfs).items() if vendor in expected["pci_vendors"])
    if not devices or not Path("/dev/infiniband").is_dir():
        pytest.skip(f"not run: this host has no {expected['nic']} RDMA device "
                    f"({', '.join(rdma_vendors(sysfs)) or 'no RDMA device at all'}; /dev/infiniband "
                    f"{'present' if Path('/dev/infiniband').is_dir() else 'missing'})")
    return devices


def run_with_nic(image: str, *command: str) -> str:
    devices = [arg for dev in sorted(Path("/dev/infiniband").iterdir()) for arg in ("--device", str(dev))]
    argv = ["docker", "run", "--rm", *devices, "--network", "host", "--cap-add", "IPC_LOCK", "--ulimit",
            "memlock=-1:-1", "--entrypoint", command[0], image, *command[1:]]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(command)} failed in the image:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_ibv_devices_lists_the_hosts_devices_of_the_provider(expected: dict[str, Any],
                                                               host_devices: list[str]) -> None:
    listed = {line.split()[0] for line in run_with_nic(expected["image"], "ibv_devices").splitlines()[2:]
              if line.strip()}
    missing = sorted(set(host_devices) - listed)
    assert not missing, f"ibv_devices in {expected['image']} lists {sorted(listed)}, not {missing}"


def test_the_libraries_rocshmem_and_mori_load_open_every_device(expected: dict[str, Any],
                                                              host_devices: list[str]) -> None:
    library = f"{expected['provider_library']}.so"
    opened = json.loads(run_with_nic(expected["image"], "python3", "-c", OPEN_DEVICES, library))
    for device in host_devices:
        assert opened.get(device), f"{device}: not opened through libibverbs.so with {library} loaded: {opened}"
