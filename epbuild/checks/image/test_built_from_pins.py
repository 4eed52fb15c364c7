"""Every component in the image is the build of its pin, read from what was built: the revision string each
stand-in compiles into its device code matches its source at the pin (so a base image's own copy, or a stale
wheel, fails), and each installed distribution's own metadata carries the version setuptools-scm itself computes
in a checkout of the pin (vLLM's with the ROCm suffix its setup.py appends)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import distribution, shared_libraries
from pins import (
    DISTRIBUTIONS,
    SCM_VERSIONED,
    fixture_revision,
    installed_version,
    revisions_in,
    rocm_suffixed,
    setuptools_scm_version,
)


def built_files(component: str, host: Any, expected: dict[str, Any]) -> list[str]:
    if component == "rocshmem":
        return [f"{expected['components']['rocshmem']['copies'][0]}/lib/librocshmem.a"]
    dist = distribution(host, DISTRIBUTIONS[component])
    assert dist is not None, f"{DISTRIBUTIONS[component]} is not installed"
    return shared_libraries(dist)


@pytest.mark.parametrize("component", [pytest.param(c, marks=pytest.mark.component(c))
                                       for c in ("rocshmem", "deepep", "mori", "aiter", "vllm")])
def test_built_files_carry_the_revision_of_the_pin(component: str, host: Any, expected: dict[str, Any],
                                                   copy_out: Callable[[str], Path]) -> None:
    source = expected["sources"][component]
    wanted = fixture_revision(source)
    if wanted is None:
        pytest.skip(f"{component} at {source['commit'][:12]} is a real upstream tree: it compiles in no fixture "
                    "revision (its version is checked instead)")
    files = built_files(component, host, expected)
    assert files, f"{component}: no built library found in the image"
    found = set().union(*(revisions_in(copy_out(f).read_bytes(), component) for f in files))
    assert found == {wanted}, (f"{component}: the image's {', '.join(files)} carry {sorted(found) or 'no revision'}, "
                               f"the source at {source['commit'][:12]} compiles in {wanted}")


@pytest.mark.parametrize("component", [pytest.param(c, marks=pytest.mark.component(c)) for c in SCM_VERSIONED])
def test_installed_version_is_what_setuptools_scm_gives_the_pin(component: str, host: Any,
                                                                expected: dict[str, Any]) -> None:
    source = expected["sources"][component]
    wanted = setuptools_scm_version(source)
    if component == "vllm":
        wanted = rocm_suffixed(host, wanted)
    assert installed_version(host, DISTRIBUTIONS[component]) == wanted, (
        f"{component}: the installed {DISTRIBUTIONS[component]} is not the version of {source['commit'][:12]}")
