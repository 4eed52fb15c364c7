"""The buildx bake file: one target per cell, each fed its sources as named contexts `src-<component>` (and its
NIC's verified vendor packages as `vendor-debs`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from typing import Any

from epbuild.inputs import cargo_vendor
from epbuild.model import stagegraph
from epbuild.model.plan import CellPlan
from epbuild.util.paths import (
    GIT_HEAD_DIR,
    SCM_DIR,
    native_dir,
    runtime_wheelhouse_dir,
    source_dir,
    vendor_dir,
    wheelhouse_dir,
)

BAKE_FILE = "docker-bake.json"
SERVING_STAGE = "vllm-openai"


def serving_target(cell: str) -> str:
    """The bake target (and local tag suffix) of a cell's serving image."""
    return f"{cell}-{SERVING_STAGE}"


RUNTIME_WHEELS_CONTEXT = "runtime-wheels"
"""The final stage's wheelhouse: the runtime requirements its wheels install with them, resolved against the base."""


VENDOR_CONTEXT = "vendor-debs"
"""The named context of the `vendor` stage (templates/stages/vendor.Dockerfile.j2 mounts it)."""


def runtime_pins(plan: Any) -> dict[str, str]:
    """{component: commit} of the built components whose wheels install runtime requirements."""
    return {name: pin.commit for name, pin in stagegraph.built_pins(plan).items()
            if plan.registry[name].runtime_requirements is not None}


def component_contexts(plan: CellPlan, name: str, ref: str, source: str) -> dict[str, str]:
    """The named contexts of one component's stages in a cell: its source tree `source`, and what the host
    prepared from that tree under `ref` (the pin's commit; a local tree's own ref, laid over by the build)."""
    component, pin = plan.registry[name], plan.pins[name]
    contexts = {f"src-{name}": source}
    if component.scm_distribution is not None:
        contexts[f"scm-{name}"] = f"{SCM_DIR}/{name}-{ref}"
    for archive in component.archives(pin):
        contexts[archive.context] = archive.dest
    if component.git_head:
        contexts[f"git-{name}"] = f"{GIT_HEAD_DIR}/{name}-{ref}"
    if component.build_requirements:
        contexts[f"wheels-{name}"] = wheelhouse_dir(name, ref, plan.cell.base)
    if component.cargo_workspace(pin) is not None:
        contexts[cargo_vendor.context_name(name)] = cargo_vendor.crates_dir(name, ref)
    if component.native_inputs is not None:
        contexts[f"native-{name}"] = native_dir(name, ref)
    return contexts


def cell_target(rc: stagegraph.Rendered, *, context_root: str) -> dict[str, Any]:
    """The bake target that builds `rc`'s final stage: its folder, Dockerfile and named contexts."""
    target = _target(rc.plan, context_root)
    return {**target, "contexts": dict(target["contexts"])}


def _target(plan: CellPlan, context_root: str) -> dict[str, Any]:
    """cell_target's, its named contexts a dict shared by every cell with the same (not to be changed)."""
    return {
        "context": f"{context_root}/{plan.cell.name}",
        "dockerfile": "Dockerfile",
        "contexts": _cell_contexts(plan),
        "target": "final",
        "tags": [plan.local_tag],
    }


def _cell_contexts(plan: CellPlan) -> dict[str, str]:
    """The cell's named contexts: its sources' (they follow from the stages that apply and the base, wheelhouses
    being per base) and its NIC's vendor packages (by the NIC and its vendor userspace's digest). One dict for the
    cells that agree on those, found once per matrix: bake_json writes it once for all of them."""
    key = ("bake-contexts", stagegraph.applied_names(plan), plan.cell.base, plan.cell.nic, plan.vendor_digest)
    if key not in plan.shared:
        contexts = _source_contexts(plan)
        if plan.vendor_digest is not None:  # the NIC has a vendor userspace
            contexts[VENDOR_CONTEXT] = vendor_dir(plan.cell.nic, plan.vendor_digest)
        plan.shared[key] = contexts
    return plan.shared[key]


