"""A stand-in's fixture@<key>/ overlay: whole files replace, `*.patch` files are applied to the pinned files, and a
patch that does not apply is refused naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from epbuild.components import deepep
from epbuild.offline.gitrepo import _read_tree
from epbuild.offline.overlays import overlays
from epbuild.offline.settings import OfflineError

DEEPEP = Path(deepep.__file__).resolve().parent


def stand_in(tmp_path: Path, overlay: dict[str, str]) -> Path:
    fixture = tmp_path / "fixture"
    (fixture / "pkg").mkdir(parents=True)
    (fixture / "pkg" / "a.py").write_text("one = 1\ntwo = 2\nthree = 3\n")
    (fixture / "b.txt").write_text("b\n")
    folder = tmp_path / "fixture@key"
    folder.mkdir()
    for name, text in {"README.md": "explains the overlay\n", **overlay}.items():
        (folder / name).write_text(text)
    return fixture


PATCH = "--- a/pkg/a.py\n+++ b/pkg/a.py\n@@ -1,3 +1,3 @@\n one = 1\n-two = 2\n+two = 22\n three = 3\n"


def test_a_patch_changes_only_its_lines_and_whole_files_replace(tmp_path: Path) -> None:
    fixture = stand_in(tmp_path, {"a.py.patch": PATCH, "b.txt": "new b\n"})
    [(key, files)] = overlays(fixture, _read_tree(fixture))
    assert key == "key"
    assert {e.path: e.data for e in files} == {"b.txt": b"new b\n", "pkg/a.py": b"one = 1\ntwo = 22\nthree = 3\n"}


def test_a_patch_that_does_not_apply_is_refused_naming_it(tmp_path: Path) -> None:
    fixture = stand_in(tmp_path, {"a.py.patch": PATCH.replace("-two = 2", "-two = 5")})
    with pytest.raises(OfflineError, match=r"fixture@key/a\.py\.patch does not apply to fixture/"):
        overlays(fixture, _read_tree(fixture))


def test_the_deepep_fnuz_max_overlay_adds_the_option_to_the_pinned_setup_py() -> None:
    fixture = DEEPEP / "fixture"
    [files] = [files for key, files in overlays(fixture, _read_tree(fixture)) if key == "fnuz-max"]
    assert [e.path for e in files] == ["setup.py"]
    before = (fixture / "setup.py").read_text().splitlines()
    after = files[0].data.decode().splitlines()
    added = [line for line in after if line not in before]
    assert any(line.startswith('parser.add_argument("--rocm-gfx942-fp8-fnuz-max"') for line in added), added
    assert len(after) - len(before) <= 1  # the overlay carries its few lines, the rest is the pinned file's
