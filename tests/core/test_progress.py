"""Reading BuildKit's plain progress, on lines copied from real `docker buildx bake --progress plain` runs (buildx
0.13.1): with one target bake prints no target prefix, with several it does."""

from __future__ import annotations

from epbuild.build.progress import Progress

# `invoke build --cell gfx942-thor2` of the offline example with DeepEP at its broken stand-in commit.
ONE_TARGET = """\
#10 [internal] load .dockerignore
#11 [context src-vllm] load from client
#17 [mori 1/1] RUN --mount=type=bind,from=src-mori,target=/src/mori,rw     cd /src/mori  && MORI_GPU_ARCHS="gfx942" python3 setup.py bdist_wheel --dist-dir /wheels/mori
#22 [deepep 1/1] RUN --mount=type=bind,from=src-deepep,target=/src/deepep,rw     cd /src/deepep  && python3 setup.py --variant rocm --nic thor2 bdist_wheel --dist-dir /wheels/deepep
#22 11.47 csrc/fixture_rev.h:6:2: error: "epbuild fixture: this commit breaks the gfx942 build on purpose"
#17 DONE 40.1s
#22 ERROR: process "/bin/sh -c cd /src/deepep" did not complete successfully: exit code: 1
"""

# `invoke build --cell gfx950-cx7 --cell gfx942-thor2` of the offline example.
TWO_TARGETS = """\
#1 [internal] load local bake definitions
#2 [gfx950-cx7 internal] load build definition from Dockerfile
#41 [gfx942-thor2 deepep 1/1] RUN --mount=type=bind,from=src-deepep,target=/src/deepep,rw     cd /src/deepep
#46 [gfx950-cx7 rocshmem 1/1] RUN --mount=type=bind,from=src-rocshmem,target=/src/rocshmem,rw     mkdir build
#46 DONE 61.0s
#41 ERROR: process "/bin/sh -c cd /src/deepep" did not complete successfully: exit code: 1
"""


def feed(progress: Progress, text: str, targets: list[str]) -> int:
    invocation = progress.start(targets)
    for line in text.splitlines(keepends=True):
        progress.feed(line, invocation)
    return invocation


def test_one_target_lines_belong_to_that_target_and_name_the_stage() -> None:
    progress = Progress()
    feed(progress, ONE_TARGET, ["gfx942-thor2"])
    (failure,) = progress.failures()
    assert (failure.target, failure.stage) == ("gfx942-thor2", "deepep")
    assert "breaks the gfx942 build on purpose" in "".join(failure.lines)
    assert [(v.target, v.stage) for v in progress.executed_runs()] == [("gfx942-thor2", "mori")]


def test_several_targets_are_read_from_the_prefix() -> None:
    progress = Progress()
    feed(progress, TWO_TARGETS, ["gfx950-cx7", "gfx942-thor2"])
    (failure,) = progress.failures()
    assert (failure.target, failure.stage) == ("gfx942-thor2", "deepep")
    assert [(v.target, v.stage) for v in progress.executed_runs()] == [("gfx950-cx7", "rocshmem")]


def test_invocations_keep_their_vertices_apart() -> None:
    """BuildKit numbers vertices from #1 in every invocation, and survivors' bakes run at the same time."""
    progress = Progress()
    first = feed(progress, TWO_TARGETS, ["gfx950-cx7", "gfx942-thor2"])
    second = feed(progress, ONE_TARGET, ["gfx942-cx7"])
    assert [v.target for v in progress.failures(first)] == ["gfx942-thor2"]
    assert [v.target for v in progress.failures(second)] == ["gfx942-cx7"]