def _source_contexts(plan: CellPlan) -> dict[str, str]:
    contexts = {}
    for name, pin in stagegraph.built_pins(plan).items():
        contexts.update(component_contexts(plan, name, pin.commit, source_dir(name, pin.commit)))
    if runtime_pins(plan):
        contexts[RUNTIME_WHEELS_CONTEXT] = runtime_wheelhouse_dir(runtime_pins(plan), plan.cell.base)
    return contexts


def bake_json(cells: Sequence[stagegraph.Rendered], *, context_root: str) -> str:
    # Each target's named contexts are the dict its cell shares with the others like it: indented_json's memo
    # writes each such dict once.
    targets = {rc.plan.cell.name: _target(rc.plan, context_root) for rc in cells}
    names = list(targets)
    for rc in cells:
        name = rc.plan.cell.name
        targets[serving_target(name)] = {**targets[name], "target": SERVING_STAGE,
                                         "tags": [serving_target(rc.plan.local_tag)]}
    memo: dict[tuple[int, str], str] = {}
    group = indented_json({"default": {"targets": names}}, "  ", memo)
    written = [f"    {encode_basestring_ascii(name)}: {_target_json(target, '    ', memo)}"
               for name, target in targets.items()]
    body = "{\n" + ",\n".join(written) + "\n  }" if written else "{}"
    return '{\n  "group": ' + group + ',\n  "target": ' + body + "\n}\n"


_TARGET_KEYS = ("context", "dockerfile", "contexts", "target", "tags")


def _target_json(target: dict[str, Any], indent: str, memo: dict[tuple[int, str], str]) -> str:
    """indented_json(target, indent, memo) for a target as _target makes it, written from one format: the generic
    walk over 2,000 targets' fields took a sixth of a 1,000-cell render."""
    if tuple(target) != _TARGET_KEYS or not all(type(tag) is str for tag in target["tags"]) or not target["tags"]:
        return indented_json(target, indent, memo)
    inner = indent + "  "
    tags = f",\n{inner}  ".join(map(encode_basestring_ascii, target["tags"]))
    return (f'{{\n{inner}"context": {_string(target["context"])},\n'
            f'{inner}"dockerfile": {_string(target["dockerfile"])},\n'
            f'{inner}"contexts": {indented_json(target["contexts"], inner, memo)},\n'
            f'{inner}"target": {_string(target["target"])},\n'
            f'{inner}"tags": [\n{inner}  {tags}\n{inner}]\n{indent}}}')


def indented_json(value: Any, indent: str = "", memo: dict[tuple[int, str], str] | None = None) -> str:
    """json.dumps(value, indent=2), character for character, for what a bake file holds (dicts, lists, strings,
    numbers, booleans, null). The standard library writes indented JSON with its pure-Python encoder (its C encoder
    does no indenting before Python 3.14), which took a fifth of a 1,000-cell render; this builds the same text
    from the C-accelerated string escaping. With `memo`, a dict or list met again (the same object: a serving
    target's named contexts are its cell's) is written once; the objects must not change during the call."""
    if type(value) is str:
        return encode_basestring_ascii(value)
    inner = indent + "  "
    if isinstance(value, (dict, list, tuple)) and memo is not None:
        key = (id(value), indent)
        found = memo.get(key)
        if found is None:
            found = memo[key] = _container(value, indent, inner, memo)
        return found
    if isinstance(value, (dict, list, tuple)):
        return _container(value, indent, inner, memo)
    if isinstance(value, str):
        return _string(value)
    return json.dumps(value)


def _container(value: dict[Any, Any] | list[Any] | tuple[Any, ...], indent: str, inner: str,
               memo: dict[tuple[int, str], str] | None) -> str:
    # Most values of a bake file are strings: each is escaped here, without a call of its own.
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{_string(key)}: "
                 f"{encode_basestring_ascii(item) if type(item) is str else indented_json(item, inner, memo)}"
                 for key, item in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if not value:
        return "[]"
    items = [inner + (encode_basestring_ascii(item) if type(item) is str else indented_json(item, inner, memo))
             for item in value]
    return "[\n" + ",\n".join(items) + f"\n{indent}]"


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a bake file's keys are strings, not {value!r}")
    return encode_basestring_ascii(value)
