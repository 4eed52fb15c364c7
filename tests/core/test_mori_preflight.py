"""The MoRI preflight reads the pinned setup.py: the matrix's nic_build_flags must name exactly the NIC flags it
reads (the lines below are MoRI's own at 2d02c6a9, 6b5a1e53 and ead84d86, and the offline stand-in's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from epbuild.errors import EpbuildError
from epbuild.matrix import MoriPin
from epbuild.mori_preflight import check, flags_read_by

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
    stand_in = (ROOT / "examples" / "offline" / "fixtures" / "mori" / "setup.py").read_text()
    assert flags_read_by(stand_in) == {"bnxt_re": "USE_BNXT"}


def pin(**flags: str) -> MoriPin:
    return MoriPin.model_validate({"repo": "https://github.com/ROCm/mori.git", "commit": "6b5a1e53",
                                   "nic_build_flags": flags})


def test_a_flag_the_source_reads_but_the_matrix_omits_stops_the_build(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text(AT_6B5A1E53)
    with pytest.raises(EpbuildError, match=r"reads \{bnxt_re: USE_BNXT, ionic: USE_IONIC\}"):
        check(pin(bnxt_re="USE_BNXT"), tmp_path)
    check(pin(bnxt_re="USE_BNXT", ionic="USE_IONIC"), tmp_path)


def test_a_flag_the_source_no_longer_reads_stops_the_build(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text(AT_EAD84D86)
    with pytest.raises(EpbuildError, match="reads no NIC flag"):
        check(pin(bnxt_re="USE_BNXT"), tmp_path)
