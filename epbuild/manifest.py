"""The one record of a cell: what it is and builds. `final` writes it as /opt/epbuild/manifest.json (with
/app/versions.txt and OCI labels), `invoke matrix` lists it, and the image checks read their expectations from
it.

The content key is a digest of everything that decides a cell's image: the rendered Dockerfile (with the key
itself left out, so the key never feeds itself), the base image reference and every component's pin. Only
`final` carries it, so a new key never invalidates a build stage.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from epbuild import stagegraph
from epbuild.plan import CellPlan

LABEL_PREFIX = "io.epbuild"
KEY_LABEL = f"{LABEL_PREFIX}.content-key"
CELL_LABEL = f"{LABEL_PREFIX}.cell"


def pins_record(plan: CellPlan) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, pin in stagegraph.built_pins(plan).items():
        component = plan.registry[name]
        entry: dict[str, Any] = {"repo": pin.repo, "commit": pin.commit}
        if pin.tag:
            entry["tag"] = pin.tag
        if component.copies(pin):
            entry["copies"] = component.copies(pin)
        entry.update(component.record(pin))
        out[name] = entry
    return out


def record(plan: CellPlan, key: str) -> dict[str, Any]:
    """The cell's record: the manifest `final` carries, the rows of `invoke matrix`, the image checks' input."""
    cell = plan.cell
    return {
        "cell": cell.name,
        "arch": cell.arch,
        "archs": list(cell.archs),
        "nic": cell.nic,
        "base": cell.base,
        "provider": plan.nic.provider,
        "provider_library": plan.nic.provider_library,
        "rdma_core": plan.nic.rdma_core,
        "base_image": plan.base.image,
        "rocm_path": plan.base.rocm_path,
        "image": plan.local_tag,
        "stages": [s.name for s in stagegraph.stages_for(plan)],
        "components": pins_record(plan),
        "distributions": stagegraph.distributions(plan),
        "runtime_env": dict(plan.matrix.runtime_env),
        "content_key": key,
    }


manifest = record
"""/opt/epbuild/manifest.json is the cell's record."""


def content_key(plan: CellPlan, keyless_dockerfile: str) -> str:
    identity = record(plan, key="")
    payload = json.dumps({"dockerfile": keyless_dockerfile, "identity": identity}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def labels(plan: CellPlan, key: str) -> dict[str, str]:
    """OCI labels plus our own; no timestamp, so a rebuild of the same inputs gives the same config."""
    source = plan.pins[plan.matrix.image.source_component]
    names = ", ".join(stagegraph.built_pins(plan))
    out = {
        "org.opencontainers.image.title": f"{plan.matrix.image.name} {plan.cell.name}",
        "org.opencontainers.image.description": f"ROCm expert-parallel inference stack ({names}) built by epbuild",
        "org.opencontainers.image.version": f"{plan.cell.name}-{key[:12]}",
        "org.opencontainers.image.source": source.repo,
        "org.opencontainers.image.revision": source.commit,
        "org.opencontainers.image.base.name": plan.base.image,
        CELL_LABEL: plan.cell.name,
        f"{LABEL_PREFIX}.arch": plan.cell.arch,
        f"{LABEL_PREFIX}.nic": plan.cell.nic,
        f"{LABEL_PREFIX}.base": plan.cell.base,
        KEY_LABEL: key,
    }
    for name, pin in stagegraph.built_pins(plan).items():
        out[f"{LABEL_PREFIX}.pin.{name}"] = pin.commit
    return out


def versions_txt(plan: CellPlan, key: str) -> str:
    """`KEY: value` lines, the format of the reference image's /app/versions.txt."""
    lines = [f"BASE_IMAGE: {plan.base.image}", f"EPBUILD_CELL: {plan.cell.name}", f"EPBUILD_KEY: {key}"]
    for name, pin in stagegraph.built_pins(plan).items():
        stem = name.upper().replace("-", "_")
        lines.append(f"{stem}_REPO: {pin.repo}")
        lines.append(f"{stem}_COMMIT: {pin.commit}")
        if pin.tag:
            lines.append(f"{stem}_TAG: {pin.tag}")
    return "\n".join(lines) + "\n"
