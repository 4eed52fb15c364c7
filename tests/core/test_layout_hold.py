"""A cell's OCI layout is held by one build at a time (a second build of the cell from the same checkout waits
instead of having its fresh blobs pruned), and a layout a killed build left without a readable index is started
again instead of breaking every later export."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from epbuild.build import reproducible

HOLD = """
import sys, time
from pathlib import Path
from epbuild.build import reproducible
with reproducible.layouts_held(Path(sys.argv[1]), ["cell-a"]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_second_build_of_the_cell_waits_for_the_first(tmp_path: Path) -> None:
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "2"], stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None and first.stdout.readline() == "held\n"
    started = time.monotonic()
    second = subprocess.run([sys.executable, "-c", HOLD, str(tmp_path), "0"], capture_output=True, text=True,
                            timeout=60)
    waited = time.monotonic() - started
    first.wait(timeout=60)
    assert second.returncode == 0 and "waiting for it" in second.stderr
    assert waited >= 1.0, waited  # it could only get the layout once the first let go (after 2 s)


def test_another_cell_is_not_held_up(tmp_path: Path) -> None:
    with reproducible.layouts_held(tmp_path, ["cell-a"]):
        other = subprocess.run([sys.executable, "-c", HOLD.replace('"cell-a"', '"cell-b"'), str(tmp_path), "0"],
                               capture_output=True, text=True, timeout=10)
    assert other.returncode == 0 and "waiting" not in other.stderr


def test_a_layout_with_a_torn_index_is_started_again(tmp_path: Path) -> None:
    layout = reproducible.oci_layout(tmp_path, "cell-a")
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "blobs" / "sha256" / "ab").write_text("x")
    (layout / "index.json").write_text('{"schemaVersion":2,"manifests":[{"mediaType"')
    with reproducible.layouts_held(tmp_path, ["cell-a"]):
        assert not layout.exists()


def test_a_readable_layout_is_kept(tmp_path: Path) -> None:
    layout = reproducible.oci_layout(tmp_path, "cell-a")
    layout.mkdir(parents=True)
    (layout / "index.json").write_text('{"schemaVersion":2,"manifests":[{"digest":"sha256:ab"}]}')
    with reproducible.layouts_held(tmp_path, ["cell-a"]):
        assert (layout / "index.json").is_file()
