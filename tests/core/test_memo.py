"""epbuild.util.memo.memoized: computed once per instance, kept apart for each instance, and left out of a frozen
dataclass's fields, equality and hash (Cell keeps its name and archs so)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from epbuild.model.cells import Cell
from epbuild.util.memo import memoized


@dataclass(frozen=True)
class Counted:
    value: int
    calls: list[int]

    @memoized
    def doubled(self) -> int:
        self.calls.append(self.value)
        return self.value * 2


def test_each_instance_computes_its_own_value_once() -> None:
    calls: list[int] = []
    one, two = Counted(1, calls), Counted(2, calls)
    assert (one.doubled, one.doubled, two.doubled, two.doubled) == (2, 2, 4, 4)
    assert calls == [1, 2]


def test_a_cell_named_before_compares_and_hashes_by_its_fields() -> None:
    named, fresh = Cell("gfx942+gfx950", "cx7", "rocm72", True), Cell("gfx942+gfx950", "cx7", "rocm72", True)
    assert named.name == "gfx942_gfx950-cx7-rocm72"
    assert named == fresh and hash(named) == hash(fresh) and repr(named) == repr(fresh)
    assert dataclasses.asdict(named) == {"arch": "gfx942+gfx950", "nic": "cx7", "base": "rocm72", "base_in_name": True}
    other = dataclasses.replace(named, nic="io", base_in_name=False)
    assert (other.name, other.archs, other.gpu_targets) == ("gfx942_gfx950-io", ("gfx942", "gfx950"), "gfx942;gfx950")
