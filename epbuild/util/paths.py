"""The build/ folder's layout: where the host leaves what it prepares for the stages, relative to the folder builds
run from. Every step that writes there and every reader (the bake file's named contexts, `invoke gc`) takes its
paths from here."""

from __future__ import annotations

import hashlib
import json

SOURCES_DIR = "build/sources"
"""Where `invoke sources` exports each component's tree, relative to the folder builds run from."""
SCM_DIR = "build/scm"
"""Where each setuptools-scm-versioned component's computed version is written (epbuild.inputs.scm_version)."""
GIT_HEAD_DIR = "build/githead"
"""Where each component whose setup.py asks git for HEAD gets its pin's git directory (epbuild.inputs.git_head)."""
WHEELHOUSE_DIR = "build/wheelhouse"
"""Where each component's build requirements are downloaded (epbuild.inputs.wheelhouse)."""

NATIVE_DIR = "build/native"
"""Where each component's native-step inputs are copied from its exported tree (Component.native_inputs)."""
VENDOR_DIR = "build/vendor"
ARCHIVES_DIR = "build/archives"
"""Where the archives are fetched and extracted, relative to the folder builds run from."""
DOWNLOADS_DIR = f"{ARCHIVES_DIR}/downloads"
"""Where each verified download is kept, named by its sha256."""


def source_dir(component: str, commit: str) -> str:
    return f"{SOURCES_DIR}/{component}-{commit}"


def wheelhouse_dir(component: str, commit: str, base: str) -> str:
    """Where the build requirements of `component` at `commit` for the cells on `base` are downloaded. One folder per
    base: the wheels and the lock depend on the base image's Python, so cells on two bases sharing one folder would
    rewrite it on every switch, changing the `wheels-<component>` context and re-running its install step."""
    return f"{WHEELHOUSE_DIR}/{component}-{commit}-{base}"


def runtime_wheelhouse_dir(pins: dict[str, str], base: str) -> str:
    """Where the runtime requirements of the components pinned at `pins` ({component: commit}, those with runtime
    requirements) are downloaded for the cells on `base`: shared by every cell with the same pins and base."""
    key = hashlib.sha256(json.dumps(sorted(pins.items())).encode()).hexdigest()[:16]
    return f"{WHEELHOUSE_DIR}/runtime-{key}-{base}"


def native_dir(component: str, commit: str) -> str:
    return f"{NATIVE_DIR}/{component}-{commit}"


def vendor_dir(nic: str, digest: str) -> str:
    """Where epbuild/inputs/vendor_repo.py leaves a NIC's verified .debs, relative to the folder builds run from."""
    return f"{VENDOR_DIR}/{nic}-{digest[:16]}"
