"""What a cell's image must carry, for the image checks: the cell's record (the same one its manifest holds and
`invoke matrix` lists), the labels, and the image under test. The record's exact inputs (base image digest,
full commits) are resolved apart from the build, so a build that recorded other inputs fails the checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epbuild.inputs import scm_version
from epbuild.inputs.resolve import Resolved
from epbuild.inputs.source_requests import resolve_url
from epbuild.inputs.sources import SourceCache
from epbuild.model.plan import CellPlan
from epbuild.model.stagegraph import built_pins
from epbuild.render import manifest
from epbuild.render.content_key import content_key
from epbuild.render.dockerfiles import RenderedCell
from epbuild.util import atomicfs
from epbuild.util.commands import Runner

EXPECTED_ENV = "EPBUILD_EXPECTED"
"""The image checks (epbuild/checks/image) read the path of the expectation file from this variable."""


def pin_sources(rc: RenderedCell, root: Path, matrix_dir: Path) -> dict[str, dict[str, str]]:
    """Where each built component's history is on this host (the bare mirror the build fetched into) and the
    commit pinned, so the checks can read the source at the pin themselves (not what epbuild wrote about it).
    A setuptools-scm-versioned component also names the build's record of the history its version was computed
    from (`scm_history`; the file may be missing, and the check then says it cannot check the version)."""
    cache = SourceCache(root, Runner())
    out = {}
    for name, pin in built_pins(rc.plan).items():
        out[name] = {"git_dir": str(cache.mirror_path(resolve_url(pin.repo, matrix_dir))), "commit": pin.commit}
        if rc.plan.registry[name].scm_distribution is not None:
            out[name]["scm_history"] = str(scm_version.history_record(root, name, pin.commit))
    return out


def pin_archives(rc: RenderedCell, root: Path) -> dict[str, dict[str, str]]:
    """Each source archive a stage read, as fetched (the checks verify its sha256 and read it themselves)."""
    out = {}
    for name, pin in built_pins(rc.plan).items():
        for archive in rc.plan.registry[name].archives(pin):
            out[archive.context] = {"path": str(root / archive.download), "sha256": archive.sha256,
                                    "member": archive.member}
    return out


def expectation(rc: RenderedCell, image: str, root: Path, matrix_dir: Path, resolved: Resolved) -> dict[str, Any]:
    """`resolved`: this checkout's exact inputs (epbuild.render.content_key.checkout_inputs)."""
    key = content_key(rc, resolved)
    return {"image": image, "record": manifest.record(rc.plan, rc.key, key, resolved),
            "labels": manifest.labels(rc.plan, rc.key, key, resolved), "nic_userspace": nic_userspace(rc.plan),
            "sources": pin_sources(rc, root, matrix_dir), "archives": pin_archives(rc, root)}


def nic_userspace(plan: CellPlan) -> dict[str, Any]:
    """What the NIC's userspace must look like in the image, from the NIC's facts (nics.<nic>): the vendor's pinned
    packages and the order in which rocSHMEM dlopens the provider's library (vendor.dlopen_fallback), whether they ship
    the verbs provider itself (vendor.provides_provider), the rocSHMEM
    GDA backend for the NIC (flags.rocshmem), and the vendor library MoRI links where the pinned MoRI compiles it in."""
    library, vendor = plan.nic.provider_library, plan.vendor
    return {
        "pci_vendors": list(plan.nic.pci_vendors),
        "vendor_userspace": vendor is not None,
        "vendor": None if vendor is None else {
            "packages": dict(vendor.packages), "library": library,
            "dlopen": [f"{library}.so", *vendor.dlopen_fallback]},
        # The vendor's packages are the verbs provider: verbs' plugin and rocSHMEM's dlopen load one library of theirs.
        "vendor_provider": vendor is not None and vendor.provides_provider,
        "rocshmem_backend": plan.nic.flags.get("rocshmem"),
        "mori_vendor_library": library if plan.vendor_build("mori") else None,
    }


def write(expect: dict[str, Any], path: Path) -> Path:
    atomicfs.write_text(path, json.dumps(expect, indent=2, sort_keys=True) + "\n")
    return path
