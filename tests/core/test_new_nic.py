"""Issue 12: a NIC is matrix data. A fourth NIC (ConnectX-8: mlx5, DeepEP's cx7 code path) added by editing the
matrix alone renders, builds rdma-core from source, hands DeepEP its flag, is found by --detect, and shares
every stage but final with the ConnectX-7 cell it equals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from epbuild.checks.detect import detect
from epbuild.checks.expectations import nic_userspace
from epbuild.model import stagegraph
from epbuild.model.cells import expand
from epbuild.model.matrix import load_matrix
from epbuild.model.plan import CellPlan
from epbuild.render.dockerfiles import render_cell

CX8 = {"description": "NVIDIA ConnectX-8", "provider": "mlx5", "provider_library": "libmlx5",
       "pci_vendors": ["0x15b3"], "rdma_core": "source", "flags": {"deepep": "cx7", "rocshmem": "GDA_MLX5"},
       "vendor": "none"}


def add_cx8(data: dict[str, Any]) -> None:
    data["nics"]["cx8"] = CX8
    data["axes"]["nic"].append("cx8")


def test_a_fourth_nic_from_matrix_edits_alone(write_matrix, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    matrix = load_matrix(write_matrix(add_cx8)).model
    cells = {c.name: c for c in expand(matrix)}
    assert {"gfx942-cx8", "gfx950-cx8"} <= set(cells)
    cx8 = render_cell(CellPlan(cells["gfx950-cx8"], matrix), "matrix.yaml")
    cx7 = render_cell(CellPlan(cells["gfx950-cx7"], matrix), "matrix.yaml")
    assert "--variant rocm --rocm-explicit-ctx --rocm-gfx942-fp8-fnuz-max 224 --nic cx7" in cx8.stages["deepep"]
    assert "rdma-core" in cx8.stages
    ids8, ids7 = stagegraph.stage_identities(cx8), stagegraph.stage_identities(cx7)
    assert {s for s in ids8 if ids8[s] == ids7.get(s)} == set(ids8) - {"final"}


def test_the_new_nic_gets_its_image_checks_from_its_facts(write_matrix) -> None:  # type: ignore[no-untyped-def]
    """The NIC userspace checks expect what the new entry says: its rocSHMEM backend, and the dlopen sequence
    through its vendor's fallback (a made-up vendor here, so nothing can come from a table in the code)."""
    vendor = {"repo": {"url": "https://vendor.example.org/apt", "suite": "jammy"},
              "key": {"url": "https://vendor.example.org/key.gpg", "fingerprint": "A" * 40},
              "packages": {"libcx8": "1.0"}, "dlopen_fallback": ["/opt/cx8/lib/libmlx5.so", "/usr/local/lib/libmlx5.so"]}

    def cx8_with_vendor(data: dict[str, Any]) -> None:
        add_cx8(data)
        data["nics"]["cx8"] = {**CX8, "flags": {"deepep": "cx7", "rocshmem": "GDA_IONIC"}, "vendor": vendor}

    matrix = load_matrix(write_matrix(cx8_with_vendor)).model
    cell = {c.name: c for c in expand(matrix)}["gfx950-cx8"]
    expected = nic_userspace(CellPlan(cell, matrix))
    assert expected["rocshmem_backend"] == "GDA_IONIC"
    assert expected["vendor"]["dlopen"] == ["libmlx5.so", "/opt/cx8/lib/libmlx5.so", "/usr/local/lib/libmlx5.so"]


