"""MoRI's NIC flags read from the pinned setup.py: the pin's nic_build_flags must name exactly the NIC flags it
reads (the lines below are MoRI's own at 2d02c6a9, 6b5a1e53 and ead84d86), and the stand-in reads what 2d02c6a9
reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from epbuild.components.mori import MoriPin, source_check
from epbuild.components.mori.nic_flags import flags_read_by

ROOT = Path(__file__).resolve().parents[2]
AT_2D02C6A9 = '        use_bnxt = os.environ.get("USE_BNXT", "OFF")\n'
AT_6B5A1E53 = AT_2D02C6A9 + '        use_ionic = os.environ.get("USE_IONIC", "OFF")\n'
AT_EAD84D86 = '        use_redis_backend = os.environ.get("USE_REDIS_BACKEND", "OFF")\n'


@pytest.mark.parametrize("setup_py,flags", [(AT_2D02C6A9, {"bnxt_re": "USE_BNXT"}),
                                            (AT_6B5A1E53, {"bnxt_re": "USE_BNXT", "ionic": "USE_IONIC"}),
                                            (AT_EAD84D86, {})], ids=["2d02c6a9", "6b5a1e53", "ead84d86"])
def test_flags_read_by_each_pin(setup_py: str, flags: dict[str, str]) -> None:
    assert flags_read_by(setup_py) == flags


def test_the_offline_stand_in_reads_what_2d02c6a9_reads() -> None:
    stand_in = (ROOT / "epbuild" / "components" / "mori" / "fixture" / "setup.py").read_text()
    assert flags_read_by(stand_in) == {"bnxt_re": "USE_BNXT"}


def pin(**flags: str) -> MoriPin:
    return MoriPin.model_validate({"repo": "https://github.com/ROCm/mori.git", "commit": "6b5a1e53",
                                   "nic_build_flags": flags})


def test_a_flag_the_source_reads_but_the_pin_omits_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text(AT_6B5A1E53)
    problems = source_check(pin(bnxt_re="USE_BNXT"), tmp_path)
    assert len(problems) == 1 and "reads {bnxt_re: USE_BNXT, ionic: USE_IONIC}" in problems[0]
    assert source_check(pin(bnxt_re="USE_BNXT", ionic="USE_IONIC"), tmp_path) == []


def test_a_flag_the_source_no_longer_reads_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text(AT_EAD84D86)
    problems = source_check(pin(bnxt_re="USE_BNXT"), tmp_path)
    assert len(problems) == 1 and "reads no NIC flag" in problems[0]


def test_a_nic_without_the_vendor_library_the_pin_compiles_in_fails_preflight(write_matrix) -> None:  # type: ignore[no-untyped-def]
    from epbuild.inputs import preflight
    from epbuild.model.cells import expand
    from epbuild.model.matrix import load_matrix
    from epbuild.model.plan import CellPlan

    def edit(d):  # type: ignore[no-untyped-def]
        # MoRI at 2d02c6a9 (the reference's), which compiles Broadcom's library in; thor2 without its userspace.
        d["components"]["mori"].update(commit="2d02c6a9", nic_build_flags={"bnxt_re": "USE_BNXT"},
                                       reference_differs={})
        d["nics"]["thor2"].update(vendor="none")

    matrix = load_matrix(write_matrix(edit)).model
    plans = [CellPlan(c, matrix) for c in expand(matrix)]
    found = preflight.problems(plans)
    assert found and all("thor2" in p for p in found)
    assert "MoRI at 2d02c6a9 compiles the bnxt_re vendor library in" in found[0] and "not `none`" in found[0]
