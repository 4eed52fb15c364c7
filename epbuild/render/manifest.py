"""The one record of a cell: what it is and builds. `final` carries it as /opt/epbuild/manifest.json (with
/app/versions.txt and OCI labels), `invoke matrix` lists it, and the image checks read their expectations from
it.

Two keys: the recipe key, a digest of the cell's rendered stages (the recipe key itself left out, so it never
feeds itself) and of what the matrix says, known when rendering and carried by the rendered `final` stage; and
the content key (epbuild.render.content_key), which adds the exact inputs resolved at build time (the base image's
digest, full commits). What depends on those inputs (the record, versions.txt, and the resolved labels) is
written by the build into `final` only, so a new key never invalidates a build stage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from epbuild.inputs.resolve import Resolved, pinned_digest
from epbuild.model import stagegraph
from epbuild.model.plan import CellPlan

LABEL_PREFIX = "io.epbuild"
KEY_LABEL = f"{LABEL_PREFIX}.content-key"
RECIPE_LABEL = f"{LABEL_PREFIX}.recipe-key"
CELL_LABEL = f"{LABEL_PREFIX}.cell"
DIRTY_LABEL = f"{LABEL_PREFIX}.dirty"


def facts(plan: CellPlan) -> dict[str, Any]:
    """What the matrix says about the cell (its record without the resolved inputs and keys)."""
    values = {**_own_facts(plan), **_shared_facts(plan)}
    return {name: values[name] for name in _FACT_ORDER}


_FACT_ORDER = ("cell", "arch", "archs", "nic", "base", "provider", "provider_library", "rdma_core", "base_image",
               "rocm_path", "image", "stages", "distributions", "runtime_env")


def _own_facts(plan: CellPlan) -> dict[str, Any]:
    """The facts that name the cell itself."""
    cell = plan.cell
    return {"cell": cell.name, "arch": cell.arch, "archs": list(cell.archs), "image": plan.local_tag}


def _shared_facts(plan: CellPlan) -> dict[str, Any]:
    """The facts that follow from the cell's NIC, its base and the stages that apply (and the matrix): the same
    for every cell with the same _shared_facts_key."""
    return {
        "nic": plan.cell.nic,
        "base": plan.cell.base,
        "provider": plan.nic.provider,
        "provider_library": plan.nic.provider_library,
        "rdma_core": plan.nic.rdma_core,
        "base_image": plan.base.image,
        "rocm_path": plan.base.rocm_path,
        "stages": [s.name for s in stagegraph.stages_for(plan)],
        "distributions": stagegraph.distributions(plan),
        "runtime_env": dict(plan.matrix.runtime_env),
    }


def _shared_facts_key(plan: CellPlan) -> tuple[Any, ...]:
    """What _shared_facts reads of the cell: its NIC, its base and the stages that apply."""
    return ("recipe-facts", plan.cell.nic, plan.cell.base, stagegraph.applied_names(plan))


def _sorted_facts_json(plan: CellPlan) -> str:
    """json.dumps(facts(plan), sort_keys=True), the shared facts' items encoded once per matrix for the cells that
    share them (encoding every cell's whole record was a tenth of a 1,000-cell render)."""
    key = _shared_facts_key(plan)
    shared = plan.shared.get(key)
    if shared is None:
        shared = plan.shared[key] = {name: _item_json(name, value) for name, value in _shared_facts(plan).items()}
    items = {**shared, **{name: _item_json(name, value) for name, value in _own_facts(plan).items()}}
    return "{" + ", ".join(items[name] for name in sorted(items)) + "}"


def _item_json(name: str, value: Any) -> str:
    return f"{_SORTED_JSON.encode(name)}: {_SORTED_JSON.encode(value)}"


def recipe_key(plan: CellPlan, stage_digests: Sequence[str]) -> str:
    """The recipe key of the cell whose keyless stage texts have the sha256 hex digests `stage_digests`
    (stage_digest), in the cell's stage order: the sha256 of json.dumps({"base_digest", "facts", "pins",
    "stages"}, sort_keys=True), its "stages" the digests. Hashing each distinct stage text once per matrix, not
    every cell's 20 kB of them escaped as JSON, took a seventh off a 1,000-cell render; a digest names a text as
    surely as the text."""
    # Commits are left to the content key, which takes them in full: an abbreviated and a full spelling of one
    # commit must give one key. `requires` only checks a pin; it changes nothing in the image.
    built = stagegraph.built_pins(plan)
    pins_key = ("recipe-pins", *built)  # the same for every cell that builds the same components (a frozen matrix)
    if pins_key not in plan.shared:
        plan.shared[pins_key] = json.dumps({name: pin.model_dump(mode="json", exclude={"commit", "requires"})
                                            for name, pin in built.items()}, sort_keys=True)
    # The payload is written out here in its (sorted) order with json.dumps's default separators, so that the
    # pins and the shared facts are encoded once per matrix.
    base_key = ("recipe-base-digest", plan.cell.base)  # the base's pinned digest, or null: one per base
    if base_key not in plan.shared:
        plan.shared[base_key] = json.dumps(pinned_digest(plan.base))
    stages = ", ".join(f'"{digest}"' for digest in stage_digests)
    return hashlib.sha256(f'{{"base_digest": {plan.shared[base_key]}, "facts": {_sorted_facts_json(plan)}, '
                          f'"pins": {plan.shared[pins_key]}, "stages": [{stages}]}}'.encode()).hexdigest()


_SORTED_JSON = json.JSONEncoder(sort_keys=True)
"""json.dumps(value, sort_keys=True)'s encoder, made once (json.dumps makes one on every call given any option)."""


def stage_digest(text: str) -> str:
    """A keyless stage text's sha256 hex digest, as the recipe key takes it."""
    return hashlib.sha256(text.encode()).hexdigest()


def pins_record(plan: CellPlan, resolved: Resolved) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, pin in stagegraph.built_pins(plan).items():
        component = plan.registry[name]
        entry: dict[str, Any] = {"repo": pin.repo, "commit": resolved.commits[name]}
        if pin.tag:
            entry["tag"] = pin.tag
        if component.copies(pin):
            entry["copies"] = component.copies(pin)
        entry.update(component.record(pin))
        if name in resolved.dirty:
            entry["local_tree"] = resolved.local_paths.get(name, "")
            entry["local_tree_digest"] = resolved.dirty[name]
        out[name] = entry
    return out


def record(plan: CellPlan, recipe: str, key: str, resolved: Resolved) -> dict[str, Any]:
    """The cell's record: the manifest `final` carries, the image checks' input."""
    return {
        **facts(plan),
        "base_digest": resolved.base_digests[plan.cell.base],
        "components": pins_record(plan, resolved),
        "dirty": sorted(resolved.dirty),
        "recipe_key": recipe,
        "content_key": key,
    }


manifest = record
"""/opt/epbuild/manifest.json is the cell's record."""


def static_labels(plan: CellPlan, recipe: str) -> dict[str, str]:
    """The labels the rendered `final` stage carries; no timestamp, so a rebuild of the same inputs gives the same
    config."""
    names = ", ".join(stagegraph.built_pins(plan))
    return {
        "org.opencontainers.image.title": f"{plan.matrix.image.name} {plan.cell.name}",
        "org.opencontainers.image.description": f"ROCm expert-parallel inference stack ({names}) built by epbuild",
        "org.opencontainers.image.source": plan.pins[plan.matrix.image.source_component].repo,
        "org.opencontainers.image.base.name": plan.base.image,
        CELL_LABEL: plan.cell.name,
        f"{LABEL_PREFIX}.arch": plan.cell.arch,
        f"{LABEL_PREFIX}.nic": plan.cell.nic,
        f"{LABEL_PREFIX}.base": plan.cell.base,
        RECIPE_LABEL: recipe,
    }


def resolved_labels(plan: CellPlan, key: str, resolved: Resolved) -> dict[str, str]:
    """The labels the build adds (through bake), from the inputs it resolved."""
    out = {
        "org.opencontainers.image.version": f"{plan.cell.name}-{key[:12]}",
        "org.opencontainers.image.revision": resolved.commits.get(plan.matrix.image.source_component, ""),
        "org.opencontainers.image.base.digest": resolved.base_digests[plan.cell.base],
        KEY_LABEL: key,
        DIRTY_LABEL: ",".join(sorted(resolved.dirty)) or "false",
    }
    for name in stagegraph.built_pins(plan):
        out[f"{LABEL_PREFIX}.pin.{name}"] = resolved.commits[name]
    return out


def labels(plan: CellPlan, recipe: str, key: str, resolved: Resolved) -> dict[str, str]:
    return {**static_labels(plan, recipe), **resolved_labels(plan, key, resolved)}


def versions_txt(plan: CellPlan, key: str, resolved: Resolved) -> str:
    """`KEY: value` lines, the format of the reference image's /app/versions.txt."""
    lines = [f"BASE_IMAGE: {plan.base.image}", f"BASE_DIGEST: {resolved.base_digests[plan.cell.base]}",
             f"EPBUILD_CELL: {plan.cell.name}", f"EPBUILD_KEY: {key}"]
    for name, pin in stagegraph.built_pins(plan).items():
        stem = name.upper().replace("-", "_")
        lines.append(f"{stem}_REPO: {pin.repo}")
        lines.append(f"{stem}_COMMIT: {resolved.commits[name]}")
        if pin.tag:
            lines.append(f"{stem}_TAG: {pin.tag}")
        if name in resolved.dirty:
            lines.append(f"{stem}_LOCAL_TREE: {resolved.local_paths.get(name, '')} {resolved.dirty[name]} "
                         "(uncommitted changes included)")
    return "\n".join(lines) + "\n"