def test_detect_finds_the_new_nic(write_matrix, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def only_cx8(data: dict[str, Any]) -> None:
        add_cx8(data)
        data["axes"]["nic"] = ["io", "thor2", "cx8"]

    matrix = load_matrix(write_matrix(only_cx8)).model
    sysfs = tmp_path / "sys"
    node = sysfs / "class" / "kfd" / "kfd" / "topology" / "nodes" / "1"
    node.mkdir(parents=True)
    (node / "properties").write_text("gfx_target_version 90500\n")
    (sysfs / "class" / "infiniband" / "mlx5_0" / "device").mkdir(parents=True)
    (sysfs / "class" / "infiniband" / "mlx5_0" / "device" / "vendor").write_text("0x15b3\n")
    found = detect(sysfs, matrix, tmp_path / "no-rocm")
    assert (found.arch, found.nic) == ("gfx950", "cx8") and "NVIDIA ConnectX-8" in found.report


def test_a_new_provider_gets_its_own_mori_build_from_matrix_edits_alone(write_matrix, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A NIC with a provider no table in the code knows (HPE Slingshot's cxi), whose vendor library the pinned
    MoRI compiles in with a flag of its own: declared in the matrix, it builds MoRI per NIC with that flag, and
    the source check accepts a setup.py that reads it (and refuses one that does not)."""
    from epbuild.components.mori.nic_flags import check_source

    vendor = {"repo": {"url": "https://vendor.example.org/apt", "suite": "jammy"},
              "key": {"url": "https://vendor.example.org/key.gpg", "fingerprint": "B" * 40},
              "packages": {"libcxi": "1.0"}}

    def add_cxi(data: dict[str, Any]) -> None:
        data["nics"]["ss11"] = {"description": "HPE Slingshot 11", "provider": "cxi", "provider_library": "libcxi",
                                "pci_vendors": ["0x17db"], "rdma_core": "source",
                                "flags": {"deepep": "cx7", "rocshmem": "GDA_MLX5"}, "vendor": vendor}
        data["axes"]["nic"].append("ss11")
        # A MoRI that compiles vendor libraries in (2d02c6a9's USE_BNXT), plus the new one.
        data["components"]["mori"].update(commit="2d02c6a9", reference_differs={},
                                           nic_build_flags={"bnxt_re": "USE_BNXT", "cxi": "USE_CXI"})

    matrix = load_matrix(write_matrix(add_cxi)).model
    cells = {c.name: c for c in expand(matrix)}
    ss11 = render_cell(CellPlan(cells["gfx950-ss11"], matrix), "matrix.yaml")
    cx7 = render_cell(CellPlan(cells["gfx950-cx7"], matrix), "matrix.yaml")
    assert "USE_CXI" in ss11.stages["mori"] and "USE_CXI" not in cx7.stages["mori"]
    assert stagegraph.stage_identities(ss11)["mori"] != stagegraph.stage_identities(cx7)["mori"]
    declared = dict(matrix.components.pins()["mori"].nic_build_flags)
    (tmp_path / "setup.py").write_text('import os\nbnxt = os.environ.get("USE_BNXT")\ncxi = os.environ.get("USE_CXI")\n')
    assert check_source(declared, "c0ffee", tmp_path) == []
    (tmp_path / "setup.py").write_text('import os\nbnxt = os.environ.get("USE_BNXT")\n')
    assert "reads {bnxt_re: USE_BNXT}" in check_source(declared, "c0ffee", tmp_path)[0]


def test_a_vendor_that_ships_the_provider_replaces_rdma_cores_copy_of_it(write_matrix) -> None:  # type: ignore[no-untyped-def]
    """`provides_provider` is matrix data: a made-up vendor of the mlx5 provider gets a vendor stage that removes
    the unowned copies of mlx5 (rdma-core's), and image checks that expect its packages to be the provider; the same
    vendor without it removes nothing."""
    vendor = {"repo": {"url": "https://vendor.example.org/apt", "suite": "jammy"},
              "key": {"url": "https://vendor.example.org/key.gpg", "fingerprint": "A" * 40},
              "packages": {"libmlx5-vendor": "1.0"}}

    def cx8_with(provides: bool) -> Any:
        def edit(data: dict[str, Any]) -> None:
            add_cx8(data)
            data["nics"]["cx8"] = {**CX8, "vendor": {**vendor, "provides_provider": provides}}
        matrix = load_matrix(write_matrix(edit)).model
        cell = {c.name: c for c in expand(matrix)}["gfx950-cx8"]
        return CellPlan(cell, matrix), render_cell(CellPlan(cell, matrix), "matrix.yaml").stages["vendor"]

    plan, stage = cx8_with(True)
    for path in ("/usr/lib/x86_64-linux-gnu/libmlx5.so.*", "/usr/lib/x86_64-linux-gnu/libibverbs/libmlx5-rdmav*.so",
                 "/etc/libibverbs.d/mlx5.driver", "/usr/include/infiniband/mlx5_dv.h"):
        assert path in stage
    assert stage.index('dpkg -S "$f"') < stage.index("dpkg -i /vendor/*.deb")
    assert nic_userspace(plan)["vendor_provider"] is True
    plan, stage = cx8_with(False)
    assert "libmlx5.so" not in stage and "mlx5.driver" not in stage and 'dpkg -S "$f"' not in stage
    assert nic_userspace(plan)["vendor_provider"] is False
