"""The final image size target (bench.size), held on every landing: each image the shared offline build makes
weighs at most 1.05x its base image plus the bytes of every file `final` adds or changes (read with `find` in the
image and in its base, not from epbuild's records). A file written twice, a deleted file kept in a lower layer or
a build tree left in the image shows here. Costs a `docker run find /` per image and base on top of the shared
build."""

from __future__ import annotations

import sys

import pytest

from harness import OFFLINE, ROOT, InvokeResult

sys.path.insert(0, str(ROOT))
from bench.size import TARGET_RATIO, cell_sizes  # noqa: E402
from epbuild.cli import project  # noqa: E402

pytestmark = pytest.mark.docker


def test_each_built_image_is_its_base_plus_what_final_adds(offline_build: InvokeResult) -> None:
    built = {c["cell"] for c in offline_build.summary["cells"]}
    plans = {rc.cell.name: rc.plan for rc in project.rendering(str(ROOT / OFFLINE)).cells if rc.cell.name in built}
    assert plans.keys() == built and built, offline_build.summary
    sizes = {name: cell_sizes(plan.local_tag, plan.base.image) for name, plan in plans.items()}
    assert all(float(s["ratio"]) <= TARGET_RATIO for s in sizes.values()), sizes
