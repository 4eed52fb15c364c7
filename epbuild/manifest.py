"""What `final` records about itself: /opt/epbuild/manifest.json, /app/versions.txt, OCI labels, content key.

The content key is a digest of everything that decides a cell's image: the rendered Dockerfile (with the key
itself left out, so the key never feeds itself), the base image reference and every component's pin. Only
`final` carries it, so a new key never invalidates a build stage.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from epbuild.plan import CellPlan
from epbuild.stages import built_pins

LABEL_PREFIX = "io.epbuild"
KEY_LABEL = f"{LABEL_PREFIX}.content-key"
CELL_LABEL = f"{LABEL_PREFIX}.cell"


def pins_record(plan: CellPlan) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, pin in built_pins(plan).items():
        entry = {"repo": pin.repo, "commit": pin.commit}
        if pin.tag:
            entry["tag"] = pin.tag
        out[name] = entry
    return out


def manifest(plan: CellPlan, key: str) -> dict[str, Any]:
    cell = plan.cell
    return {
        "cell": cell.name,
        "arch": cell.arch,
        "archs": list(cell.archs),
        "nic": cell.nic,
        "provider": plan.nic.provider,
        "rdma_core": plan.nic.rdma_core,
        "base_image": plan.matrix.base.image,
        "rocm_path": plan.matrix.base.rocm_path,
        "image": plan.local_tag,
        "components": pins_record(plan),
        "content_key": key,
    }


def content_key(plan: CellPlan, keyless_dockerfile: str) -> str:
    identity = manifest(plan, key="")
    payload = json.dumps({"dockerfile": keyless_dockerfile, "identity": identity}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def labels(plan: CellPlan, key: str) -> dict[str, str]:
    """OCI labels plus our own; no timestamp, so a rebuild of the same inputs gives the same config."""
    vllm = plan.matrix.components.vllm
    out = {
        "org.opencontainers.image.title": f"{plan.matrix.image.name} {plan.cell.name}",
        "org.opencontainers.image.description": "ROCm expert-parallel inference stack "
        "(rdma-core, rocSHMEM, DeepEP, MoRI, AITER, vLLM) built by epbuild",
        "org.opencontainers.image.version": f"{plan.cell.name}-{key[:12]}",
        "org.opencontainers.image.source": vllm.repo,
        "org.opencontainers.image.revision": vllm.commit,
        "org.opencontainers.image.base.name": plan.matrix.base.image,
        CELL_LABEL: plan.cell.name,
        f"{LABEL_PREFIX}.arch": plan.cell.arch,
        f"{LABEL_PREFIX}.nic": plan.cell.nic,
        KEY_LABEL: key,
    }
    for name, pin in built_pins(plan).items():
        out[f"{LABEL_PREFIX}.pin.{name}"] = pin.commit
    return out


def versions_txt(plan: CellPlan, key: str) -> str:
    """`KEY: value` lines, the format of the reference image's /app/versions.txt."""
    lines = [f"BASE_IMAGE: {plan.matrix.base.image}", f"EPBUILD_CELL: {plan.cell.name}", f"EPBUILD_KEY: {key}"]
    for name, pin in built_pins(plan).items():
        stem = name.upper().replace("-", "_")
        lines.append(f"{stem}_REPO: {pin.repo}")
        lines.append(f"{stem}_COMMIT: {pin.commit}")
        if pin.tag:
            lines.append(f"{stem}_TAG: {pin.tag}")
    return "\n".join(lines) + "\n"
